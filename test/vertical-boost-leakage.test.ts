/**
 * What a host learns from vertical boosting (docs/protocol-boost.md, "Who learns what"): the rows of every node it
 * is asked about. A simple label-inference attack from the host's view — it knows the labels of 5% of the rows (say,
 * its own customers who defaulted on it too), scores every other row by the known default rate of the nodes it was
 * seen in, and ranks the rows by it — is measured on a UCI slice and recorded, and bounded by what the model itself
 * tells about the same rows.
 */
import { describe, expect, it } from 'vitest';
import { verticalEngines } from './helpers/vertical.js';
import { ErrorCode } from '../src/errors.js';
import { generateKeys } from '../src/he/key-ceremony.js';
import { encryptRowValues } from '../src/vertical/label-sums.js';
import { auc } from '../src/metrics.js';
import { DEFAULT_GBDT_PARAMS, predictMargin, type GbdtParams } from '../src/model/gbdt.js';
import { Rng } from '../src/random.js';
import { guestBoost } from '../src/vertical/boost/guest.js';
import { hostBoost } from '../src/vertical/boost/host.js';
import type { BoostAsk } from '../src/vertical/boost/payloads.js';
import { MemoryFederation } from '../src/vertical/lr/memory-port.js';
import { plaintextOpener } from '../src/vertical/lr/opener.js';
import type { PeerPort } from '../src/vertical/lr/port.js';
import { uciTrees } from './helpers/credit-trees.js';

const BANK = ['PAY_0', 'PAY_2', 'PAY_3', 'LIMIT_BAL'];
const TAX = ['BILL_AMT1', 'PAY_AMT1', 'AGE'];

