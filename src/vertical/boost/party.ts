/**
 * What a party of a vertical-boost job does around the boosting protocol (docs/protocol-boost.md): it bins its
 * features for the trees on the job's aligned rows (the job's `binning` section: `fine_bins` quantile bins fitted on
 * the training rows, a feature's special values in bins of their own, a category one bin per level, a missing bin),
 * turns the job's `boosting` section into the grower's parameters, and commits to what it keeps: the digest of each
 * tree for the ledger (a host's split by owner and opaque id, never its bins) and the digest of its model part.
 */
import type { BinningSpec, BoostingSpec } from '../../config/schemas.js';
import type { LoadedDataset } from '../../data/csv.js';
import { sha256Hex } from '../../bytes.js';
import { binAssignments, binCount, quantileEdges } from '../../credit/binning.js';
import { featureBinning } from '../../credit/settle.js';
import { ErrorCode, FedcreditError } from '../../errors.js';
import type { FeatureInfo, GbdtModel, GbdtParams, Tree } from '../../model/gbdt.js';
import type { Alignment } from '../party-model.js';
import { featureColumn } from '../binning.js';
import type { HostSplit } from './host.js';

/** How a party bins one of its features for the trees: what it needs to bin a new applicant the same way. */
export interface TreeBinning {
  name: string;
  /** Numeric: quantile edges fitted on the training rows, and the special values binned apart. */
  edges: number[];
  specials: number[];
  /** Categorical: its levels as training read them (level k in bin k; missing, or a level training did not see, in
   * the last bin). */
  levels?: string[];
  /** Training rows per bin: the reference of the feature's stability when new applicants are scored. */
  trainCounts: number[];
}

/** A party's features binned for the trees over the job's rows (training, then validation, then test). */
export interface TreeFeatures {
  info: FeatureInfo[];
  bins: Uint16Array[];
  binning: TreeBinning[];
}

/** The job's rows in the order every party uses: its aligned training, validation and test rows, end to end. */
export function jobRows(a: Alignment): { rows: Uint32Array; train: Uint32Array; valid: Uint32Array; test: Uint32Array } {
  const rows = Uint32Array.from([...a.train, ...a.validation, ...a.test]);
  const range = (from: number, length: number) => Uint32Array.from({ length }, (_, i) => from + i);
  return { rows, train: range(0, a.train.length), valid: range(a.train.length, a.validation.length), test: range(a.train.length + a.validation.length, a.test.length) };
}

/** The grower's parameters from the job's boosting section. */
export function gbdtParams(b: BoostingSpec): GbdtParams {
  return {
    trees: b.trees,
    depth: b.depth,
    learningRate: b.learning_rate,
    lambda: b.lambda,
    minChildWeight: b.min_child_weight,
    minGain: b.min_gain,
    subsample: b.subsample,
    ...(b.goss ? { goss: { topRate: b.goss.top_rate, otherRate: b.goss.other_rate } } : {}),
    earlyStoppingRounds: b.early_stopping_patience,
    guestOnlyTrees: b.guest_only_trees,
    seed: b.seed,
  };
}

/**
 * `owner`'s `features` binned for the trees over `a`'s rows (jobRows order): edges from the training rows only, so
 * validation and test rows are binned as new applicants would be.
 */
