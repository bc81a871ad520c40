/**
 * The vertical binning step over the in-memory port, with real CKKS: a bank (guest, labels) and a tax bureau (host)
 * on 2,000 enterprises of the UCI hetero split. The guest must learn exactly the number of defaults in each final
 * bin of the host's features (never which enterprise lies in which bin), and both sides must keep the same bins.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { JobSpec, type VerticalJobSpec } from '../src/config/schemas.js';
import { binCounts } from '../src/credit/binning.js';
import { CkksEngine } from '../src/he/engine.js';
import { VERTICAL_CKKS_PARAMS } from '../src/he/params.js';
import { featureColumn } from '../src/vertical/binning.js';
import { guestBinning, hostBinning } from '../src/vertical/lr/binning.js';
import { MemoryFederation } from '../src/vertical/lr/memory-port.js';
import { plaintextOpener } from '../src/vertical/lr/opener.js';
import { uciAligned, UCI_GUEST_FEATURES, UCI_HOST_FEATURES, verticalJob } from './helpers/vertical.js';

const engines: CkksEngine[] = [];
afterAll(() => engines.forEach((e) => e.dispose()));

describe('the vertical binning step over the in-memory port', () => {
  it('gives the guest the exact default counts of the host bins and both parties the same bins, WOE and IV', async () => {
    const spec = JobSpec.parse({ ...verticalJob(), binning: { max_bins: 5, iv_threshold: 0.01 } }) as VerticalJobSpec;
    const { guest, host, alignment } = await uciAligned(2000);
    const train = alignment.train;
    const labels = Float64Array.from(train, (r) => guest.y![r]!);
    const bankEngine = await CkksEngine.create(VERTICAL_CKKS_PARAMS);
    const taxEngine = await CkksEngine.create(VERTICAL_CKKS_PARAMS);
    engines.push(bankEngine, taxEngine);
    // Binning opens nothing at the arbiter: the guest opens the label sums under its own key.
    const federation = new MemoryFederation('bank', ['tax-bureau'], plaintextOpener, 60_000);
    const [bank, tax] = await Promise.all([
      guestBinning({ spec: spec.binning!, features: UCI_GUEST_FEATURES, data: guest, train, labels, engine: bankEngine }, federation.port('bank', 1)),
      hostBinning({ spec: spec.binning!, features: UCI_HOST_FEATURES, data: host, train, engine: taxEngine }, federation.port('tax-bureau', 1)),
    ]).finally(() => federation.dispose());

    expect(tax.binned.map((b) => b.feature)).toEqual(UCI_HOST_FEATURES);
    for (const b of tax.binned) {
      // What the guest learned of each host bin equals the count in the clear of the bins the host keeps.
      const clear = binCounts(featureColumn(host, b.feature, train), labels, b.edges, b.specials);
      // (A count that decrypts to a hair below zero rounds to -0, which JSON writes as 0.)
      const learned = bank.hostCounts[b.feature]!;
      expect({ events: learned.events.map((n) => n + 0), totals: learned.totals }, b.feature).toEqual(clear);
      expect(b.trainCounts).toEqual(clear.totals);
      expect(b.woe.length).toBe(clear.totals.length);
    }
    // The guest's IV table names every feature of both parties once, with the host's IV as the host holds it.
    expect(bank.ivTable!.map((r) => `${r.party}:${r.feature}`)).toEqual([...UCI_GUEST_FEATURES.map((f) => `bank:${f}`), ...UCI_HOST_FEATURES.map((f) => `tax-bureau:${f}`)]);
    for (const b of tax.binned) expect(bank.ivTable!.find((r) => r.party === 'tax-bureau' && r.feature === b.feature)).toMatchObject({ iv: b.iv, selected: b.selected });
    // `bins` counts the value bins max_bins bounds, not the missing bin every feature has on top.
    for (const b of [...bank.binned, ...tax.binned]) {
      const row = bank.ivTable!.find((r) => r.feature === b.feature && r.party === (bank.binned.includes(b) ? 'bank' : 'tax-bureau'))!;
      expect(row.bins, b.feature).toBe(b.edges.length + 1);
      expect(row.bins).toBeLessThanOrEqual(5);
    }
    // PAY_0 (the host's x5) is the strongest predictor of default in this data.
    expect(tax.binned.find((b) => b.feature === 'x5')!.iv).toBeGreaterThan(0.3);
    expect(tax.ivTable).toBeUndefined();
    expect(bank.statistics.map((s) => s.feature)).toEqual(UCI_GUEST_FEATURES);
  }, 120_000);
});
