/**
 * Federation-wide quantiles of every feature by rounds of secure sums of counts (docs/protocol-horizontal.md).
 *
 * State. Per feature, a sorted list of points p_1 < … < p_m (float32 values) and the number of training rows (over
 * all participants, non-missing) with x ≤ p_i: a histogram of cells (p_{i−1}, p_i]. A cell is finished when it holds
 * at most QUANTILE_RANK_ERROR of the feature's rows, or when it holds one value only: (prevFloat32(b), b] (the rows
 * are float32, so such a cell is exactly the rows equal to b).
 *
 * Round 1 counts at a grid fixed by the moments aggregate: 0 and ±{1, 2, 5}·10^e for the twelve decades below 10^E,
 * and ±10^E, where 10^E bounds every |x| (|x| ≤ |mean| + sd·√n). Each later round splits every unfinished cell
 * (a, b] at the multiples of a decimal step (1, 2 or 5 × 10^k) that cut it into 16 to 40 parts, plus the float32
 * just below b (so a point mass at b is isolated exactly). The steps are decimal, so integer and round values
 * (0, 1, 2, 0.5 …) become points themselves: zero-inflated and small-integer columns get cuts at their values.
 *
 * Every party derives the same points from the same opened aggregates (as it derives everything from the moments),
 * so the coordinator never chooses where the participants count: it learns only the federation-wide counts at
 * points that follow from earlier federation-wide counts. All features' points of a round travel in one vector.
 *
 * A feature's special values (binning.features.<name>.special_values) are counted nowhere, as missing values are: they
 * get bins of their own, so the quantiles are those of the other values, and the feature's count is the rows at or
 * below the first round's top point (which bounds every value). A category has no quantiles: no points.
 */
import { ErrorCode, FedcreditError } from '../errors.js';
import { momentOf, type Preprocessing } from '../model/preprocess.js';

/** A finished cell holds at most this share of a feature's non-missing rows, unless it holds a single value. */
export const QUANTILE_RANK_ERROR = 0.0025;
/** Secure-sum rounds at most; cells still unfinished after them are reported with their share (the achieved rank error). */
export const QUANTILE_MAX_ROUNDS = 6;
/** An unfinished cell is split into at least this many parts per round. */
const SPLIT_PARTS = 16;
/** Decades of the first round's grid below the bound 10^E. */
const DECADES = 12;

/** One feature's federation-wide cumulative counts. */
export interface FeatureSketch {
  /** Sorted float32 points. */
  points: number[];
  /** cum[i]: non-missing rows with x ≤ points[i]. */
  cum: number[];
  /** Non-missing rows (from the moments aggregate). */
  count: number;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The largest float32 below the float32 value b. */
export function prevFloat32(b: number): number {
  f32[0] = b;
  if (Number.isNaN(f32[0]) || f32[0] === -Infinity) return f32[0]!;
  if (f32[0] === 0) {
    u32[0] = 0x80000001; // −(smallest subnormal)
    return f32[0]!;
  }
  if (f32[0]! > 0) u32[0] = u32[0]! - 1;
  else u32[0] = u32[0]! + 1;
  return f32[0]!;
}

/** m × c × 10^k, rounded once (the decimal's nearest float64), then to float32. */
function decimal(m: number, c: number, k: number): number {
  return Math.fround(k >= 0 ? m * c * 10 ** k : (m * c) / 10 ** -k);
}

/** The first round's grid for one feature with these moments (empty when the feature has no value). */
export function initialPoints(count: number, mean: number, sd: number): number[] {
  if (!(count > 0)) return [];
  const bound = Math.abs(mean) + sd * Math.sqrt(count) * (1 + 1e-6) + 1e-30;
  const top = Math.max(-30, Math.min(38, Math.ceil(Math.log10(bound))));
  const points = new Set<number>([0, decimal(1, 1, top), decimal(-1, 1, top)]);
  for (let e = top - DECADES; e < top; e++) {
    for (const c of [1, 2, 5]) {
      points.add(decimal(1, c, e));
      points.add(decimal(-1, c, e));
    }
  }
  // A float32 rounding of 10^top can fall below the bound: then the largest float32 covers the rest.
  if (decimal(1, 1, top) < bound) {
    points.add(3.4028234663852886e38);
    points.add(-3.4028234663852886e38);
  }
  return [...points].filter(Number.isFinite).sort((a, b) => a - b);
}

/** The points strictly inside (a, b) that split the cell for the next round: a decimal grid and prevFloat32(b). */
export function splitPoints(a: number, b: number): number[] {
  const width = b - a;
  const out = new Set<number>();
  if (width > 0 && Number.isFinite(width)) {
    // The largest step c·10^k (c ∈ {1, 2, 5}) with width / step ≥ SPLIT_PARTS.
    let k = Math.floor(Math.log10(width / SPLIT_PARTS));
    let step: [number, number] | undefined;
    for (let tries = 0; tries < 4 && !step; tries++, k--) {
      for (const c of [5, 2, 1]) {
        if (width / (c * 10 ** k) >= SPLIT_PARTS) {
          step = [c, k];
          break;
        }
      }
    }
    if (step) {
      const [c, kk] = step;
      const size = c * 10 ** kk;
      for (let m = Math.floor(a / size) + 1; m * size < b + size; m++) {
        const p = decimal(m, c, kk);
        if (p > a && p < b) out.add(p);
      }
    }
  }
  const below = prevFloat32(b);
  if (below > a && below < b) out.add(below);
  return [...out].sort((x, y) => x - y);
}

/** Does the cell (a, b] of this sketch still need splitting? */
function unfinished(sketch: FeatureSketch, i: number, tolerance: number): boolean {
  const a = i === 0 ? -Infinity : sketch.points[i - 1]!;
  const b = sketch.points[i]!;
  const rows = sketch.cum[i]! - (i === 0 ? 0 : sketch.cum[i - 1]!);
  return rows > tolerance && a !== prevFloat32(b) && Number.isFinite(a);
}

/**
 * The search's state on one party (or the coordinator, or the auditor's replay): what to count next and the sketch so
 * far. `advance` takes the opened aggregate of the round.
 */
export class QuantileSearch {
  readonly sketches: FeatureSketch[];
  /** The points to count this round, per feature. */
  private next: number[][];
  rounds = 0;

