/**
 * Binning a horizontal federation's features from secure histograms (the `histogram` secure sum).
 *
 * Grid. From the opened moments aggregate every party (and the auditor's replay) derives the same grid per feature:
 * g_i = mean − 5·sd + i·(10·sd / 256), i = 0 … 256, with the federation-wide mean and population sd. Its cells follow
 * the bin layout of src/credit/binning.ts with the grid as edges: x ≤ g_0 (lower tail), g_{i−1} < x ≤ g_i (256 cells),
 * x > g_256 (upper tail), missing: binCount(grid) = 259 cells. A feature without spread gets the one-point grid [mean].
 *
 * Contribution. Per feature, the rows and the defaults of the participant's training rows in each cell:
 * [totals(cells), events(cells)] feature after feature. The coordinator opens only the sum over the participants.
 *
 * Bins. Fine edges are grid points (cell boundaries) chosen so that the fine bins are about equally full
 * (fine_bins for `optimal`, max_bins for `quantile`); the cells between two edges add up to the fine bin's counts,
 * which are therefore exactly the counts binCounts gives on the pooled rows with those edges. settleBins then merges
 * them and computes WOE and IV, as on pooled data.
 */
import { binCount, binIndex, type BinCounts } from '../credit/binning.js';
import { settleBins, type BinningSpec } from '../credit/settle.js';
import { ErrorCode, FedcreditError, errorMessage } from '../errors.js';
import type { FeatureBins, Preprocessing } from '../wire/messages.js';
import { momentOf } from '../model/preprocess.js';

/** Cells between mean − 5 sd and mean + 5 sd. */
export const HISTOGRAM_CELLS = 256;
export const HISTOGRAM_SPAN_SD = 5;

/** The grid of one feature (see the module comment): strictly increasing, 257 points, or [mean] without spread. */
export function histogramGrid(mean: number, sd: number): number[] {
  const centre = Number.isFinite(mean) ? mean : 0;
  const lo = centre - HISTOGRAM_SPAN_SD * sd;
  const width = (2 * HISTOGRAM_SPAN_SD * sd) / HISTOGRAM_CELLS;
  if (!(width > 0) || !Number.isFinite(lo) || !Number.isFinite(width)) return [centre];
  const grid: number[] = [];
  for (let i = 0; i <= HISTOGRAM_CELLS; i++) {
    const g = lo + i * width;
    // A huge mean against a tiny sd can make neighbouring points equal in float64: keep the grid strictly increasing.
    if (grid.length === 0 || g > grid[grid.length - 1]!) grid.push(g);
  }
  return grid;
}

/** Every feature's grid from the opened moments aggregate (the same on every party: it decrypted the same values). */
export function gridsFromMoments(moments: Float64Array, dim: number): number[][] {
  return Array.from({ length: dim }, (_, j) => {
    const m = momentOf(moments, j);
    return histogramGrid(m.mean, m.sd);
  });
}

export function histogramLength(grids: number[][]): number {
  return grids.reduce((n, g) => n + 2 * binCount(g), 0);
}

/** One participant's histogram vector over its training rows: per feature, rows then defaults per cell. */
export function localHistogram(x: Float32Array, y: Float32Array, grids: number[][]): Float64Array {
  const dim = grids.length;
  const out = new Float64Array(histogramLength(grids));
  const offsets: number[] = [];
  let o = 0;
  for (const g of grids) {
    offsets.push(o);
    o += 2 * binCount(g);
  }
  for (let r = 0; r < y.length; r++) {
    const bad = y[r] === 1;
    for (let j = 0; j < dim; j++) {
      const g = grids[j]!;
      const cell = binIndex(x[r * dim + j]!, g);
      out[offsets[j]! + cell]! += 1;
      if (bad) out[offsets[j]! + binCount(g) + cell]! += 1;
    }
  }
  return out;
}

/** A count from an opened aggregate: an integer up to CKKS noise of order 1e-9, rounded (and never -0). */
export const roundCount = (v: number): number => Math.round(v) + 0;

/** Per feature, the rows and defaults per cell of an opened histogram aggregate, rounded to integers. */
export function cellCounts(values: Float64Array, grids: number[][]): BinCounts[] {
  if (values.length !== histogramLength(grids)) throw new RangeError(`a histogram of ${values.length} values for grids needing ${histogramLength(grids)}`);
  let o = 0;
  return grids.map((g) => {
    const cells = binCount(g);
    const totals = Array.from(values.subarray(o, o + cells), roundCount);
    const events = Array.from(values.subarray(o + cells, o + 2 * cells), roundCount);
    o += 2 * cells;
    return { events, totals };
  });
}

