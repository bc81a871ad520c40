/**
 * Settling a feature's final bins from the counts of its fine bins, by the job's binning method: `quantile` keeps the
 * fine bins; `optimal` merges adjacent ones (mergeBins) down to max_bins. Both kinds of job use it: the vertical guest
 * on label sums, the horizontal coordinator on the aggregate of the participants' secure histograms.
 */
import type { BinningSpec } from '../config/schemas.js';
import { mergeBins, mergeCounts, type BinCounts } from './binning.js';
import { woeIv } from './woe.js';

export type { BinningSpec };

export interface SettledBins {
  edges: number[];
  /** Fine bins merged into each final numeric bin (null: kept as they are). */
  groups: number[][] | null;
  counts: BinCounts;
  woe: number[];
  iv: number;
}

/** From fine bins and their counts, the final bins by the job's method, with their WOE and the feature's IV. */
export function settleBins(fineEdges: number[], fine: BinCounts, spec: BinningSpec): SettledBins {
  if (spec.method === 'quantile') {
    const { woe, iv } = woeIv(fine);
    return { edges: fineEdges, groups: null, counts: fine, woe, iv };
  }
  const plan = mergeBins(fineEdges, fine, { method: spec.merge, maxBins: spec.max_bins, minBinShare: spec.min_bin_share });
  const counts = mergeCounts(fine, plan.groups);
  const { woe, iv } = woeIv(counts);
  return { edges: plan.edges, groups: plan.groups, counts, woe, iv };
}
