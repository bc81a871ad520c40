/**
 * Feature preprocessing from federation-wide moments. Each party contributes [count_j, sum_j, sumsq_j] per feature
 * over its non-missing training cells, then its training row count, to a secure sum (length 3·d + 1); the aggregate
 * gives every party the same means and scales, and a missing cell becomes the federation-wide mean (0 after
 * standardising). A binned feature (Preprocessing.bins) is read instead as the WOE of its bin, as it is.
 */
import { cellValue, layoutBinCount, layoutOfBins, layoutWoe } from '../credit/bin-layout.js';
import type { FeatureStatistics } from '../credit/statistics.js';

/** A binned feature as the model reads it: its value replaced by the WOE of its bin (src/credit/binning.ts layout). */
export interface FeatureBins {
  feature: string;
  edges: number[];
  woe: number[];
  /** Federation-wide training defaults and rows per bin (aggregates), and the feature's IV. */
  events: number[];
  totals: number[];
  iv: number;
  /** Numbers: special values, each its own bin after the numeric ones (absent or empty: none). */
  specials?: number[];
  /** Categories: the levels of each bin (absent or empty: a number). */
  categories?: { levels: string[] }[];
  /** Categories: how a level in no bin scores (`neutral`, `reject`, or a level whose bin it takes). */
  unseen?: string;
}

export interface Preprocessing {
  features: string[];
  mean: number[];
  scale: number[];
  /** Empty or absent: no WOE transform. Otherwise one entry per feature, in order (mean 0 and scale 1 for these). */
  bins?: FeatureBins[];
  /** Empty or absent: no winsorising. Otherwise per feature, the bounds a value is clipped to before standardising. */
  clipLow?: number[];
  clipHigh?: number[];
}

/** Length of the moments vector for d features. */
export function momentsLength(dim: number): number {
  return 3 * dim + 1;
}

export function localMoments(x: Float32Array, dim: number): Float64Array {
  const out = new Float64Array(momentsLength(dim));
  const rows = x.length / dim;
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < dim; j++) {
      const v = x[r * dim + j]!;
      if (Number.isNaN(v)) continue;
      out[3 * j]! += 1;
      out[3 * j + 1]! += v;
      out[3 * j + 2]! += v * v;
    }
  }
  out[3 * dim] = rows;
  return out;
}

/** Federation-wide mean and population standard deviation of feature j from the moments aggregate (0 and 0 if no value). */
export function momentOf(moments: Float64Array, j: number): { count: number; mean: number; variance: number; sd: number } {
  const count = moments[3 * j]!;
  const mean = count > 0 ? moments[3 * j + 1]! / count : 0;
  const variance = count > 1 ? Math.max(0, moments[3 * j + 2]! / count - mean * mean) : 0;
  return { count, mean, variance, sd: Math.sqrt(variance) };
}

export function preprocessingFromMoments(features: string[], moments: Float64Array, standardize: boolean): Preprocessing {
  const mean: number[] = [];
  const scale: number[] = [];
  features.forEach((_, j) => {
    const m = momentOf(moments, j);
    mean.push(m.mean);
    scale.push(standardize && m.variance > 1e-12 ? m.sd : 1);
  });
  return { features: [...features], mean, scale, bins: [] };
}

/**
 * Count, mean, population sd and missing rate of every feature over all contributors' training rows, from the moments
 * aggregate (counts are integers after decryption: rounded). Min and max cannot come from a sum: they are null, and so
 * are the mean and sd of the `categories` (their cells are level positions, not amounts).
 */
export function statisticsFromMoments(features: string[], moments: Float64Array, categories: ReadonlySet<string> = new Set()): FeatureStatistics[] {
  const rows = Math.round(moments[3 * features.length]!);
  return features.map((feature, j) => {
    const m = momentOf(moments, j);
    const count = Math.round(m.count);
    const amount = count > 0 && !categories.has(feature);
    return {
      feature,
      rows,
      count,
      missingRate: rows > 0 ? (rows - count) / rows : 0,
      mean: amount ? m.mean : null,
      sd: amount ? m.sd : null,
      min: null,
      max: null,
    };
  });
}

