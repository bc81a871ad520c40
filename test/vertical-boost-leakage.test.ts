/**
 * What a host learns from vertical boosting (docs/protocol-boost.md, "Who learns what"): the rows of every node it
 * is asked about. A simple label-inference attack from the host's view — it knows the labels of 5% of the rows (say,
 * its own customers who defaulted on it too), scores every other row by the known default rate of the nodes it was
 * seen in, and ranks the rows by it — is measured on a UCI slice and recorded, and bounded by what the model itself
 * tells about the same rows.
 */
import { describe, expect, it } from 'vitest';
import { verticalEngines } from './helpers/vertical.js';
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
      console.log(`label inference from the host's view: AUC ${attackAuc.toFixed(3)} on ${targets.length} training rows (the model's own: ${modelAuc.toFixed(3)})`);
      // The instance space leaks: the attack ranks better than chance, and no better than the model would.
      expect(attackAuc).toBeGreaterThan(0.55);
      expect(attackAuc).toBeLessThanOrEqual(modelAuc + 0.01);
    } finally {
      fed.dispose();
    }
  }, 600_000);
});
