/**
 * Binning a horizontal federation's features from secure histograms (the `histogram` secure sum).
 *
 * Fine edges. Every party (and the auditor's replay) derives the same fine-bin edges per feature from the
 * federation-wide quantile sketch (src/fl/quantile-search.ts: fineEdges, fine_bins for `optimal`, max_bins for
 * `quantile`), which the `quantiles` secure sums opened before. Its cells follow the bin layout of
 * src/credit/binning.ts: x ≤ e_0, e_{i−1} < x ≤ e_i, x > e_last, missing: binCount(edges) cells.
 *
 * Contribution. Per feature, the rows and the defaults of the participant's training rows in each fine bin:
 * [totals(bins), events(bins)] feature after feature. The coordinator opens only the sum over the participants, which
 * is exactly the counts binCounts gives on the pooled rows with those edges. settleBins then merges them and computes
 * WOE and IV, as on pooled data.
 */
import { binCount, binIndex, type BinCounts } from '../credit/binning.js';
import { settleBins, type BinningSpec } from '../credit/settle.js';
import { ErrorCode, FedcreditError, errorMessage } from '../errors.js';
import type { FeatureBins, Preprocessing } from '../model/preprocess.js';
import { fineEdges, type QuantileSearch } from './quantile-search.js';

/** Every feature's fine-bin edges from the finished quantile search. */
export function fineEdgesOf(search: QuantileSearch, spec: BinningSpec): number[][] {
  const bins = spec.method === 'quantile' ? spec.max_bins : spec.fine_bins;
  return search.sketches.map((s) => fineEdges(s, bins));
}

export function histogramLength(grids: number[][]): number {
  return grids.reduce((n, g) => n + 2 * binCount(g), 0);
}

/** One participant's histogram vector over its training rows: per feature, rows then defaults per fine bin. */
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

/** Per feature, the rows and defaults per fine bin of an opened histogram aggregate, rounded to integers. */
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
  return features.map((feature, j) => {
    try {
      const settled = settleBins([...grids[j]!], cells[j]!, spec, feature);
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
 * its bin (mean 0, scale 1: WOE is not standardised), else clipped and standardised as `base` says.
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
  const clipped = base.clipLow && base.clipLow.length > 0 ? { clipLow: idx.map((i) => base.clipLow![i]!), clipHigh: idx.map((i) => base.clipHigh![i]!) } : {};
  return { features: selected.map((b) => b.feature), mean: idx.map((i) => base.mean[i]!), scale: idx.map((i) => base.scale[i]!), bins: [], ...clipped };
}
