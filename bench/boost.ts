/**
 * `npm run bench -- --only boost`: vertical gradient boosting (src/vertical/boost/) against the central GBDT it
 * equals (src/model/gbdt.ts), on the UCI and Give Me Some Credit splits of the quality benchmark (bench/quality.ts:
 * the bank holds the credit history and the label, the bureau the rest). Guest and host run in this one process over
 * the in-memory port, each with its own CKKS engine, so the federated time is both parties' work plus the codecs,
 * without gRPC: on one core, but for the host's histogram worker threads (`--threads`, every core by default). The
 * figures: test AUC of both (the federated model scored through the host's own split table), their gap, the time of
 * each and the ratio, the federated CPU seconds (every thread), seconds per tree.
 */
import { CkksEngine } from '../src/he/engine.js';
import { VERTICAL_CKKS_PARAMS } from '../src/he/params.js';
import { auc } from '../src/metrics.js';
import { binColumn, boost, DEFAULT_GBDT_PARAMS, localOracle, predictMargin, type FeatureInfo, type GbdtModel, type GbdtParams } from '../src/model/gbdt.js';
import { Rng } from '../src/random.js';
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

/** The options of `--only boost` (all optional): see boostBench. */
function boostOptions(args: readonly string[]): { fateShape: boolean; hostFeatures: number[]; rows?: number; trees?: number; depth?: number; threads?: number } {
  const value = (flag: string) => (args.includes(flag) ? args[args.indexOf(flag) + 1] : undefined);
  const number = (flag: string) => {
    const v = value(flag);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`${flag} takes a positive integer, got ${v}`);
    return n;
  };
  const hostFeatures = (value('--host-features') ?? '300').split(',').map(Number);
  if (hostFeatures.some((n) => !Number.isInteger(n) || n < 1)) throw new RangeError(`--host-features takes positive integers, got ${value('--host-features')}`);
  return { fateShape: args.includes('--fate-shape'), hostFeatures, rows: number('--rows'), trees: number('--trees'), depth: number('--depth'), threads: number('--threads') };
}

interface FederatedRun {
  model: GbdtModel;
  splits: HostSplit[];
  /** Wall-clock seconds, and CPU seconds of the process (every thread: the host's workers too). */
  seconds: number;
  cpuSeconds: number;
}

/** Guest and host over the in-memory port, each with its own CKKS engine; the host's histograms on `threads` threads. */
async function federated(
  features: FeatureInfo[],
  bins: Uint16Array[],
  own: number,
  inputs: { labels: Float64Array; train: Uint32Array; valid: Uint32Array },
  params: GbdtParams,
  threads: number | undefined,
): Promise<FederatedRun> {
  const guestEngine = await CkksEngine.create(VERTICAL_CKKS_PARAMS);
  const hostEngine = await CkksEngine.create(VERTICAL_CKKS_PARAMS);
  const fed = new MemoryFederation('bank', ['bureau'], plaintextOpener, 24 * 3_600_000);
  try {
    const hostInputs = { engine: hostEngine, features: features.slice(own).map(({ owner: _, ...f }) => f), bins: bins.slice(own), ...(threads ? { threads } : {}) };
    const started = performance.now();
    const cpu = process.cpuUsage();
    const [model, splits] = await Promise.all([
      guestBoost(fed.port('bank', 0), { engine: guestEngine, features: features.slice(0, own), bins: bins.slice(0, own), ...inputs, params }),
      hostBoost(fed.port('bureau', 0), hostInputs),
    ]);
    const used = process.cpuUsage(cpu);
    return { model, splits, seconds: (performance.now() - started) / 1000, cpuSeconds: (used.user + used.system) / 1e6 };
  } finally {
    fed.dispose();
    guestEngine.dispose();
    hostEngine.dispose();
  }
}

/**
 * `--only boost [--quick] [--threads N]`: the real data sets. `--fate-shape [--host-features 300] [--rows 100000]
 * [--trees 1] [--depth 5] [--threads N]`: FATE's SecureBoost benchmark shape on synthetic rows instead (30 guest
 * features, the host's features, 32 quantile bins each, standard normal columns, a logistic label on six of them);
 * with several host feature counts (`--host-features 3,6`) it also extrapolates the seconds per tree to 300 host
 * features by a straight line through the measured ones (the host's cost grows with its bin columns).
 */
export async function boostBench(datasets: string, quick: boolean, results: Record<string, number>, table: string[][], args: readonly string[] = []): Promise<void> {
  const options = boostOptions(args);
  if (options.fateShape) return fateShape(options, results, table);
  const params: GbdtParams = { ...DEFAULT_GBDT_PARAMS, trees: options.trees ?? (quick ? 2 : 3), depth: options.depth ?? (quick ? 3 : 4), learningRate: 0.3 };
  const maxRows = options.rows ?? (quick ? 10_000 : 30_000);
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

    const started = performance.now();
    const central = await boost(localOracle(features, bins), inputs, params);
    const centralS = (performance.now() - started) / 1000;

    const own = d.guest.length;
    const run = await federated(features, bins, own, inputs, params, options.threads);
    const federatedS = run.seconds;
    const centralAuc = testAuc(central);
    const federatedAuc = testAuc(resolved(run.model, 'bureau', run.splits));
    const key = `vertical_gbdt.${d.key}`;
    results[`${key}.central_auc`] = centralAuc;
    results[`${key}.federated_auc`] = federatedAuc;
    results[`${key}.auc_gap`] = centralAuc - federatedAuc;
    results[`${key}.central_s`] = centralS;
    results[`${key}.federated_s`] = federatedS;
    results[`${key}.federated_cpu_s`] = run.cpuSeconds;
    results[`${key}.ckks_over_central`] = federatedS / centralS;
    results[`${key}.s_per_tree`] = federatedS / run.model.trees.length;
    const hostBins = features.slice(own).reduce((s, f) => s + f.bins, 0);
    table.push([
      `boost ${d.key}: ${t.y.length} rows, ${own} guest + ${features.length - own} host features (${hostBins} host bins), ${params.trees} trees of depth ${params.depth}`,
      `test AUC central ${centralAuc.toFixed(4)} federated ${federatedAuc.toFixed(4)} (gap ${(centralAuc - federatedAuc).toExponential(1)})`,
      `central ${centralS.toFixed(2)} s, federated ${federatedS.toFixed(1)} s, ${run.cpuSeconds.toFixed(1)} CPU s (${(federatedS / run.model.trees.length).toFixed(1)} s/tree, ×${(federatedS / centralS).toFixed(0)})`,
    ]);
  }
}

