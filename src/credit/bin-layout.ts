/**
 * The bin layout of one feature, shared by binning, WOE, scorecards and scoring. A numeric feature with edges
 * e[0] < e[1] < … < e[m-1] (m = edges.length) and special values s[0], …, s[S-1] (codes such as -1 or 98 that mean
 * something other than an amount) has m + S + 2 bins:
 *   bin 0          x ≤ e[0]
 *   bin k          e[k-1] < x ≤ e[k]          (0 < k < m)
 *   bin m          x > e[m-1]                 (the last numeric bin; with no edges, every number)
 *   bin m + 1 + i  x = s[i]                   (special value i; checked before the numeric bins)
 *   bin m + S + 1  x is NaN                   (the missing-value bin, always present and always last)
 * Labels are 1 for an event (default, "bad") and 0 for a non-event ("good").
 */
import { ErrorCode, FedcreditError } from '../errors.js';

/** Events (label 1) and rows per bin, each of length binCount(edges, specials). */
export interface BinCounts {
  events: number[];
  totals: number[];
}

/** Number of bins for these edges and special values: the numeric bins, one per special value, the missing bin. */
export function binCount(edges: readonly number[], specials: readonly number[] = []): number {
  return edges.length + specials.length + 2;
}

/**
 * The bins binning.max_bins counts: a feature's value bins (numeric bins, or groups of category levels), out of its
 * `bins` in all. Its special-value bins and its missing-value bin (always there, for scoring, even with no training
 * row in it) come on top.
 */
export function valueBinCount(bins: number, specials = 0): number {
  return bins - specials - 1;
}

/** Index of the bin holding `x`: a special value's own bin, else the first k with x ≤ edges[k] (binary search),
 * edges.length above them all; NaN is the missing bin (the last). */
export function binIndex(x: number, edges: readonly number[], specials: readonly number[] = []): number {
  if (Number.isNaN(x)) return edges.length + specials.length + 1;
  if (specials.length > 0) {
    const s = specials.indexOf(x);
    if (s >= 0) return edges.length + 1 + s;
  }
  let lo = 0;
  let hi = edges.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (x <= edges[mid]!) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** Throws unless `edges` are strictly increasing and not NaN. */
export function checkEdges(edges: readonly number[]): void {
  for (let k = 0; k < edges.length; k++) {
    if (Number.isNaN(edges[k]!)) throw new RangeError(`bin edge ${k} is NaN; edges must be numbers`);
    if (k > 0 && !(edges[k]! > edges[k - 1]!)) {
      throw new RangeError(`bin edges must be strictly increasing, but edge ${k} (${edges[k]}) follows ${edges[k - 1]}`);
    }
  }
}

/**
 * The bins of one feature as a model keeps them. Numeric: `edges` and `specials` (layout above). Categorical:
 * `categories`, the levels of each bin, then the missing bin (bins = categories.length + 1; `edges` is empty); a level
 * in no bin was not seen in training and is scored as `unseen` says: `neutral` (WOE 0), `reject` (an error), or the
 * name of a level whose bin it takes.
 */
export interface BinLayout {
  edges: number[];
  specials?: number[];
  categories?: string[][];
  unseen?: string;
}

/** Bins of a layout, the missing bin included. */
export function layoutBinCount(layout: BinLayout): number {
  return layout.categories ? layout.categories.length + 1 : binCount(layout.edges, layout.specials);
}

/** Bin of a category level (undefined: missing), or -1 for a level in no bin (unseen in training). */
export function categoryBinIndex(level: string | undefined, categories: readonly string[][]): number {
  if (level === undefined) return categories.length;
  return categories.findIndex((group) => group.includes(level));
}

/** Bin of a raw value: a number (NaN: missing), or for a categorical layout its level (undefined: missing); -1 for
 * an unseen level. */
export function layoutBinIndex(value: number | string | undefined, layout: BinLayout): number {
  if (layout.categories) return categoryBinIndex(typeof value === 'number' ? undefined : value, layout.categories);
  return binIndex(typeof value === 'number' ? value : Number.NaN, layout.edges, layout.specials);
}

/** The bin an unseen level is scored in: -1 for neutral (WOE 0, no points); throws for `reject`. */
export function unseenBin(feature: string, level: string, layout: BinLayout): number {
  const treatment = layout.unseen ?? 'neutral';
  if (treatment === 'neutral') return -1;
  if (treatment === 'reject') {
    throw new FedcreditError(
      ErrorCode.DATA_REJECTED,
      `feature ${feature}: level ${JSON.stringify(level)} was not seen in training, and binning.features.${feature}.unseen is reject`,
      `correct the value, or set binning.features.${feature}.unseen to neutral (WOE 0) or to a level seen in training, and train again`,
    );
  }
  const bin = categoryBinIndex(treatment, layout.categories ?? []);
  if (bin < 0) throw new RangeError(`feature ${feature}: unseen levels are to take the bin of ${JSON.stringify(treatment)}, a level not seen in training`);
  return bin;
}

/** A stored cell as its layout reads it: categorical cells hold a level's index into the dataset's levels. */
export function cellValue(x: number, levels: readonly string[] | undefined): number | string | undefined {
  if (!levels) return x;
  return Number.isNaN(x) ? undefined : levels[x];
}

/** The layout of bins as a horizontal preprocessing carries them (src/wire/messages.ts FeatureBins: categories as
 * level groups, empty lists where a field does not apply, as protobuf decodes them). */
export function layoutOfBins(b: { edges: number[]; specials?: number[]; categories?: { levels: string[] }[]; unseen?: string }): BinLayout {
  if (b.categories && b.categories.length > 0) return { edges: [], categories: b.categories.map((g) => g.levels), unseen: b.unseen || 'neutral' };
  return { edges: b.edges, ...(b.specials && b.specials.length > 0 ? { specials: b.specials } : {}) };
}

/** WOE of a raw value (a number, NaN missing; a category's level, undefined missing) in its bin; a level in no bin as
 * the layout's unseen treatment says (neutral: 0; reject: throws naming the feature). */
export function layoutWoe(feature: string, value: number | string | undefined, layout: BinLayout, woe: readonly number[]): number {
  let bin = layoutBinIndex(value, layout);
  if (bin < 0) bin = unseenBin(feature, String(value), layout);
  return bin < 0 ? 0 : woe[bin]!;
}