describe("a host's view of vertical boosting", () => {
  const engines = verticalEngines();

  it('a label-inference attack from the node row sets ranks defaults no better than the model does', async () => {
    const data = uciTrees({ rows: 3000, maxBins: 10, features: [...BANK, ...TAX], ownerOf: (f) => (BANK.includes(f) ? 'bank' : 'tax-bureau') });
    const params: GbdtParams = { ...DEFAULT_GBDT_PARAMS, trees: 3, depth: 3, learningRate: 0.3 };
    const own = BANK.length;
    const fed = new MemoryFederation('bank', ['tax-bureau'], plaintextOpener, 600_000);
    const seen: BoostAsk[] = [];
    const port = fed.port('tax-bureau', 0);
    // The host's view: every ask it receives, as it receives it.
    const recording: PeerPort = {
      ...port,
      receive: async (from, kind) => {
        const value = await port.receive(from, kind);
        if (kind === 'boost.ask') seen.push(value as BoostAsk);
        return value;
      },
    };
    try {
      const [model, splits] = await Promise.all([
        guestBoost(fed.port('bank', 0), {
          engine: engines.guest,
          features: data.features.slice(0, own),
          bins: data.bins.slice(0, own),
          labels: data.labels,
          train: data.train,
          valid: data.valid,
          params,
        }),
        hostBoost(recording, { engine: engines.host, features: data.features.slice(own).map(({ owner: _, ...f }) => f), bins: data.bins.slice(own) }),
      ]);
      const n = data.labels.length;
      const rng = new Rng(11);
      const known = new Uint8Array(n);
      for (const r of data.train) if (rng.next() < 0.05) known[r] = 1;
      let knownDefaults = 0;
      let knownRows = 0;
      for (let r = 0; r < n; r++) {
        if (!known[r]) continue;
        knownRows++;
        knownDefaults += data.labels[r]!;
      }
      const base = knownDefaults / knownRows;
      // Each row's score: the sum, over the nodes it was seen in, of the node's known default rate above the base.
      const score = new Float64Array(n);
      for (const ask of seen) {
        const nodes = ask.kind === 'histograms' ? ask.nodes : ask.kind === 'splits' ? ask.splits : [];
        for (const node of nodes) {
          let d = 0;
          let k = 0;
          for (const r of node.rows) {
            if (!known[r]) continue;
            k++;
            d += data.labels[r]!;
          }
          if (k === 0 || node.rows.length === n) continue;
          for (const r of node.rows) score[r]! += d / k - base;
        }
      }
      const targets = Array.from(data.train).filter((r) => !known[r]);
      const attackAuc = auc(
        targets.map((r) => data.labels[r]!),
        targets.map((r) => score[r]!),
      );
      const resolved = {
        ...model,
        trees: model.trees.map((t) => ({ nodes: t.nodes.map((x) => (x.kind === 'split' && 'owner' in x.ref ? { ...x, ref: { leftBins: splits[x.ref.id]!.leftBins } } : x)) })),
      };
      const margin = predictMargin(resolved, data.bins, n);
      const modelAuc = auc(
        targets.map((r) => data.labels[r]!),
        targets.map((r) => margin[r]!),
      );
      // As a guess of each label: "default" for the rows of highest score, as many as the known default rate says.
      const ranked = [...targets].sort((a, b) => score[b]! - score[a]!);
      const flagged = new Set(ranked.slice(0, Math.round(base * ranked.length)));
      const accuracy = targets.filter((r) => (flagged.has(r) ? 1 : 0) === data.labels[r]).length / targets.length;
      const trueRate = targets.reduce((s, r) => s + data.labels[r]!, 0) / targets.length;
      const topDecile = ranked.slice(0, Math.round(ranked.length / 10));
      const topRate = topDecile.reduce((s, r) => s + data.labels[r]!, 0) / topDecile.length;
      console.log(
        `label inference from the host's view: AUC ${attackAuc.toFixed(3)} on ${targets.length} training rows (the model's own: ${modelAuc.toFixed(3)}); ` +
          `accuracy ${accuracy.toFixed(3)} against ${(1 - trueRate).toFixed(3)} for guessing "no default" for all (default rate ${trueRate.toFixed(3)}); ` +
          `default rate of its top decile ${topRate.toFixed(3)}`,
      );
      // The instance space leaks: the attack ranks better than chance, and no better than the model would.
      expect(attackAuc).toBeGreaterThan(0.55);
      expect(topRate).toBeGreaterThan(trueRate);
      expect(attackAuc).toBeLessThanOrEqual(modelAuc + 0.01);
    } finally {
      fed.dispose();
    }
  }, 600_000);

  it('a host answers no histogram or split for a node smaller than its floor (consent.min_node_rows), so a deviating guest cannot isolate an enterprise, and sums no node from a root it was not sent', async () => {
    const n = 200;
    const floor = 20;
    // One host feature of 4 bins; only rows 0 and 1 lie in bin 3.
    const column = Uint16Array.from({ length: n }, (_, r) => (r < 2 ? 3 : r % 3));
    const features = [{ name: 'BILL_AMT1', bins: 4, ordered: 4, categorical: false, monotone: 0 as const }];
    const all = Array.from({ length: n }, (_, r) => r);
    const keys = generateKeys(engines.guest, 'arbiter');
    const values = Float64Array.from({ length: n }, (_, r) => (r % 5) / 10);
    // Each asked node comes with [[g + i·h]] of its own rows.
    const gradientsOf = (rows: number[]) => {
      const v = Float64Array.from(rows, (r) => values[r]!);
      return { gh: encryptRowValues(engines.guest, v, keys.publicKey, v) };
    };
    // A guest double that follows the protocol up to one ask, then sends `deviation`.
    const serve = async (deviation: BoostAsk) => {
      const fed = new MemoryFederation('bank', ['tax-bureau'], plaintextOpener, 30_000);
      const guest = fed.port('bank', 0);
      try {
        const host = hostBoost(fed.port('tax-bureau', 0), { engine: engines.host, features, bins: [column], minNodeRows: floor });
        await guest.send('tax-bureau', 'boost.keys', { galoisKeys: keys.galoisKeys, publicKey: keys.publicKey });
        await guest.receive('tax-bureau', 'boost.layout');
        // An honest first level: the root's histogram is answered.
        await guest.send('tax-bureau', 'boost.ask', { kind: 'histograms', tree: 0, level: 0, nodes: [{ node: 0, rows: all }], gradients: [gradientsOf(all)] });
        const answered = await guest.receive('tax-bureau', 'boost.histograms');
        await guest.send('tax-bureau', 'boost.ask', deviation);
        return {
          answered: answered.sums.length,
          refused: await host.then(
            () => undefined,
            (err: unknown) => err,
          ),
        };
      } finally {
        fed.dispose();
      }
    };
    const tinyNode = await serve({ kind: 'histograms', tree: 0, level: 1, nodes: [{ node: 1, rows: [5, 9, 17] }], gradients: [gradientsOf([5, 9, 17])] });
    expect(tinyNode.answered).toBe(1);
    expect(tinyNode.refused).toMatchObject({ code: ErrorCode.PROTOCOL, message: expect.stringMatching(/histogram of node 1 of 3 rows.*at least 20 rows \(consent\.min_node_rows\)/) });
    // A split of a large node whose left side holds the two rows of a rare bin would tell the guest those rows' bin.
    const tinySide = await serve({ kind: 'splits', tree: 0, level: 1, splits: [{ node: 0, rows: all, feature: 0, leftBins: [3] }] });
    expect(tinySide.refused).toMatchObject({ code: ErrorCode.PROTOCOL, message: expect.stringMatching(/split of node 0 of 2 rows/) });
    // A node without ciphertexts is summed from its tree's root's [[g + i·h]]: never from a tree whose root the host
    // was not sent (here tree 1), so a guest cannot have one tree's values summed over another tree's nodes.
    const rootless = await serve({ kind: 'histograms', tree: 1, level: 1, nodes: [{ node: 1, rows: all.slice(0, 50) }], gradients: [{ gh: [] }] });
    expect(rootless.refused).toMatchObject({ code: ErrorCode.PROTOCOL, message: expect.stringMatching(/node 1's histogram from the \[\[g \+ i·h\]\] of tree 1's root, which it did not send/) });
    keys.secretKey.fill(0);
  }, 600_000);
});