/**
 * Indices c of grid points (the boundary between cell c and cell c + 1) that cut the numeric cells into about `bins`
 * equally full bins: for the q-th cut, the boundary whose cumulative count is nearest q·n/bins (the lower on a draw);
 * a cut that would leave a bin empty is dropped, so mass points give fewer bins.
 */
export function equalFrequencyCuts(grid: readonly number[], totals: readonly number[], bins: number): number[] {
  const numeric = grid.length + 1;
  const cum: number[] = [];
  let n = 0;
  for (let c = 0; c < numeric; c++) {
    n += totals[c]!;
    cum.push(n);
  }
  const cuts: number[] = [];
  let last = 0;
  for (let q = 1; q < bins; q++) {
    const target = (q * n) / bins;
    let best = -1;
    for (let c = 0; c < grid.length; c++) {
      if (best < 0 || Math.abs(cum[c]! - target) < Math.abs(cum[best]! - target)) best = c;
    }
    if (best >= 0 && cum[best]! > last && cum[best]! < n) {
      cuts.push(best);
      last = cum[best]!;
    }
  }
  return cuts;
}

/** Counts of the fine bins cut at `cuts` (indices into the grid), the missing cell last. */
function fineCounts(cells: BinCounts, cuts: number[]): BinCounts {
  const numeric = cells.totals.length - 1;
  const events: number[] = [];
  const totals: number[] = [];
  let from = 0;
  for (const to of [...cuts.map((c) => c + 1), numeric]) {
    let e = 0;
    let t = 0;
    for (let c = from; c < to; c++) {
      e += cells.events[c]!;
      t += cells.totals[c]!;
    }
    events.push(e);
    totals.push(t);
    from = to;
  }
  events.push(cells.events[numeric]!);
  totals.push(cells.totals[numeric]!);
  return { events, totals };
}

/** One row of the IV table a horizontal job records (`binning_completed`). */
export interface HorizontalBinnedFeature extends FeatureBins {
  selected: boolean;
}

/**
 * Every feature's final bins, WOE and IV from the opened histogram aggregate, selected by iv_threshold. Throws a
 * FedcreditError naming the feature if its counts cannot be binned (e.g. the training rows hold a single class).
 */
export function binsFromHistogram(features: string[], grids: number[][], values: Float64Array, spec: BinningSpec): HorizontalBinnedFeature[] {
  const cells = cellCounts(values, grids);
  const fine = spec.method === 'quantile' ? spec.max_bins : spec.fine_bins;
  return features.map((feature, j) => {
    const grid = grids[j]!;
    const cuts = equalFrequencyCuts(grid, cells[j]!.totals, fine);
    try {
      const settled = settleBins(
        cuts.map((c) => grid[c]!),
        fineCounts(cells[j]!, cuts),
        spec,
        feature,
      );
      return { feature, edges: settled.edges, woe: settled.woe, events: settled.counts.events, totals: settled.counts.totals, iv: settled.iv, selected: settled.iv >= spec.iv_threshold };
    } catch (err) {
      throw new FedcreditError(
        ErrorCode.JOB_FAILED,
        `binning feature ${feature} failed: ${errorMessage(err)}`,
        'binning needs defaults and non-defaults among the participants\' training rows; check the label columns',
      );
    }
  });
}

/**
 * The preprocessing a binned job trains with: the selected features only; with woe_transform, each read as the WOE of
 * its bin (mean 0, scale 1: WOE is not standardised), else standardised as `base` (from the moments) says.
 */
export function preprocessingFromBins(base: Preprocessing, binned: HorizontalBinnedFeature[], woeTransform: boolean): Preprocessing {
  const selected = binned.filter((b) => b.selected);
  if (selected.length === 0) {
    const best = [...binned].sort((a, b) => b.iv - a.iv)[0];
    throw new FedcreditError(
      ErrorCode.JOB_FAILED,
      `no feature reaches binning.iv_threshold${best ? ` (the highest IV is ${best.iv.toFixed(4)}, of ${best.feature})` : ''}`,
      'lower binning.iv_threshold (0 keeps every feature) or add more informative features',
    );
  }
  const idx = selected.map((b) => base.features.indexOf(b.feature));
  if (woeTransform) {
    return {
      features: selected.map((b) => b.feature),
      mean: selected.map(() => 0),
      scale: selected.map(() => 1),
      bins: selected.map(({ selected: _, ...b }) => b),
    };
  }
  return { features: selected.map((b) => b.feature), mean: idx.map((i) => base.mean[i]!), scale: idx.map((i) => base.scale[i]!), bins: [] };
}
