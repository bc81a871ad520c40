/**
 * Fine and coarse binning, WOE and IV, on the UCI "default of credit card clients" data (Taiwan 2005, 30,000 cards,
 * 22% default) and on small cases whose answers are known by hand.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { applyMerge, binAssignments, binCount, binCounts, binIndex, mergeBins, mergeCounts, quantileEdges, type BinCounts, type MergeMethod } from '../src/credit/binning.js';
import { woeIv, woeOf } from '../src/credit/woe.js';
import { Rng } from '../src/random.js';

const UCI = new URL('../../shared/datasets/uci_default_credit/UCI_Credit_Card.csv', import.meta.url);

function loadUci(): { columns: Record<string, Float64Array>; y: Float64Array } {
  const rows = parse(readFileSync(UCI, 'utf8'), { columns: true, skip_empty_lines: true }) as Record<string, string>[];
  const columns: Record<string, Float64Array> = {};
  for (const name of Object.keys(rows[0]!)) columns[name] = Float64Array.from(rows, (r) => Number(r[name]));
  return { columns, y: columns['default.payment.next.month']! };
}

const { columns: uci, y } = loadUci();
const N = y.length;

/** A copy of a column with every 33rd row missing, so that the missing bin has rows of both classes. */
function withMissing(values: Float64Array): Float64Array {
  return values.map((v, i) => (i % 33 === 5 ? Number.NaN : v));
}

const sum = (xs: readonly number[]) => xs.reduce((s, x) => s + x, 0);

describe('bin layout', () => {
  it('binIndex: x ≤ edge goes left, above the last edge is the last numeric bin, NaN is the missing bin', () => {
    const edges = [1.5, 3.5];
    expect(binCount(edges)).toBe(4);
    expect([-Infinity, 1, 1.5, 1.6, 3.5, 3.6, Infinity, Number.NaN].map((x) => binIndex(x, edges))).toEqual([0, 0, 0, 1, 1, 2, 2, 3]);
    expect(binIndex(7, [])).toBe(0);
    expect(binIndex(Number.NaN, [])).toBe(1);
    expect(Array.from(binAssignments([1, 2, Number.NaN, 9], edges))).toEqual([0, 1, 3, 2]);
  });

  it('binCounts rejects labels other than 0 and 1 and edges that do not increase', () => {
    expect(() => binCounts([1, 2], [0, 2], [1.5])).toThrow(/labels must be 0/);
    expect(() => binCounts([1, 2], [0, 1], [2, 1])).toThrow(/strictly increasing/);
  });
});

