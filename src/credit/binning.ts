/**
 * Binning of one numeric feature for a credit scorecard: fine bins from the data's own quantiles (with a bin of its
 * own for every value that holds a large share of the rows), their event counts, and final ("optimal") bins made by
 * merging adjacent fine bins under credit constraints (monotonic event rate, max_bins, min_bin_share). The bin layout
 * (numeric bins, special values, the missing bin) is src/credit/bin-layout.ts.
 *
 * Merging works on counts alone, so the party that holds the labels can compute a merge plan (`groups`) from the
 * fine counts and send it to the feature's owner, who applies it to its fine edges with `applyMerge`; both then hold
 * the same final edges without the owner ever seeing a label or the label holder ever seeing a value. The horizontal
 * job merges the summed histogram counts the same way.
 */
import { binCount, binIndex, checkEdges, type BinCounts } from './bin-layout.js';
import { binInformationValue } from './woe.js';

export { binCount, binIndex, checkEdges, type BinCounts };

/** The bins of one numeric feature (see src/credit/bin-layout.ts for the bin layout). */
export interface FeatureBins {
  feature: string;
  edges: number[];
}

export type MergeMethod = 'iv' | 'chi2';

/** The shape the event rate of the final numeric bins must take, lowest value first. `auto`: ascending or
 * descending, whichever keeps more information value. */
export type MonotonicTrend = 'auto' | 'ascending' | 'descending' | 'peak' | 'valley' | 'none';
/** The trend a merge actually imposed (`auto` resolved). */
export type ImposedTrend = Exclude<MonotonicTrend, 'auto'>;

export interface MergeOptions {
  /** `iv`: the partition of greatest information value under the constraints (exact, by dynamic programming);
   * `chi2`: ChiMerge, greedy merging of the adjacent pair of least chi-square. */
  method: MergeMethod;
  /** Largest number of numeric bins kept (special values and the missing bin come on top). */
  maxBins: number;
  /** Smallest share of ALL rows (missing and special ones included) that a numeric bin may hold, e.g. 0.05. */
  minBinShare: number;
  /** Default `none`. */
  monotonic?: MonotonicTrend;
  /** Number of special-value bins between the numeric bins and the missing bin in the counts (default 0). */
  specials?: number;
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
 * Fine bin edges for the non-missing `values` (NaN and the `specials` ignored), from the data's exact quantiles.
 * With at most `maxBins` distinct values, one bin per distinct value. Otherwise every value that holds at least
 * 1/maxBins of the rows (a mass point, such as the 0 of a delinquency count held by 95% of rows) gets a bin of its
 * own, and each stretch of values between mass points gets equal-frequency bins, their number in proportion to the
 * stretch's rows (at least one): so a zero-inflated or small-integer column gets cuts at its values (0 / 1 / 2 /
 * 3+) and a skewed one its quantiles. Within a stretch the q-th cut goes to the ideal position floor(q·m / bins);
 * when that falls inside a run of tied values, the cut moves to whichever end of the run is nearer (the lower end
 * on a draw). Each cut lies midway between two consecutive distinct values, and repeated cuts are dropped, so heavy
 * ties give fewer bins. At most maxBins bins, unless mass points and the stretches between them (one bin each at
 * least) outnumber it. Deterministic; one sort.
 */
