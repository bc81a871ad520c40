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

/** Events (label 1) and rows per bin, each of length binCount(edges, specials). */
export interface BinCounts {
  events: number[];
  totals: number[];
}

/** Number of bins for these edges and special values: the numeric bins, one per special value, the missing bin. */
export function binCount(edges: readonly number[], specials: readonly number[] = []): number {
  return edges.length + specials.length + 2;
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