/** FATE's shape on synthetic rows (see boostBench). */
async function fateShape(options: ReturnType<typeof boostOptions>, results: Record<string, number>, table: string[][]): Promise<void> {
  const rows = options.rows ?? 100_000;
  const params: GbdtParams = { ...DEFAULT_GBDT_PARAMS, trees: options.trees ?? 1, depth: options.depth ?? 5, learningRate: 0.3 };
  const guestFeatures = 30;
  const measured: [hostColumns: number, seconds: number, cpuSeconds: number][] = [];
  for (const hostFeatures of options.hostFeatures) {
    const rng = new Rng(2026, hostFeatures);
    const normal = () => Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
    const columns = Array.from({ length: guestFeatures + hostFeatures }, () => Float64Array.from({ length: rows }, normal));
    // Three guest and three host columns carry the signal.
    const signal = [0, 1, 2, guestFeatures, guestFeatures + 1, guestFeatures + 2].filter((j) => j < columns.length);
    const labels = Float64Array.from({ length: rows }, (_, r) => {
      const z = signal.reduce((s, j) => s + 0.6 * columns[j]![r]!, -1.5);
      return rng.next() < 1 / (1 + Math.exp(-z)) ? 1 : 0;
    });
    const built = columns.map((values, j) => binColumn(j < guestFeatures ? `g${j}` : `h${j - guestFeatures}`, j < guestFeatures ? 'bank' : 'bureau', values, { maxBins: 32 }));
    const features = built.map((b) => b.info);
    const bins = built.map((b) => b.bins);
    const all = Array.from({ length: rows }, (_, r) => r);
    const inputs = { labels, train: Uint32Array.from(all.filter((r) => r % 8 !== 0)), valid: Uint32Array.from(all.filter((r) => r % 8 === 0)) };
    const started = performance.now();
    const central = await boost(localOracle(features, bins), inputs, params);
    const centralS = (performance.now() - started) / 1000;
    const run = await federated(features, bins, guestFeatures, inputs, params, options.threads);
    const validAuc = (model: GbdtModel) => {
      const margin = predictMargin(model, bins, rows);
      return auc(
        Array.from(inputs.valid, (r) => labels[r]!),
        Array.from(inputs.valid, (r) => margin[r]!),
      );
    };
    const gap = validAuc(central) - validAuc(resolved(run.model, 'bureau', run.splits));
    const hostColumns = features.slice(guestFeatures).reduce((s, f) => s + f.bins, 0);
    const perTree = run.seconds / run.model.trees.length;
    const cpuPerTree = run.cpuSeconds / run.model.trees.length;
    measured.push([hostColumns, perTree, cpuPerTree]);
    const key = `vertical_gbdt.fate_shape.host_${hostFeatures}`;
    results[`${key}.s_per_tree`] = perTree;
    results[`${key}.cpu_s_per_tree`] = cpuPerTree;
    results[`${key}.auc_gap`] = gap;
    results[`${key}.central_s`] = centralS;
    table.push([
      `boost FATE shape: ${rows} rows, ${guestFeatures} guest + ${hostFeatures} host features (${hostColumns} host bins), ${params.trees} tree(s) of depth ${params.depth}`,
      `validation AUC gap ${gap.toExponential(1)}`,
      `central ${centralS.toFixed(2)} s, federated ${run.seconds.toFixed(1)} s, ${run.cpuSeconds.toFixed(1)} CPU s (${perTree.toFixed(1)} s/tree)`,
    ]);
  }
  if (measured.length >= 2) {
    // Seconds per tree against the host's bin columns, by least squares; at 300 features of the mean measured bins.
    const fit = (ys: number[]) => {
      const xs = measured.map(([x]) => x);
      const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
      const my = ys.reduce((a, b) => a + b, 0) / ys.length;
      const slope = xs.reduce((s, x, i) => s + (x - mx) * (ys[i]! - my), 0) / xs.reduce((s, x) => s + (x - mx) ** 2, 0);
      return (x: number) => my + slope * (x - mx);
    };
    const binsPerFeature = measured.reduce((s, [x], i) => s + x / options.hostFeatures[i]!, 0) / measured.length;
    const at300 = 300 * binsPerFeature;
    const wall = fit(measured.map(([, y]) => y))(at300);
    const cpu = fit(measured.map(([, , y]) => y))(at300);
    results['vertical_gbdt.fate_shape.extrapolated_s_per_tree'] = wall;
    results['vertical_gbdt.fate_shape.extrapolated_cpu_s_per_tree'] = cpu;
    table.push([
      `boost FATE shape, extrapolated to 300 host features (${Math.round(at300)} host bins)`,
      `${wall.toFixed(0)} s/tree, ${cpu.toFixed(0)} CPU s/tree`,
      'FATE: 131 s/tree on 16 cores per party',
    ]);
  }
}