describe('quantile bins on UCI', () => {
  it('LIMIT_BAL in 10 bins: every bin holds between 5% and 20% of the cards', () => {
    const edges = quantileEdges(uci.LIMIT_BAL!, 10);
    expect(edges.length).toBeGreaterThanOrEqual(7);
    expect(edges.length).toBeLessThanOrEqual(9);
    const { totals } = binCounts(uci.LIMIT_BAL!, y, edges);
    expect(totals[totals.length - 1]).toBe(0); // no missing values
    for (const t of totals.slice(0, -1)) {
      expect(t / N).toBeGreaterThanOrEqual(0.05);
      expect(t / N).toBeLessThanOrEqual(0.2);
    }
  });

  it('SEX and EDUCATION get one bin per code, and no edge equals a value in the data', () => {
    expect(quantileEdges(uci.SEX!, 10)).toEqual([1.5]);
    const education = quantileEdges(uci.EDUCATION!, 10);
    const codes = [...new Set(uci.EDUCATION!)].sort((a, b) => a - b);
    expect(education).toHaveLength(codes.length - 1);
    codes.forEach((code, k) => expect(binIndex(code, education)).toBe(k));
    for (const column of ['LIMIT_BAL', 'AGE', 'BILL_AMT1', 'PAY_AMT1', 'PAY_0']) {
      const present = new Set(uci[column]!);
      for (const edge of quantileEdges(uci[column]!, 50)) expect(present.has(edge)).toBe(false);
    }
  });

  it('a mass point gets a bin of its own and the other values still their quantiles: PAY_AMT1 is 0 for 17% of cards', () => {
    const edges = quantileEdges(uci.PAY_AMT1!, 20);
    const { totals } = binCounts(uci.PAY_AMT1!, y, edges);
    const zeros = uci.PAY_AMT1!.filter((v) => v === 0).length;
    expect(totals[0]).toBe(zeros);
    expect(edges.length).toBeLessThanOrEqual(19);
    // The other 83% in about 19 bins of about equal size (ties at round amounts such as 2000 make some larger).
    for (const t of totals.slice(1, -1)) {
      expect(t).toBeGreaterThan(0);
      expect(t / (N - zeros)).toBeLessThan(0.12);
    }
  });

  it('edges survive float32 storage and decimal printing of the data', () => {
    const values = Float64Array.from({ length: 2000 }, (_, i) => ((i * 7919) % 1000) / 10); // 0.0, 0.1, … 99.9
    const edges = quantileEdges(values, 10);
    const asFloat64 = binAssignments(values, edges);
    expect(Array.from(binAssignments(Float32Array.from(values), edges))).toEqual(Array.from(asFloat64));
    const reprinted = Array.from(values, (v) => Number(v.toFixed(1)));
    expect(Array.from(binAssignments(reprinted, edges))).toEqual(Array.from(asFloat64));
  });

  it('one million values: exact equal-frequency bins, deterministically', () => {
    const rng = new Rng(11);
    const values = Float64Array.from({ length: 1_000_000 }, () => rng.lognormal(8, 1.5));
    values[17] = Number.NaN;
    const edges = quantileEdges(values, 20);
    expect(quantileEdges(values, 20)).toEqual(edges);
    const totals = new Array<number>(binCount(edges)).fill(0);
    for (const b of binAssignments(values, edges)) totals[b]!++;
    expect(totals[totals.length - 1]).toBe(1);
    for (const t of totals.slice(0, -1)) expect(Math.abs(t - 50_000)).toBeLessThanOrEqual(1);
  });
});

describe('WOE and IV', () => {
  it('hand case: WOE = ln(good share / bad share), the 0.5 adjustment for a single-class bin, 0 for an empty bin', () => {
    // Bins: 30 goods + 10 bads, 50 goods + 0 bads, nothing, 20 goods + 40 bads. Totals 100 goods, 50 bads.
    const r = woeIv({ events: [10, 0, 0, 40], totals: [40, 50, 0, 60] });
    expect(r.woe[0]).toBeCloseTo(Math.log(0.3 / 0.2), 12);
    expect(r.woe[1]).toBeCloseTo(Math.log(50.5 / 100 / (0.5 / 50)), 12);
    expect(r.woe[2]).toBe(0);
    expect(r.ivByBin[2]).toBe(0);
    expect(r.woe[3]).toBeCloseTo(Math.log(0.2 / 0.8), 12);
    expect(r.ivByBin[0]).toBeCloseTo((0.3 - 0.2) * Math.log(0.3 / 0.2), 12);
    expect(r.ivByBin[1]).toBeCloseTo((0.505 - 0.01) * Math.log(0.505 / 0.01), 12);
    expect(r.iv).toBeCloseTo(sum(r.ivByBin), 12);
    expect(() => woeIv({ events: [0, 0], totals: [5, 3] })).toThrow(/both classes/);
  });

  it('PAY_0 (repayment status last month) is by far the strongest feature, SEX nearly useless', () => {
    const iv = (column: string) => woeIv(binCounts(uci[column]!, y, quantileEdges(uci[column]!, 20))).iv;
    const pay0 = iv('PAY_0');
    expect(pay0).toBeGreaterThan(0.5);
    expect(iv('SEX')).toBeLessThan(0.05);
    for (const other of ['LIMIT_BAL', 'AGE', 'EDUCATION', 'BILL_AMT1', 'PAY_AMT1']) expect(iv(other)).toBeLessThan(pay0 / 2);
  });

  it('WOE has the scorecard sign: paid on time is safer than average, two months late much riskier', () => {
    const edges = quantileEdges(uci.PAY_0!, 20);
    const { woe } = woeIv(binCounts(uci.PAY_0!, y, edges));
    expect(woe[binIndex(-1, edges)]!).toBeGreaterThan(0);
    expect(woe[binIndex(2, edges)]!).toBeLessThan(-1);
    const transformed = [-1, 2, Number.NaN].map((v) => woeOf(v, edges, woe));
    expect(Array.from(transformed)).toEqual([woe[binIndex(-1, edges)], woe[binIndex(2, edges)], woe[woe.length - 1]]);
  });
});