  /** Per feature, the values counted nowhere (special values) and whether it is a category (never searched). */
  private readonly layouts: { specials: number[]; category: boolean }[];

  constructor(moments: Float64Array, dim: number, layouts: readonly { specials: number[]; category: boolean }[] = []) {
    this.sketches = [];
    this.next = [];
    this.layouts = Array.from({ length: dim }, (_, j) => layouts[j] ?? { specials: [], category: false });
    for (let j = 0; j < dim; j++) {
      const m = momentOf(moments, j);
      const count = this.layouts[j]!.category ? 0 : Math.round(m.count);
      this.sketches.push({ points: [], cum: [], count });
      this.next.push(initialPoints(count, m.mean, m.sd));
    }
  }

  /** No round left to run: every cell is finished, or QUANTILE_MAX_ROUNDS ran. */
  get done(): boolean {
    return this.length === 0 || this.rounds >= QUANTILE_MAX_ROUNDS;
  }

  /** Values of this round's vector: one count per point of every feature, feature after feature. */
  get length(): number {
    return this.next.reduce((n, p) => n + p.length, 0);
  }

  /** This round's points per feature (read-only). */
  get points(): readonly (readonly number[])[] {
    return this.next;
  }

  /** One party's vector: per feature and point, its rows with x ≤ point (missing values count nowhere). */
  localCounts(x: Float32Array, dim: number): Float64Array {
    const out = new Float64Array(this.length);
    const rows = x.length / dim;
    let o = 0;
    for (let j = 0; j < dim; j++) {
      const pts = this.next[j]!;
      if (pts.length === 0) continue;
      const specials = this.layouts[j]!.specials;
      const cells = new Float64Array(pts.length + 1);
      for (let r = 0; r < rows; r++) {
        const v = x[r * dim + j]!;
        if (Number.isNaN(v) || (specials.length > 0 && specials.includes(v))) continue;
        // First point ≥ v.
        let lo = 0;
        let hi = pts.length;
        while (lo < hi) {
          const mid = (lo + hi) >> 1;
          if (pts[mid]! < v) lo = mid + 1;
          else hi = mid;
        }
        cells[lo]! += 1;
      }
      let cum = 0;
      for (let i = 0; i < pts.length; i++) {
        cum += cells[i]!;
        out[o + i] = cum;
      }
      o += pts.length;
    }
    return out;
  }

  /** Take the opened aggregate of this round (counts rounded: CKKS noise is far below 0.5) and plan the next. */
  advance(values: Float64Array): void {
    if (values.length !== this.length) throw new RangeError(`a quantile-search aggregate of ${values.length} values where ${this.length} were counted`);
    let o = 0;
    this.sketches.forEach((s, j) => {
      const pts = this.next[j]!;
      const counts = Array.from(values.subarray(o, o + pts.length), (v) => Math.round(v) + 0);
      o += pts.length;
      const merged = new Map<number, number>();
      s.points.forEach((p, i) => merged.set(p, s.cum[i]!));
      pts.forEach((p, i) => merged.set(p, counts[i]!));
      const order = [...merged.keys()].sort((a, b) => a - b);
      s.points = order;
      s.cum = order.map((p) => merged.get(p)!);
      if (this.layouts[j]!.specials.length > 0 && s.cum.length > 0) s.count = s.cum.at(-1)!;
      for (let i = 1; i < s.cum.length; i++) {
        if (s.cum[i]! < s.cum[i - 1]!) {
          throw new FedcreditError(
            ErrorCode.JOB_FAILED,
            `the quantile search of feature ${j} opened counts that decrease along the values`,
            'a participant counted wrongly or runs another fedcredit version; re-run the job',
          );
        }
      }
    });
    this.rounds++;
    this.next = this.sketches.map((s) => {
      const tolerance = QUANTILE_RANK_ERROR * s.count;
      const out: number[] = [];
      for (let i = 0; i < s.points.length; i++) if (unfinished(s, i, tolerance)) out.push(...splitPoints(s.points[i - 1]!, s.points[i]!));
      return out;
    });
  }