export function quantileEdges(values: ArrayLike<number>, maxBins: number, specials: readonly number[] = []): number[] {
  if (!Number.isInteger(maxBins) || maxBins < 1) throw new RangeError(`maxBins must be an integer ≥ 1, got ${maxBins}`);
  const special = new Set(specials);
  const kept = (v: number) => !Number.isNaN(v) && !special.has(v);
  let n = 0;
  for (let i = 0; i < values.length; i++) if (kept(values[i]!)) n++;
  const sorted = new Float64Array(n);
  for (let i = 0, j = 0; i < values.length; i++) if (kept(values[i]!)) sorted[j++] = values[i]!;
  sorted.sort();

  // Positions where a new distinct value starts; they are the only places a cut may go.
  const starts: number[] = [];
  for (let i = 1; i < n; i++) if (sorted[i] !== sorted[i - 1]) starts.push(i);
  if (starts.length + 1 <= maxBins) return starts.map((i) => cutBetween(sorted[i - 1]!, sorted[i]!));

  // Runs of tied values [from, to); the heavy ones get a bin of their own.
  const runs = [0, ...starts].map((from, r) => ({ from, to: r < starts.length ? starts[r]! : n }));
  const heavy = runs.filter((run) => run.to - run.from >= n / maxBins);
  const cuts = new Set<number>();
  for (const run of heavy) {
    if (run.from > 0) cuts.add(run.from);
    if (run.to < n) cuts.add(run.to);
  }
  // Stretches of light values between the heavy runs, each cut into equal-frequency bins.
  const stretches: { from: number; to: number }[] = [];
  let from = 0;
  for (const run of [...heavy, { from: n, to: n }]) {
    if (run.from > from) stretches.push({ from, to: run.from });
    from = run.to;
  }
  const light = stretches.reduce((m, s) => m + s.to - s.from, 0);
  const budget = Math.max(1, maxBins - heavy.length);
  // Bins per stretch in proportion to its rows (at least one), the remainder to the largest fractions.
  const share = stretches.map((st) => (budget * (st.to - st.from)) / light);
  const allotted = share.map((x) => Math.max(1, Math.floor(x)));
  let left = budget - allotted.reduce((n, k) => n + k, 0);
  for (const k of share.map((_x, k) => k).sort((p, q) => share[q]! - Math.floor(share[q]!) - (share[p]! - Math.floor(share[p]!)) || p - q)) {
    if (left <= 0) break;
    allotted[k]!++;
    left--;
  }
  for (const [k, { from: a, to: b }] of stretches.entries()) {
    const m = b - a;
    const bins = allotted[k]!;
    for (let q = 1; q < bins; q++) {
      const pos = a + Math.floor((q * m) / bins);
      const v = sorted[pos]!;
      const lo = Math.max(a, lowerBound(sorted, v));
      const hi = Math.min(b, upperBound(sorted, v));
      let at: number;
      if (lo === a) at = hi;
      else if (hi === b) at = lo;
      else at = pos - lo <= hi - pos ? lo : hi;
      if (at > a && at < b) cuts.add(at);
    }
  }
  return [...cuts].sort((p, q) => p - q).map((i) => cutBetween(sorted[i - 1]!, sorted[i]!));
}

function checkLabel(y: number, row: number): boolean {
  if (y === 1) return true;
  if (y === 0) return false;
  throw new RangeError(`label of row ${row} is ${y}; labels must be 0 (good) or 1 (default)`);
}

/** Throws unless the special values are distinct numbers. */
function checkSpecials(specials: readonly number[]): void {
  if (specials.some((s) => Number.isNaN(s)) || new Set(specials).size !== specials.length) {
    throw new RangeError(`special values must be distinct numbers, got [${specials.join(', ')}]`);
  }
}

/** Rows per bin (what a party without the labels can count). */
export function binTotals(values: ArrayLike<number>, edges: readonly number[], specials: readonly number[] = []): number[] {
  checkEdges(edges);
  checkSpecials(specials);
  const totals = new Array<number>(binCount(edges, specials)).fill(0);
  for (let i = 0; i < values.length; i++) totals[binIndex(values[i]!, edges, specials)]!++;
  return totals;
}

/** Events and rows per bin. */
export function binCounts(values: ArrayLike<number>, labels: ArrayLike<number>, edges: readonly number[], specials: readonly number[] = []): BinCounts {
  if (values.length !== labels.length) {
    throw new RangeError(`values (${values.length}) and labels (${labels.length}) differ in length`);
  }
  checkEdges(edges);
  checkSpecials(specials);
  const events = new Array<number>(binCount(edges, specials)).fill(0);
  const totals = new Array<number>(binCount(edges, specials)).fill(0);
  for (let i = 0; i < values.length; i++) {
    const b = binIndex(values[i]!, edges, specials);
    totals[b]!++;
    if (checkLabel(labels[i]!, i)) events[b]!++;
  }
  return { events, totals };
}

