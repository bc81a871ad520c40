/**
 * Binning of one numeric feature for a credit scorecard: fine equal-frequency bins from the data, their event counts,
 * and coarse ("optimal") bins made by merging adjacent fine bins under an information-value or chi-square criterion.
 *
 * Bins of a feature with edges e[0] < e[1] < … < e[m-1] (m = edges.length):
 *   bin 0      x ≤ e[0]
 *   bin k      e[k-1] < x ≤ e[k]          (0 < k < m)
 *   bin m      x > e[m-1]                 (the last numeric bin; with no edges, every number)
 *   bin m + 1  x is NaN                   (the missing-value bin, always present and always last)
 * So there are always m + 2 bins. Labels are 1 for an event (default, "bad") and 0 for a non-event ("good").
 *
 * Merging works on counts alone, so the party that holds the labels can compute a merge plan (`groups`) from the
 * fine counts and send it to the feature's owner, who applies it to its fine edges with `applyMerge`; both then hold
 * the same coarse edges without the owner ever seeing a label or the label holder ever seeing a value.
 */
import { binInformationValue } from './woe.js';

/** The bins of one numeric feature (see the module comment for the bin layout). */
export interface FeatureBins {
  feature: string;
  edges: number[];
}

/** Events (label 1) and rows per bin, each of length binCount(edges). */
export interface BinCounts {
  events: number[];
  totals: number[];
}

export type MergeMethod = 'iv' | 'chi2';

export interface MergeOptions {
  method: MergeMethod;
  /** Largest number of numeric bins kept (the missing bin comes on top). */
  maxBins: number;
  /** Smallest share of ALL rows (missing ones included) that a numeric bin may hold, e.g. 0.05. */
  minBinShare: number;
}

/** Number of bins for these edges: the numeric bins plus the missing bin. */
export function binCount(edges: readonly number[]): number {
  return edges.length + 2;
}

/** Index of the bin holding `x`: the first k with x ≤ edges[k] (binary search), edges.length above them all, and
 * edges.length + 1 for NaN. */