describe('merging fine bins into coarse ones', () => {
  const cases: [string, MergeMethod][] = [
    ['PAY_0', 'iv'],
    ['PAY_0', 'chi2'],
    ['LIMIT_BAL', 'iv'],
    ['LIMIT_BAL', 'chi2'],
    ['BILL_AMT1', 'iv'],
    ['AGE', 'chi2'],
  ];
  for (const [column, method] of cases) {
    it(`${column} by ${method}: 50 fine bins to at most 6, each ≥ 5% of rows with both classes, missing bin kept apart`, () => {
      const values = withMissing(uci[column]!);
      const fine = quantileEdges(values, 50);
      const fineCounts = binCounts(values, y, fine);
      const plan = mergeBins(fine, fineCounts, { method, maxBins: 6, minBinShare: 0.05 });

      expect(plan.groups.length).toBe(plan.edges.length + 1);
      expect(plan.groups.length).toBeLessThanOrEqual(6);
      expect(plan.groups.flat()).toEqual(Array.from({ length: fine.length + 1 }, (_, i) => i));
      for (const edge of plan.edges) expect(fine).toContain(edge);

      // The owner of the feature applies the plan to its own edges; the label holder merges its counts.
      expect(applyMerge(fine, plan.groups)).toEqual(plan.edges);
      const coarse = mergeCounts(fineCounts, plan.groups);
      expect(coarse).toEqual(binCounts(values, y, plan.edges));

      const missing = coarse.totals.length - 1;
      expect(coarse.totals[missing]).toBe(fineCounts.totals[fineCounts.totals.length - 1]);
      expect(coarse.totals[missing]).toBeGreaterThan(800);
      for (let b = 0; b < missing; b++) {
        expect(coarse.totals[b]!).toBeGreaterThanOrEqual(0.05 * N);
        expect(coarse.events[b]!).toBeGreaterThan(0);
        expect(coarse.events[b]!).toBeLessThan(coarse.totals[b]!);
      }
      expect(woeIv(coarse).iv).toBeLessThanOrEqual(woeIv(fineCounts).iv + 1e-12);
    });
  }

  it('merging PAY_0 keeps at least 90% of its information value, by either criterion', () => {
    const fine = quantileEdges(uci.PAY_0!, 50);
    const counts = binCounts(uci.PAY_0!, y, fine);
    const fineIv = woeIv(counts).iv;
    for (const method of ['iv', 'chi2'] as const) {
      const plan = mergeBins(fine, counts, { method, maxBins: 6, minBinShare: 0.05 });
      expect(woeIv(mergeCounts(counts, plan.groups)).iv).toBeGreaterThanOrEqual(0.9 * fineIv);
    }
  });

  it('hand case: a bin without defaults joins the neighbour with the more similar default rate', () => {
    // Bin 1 (no defaults) sits between bin 0 (5% default) and bin 2 (50% default): it must join bin 0.
    const counts: BinCounts = { events: [5, 0, 50, 0], totals: [100, 20, 100, 0] };
    for (const method of ['iv', 'chi2'] as const) {
      const plan = mergeBins([1.5, 2.5], counts, { method, maxBins: 10, minBinShare: 0 });
      expect(plan.groups).toEqual([[0, 1], [2]]);
      expect(plan.edges).toEqual([2.5]);
    }
  });

  it('rejects a plan that is not contiguous or does not cover every fine bin', () => {
    expect(() =>
      applyMerge(
        [1, 2, 3],
        [
          [0, 2],
          [1, 3],
        ],
      ),
    ).toThrow(/contiguous/);
    expect(() => applyMerge([1, 2, 3], [[0, 1], [2]])).toThrow(/cover 3/);
    expect(() => mergeCounts({ events: [0, 0, 0], totals: [1, 1, 1] }, [[0], [1], [2]])).toThrow(/cover 3/);
  });
});