/** The bin index of every value. */
export function binAssignments(values: ArrayLike<number>, edges: readonly number[], specials: readonly number[] = []): Uint16Array {
  checkEdges(edges);
  checkSpecials(specials);
  if (binCount(edges, specials) > 0x10000) throw new RangeError(`${edges.length} edges give more bins than a Uint16Array can index`);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = binIndex(values[i]!, edges, specials);
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

/** The result of a merge: the kept edges, the fine numeric bins of each final numeric bin, the trend imposed. */
export interface MergePlan {
  edges: number[];
  groups: number[][];
  trend: ImposedTrend;
}

/**
 * Final bins by merging ADJACENT numeric fine bins; special-value bins and the missing bin are never merged. The
 * constraints, as optbinning (Navas-Palencia 2020) states them: at most maxBins numeric bins, each holding at least
 * minBinShare of all rows and rows of both classes, and the event rate following `monotonic` across them.
 *
 * method 'iv': the partition of greatest information value that meets every constraint, found exactly by dynamic
 * programming over (bins used, end of the last bin, start of the last bin, phase of the trend): O(n³·maxBins) for n
 * fine bins, a few milliseconds at the default 20 fine bins and under a second at 100. IV is a sum of per-bin terms,
 * so the optimum of a prefix extends to the optimum of the whole, and the event-rate comparison of the last two bins
 * is all the monotonic constraint needs (a peak or valley adds one change of direction). Exact, unlike a greedy merge,
 * which can lock in an early merge that a monotonic trend later makes costly. When no partition meets the
 * constraints (e.g. the numeric rows are fewer than the minimum share), every numeric bin is merged into one.
 *
 * method 'chi2' (ChiMerge, greedy): (1) while a bin is too small or single-class, merge the smallest such bin with
 * the neighbour of least chi-square; (2) while the event rates break the trend, merge the breaking adjacent pair of
 * least chi-square; (3) while more than maxBins bins remain, merge the adjacent pair of least chi-square.
 *
 * `auto` imposes ascending or descending, whichever keeps more IV (peak and valley only when asked for: a U shape
 * always fits at least as well, so choosing it by IV alone would fit noise).
 */
export function mergeBins(edges: readonly number[], counts: BinCounts, opts: MergeOptions): MergePlan {
  const specials = opts.specials ?? 0;
  checkEdges(edges);
  checkCounts(counts, edges.length + specials + 2);
  if (opts.method !== 'iv' && opts.method !== 'chi2') throw new RangeError(`unknown merge method ${String(opts.method)}; use 'iv' or 'chi2'`);
  if (!Number.isInteger(opts.maxBins) || opts.maxBins < 1) throw new RangeError(`maxBins must be an integer ≥ 1, got ${opts.maxBins}`);
  if (!(opts.minBinShare >= 0 && opts.minBinShare < 1)) throw new RangeError(`minBinShare must be in [0, 1), got ${opts.minBinShare}`);
  const monotonic = opts.monotonic ?? 'none';
  if (!TRENDS.includes(monotonic)) throw new RangeError(`unknown monotonic trend ${String(monotonic)}; use one of ${TRENDS.join(', ')}`);

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
  const numeric = edges.length + 1;
  const ctx: MergeContext = {
    events: counts.events.slice(0, numeric),
    totals: counts.totals.slice(0, numeric),
    eventTotal,
    goodTotal,
    minRows: opts.minBinShare * rowTotal,
    maxBins: opts.maxBins,
  };
  const run = (trend: ImposedTrend) => (opts.method === 'iv' ? optimalGroups(ctx, trend) : chiMergeGroups(ctx, trend));
  let best: { groups: number[][]; trend: ImposedTrend };
  if (monotonic === 'auto') {
    const up = run('ascending');
    const down = run('descending');
    best = groupsIv(ctx, down) > groupsIv(ctx, up) + 1e-12 ? { groups: down, trend: 'descending' } : { groups: up, trend: 'ascending' };
  } else {
    best = { groups: run(monotonic), trend: monotonic };
  }
  return { edges: applyMerge(edges, best.groups), groups: best.groups, trend: best.trend };
}

const TRENDS: readonly MonotonicTrend[] = ['auto', 'ascending', 'descending', 'peak', 'valley', 'none'];

interface MergeContext {
  /** Counts of the numeric fine bins only. */
  events: number[];
  totals: number[];
  /** Over every bin (special values and missing included). */
  eventTotal: number;
  goodTotal: number;
  minRows: number;
  maxBins: number;
}

/** IV of the numeric bins of a plan. */
function groupsIv(ctx: MergeContext, groups: number[][]): number {
  let iv = 0;
  for (const g of groups) {
    let e = 0;
    let t = 0;
    for (const b of g) {
      e += ctx.events[b]!;
      t += ctx.totals[b]!;
    }
    iv += binInformationValue(e, t, ctx.eventTotal, ctx.goodTotal);
  }
  return iv;
}

/** The directions of a trend's phases: each step between adjacent bins moves within a phase or into the next. */
const PHASES: Record<ImposedTrend, ('up' | 'down' | 'any')[]> = {
  ascending: ['up'],
  descending: ['down'],
  peak: ['up', 'down'],
  valley: ['down', 'up'],
  none: ['any'],
};

/** The exact optimum (see mergeBins). */
function optimalGroups(ctx: MergeContext, trend: ImposedTrend): number[][] {
  const n = ctx.totals.length;
  const E = new Float64Array(n + 1);
  const T = new Float64Array(n + 1);
  for (let b = 0; b < n; b++) {
    E[b + 1] = E[b]! + ctx.events[b]!;
    T[b + 1] = T[b]! + ctx.totals[b]!;
  }
  const feasible = (i: number, j: number) => {
    const t = T[j]! - T[i]!;
    const e = E[j]! - E[i]!;
    return t > 0 && t >= ctx.minRows && e > 0 && e < t;
  };
  const segIv = (i: number, j: number) => binInformationValue(E[j]! - E[i]!, T[j]! - T[i]!, ctx.eventTotal, ctx.goodTotal);
  // Sign of rate(h, i) − rate(i, j), by cross-multiplication (exact on counts).
  const compare = (h: number, i: number, j: number) => Math.sign((E[i]! - E[h]!) * (T[j]! - T[i]!) - (E[j]! - E[i]!) * (T[i]! - T[h]!));
  const phases = PHASES[trend];
  const P = phases.length;
  const K = Math.min(ctx.maxBins, n);
  const N1 = n + 1;
  const at = (k: number, j: number, i: number, p: number) => ((k * N1 + j) * N1 + i) * P + p;
  const best = new Float64Array((K + 1) * N1 * N1 * P).fill(Number.NEGATIVE_INFINITY);
  const from = new Int32Array(best.length).fill(-1);
  for (let j = 1; j <= n; j++) if (feasible(0, j)) best[at(1, j, 0, 0)] = segIv(0, j);
  for (let k = 2; k <= K; k++) {
    for (let j = k; j <= n; j++) {
      for (let i = k - 1; i < j; i++) {
        if (!feasible(i, j)) continue;
        const iv = segIv(i, j);
        for (let h = k - 2; h < i; h++) {
          if (!feasible(h, i)) continue;
          const c = compare(h, i, j);
          for (let p = 0; p < P; p++) {
            const dir = phases[p]!;
            if ((dir === 'up' && c >= 0) || (dir === 'down' && c <= 0)) continue;
            for (let pp = p; pp >= Math.max(0, p - 1); pp--) {
              const prev = best[at(k - 1, i, h, pp)]!;
              if (prev === Number.NEGATIVE_INFINITY) continue;
              const cell = at(k, j, i, p);
              if (prev + iv > best[cell]! + 1e-12) {
                best[cell] = prev + iv;
                from[cell] = h * P + pp;
              }
            }
          }
        }
      }
    }
  }
  let end = -1;
  let endK = 0;
  for (let k = 1; k <= K; k++) {
    for (let i = 0; i < n; i++) {
      for (let p = 0; p < P; p++) {
        const v = best[at(k, n, i, p)]!;
        if (v !== Number.NEGATIVE_INFINITY && (end < 0 || v > best[end]! + 1e-12)) {
          end = at(k, n, i, p);
          endK = k;
        }
      }
    }
  }
  if (end < 0) return [Array.from({ length: n }, (_, b) => b)];
  const groups: number[][] = [];
  let j = n;
  let cell = end;
  for (let k = endK; k >= 1; k--) {
    const i = Math.floor(cell / P) % N1;
    groups.unshift(Array.from({ length: j - i }, (_, b) => i + b));
    if (k === 1) break;
    const back = from[cell]!;
    const h = Math.floor(back / P);
    cell = at(k - 1, i, h, back % P);
    j = i;
  }
  return groups;
}

/** ChiMerge with the constraints (see mergeBins). */
function chiMergeGroups(ctx: MergeContext, trend: ImposedTrend): number[][] {
  const bins: WorkBin[] = ctx.totals.map((total, b) => ({ events: ctx.events[b]!, total, members: [b] }));
  const merge = (i: number): void => {
    const l = bins[i]!;
    const r = bins[i + 1]!;
    bins.splice(i, 2, { events: l.events + r.events, total: l.total + r.total, members: [...l.members, ...r.members] });
  };
  const offends = (w: WorkBin) => w.total < ctx.minRows || w.events === 0 || w.events === w.total;

  // 1. Repair small and single-class bins.
  while (bins.length > 1) {
    let worst = -1;
    for (let i = 0; i < bins.length; i++) {
      if (offends(bins[i]!) && (worst < 0 || bins[i]!.total < bins[worst]!.total)) worst = i;
    }
    if (worst < 0) break;
    if (worst === 0) merge(0);
    else if (worst === bins.length - 1) merge(worst - 1);
    else {
      const left = chiSquare(bins[worst - 1]!, bins[worst]!);
      const right = chiSquare(bins[worst]!, bins[worst + 1]!);
      const takeLeft = left < right || (left === right && bins[worst - 1]!.total <= bins[worst + 1]!.total);
      merge(takeLeft ? worst - 1 : worst);
    }
  }
  // 2. Impose the trend; 3. reduce to maxBins.
  const cheapest = (pairs: number[]) => pairs.reduce((best, i) => (chiSquare(bins[i]!, bins[i + 1]!) < chiSquare(bins[best]!, bins[best + 1]!) ? i : best), pairs[0]!);
  for (let breaking = trendBreaks(bins, trend); breaking.length > 0; breaking = trendBreaks(bins, trend)) merge(cheapest(breaking));
  while (bins.length > ctx.maxBins) merge(cheapest(Array.from({ length: bins.length - 1 }, (_, i) => i)));
  return bins.map((w) => w.members);
}

/** Adjacent pairs (by left index) whose event rates break the trend. */
function trendBreaks(bins: WorkBin[], trend: ImposedTrend): number[] {
  if (trend === 'none' || bins.length < 2) return [];
  const rate = bins.map((w) => w.events / w.total);
  let turn = 0;
  if (trend === 'peak' || trend === 'valley') {
    for (let i = 1; i < rate.length; i++) if (trend === 'peak' ? rate[i]! > rate[turn]! : rate[i]! < rate[turn]!) turn = i;
  }
  const out: number[] = [];
  for (let i = 0; i + 1 < rate.length; i++) {
    const rising = i < turn ? trend === 'peak' : trend === 'ascending' || trend === 'valley';
    if (rising ? rate[i]! >= rate[i + 1]! : rate[i]! <= rate[i + 1]!) out.push(i);
  }
  return out;
}

/** Pearson chi-square of the 2×2 table (two bins × event / non-event); a zero expected count adds nothing. */
function chiSquare(l: { events: number; total: number }, r: { events: number; total: number }): number {
  const n = l.total + r.total;
  if (n === 0) return 0;
  const events = l.events + r.events;
  const goods = n - events;
  let chi = 0;
  for (const row of [l, r]) {
    for (const [observed, column] of [
      [row.events, events],
      [row.total - row.events, goods],
    ] as const) {
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

/** Fine counts summed into the final bins of a merge plan; the `specials` special-value bins and the missing bin
 * after the numeric ones are carried over as they are. */
export function mergeCounts(counts: BinCounts, groups: number[][], specials = 0): BinCounts {
  const fine = counts.totals.length;
  if (counts.events.length !== fine) throw new RangeError(`counts have ${counts.events.length} event and ${fine} total entries`);
  checkGroups(groups, fine - 1 - specials);
  const sum = (xs: number[], group: number[]) => group.reduce((s, b) => s + xs[b]!, 0);
  const carried = fine - 1 - specials;
  return {
    events: [...groups.map((g) => sum(counts.events, g)), ...counts.events.slice(carried)],
    totals: [...groups.map((g) => sum(counts.totals, g)), ...counts.totals.slice(carried)],
  };
}