export function binIndex(x: number, edges: readonly number[]): number {
  if (Number.isNaN(x)) return edges.length + 1;
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
 * A cut between two consecutive distinct values a < b of the data: their midpoint, so that no edge equals a value
 * and an edge survives float32/float64 conversion and decimal printing of the data. When no double lies strictly
 * between them (adjacent doubles, or a = -Infinity, or b = +Infinity) the cut is `a` itself, which still puts a
 * in the lower bin and b in the upper one.
 */
function cutBetween(a: number, b: number): number {
  const mid = a / 2 + b / 2;
  return mid > a && mid < b ? mid : a;
}

/** First index in the sorted array whose value is ≥ v (lower) or > v (upper). */
function lowerBound(sorted: Float64Array, v: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function upperBound(sorted: Float64Array, v: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! <= v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Fine bin edges for the non-missing `values` (NaN ignored). With at most `maxBins` distinct values, one bin per
 * distinct value. Otherwise up to `maxBins` equal-frequency bins: for the q-th cut the ideal split position is
 * floor(q·n / maxBins) in the sorted values; when that position falls inside a run of tied values, the cut moves to
 * whichever end of the run is nearer (the lower end on a draw). Each cut lies midway between two consecutive
 * distinct values, and repeated cuts are dropped, so heavy ties give fewer bins. Deterministic; one sort.
 */
export function quantileEdges(values: ArrayLike<number>, maxBins: number): number[] {
  if (!Number.isInteger(maxBins) || maxBins < 1) throw new RangeError(`maxBins must be an integer ≥ 1, got ${maxBins}`);
  let n = 0;
  for (let i = 0; i < values.length; i++) if (!Number.isNaN(values[i]!)) n++;
  const sorted = new Float64Array(n);
  for (let i = 0, j = 0; i < values.length; i++) if (!Number.isNaN(values[i]!)) sorted[j++] = values[i]!;
  sorted.sort();

  // Positions where a new distinct value starts; they are the only places a cut may go.
  const starts: number[] = [];
  for (let i = 1; i < n; i++) if (sorted[i] !== sorted[i - 1]) starts.push(i);
  if (starts.length + 1 <= maxBins) return starts.map((i) => cutBetween(sorted[i - 1]!, sorted[i]!));

  const cuts: number[] = [];
  for (let q = 1; q < maxBins; q++) {
    const pos = Math.floor((q * n) / maxBins);
    const v = sorted[pos]!;
    const lo = lowerBound(sorted, v);
    const hi = upperBound(sorted, v);
    let at: number;
    if (lo === 0) at = hi;
    else if (hi === n) at = lo;
    else at = pos - lo <= hi - pos ? lo : hi;
    if (at > 0 && at < n && at !== cuts[cuts.length - 1]) cuts.push(at);
  }
  return cuts.map((i) => cutBetween(sorted[i - 1]!, sorted[i]!));
}

function checkLabel(y: number, row: number): boolean {
  if (y === 1) return true;
  if (y === 0) return false;
  throw new RangeError(`label of row ${row} is ${y}; labels must be 0 (good) or 1 (default)`);
}

/** Rows per bin (what a party without the labels can count). */
export function binTotals(values: ArrayLike<number>, edges: readonly number[]): number[] {
  checkEdges(edges);
  const totals = new Array<number>(binCount(edges)).fill(0);
  for (let i = 0; i < values.length; i++) totals[binIndex(values[i]!, edges)]!++;
  return totals;
}

/** Events and rows per bin. */
export function binCounts(values: ArrayLike<number>, labels: ArrayLike<number>, edges: readonly number[]): BinCounts {
  if (values.length !== labels.length) {
    throw new RangeError(`values (${values.length}) and labels (${labels.length}) differ in length`);
  }
  checkEdges(edges);
  const events = new Array<number>(binCount(edges)).fill(0);
  const totals = new Array<number>(binCount(edges)).fill(0);
  for (let i = 0; i < values.length; i++) {
    const b = binIndex(values[i]!, edges);
    totals[b]!++;
    if (checkLabel(labels[i]!, i)) events[b]!++;
  }
  return { events, totals };
}

/** The bin index of every value. */
export function binAssignments(values: ArrayLike<number>, edges: readonly number[]): Uint16Array {
  checkEdges(edges);
  if (binCount(edges) > 0x10000) throw new RangeError(`${edges.length} edges give more bins than a Uint16Array can index`);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = binIndex(values[i]!, edges);
  return out;
}

function checkCounts(counts: BinCounts, bins: number): void {
  if (counts.events.length !== bins || counts.totals.length !== bins) {
    throw new RangeError(`counts have ${counts.events.length} event and ${counts.totals.length} total entries; the edges give ${bins} bins`);
  }
  for (let b = 0; b < bins; b++) {
    const e = counts.events[b]!;
    const t = counts.totals[b]!;
    if (!(e >= 0 && t >= e) || !Number.isFinite(t)) throw new RangeError(`bin ${b} has ${e} events out of ${t} rows`);
  }
}

interface WorkBin {
  events: number;
  total: number;
  members: number[];
}

/**
 * Coarse bins by merging ADJACENT numeric bins (the missing bin is never merged), in two phases.
 *
 * 1. Repair. While more than one numeric bin remains and some numeric bin holds fewer than minBinShare of all rows
 *    or has no events or no non-events, take the offending bin with the fewest rows (leftmost on a tie) and merge it
 *    with the neighbour for which the merge costs least under `method` (below); on a tied cost, the neighbour with
 *    fewer rows, then the left one. The cost rewards merging with the neighbour whose default rate is most alike.
 * 2. Reduce. While more than maxBins numeric bins remain, merge the adjacent pair of least cost (leftmost on a tie).
 *
 * Cost of merging two bins: 'iv' — the information value lost, IV(left) + IV(right) − IV(merged), with the same
 * per-bin IV (and zero-count adjustment) as woeIv; 'chi2' — ChiMerge's Pearson chi-square statistic of the 2×2 table
 * (two bins × event / non-event), cells with zero expected count contributing nothing.
 *
 * Returns the kept edges and, for each coarse numeric bin, the fine numeric bin indices it is made of (contiguous,
 * ascending, together 0 … edges.length). The missing bin stays last and separate: it is not part of `groups`.
 */
export function mergeBins(edges: readonly number[], counts: BinCounts, opts: MergeOptions): { edges: number[]; groups: number[][] } {
  checkEdges(edges);
  checkCounts(counts, binCount(edges));
  if (opts.method !== 'iv' && opts.method !== 'chi2') throw new RangeError(`unknown merge method ${String(opts.method)}; use 'iv' or 'chi2'`);
  if (!Number.isInteger(opts.maxBins) || opts.maxBins < 1) throw new RangeError(`maxBins must be an integer ≥ 1, got ${opts.maxBins}`);
  if (!(opts.minBinShare >= 0 && opts.minBinShare < 1)) throw new RangeError(`minBinShare must be in [0, 1), got ${opts.minBinShare}`);

  let eventTotal = 0;
  let rowTotal = 0;
  for (let b = 0; b < counts.totals.length; b++) {
    eventTotal += counts.events[b]!;
    rowTotal += counts.totals[b]!;
  }
  const goodTotal = rowTotal - eventTotal;
  if (eventTotal === 0 || goodTotal === 0) {
    throw new Error(`cannot bin on a single class: ${eventTotal} events and ${goodTotal} non-events; binning needs both`);
  }

  const bins: WorkBin[] = [];
  for (let b = 0; b <= edges.length; b++) bins.push({ events: counts.events[b]!, total: counts.totals[b]!, members: [b] });

  const iv = (w: { events: number; total: number }) => binInformationValue(w.events, w.total, eventTotal, goodTotal);
  const cost = (l: WorkBin, r: WorkBin): number => {
    const merged = { events: l.events + r.events, total: l.total + r.total };
    if (opts.method === 'iv') return iv(l) + iv(r) - iv(merged);
    return chiSquare(l, r);
  };
  const merge = (i: number): void => {
    const l = bins[i]!;
    const r = bins[i + 1]!;
    bins.splice(i, 2, { events: l.events + r.events, total: l.total + r.total, members: [...l.members, ...r.members] });
  };
  const offends = (w: WorkBin) => w.total < opts.minBinShare * rowTotal || w.events === 0 || w.events === w.total;

  // Phase 1: repair small and single-class bins.
  while (bins.length > 1) {
    let worst = -1;
    for (let i = 0; i < bins.length; i++) {
      if (offends(bins[i]!) && (worst < 0 || bins[i]!.total < bins[worst]!.total)) worst = i;
    }
    if (worst < 0) break;
    if (worst === 0) merge(0);
    else if (worst === bins.length - 1) merge(worst - 1);
    else {
      const left = cost(bins[worst - 1]!, bins[worst]!);
      const right = cost(bins[worst]!, bins[worst + 1]!);
      const takeLeft = left < right || (left === right && bins[worst - 1]!.total <= bins[worst + 1]!.total);
      merge(takeLeft ? worst - 1 : worst);
    }
  }

  // Phase 2: reduce to maxBins numeric bins.
  while (bins.length > opts.maxBins) {
    let best = 0;
    let bestCost = Number.POSITIVE_INFINITY;
    for (let i = 0; i + 1 < bins.length; i++) {
      const c = cost(bins[i]!, bins[i + 1]!);
      if (c < bestCost) {
        bestCost = c;
        best = i;
      }
    }
    merge(best);
  }

  const groups = bins.map((w) => w.members);
  return { edges: applyMerge(edges, groups), groups };
}

/** Pearson chi-square of the 2×2 table (two bins × event / non-event); a zero expected count adds nothing. */
function chiSquare(l: { events: number; total: number }, r: { events: number; total: number }): number {
  const n = l.total + r.total;
  if (n === 0) return 0;
  const events = l.events + r.events;
  const goods = n - events;
  let chi = 0;
  for (const row of [l, r]) {
    for (const [observed, column] of [[row.events, events], [row.total - row.events, goods]] as const) {
      const expected = (row.total * column) / n;
      if (expected > 0) chi += ((observed - expected) * (observed - expected)) / expected;
    }
  }
  return chi;
}

/** Throws unless `groups` split the numeric bins 0 … numericBins-1 into non-empty contiguous ascending runs. */
function checkGroups(groups: readonly number[][], numericBins: number): void {
  let next = 0;
  for (let g = 0; g < groups.length; g++) {
    const group = groups[g]!;
    if (group.length === 0) throw new RangeError(`merge group ${g} is empty`);
    for (const b of group) {
      if (b !== next) throw new RangeError(`merge group ${g} holds fine bin ${b} where bin ${next} was expected; groups must be contiguous and ascending`);
      next++;
    }
  }
  if (next !== numericBins) throw new RangeError(`merge groups cover ${next} fine numeric bins, but there are ${numericBins}`);
}

/** The coarse edges of a merge plan: the upper fine edge of every group but the last. */
export function applyMerge(edges: readonly number[], groups: number[][]): number[] {
  checkGroups(groups, edges.length + 1);
  return groups.slice(0, -1).map((group) => edges[group[group.length - 1]!]!);
}

/** Fine counts summed into the coarse bins of a merge plan; the missing bin is carried over as the last bin. */
export function mergeCounts(counts: BinCounts, groups: number[][]): BinCounts {
  const fine = counts.totals.length;
  if (counts.events.length !== fine) throw new RangeError(`counts have ${counts.events.length} event and ${fine} total entries`);
  checkGroups(groups, fine - 1);
  const sum = (xs: number[], group: number[]) => group.reduce((s, b) => s + xs[b]!, 0);
  return {
    events: [...groups.map((g) => sum(counts.events, g)), counts.events[fine - 1]!],
    totals: [...groups.map((g) => sum(counts.totals, g)), counts.totals[fine - 1]!],
  };
}