export function treeFeatures(data: LoadedDataset, owner: string, features: readonly string[], a: Alignment, binning: BinningSpec, boosting: BoostingSpec): TreeFeatures {
  const { rows } = jobRows(a);
  const out: TreeFeatures = { info: [], bins: [], binning: [] };
  for (const name of features) {
    const direction = boosting.monotone[name];
    const monotone = direction === 'increasing' ? 1 : direction === 'decreasing' ? -1 : 0;
    const values = featureColumn(data, name, rows);
    const levels = data.levels?.[name];
    if (levels) {
      if (monotone !== 0) {
        throw new FedcreditError(ErrorCode.JOB_INVALID, `boosting.monotone names ${name}, a category of ${owner}: its levels have no order`, `remove boosting.monotone.${name}`);
      }
      const kept: TreeBinning = { name, edges: [], specials: [], levels: [...levels], trainCounts: [] };
      out.bins.push(binForTrees(kept, values));
      kept.trainCounts = binTotals(out.bins.at(-1)!.subarray(0, a.train.length), levels.length + 1);
      out.info.push({ name, owner, bins: levels.length + 1, ordered: 0, categorical: true, monotone: 0 });
      out.binning.push(kept);
      continue;
    }
    const { specials } = featureBinning(binning, name);
    const edges = quantileEdges(values.subarray(0, a.train.length), binning.fine_bins, specials);
    const kept: TreeBinning = { name, edges, specials, trainCounts: [] };
    out.bins.push(binForTrees(kept, values));
    kept.trainCounts = binTotals(out.bins.at(-1)!.subarray(0, a.train.length), binCount(edges, specials));
    out.info.push({ name, owner, bins: binCount(edges, specials), ordered: edges.length + 1, categorical: false, monotone });
    out.binning.push(kept);
  }
  return out;
}

/** How many of `bins` fall in each of `count` bins. */
export function binTotals(bins: ArrayLike<number>, count: number): number[] {
  const totals = new Array<number>(count).fill(0);
  for (let i = 0; i < bins.length; i++) totals[bins[i]!]!++;
  return totals;
}

/** A feature's values in the bins of its trees (a category's codes as training read them): NaN in the missing bin, the last. */
function binForTrees(binning: TreeBinning, values: Float64Array): Uint16Array {
  const levels = binning.levels?.length;
  if (levels === undefined) return binAssignments(values, binning.edges, binning.specials);
  return Uint16Array.from(values, (v) => (Number.isInteger(v) && v >= 0 && v < levels ? v : levels));
}

/**
 * A scoring batch binned as the part's training rows were: `rows` index the party's data, -1 for an enterprise it
 * does not hold, which falls in every feature's missing bin (the trees send it the way they learned for a missing
 * value).
 */
export function scoringBins(data: LoadedDataset, binning: readonly TreeBinning[], rows: ArrayLike<number>): Uint16Array[] {
  const held = Array.from(rows, (r) => Math.max(r, 0));
  return binning.map((b) => {
    const values = featureColumn(data, b.name, held);
    if (b.levels) {
      // The data's codes follow its levels' order today, which need not be training's: map by level.
      const trained = new Map(b.levels.map((level, k) => [level, k]));
      const now = (data.levels?.[b.name] ?? []).map((level) => trained.get(level) ?? Number.NaN);
      for (let i = 0; i < values.length; i++) values[i] = now[values[i]!] ?? Number.NaN;
    }
    for (let i = 0; i < rows.length; i++) if (rows[i]! < 0) values[i] = Number.NaN;
    return binForTrees(b, values);
  });
}

/**
 * A tree as the ledger commits to it: every node's kind, feature, children, value and split, a host's split by its
 * owner and opaque id (the guest holds nothing more of it).
 */
export function treeDigest(tree: Tree): string {
  const nodes = tree.nodes.map((n) =>
    n.kind === 'leaf' ? ['leaf', n.value] : ['split', n.feature, n.left, n.right, n.value, n.gain, 'owner' in n.ref ? { owner: n.ref.owner, id: n.ref.id } : { leftBins: n.ref.leftBins }],
  );
  return sha256Hex(JSON.stringify(nodes));
}

/** The guest's model part: the trees (hosts' splits by owner and id) and how it bins its own features. */
export interface BoostGuestPart {
  format: 'fedcredit-boost-guest/1';
  model: GbdtModel;
  binning: TreeBinning[];
}

/** A host's model part: how it bins its features and its splits by id (its cut points stay with it). */
export interface BoostHostPart {
  format: 'fedcredit-boost-host/1';
  binning: TreeBinning[];
  splits: HostSplit[];
}

/** The commitment to a model part the manifest publishes. */
export function partDigest(part: BoostGuestPart | BoostHostPart): string {
  return sha256Hex(JSON.stringify(part));
}