  /** Per feature, the largest share of rows in a cell that is not a single value (≤ QUANTILE_RANK_ERROR once done). */
  rankErrors(): number[] {
    return this.sketches.map((s) => {
      let worst = 0;
      for (let i = 0; i < s.points.length; i++) {
        const a = i === 0 ? -Infinity : s.points[i - 1]!;
        if (a === prevFloat32(s.points[i]!)) continue;
        worst = Math.max(worst, s.cum[i]! - (i === 0 ? 0 : s.cum[i - 1]!));
      }
      return s.count > 0 ? worst / s.count : 0;
    });
  }

  /** Run the whole search on rows in one place (central baselines, tests): the sketch a federation would open. */
  static local(x: Float32Array, dim: number, moments: Float64Array, layouts: readonly { specials: number[]; category: boolean }[] = []): QuantileSearch {
    const search = new QuantileSearch(moments, dim, layouts);
    while (!search.done) search.advance(search.localCounts(x, dim));
    return search;
  }
}

/** The smallest point whose cumulative count reaches `rank` (the upper edge of the cell holding that rank). */
export function quantileOf(s: FeatureSketch, rank: number): number {
  for (let i = 0; i < s.points.length; i++) if (s.cum[i]! >= rank) return s.points[i]!;
  return s.points.at(-1) ?? Number.NaN;
}

/**
 * Fine-bin edges from a sketch: equal-frequency over what is left. Each cut is the point whose cumulative count is
 * nearest to the last cut's count plus an equal share of the remaining rows over the remaining bins; a value that
 * holds more than a bin's share (a point mass) becomes a cut of its own, and the rows above it are shared out among
 * the bins left, so a zero-inflated count gets cuts at 0, 1, 2, … while rows remain.
 */
export function fineEdges(s: FeatureSketch, bins: number): number[] {
  const n = s.count;
  const edges: number[] = [];
  let last = 0;
  let from = 0;
  for (let left = bins; left > 1; left--) {
    const target = last + (n - last) / left;
    let best = -1;
    for (let i = from; i < s.points.length; i++) {
      const c = s.cum[i]!;
      if (c <= last) continue;
      if (c >= n) break;
      if (best < 0 || Math.abs(c - target) < Math.abs(s.cum[best]! - target)) best = i;
      if (c > target) break;
    }
    if (best < 0) break;
    edges.push(s.points[best]!);
    last = s.cum[best]!;
    from = best + 1;
  }
  return edges;
}

/**
 * Winsorising bounds and the mean and sd of the clipped values, from a sketch: the bounds are the points at ranks
 * share·n and (1 − share)·n (each within QUANTILE_RANK_ERROR of its rank); the moments take every row of a cell at
 * the cell's midpoint (the exact value for a single-value cell), clipped. Without values: NaN bounds, mean 0, sd 0.
 */
export function winsorised(s: FeatureSketch, share: number): { low: number; high: number; mean: number; sd: number } {
  if (s.count === 0 || s.points.length === 0) return { low: Number.NaN, high: Number.NaN, mean: 0, sd: 0 };
  const low = quantileOf(s, Math.max(1, share * s.count));
  const high = Math.max(low, quantileOf(s, Math.max(1, (1 - share) * s.count)));
  let sum = 0;
  let sumsq = 0;
  for (let i = 0; i < s.points.length; i++) {
    const rows = s.cum[i]! - (i === 0 ? 0 : s.cum[i - 1]!);
    if (rows === 0) continue;
    const b = s.points[i]!;
    const a = i === 0 ? b : s.points[i - 1]!;
    const v = Math.min(high, Math.max(low, a === prevFloat32(b) ? b : (a + b) / 2));
    sum += rows * v;
    sumsq += rows * v * v;
  }
  const mean = sum / s.count;
  return { low, high, mean, sd: Math.sqrt(Math.max(0, sumsq / s.count - mean * mean)) };
}

/** Bounds of a feature without any value: no clipping. */
const FLOAT32_MAX = 3.4028234663852886e38;

/**
 * Winsorised preprocessing from the federation-wide quantile sketch: each feature clipped to its `share` and
 * 1 − `share` quantiles (clipLow, clipHigh), then centred and scaled by the mean and sd of the clipped values as the
 * sketch gives them (src/fl/quantile-search.ts: winsorised). The same on every party and in the auditor's replay.
 */
export function preprocessingFromSearch(features: string[], search: QuantileSearch, standardize: boolean, share: number): Preprocessing {
  const w = search.sketches.map((s) => winsorised(s, share));
  const bounded = (v: number, fallback: number) => (Number.isFinite(v) ? v : fallback);
  return {
    features: [...features],
    mean: w.map((f) => f.mean),
    scale: w.map((f) => (standardize && f.sd * f.sd > 1e-12 ? f.sd : 1)),
    bins: [],
    clipLow: w.map((f) => bounded(f.low, -FLOAT32_MAX)),
    clipHigh: w.map((f) => bounded(f.high, FLOAT32_MAX)),
  };
}
