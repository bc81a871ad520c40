/**
 * `npm run bench -- --only boost`: vertical gradient boosting (src/vertical/boost/) against the central GBDT it
 * equals (src/model/gbdt.ts), on the UCI and Give Me Some Credit splits of the quality benchmark (bench/quality.ts:
 * the bank holds the credit history and the label, the bureau the rest). Guest and host run in this one process over
 * the in-memory port, each with its own CKKS engine, so the federated time is both parties' work on one core plus
 * the codecs, without gRPC. The figures: test AUC of both (the federated model scored through the host's own split
 * table), their gap, the time of each and the ratio, seconds per tree.
 */
import { CkksEngine } from '../src/he/engine.js';
import { VERTICAL_CKKS_PARAMS } from '../src/he/params.js';
import { auc } from '../src/metrics.js';
import { binColumn, boost, DEFAULT_GBDT_PARAMS, localOracle, predictMargin, type GbdtModel, type GbdtParams } from '../src/model/gbdt.js';
import { guestBoost } from '../src/vertical/boost/guest.js';
import { hostBoost, type HostSplit } from '../src/vertical/boost/host.js';
import { MemoryFederation } from '../src/vertical/lr/memory-port.js';
import { plaintextOpener } from '../src/vertical/lr/opener.js';
import { holdout, qualityDatasets, readTable } from './quality.js';

/** UCI's small-integer codes the trees split as categories. */
const CATEGORICAL = ['SEX', 'EDUCATION', 'MARRIAGE'];

/** The guest's model with each host split's bins filled in from the host's table: what federated scoring computes. */
function resolved(model: GbdtModel, host: string, table: HostSplit[]): GbdtModel {
  return {
    ...model,
    trees: model.trees.map((t) => ({
      nodes: t.nodes.map((n) => (n.kind === 'split' && 'owner' in n.ref && n.ref.owner === host ? { ...n, ref: { leftBins: table[n.ref.id]!.leftBins } } : n)),
    })),
  };
}

export async function boostBench(datasets: string, quick: boolean, results: Record<string, number>, table: string[][]): Promise<void> {
  const params: GbdtParams = { ...DEFAULT_GBDT_PARAMS, trees: quick ? 2 : 3, depth: quick ? 3 : 4, learningRate: 0.3 };
  const maxRows = quick ? 10_000 : 30_000;
  for (const d of qualityDatasets(datasets).filter((q) => q.key === 'uci' || q.key === 'gmsc')) {
    const t = readTable({ ...d, maxRows: Math.min(d.maxRows ?? Infinity, maxRows) });
    const built = t.features.map((f, j) => binColumn(f, d.guest.includes(f) ? 'bank' : 'bureau', t.columns[j]!, { maxBins: 32, categorical: CATEGORICAL.includes(f) }));
    const features = built.map((b) => b.info);
    const bins = built.map((b) => b.bins);
    const labels = Float64Array.from(t.y);
    const { fit, test } = holdout(t);
    const valid = Uint32Array.from(fit.filter((_, i) => i % 8 === 0));
    const train = Uint32Array.from(fit.filter((_, i) => i % 8 !== 0));
    const inputs = { labels, train, valid };
    const testAuc = (model: GbdtModel) => {
      const margin = predictMargin(model, bins, labels.length);
      return auc(
        test.map((r) => labels[r]!),
        test.map((r) => margin[r]!),
      );
    };

    let started = performance.now();
    const central = await boost(localOracle(features, bins), inputs, params);
    const centralS = (performance.now() - started) / 1000;

    const own = d.guest.length;
    const guestEngine = await CkksEngine.create(VERTICAL_CKKS_PARAMS);
    const hostEngine = await CkksEngine.create(VERTICAL_CKKS_PARAMS);
    const fed = new MemoryFederation('bank', ['bureau'], plaintextOpener, 3_600_000);
    try {
      started = performance.now();
      const [model, splits] = await Promise.all([
        guestBoost(fed.port('bank', 0), { engine: guestEngine, features: features.slice(0, own), bins: bins.slice(0, own), ...inputs, params }),
        hostBoost(fed.port('bureau', 0), { engine: hostEngine, features: features.slice(own).map(({ owner: _, ...f }) => f), bins: bins.slice(own) }),
      ]);
      const federatedS = (performance.now() - started) / 1000;
      const centralAuc = testAuc(central);
      const federatedAuc = testAuc(resolved(model, 'bureau', splits));
      const key = `vertical_gbdt.${d.key}`;
      results[`${key}.central_auc`] = centralAuc;
      results[`${key}.federated_auc`] = federatedAuc;
      results[`${key}.auc_gap`] = centralAuc - federatedAuc;
      results[`${key}.central_s`] = centralS;
      results[`${key}.federated_s`] = federatedS;
      results[`${key}.ckks_over_central`] = federatedS / centralS;
      results[`${key}.s_per_tree`] = federatedS / model.trees.length;
      const hostBins = features.slice(own).reduce((s, f) => s + f.bins, 0);
      table.push([
        `boost ${d.key}: ${t.y.length} rows, ${own} guest + ${features.length - own} host features (${hostBins} host bins), ${params.trees} trees of depth ${params.depth}`,
        `test AUC central ${centralAuc.toFixed(4)} federated ${federatedAuc.toFixed(4)} (gap ${(centralAuc - federatedAuc).toExponential(1)})`,
        `central ${centralS.toFixed(2)} s, federated ${federatedS.toFixed(1)} s (${(federatedS / model.trees.length).toFixed(1)} s/tree, ×${(federatedS / centralS).toFixed(0)})`,
      ]);
    } finally {
      fed.dispose();
      guestEngine.dispose();
      hostEngine.dispose();
    }
  }
}
