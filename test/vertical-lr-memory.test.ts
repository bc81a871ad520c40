/**
 * A whole vertical LR job in one process over the in-memory port, with real CKKS: a bank (guest, labels and 13
 * columns) and two hosts holding five columns each of 4,000 enterprises of the UCI hetero split, with binning and a
 * scorecard. The encrypted job must rank held-out defaults, match the same job in the clear, and leave every party
 * the records a participant keeps.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { JobSpec, type VerticalJobSpec } from '../src/config/schemas.js';
import { CkksEngine, VERTICAL_CKKS_PARAMS } from '../src/he/ckks.js';
import { ckksCipher, plaintextCipher } from '../src/vertical/cipher.js';
import { modelPartDigest } from '../src/vertical/party-model.js';
import { ckksOpener, plaintextOpener } from '../src/vertical/lr/opener.js';
import { runMemoryVerticalJob, uciAligned, UCI_GUEST_FEATURES, UCI_HOST_FEATURES, verticalJob, type MemoryParty } from './helpers/vertical.js';

const engines: CkksEngine[] = [];
afterAll(() => engines.forEach((e) => e.dispose()));
const engine = async () => {
  const e = await CkksEngine.create(VERTICAL_CKKS_PARAMS);
  engines.push(e);
  return e;
};

describe('a vertical LR job in one process (guest + two hosts + arbiter, real CKKS)', () => {
  it('trains, scores and keeps what a participant keeps, as the same job does in the clear', async () => {
    const spec = JobSpec.parse({
      ...verticalJob({ hosts: ['tax-bureau', 'power'], training: { epochs: 4, batch_size: 512, learning_rate: 0.1, patience: 2 } }),
      binning: {},
      scorecard: {},
    }) as VerticalJobSpec;
    const aligned = await uciAligned(4000);
    const { guest, alignment } = aligned;
    // The hosts' columns as h0..h9: a scorecard names each feature once across the parties.
    const host = { ...aligned.host, features: aligned.host.features.map((f) => f.replace(/^x/, 'h')) };
    const hostFeatures = UCI_HOST_FEATURES.map((f) => f.replace(/^x/, 'h'));
    const parties: MemoryParty[] = [
      { org: 'bank', data: guest, features: UCI_GUEST_FEATURES, engine: await engine() },
      { org: 'tax-bureau', data: host, features: hostFeatures.slice(0, 5), engine: await engine() },
      { org: 'power', data: host, features: hostFeatures.slice(5), engine: await engine() },
    ];
    const arbiter = await engine();
    const keys = arbiter.generateArbiterKeys();
    const encrypted = await runMemoryVerticalJob(spec, parties, alignment, { cipher: (p) => ckksCipher(p.engine, keys.publicKey, keys.galoisKeys), opener: ckksOpener(arbiter, keys.secretKey) });
    const clear = await runMemoryVerticalJob(spec, parties, alignment, { cipher: () => plaintextCipher, opener: plaintextOpener });

    const auc = Number(encrypted.evaluation.test_auc);
    console.log(`[in-memory vertical job] test AUC ${auc.toFixed(4)} (clear ${Number(clear.evaluation.test_auc).toFixed(4)}), best epoch ${encrypted.best}, ${encrypted.reports.length} steps`);
    expect(auc).toBeGreaterThan(0.7);
    expect(Math.abs(auc - Number(clear.evaluation.test_auc))).toBeLessThan(2e-3);
    expect(encrypted.best).toBe(clear.best);

    // Every party keeps its model part, committed to in its finalize report; the guest its calibration.
    const finalize = encrypted.reports.find((r) => r.name === 'finalize')!;
    for (const p of parties) {
      const part = encrypted.kept.get(p.org)!.modelPart!;
      expect(part.organisation).toBe(p.org);
      expect(finalize.reports.get(p.org)!.part_sha256).toBe(Buffer.from(modelPartDigest(part)).toString('hex'));
    }
    expect(encrypted.kept.get('bank')!.modelPart!.calibration).toBeDefined();
    // The scorecard holds the selected features of all three parties; the model report the IV of every feature.
    const bank = encrypted.kept.get('bank')!;
    const parties_ = new Set(bank.scorecard!.features.map((f) => f.party));
    expect([...parties_].sort()).toEqual(['bank', 'power', 'tax-bureau']);
    expect(bank.modelReport!.iv!.length).toBe(UCI_GUEST_FEATURES.length + UCI_HOST_FEATURES.length);
    expect(bank.testScores!.trim().split('\n').length).toBe(alignment.test.length + 1);
    // Hosts keep no labels' worth of anything: no held-out scores, no report.
    expect(encrypted.kept.get('power')!.testScores).toBeUndefined();
    expect(encrypted.kept.get('power')!.modelReport).toBeUndefined();
  }, 300_000);
});
