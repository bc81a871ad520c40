/**
 * Vertical gradient boosting over the in-memory port (src/vertical/lr/memory-port.ts): a bank (guest, labels and
 * payment history) and a tax bureau (host, bill and payment amounts, age, education, marriage) on a slice of the
 * real UCI data. The federated trees must equal the central GBDT's on the same bins and settings: the same split at
 * every node (a host's split resolved through the host's own table), leaf values within the CKKS error.
 */
import { describe, expect, it } from 'vitest';
import { verticalEngines } from './helpers/vertical.js';
import { boost, DEFAULT_GBDT_PARAMS, localOracle, predictMargin, reasonCodes, type GbdtParams } from '../src/model/gbdt.js';
import { guestBoost } from '../src/vertical/boost/guest.js';
import { hostBoost } from '../src/vertical/boost/host.js';
import { guestScore, hostScore } from '../src/vertical/boost/score.js';
import { MemoryFederation } from '../src/vertical/lr/memory-port.js';
import { plaintextOpener } from '../src/vertical/lr/opener.js';
import { uciTrees } from './helpers/credit-trees.js';

const BANK = ['PAY_0', 'PAY_2', 'PAY_3', 'PAY_4', 'LIMIT_BAL'];
const TAX = ['BILL_AMT1', 'BILL_AMT2', 'PAY_AMT1', 'PAY_AMT2', 'AGE', 'EDUCATION', 'MARRIAGE'];

describe('vertical boosting, bank and tax bureau, in memory', () => {
  const engines = verticalEngines();

  it('is lossless: the federated trees equal the central GBDT trees on a slice of UCI', async () => {
    const data = uciTrees({ rows: 3000, maxBins: 12, features: [...BANK, ...TAX], ownerOf: (f) => (BANK.includes(f) ? 'bank' : 'tax-bureau'), monotone: { PAY_0: 1, PAY_AMT1: -1 } });
    const params: GbdtParams = { ...DEFAULT_GBDT_PARAMS, trees: 3, depth: 3, learningRate: 0.3, subsample: 0.8, seed: 5, guestOnlyTrees: 1 };
    const inputs = { labels: data.labels, train: data.train, valid: data.valid };
    const central = await boost(localOracle(data.features, data.bins), inputs, params);

    const own = BANK.length;
    const fed = new MemoryFederation('bank', ['tax-bureau'], plaintextOpener, 600_000);
    try {
      const [model, hostSplits] = await Promise.all([
        guestBoost(fed.port('bank', 0), { engine: engines.guest, features: data.features.slice(0, own), bins: data.bins.slice(0, own), ...inputs, params }),
        hostBoost(fed.port('tax-bureau', 0), { engine: engines.host, features: data.features.slice(own).map(({ owner: _, ...f }) => f), bins: data.bins.slice(own) }),
      ]);
      expect(model.trees).toHaveLength(central.trees.length);
      let hostNodes = 0;
      model.trees.forEach((tree, t) => {
        const want = central.trees[t]!.nodes;
        expect(tree.nodes).toHaveLength(want.length);
        tree.nodes.forEach((node, i) => {
          const w = want[i]!;
          expect(node.kind).toBe(w.kind);
          if (node.kind === 'leaf' && w.kind === 'leaf') expect(node.value).toBeCloseTo(w.value, 6);
          if (node.kind !== 'split' || w.kind !== 'split') return;
          expect([node.feature, node.left, node.right]).toEqual([w.feature, w.left, w.right]);
          expect(node.gain).toBeCloseTo(w.gain, 3);
          if ('owner' in node.ref) {
            hostNodes++;
            // The guest holds only the owner and an id; the host's table holds the bins.
            expect(node.ref.owner).toBe('tax-bureau');
            const split = hostSplits[node.ref.id]!;
            expect(split.feature + own).toBe(w.feature);
            expect(split.leftBins).toEqual('leftBins' in w.ref ? w.ref.leftBins : null);
          } else expect(node.ref).toEqual(w.ref);
        });
      });
      // The test means something only if the host's features were chosen somewhere.
      expect(hostNodes).toBeGreaterThan(0);
      expect(model.validationAuc[2]).toBeCloseTo(central.validationAuc[2]!, 6);

      // Scoring the held-out applicants in one round: the host answers a branch per applicant and split.
      const batch = (columns: Uint16Array[]) => columns.map((c) => Uint16Array.from(data.test, (r) => c[r]!));
      const [scored] = await Promise.all([
        guestScore(fed.port('bank', 1), model, batch(data.bins.slice(0, own)), data.test.length),
        hostScore(fed.port('tax-bureau', 1), hostSplits, batch(data.bins.slice(own))),
      ]);
      const want = predictMargin(central, batch(data.bins), data.test.length);
      scored.margin.forEach((m, i) => expect(m).toBeCloseTo(want[i]!, 6));
      // Reason codes: the contributions add up to the margin, and name each feature with its party.
      const roots = model.trees.reduce((s, t) => s + t.nodes[0]!.value, model.baseScore);
      const riskiest = scored.margin.indexOf(Math.max(...scored.margin));
      const total = scored.contributions.reduce((s, c) => s + c[riskiest]!, roots);
      expect(total).toBeCloseTo(scored.margin[riskiest]!, 9);
      const reasons = reasonCodes(model, scored.contributions, riskiest, 3);
      expect(reasons.length).toBeGreaterThan(0);
      for (const r of reasons) expect([...BANK.map((f) => `bank:${f}`), ...TAX.map((f) => `tax-bureau:${f}`)]).toContain(`${r.owner}:${r.feature}`);
    } finally {
      fed.dispose();
    }
  }, 600_000);

  it('refuses a host that describes its features impossibly (a monotone constraint on a category)', async () => {
    const data = uciTrees({ rows: 600, maxBins: 8, features: ['PAY_0', 'EDUCATION'] });
    const fed = new MemoryFederation('bank', ['tax-bureau'], plaintextOpener, 60_000);
    try {
      const params: GbdtParams = { ...DEFAULT_GBDT_PARAMS, trees: 1, depth: 2 };
      const guest = guestBoost(fed.port('bank', 0), {
        engine: engines.guest,
        features: data.features.slice(0, 1),
        bins: data.bins.slice(0, 1),
        labels: data.labels,
        train: data.train,
        valid: data.valid,
        params,
      });
      const host = fed.port('tax-bureau', 0);
      await host.receive('bank', 'boost.keys');
      const { owner: _, ...education } = data.features[1]!;
      await host.send('bank', 'boost.layout', [{ ...education, monotone: 1 }]);
      await expect(guest).rejects.toMatchObject({ code: 'FC_PROTOCOL', message: expect.stringContaining('impossible bin layout') });
    } finally {
      fed.dispose();
    }
  }, 120_000);
});
