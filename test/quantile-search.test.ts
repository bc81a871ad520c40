/**
 * The horizontal quantile search (src/fl/quantile-search.ts) on real skewed and zero-inflated columns of Give Me Some
 * Credit: every cut it reports is within the stated rank error of the exact quantile, point masses are cut at their
 * values, and the fine bins of a zero-inflated count fall at 0, 1, 2, ….
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { loadDataset, type LoadedDataset } from '../src/data/csv.js';
import { gmscFile, gmscSpec, GMSC_FEATURES } from '../src/data/public-datasets.js';
import { localMoments } from '../src/model/preprocess.js';
import { QUANTILE_RANK_ERROR, QuantileSearch, fineEdges, quantileOf, winsorised } from '../src/fl/quantile-search.js';

const DATASETS = fileURLToPath(new URL('../../shared/datasets/', import.meta.url));
const dim = GMSC_FEATURES.length;
const col = (name: string) => GMSC_FEATURES.indexOf(name as (typeof GMSC_FEATURES)[number]);

describe('quantile search on Give Me Some Credit (150,000 rows, three participants)', () => {
  let data: LoadedDataset;
  let search: QuantileSearch;
  /** Sorted non-missing values of a column. */
  const sorted = (j: number) =>
    Float64Array.from({ length: data.rows }, (_, r) => data.x[r * dim + j]!)
      .filter((v) => !Number.isNaN(v))
      .sort();
  /** Rows with value ≤ v (exact). */
  const rankOf = (values: Float64Array, v: number) => {
    let lo = 0;
    let hi = values.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (values[mid]! <= v) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };

  beforeAll(async () => {
    data = await loadDataset(gmscSpec(gmscFile(DATASETS)));
    // Three participants' rows: each counts its own; the rounds see only the sums, as in a job.
    const parts = [0, 1, 2].map((p) => {
      const rows = Array.from({ length: data.rows }, (_, r) => r).filter((r) => r % 3 === p);
      const x = new Float32Array(rows.length * dim);
      rows.forEach((r, i) => x.set(data.x.subarray(r * dim, (r + 1) * dim), i * dim));
      return x;
    });
    const moments = parts.map((x) => localMoments(x, dim)).reduce((a, b) => a.map((v, i) => v + b[i]!));
    search = new QuantileSearch(moments, dim);
    while (!search.done) {
      const counts = parts.map((x) => search.localCounts(x, dim));
      search.advance(counts.reduce((a, b) => a.map((v, i) => v + b[i]!)));
    }
  });

  it('finishes within its rounds with every cell at most the rank error, or a single value', () => {
    console.log(
      `quantile search: ${search.rounds} rounds; rank errors ${search
        .rankErrors()
        .map((e) => e.toFixed(4))
        .join(', ')}`,
    );
    expect(search.rounds).toBeLessThanOrEqual(5);
    for (const e of search.rankErrors()) expect(e).toBeLessThanOrEqual(QUANTILE_RANK_ERROR);
  });

  it('places every percentile of the skewed RevolvingUtilization, DebtRatio and MonthlyIncome within the rank error', () => {
    for (const name of ['RevolvingUtilizationOfUnsecuredLines', 'DebtRatio', 'MonthlyIncome']) {
      const j = col(name);
      const values = sorted(j);
      const s = search.sketches[j]!;
      expect(s.count).toBe(values.length);
      for (let q = 1; q < 100; q++) {
        const target = (q / 100) * values.length;
        const cut = quantileOf(s, target);
        const rank = rankOf(values, cut);
        // The cut holds at least the target rank, and at most the target plus one cell's rows (or the cut's value).
        expect(rank, `${name} p${q}`).toBeGreaterThanOrEqual(target);
        const atValue = rank - rankOf(values, Math.fround(cut) - Math.abs(cut) * 1e-7 - 1e-30);
        expect(rank - target, `${name} p${q}`).toBeLessThanOrEqual(QUANTILE_RANK_ERROR * values.length + atValue);
      }
    }
  });

  it('gives RevolvingUtilization 20 fine bins of about 5% each (the old mean ± 5 sd grid put 99% in one cell)', () => {
    const j = col('RevolvingUtilizationOfUnsecuredLines');
    const values = sorted(j);
    const edges = fineEdges(search.sketches[j]!, 20);
    expect(edges.length).toBe(19);
    let last = 0;
    for (const e of edges) {
      const share = (rankOf(values, e) - last) / values.length;
      expect(share).toBeGreaterThan(0.05 - 2 * QUANTILE_RANK_ERROR);
      // A bin may exceed its 5% by a point mass (e.g. exactly 0) but by no more.
      last = rankOf(values, e);
    }
    expect(edges[0]).toBe(0); // 7% of the rows owe exactly 0: the first cut is at the value
  });

  it('cuts the zero-inflated counts at their values: 0, 1, 2, … while rows remain', () => {
    for (const name of ['NumberOfTime60-89DaysPastDueNotWorse', 'NumberOfTimes90DaysLate', 'NumberOfTime30-59DaysPastDueNotWorse']) {
      const j = col(name);
      const edges = fineEdges(search.sketches[j]!, 20);
      expect(edges.slice(0, 3), name).toEqual([0, 1, 2]);
      expect(
        edges.every((e) => Number.isInteger(e)),
        `${name}: ${edges.join(', ')}`,
      ).toBe(true);
    }
  });

  it('winsorises at the 0.5% and 99.5% quantiles within the rank error', () => {
    for (const name of ['RevolvingUtilizationOfUnsecuredLines', 'DebtRatio', 'age']) {
      const j = col(name);
      const values = sorted(j);
      const w = winsorised(search.sketches[j]!, 0.005);
      const low = rankOf(values, w.low) / values.length;
      const high = rankOf(values, w.high) / values.length;
      expect(low, name).toBeGreaterThanOrEqual(0.005);
      expect(high, name).toBeGreaterThanOrEqual(0.995);
      expect(high, name).toBeLessThanOrEqual(0.995 + QUANTILE_RANK_ERROR + 0.002);
      // The clipped mean from the sketch is the exact clipped mean up to the cells' widths.
      const exact = values.reduce((a, v) => a + Math.min(w.high, Math.max(w.low, v)), 0) / values.length;
      expect(Math.abs(w.mean - exact) / (w.sd || 1), name).toBeLessThan(0.02);
    }
  });
});