/** Throws unless `prep.bins` is empty or matches `prep.features` one to one with consistent lengths. */
export function checkPreprocessing(prep: Preprocessing): void {
  const dim = prep.features.length;
  if (prep.mean.length !== dim || prep.scale.length !== dim) throw new RangeError(`preprocessing has ${dim} features but ${prep.mean.length} means and ${prep.scale.length} scales`);
  const low = prep.clipLow ?? [];
  const high = prep.clipHigh ?? [];
  if (low.length !== high.length || (low.length > 0 && low.length !== dim)) throw new RangeError(`preprocessing has ${dim} features but ${low.length} lower and ${high.length} upper clipping bounds`);
  const bins = prep.bins ?? [];
  if (bins.length === 0) return;
  if (bins.length !== dim) throw new RangeError(`preprocessing has ${dim} features but ${bins.length} binned features`);
  bins.forEach((b, j) => {
    if (b.feature !== prep.features[j]) throw new RangeError(`binned feature ${j} is ${b.feature}, expected ${prep.features[j]}`);
    const bins = layoutBinCount(layoutOfBins(b));
    if (b.woe.length !== bins) throw new RangeError(`feature ${b.feature}: ${b.woe.length} WOE values for ${bins} bins`);
  });
}

/**
 * The model's input from row-major raw x whose columns are prep.features: a binned feature becomes the WOE of its bin
 * (missing: the missing bin's WOE), any other is clipped to [clipLow, clipHigh] when the preprocessing has bounds,
 * then standardised, with NaN (missing) as 0, the federation-wide mean. A categorical feature's cells hold positions
 * in `levels[feature]` (the dataset's level list); a level in no bin scores as the bins' `unseen` says, unless
 * `unseenNeutral` (training and validation rows: `reject` is for scoring).
 */
export function applyPreprocessing(x: Float32Array, prep: Preprocessing, levels?: Readonly<Record<string, readonly string[]>>, unseenNeutral = false): Float32Array {
  checkPreprocessing(prep);
  const dim = prep.features.length;
  const bins = prep.bins && prep.bins.length > 0 ? prep.bins : undefined;
  const layouts = bins?.map((b) => {
    const layout = layoutOfBins(b);
    if (layout.categories && !levels?.[b.feature]) throw new RangeError(`feature ${b.feature} is a category: its cells cannot be read without the data's level list`);
    return unseenNeutral && layout.categories ? { ...layout, unseen: 'neutral' } : layout;
  });
  const low = prep.clipLow && prep.clipLow.length > 0 ? prep.clipLow : undefined;
  const high = prep.clipHigh;
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const j = i % dim;
    const v = x[i]!;
    const b = bins?.[j];
    if (b) {
      const layout = layouts![j]!;
      const value = cellValue(v, layout.categories ? levels![b.feature] : undefined);
      out[i] = (layoutWoe(b.feature, value, layout, b.woe) - prep.mean[j]!) / prep.scale[j]!;
    } else if (Number.isNaN(v)) out[i] = 0;
    else out[i] = ((low ? Math.min(high![j]!, Math.max(low[j]!, v)) : v) - prep.mean[j]!) / prep.scale[j]!;
  }
  return out;
}

/** Columns `to` of row-major x whose columns are `from` (a new array; x itself when the lists are equal). */
export function selectColumns(x: Float32Array, from: readonly string[], to: readonly string[]): Float32Array {
  if (from.length === to.length && from.every((f, i) => f === to[i])) return x;
  const idx = to.map((f) => {
    const i = from.indexOf(f);
    if (i < 0) throw new RangeError(`column ${f} is not among the data's columns (${from.join(', ')})`);
    return i;
  });
  const rows = x.length / from.length;
  const out = new Float32Array(rows * to.length);
  for (let r = 0; r < rows; r++) for (let k = 0; k < idx.length; k++) out[r * to.length + k] = x[r * from.length + idx[k]!]!;
  return out;
}
