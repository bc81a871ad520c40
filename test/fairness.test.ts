/**
 * Fairness by group and population stability, on the Statlog German Credit data (1,000 loans, 30% bad): a simple
 * logistic score, grouped by the personal-status column (A91 … A94: sex and marital status).
 */
import { readFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import { describe, expect, it } from 'vitest';
import { binAssignments, binCount, quantileEdges } from '../src/credit/binning.js';
import { fairnessByGroup, psiFromCounts, type FairnessReport } from '../src/evaluation.js';
import { auc, ks } from '../src/metrics.js';
import { fitLogistic } from '../src/model/newton-lr.js';

const GERMAN = new URL('../../shared/datasets/german_credit/german_credit.csv', import.meta.url);
const rows = parse(readFileSync(GERMAN, 'utf8'), { columns: true, skip_empty_lines: true }) as Record<string, string>[];
const labels = rows.map((r) => (r.Class === '2' ? 1 : 0)); // Class 1 = good, 2 = bad
const sex = rows.map((r) => r.Sex!);

/** PD from a logistic regression on four standardised application figures. */
function germanPd(): number[] {
  const columns = ['Duration', 'CreditAmount', 'Age', 'InstallmentRate'];
  const raw = columns.map((c) => rows.map((r) => (c === 'CreditAmount' ? Math.log(Number(r[c])) : Number(r[c]))));
  const std = raw.map((xs) => {
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    const sd = Math.sqrt(xs.reduce((s, x) => s + (x - mean) ** 2, 0) / xs.length);
    return xs.map((x) => (x - mean) / sd);
  });
  const x = Float64Array.from(rows.flatMap((_, i) => std.map((c) => c[i]!)));
  const fit = fitLogistic(x, labels, columns.length);
  return rows.map((_, i) => 1 / (1 + Math.exp(-fit.score(std.map((c) => c[i]!)))));
}

const pd = germanPd();

/** The report written out directly, without fairnessByGroup's code. */
function centralReport(cutoff: number, maxGap: number): FairnessReport {
  const names = [...new Set(sex)].sort();
  const groups = names.map((group) => {
    const idx = sex.flatMap((s, i) => (s === group ? [i] : []));
    const y = idx.map((i) => labels[i]!);
    const p = idx.map((i) => pd[i]!);
    const defaults = y.filter((v) => v === 1).length;
    const both = defaults > 0 && defaults < idx.length;
    return {
      group,
      n: idx.length,
      defaults,
      defaultRate: defaults / idx.length,
      approvalRate: p.filter((v) => v < cutoff).length / idx.length,
      auc: both ? auc(y, p) : null,
      ks: both ? ks(y, p) : null,
    };
  });
  const spread = (xs: number[]) => Math.max(...xs) - Math.min(...xs);
  const gaps = {
    defaultRate: spread(groups.map((g) => g.defaultRate)),
    approvalRate: spread(groups.map((g) => g.approvalRate)),
    auc: spread(groups.map((g) => g.auc!)),
    ks: spread(groups.map((g) => g.ks!)),
  };
  const flagged = (['defaultRate', 'approvalRate', 'auc', 'ks'] as const).filter((k) => gaps[k] > maxGap);
  return { column: 'Sex', cutoff, maxGap, groups, gaps, flagged };
}

describe('fairness by personal status on German credit', () => {
  it('the score is a real credit score: AUC well above chance', () => {
    expect(auc(labels, pd)).toBeGreaterThan(0.6);
  });

  it('per-group default rate, approval rate, AUC and KS equal a central computation exactly', () => {
    const report = fairnessByGroup('Sex', labels, pd, sex, 0.3, 0.05);
    expect(report.groups.map((g) => g.group)).toEqual(['A91', 'A92', 'A93', 'A94']);
    expect(report).toEqual(centralReport(0.3, 0.05));
    expect(report.groups.reduce((s, g) => s + g.n, 0)).toBe(rows.length);
    // Women (A92) default more often than single men (A93) in this data: the default-rate gap is real.
    const rate = Object.fromEntries(report.groups.map((g) => [g.group, g.defaultRate]));
    expect(rate.A92!).toBeGreaterThan(rate.A93!);
  });

  it('flags a gap above the tolerance and none when the tolerance is wide', () => {
    const strict = fairnessByGroup('Sex', labels, pd, sex, 0.3, 0.01);
    expect(strict.flagged).toContain('approvalRate');
    expect(strict.gaps.approvalRate).toBeGreaterThan(0.01);
    expect(fairnessByGroup('Sex', labels, pd, sex, 0.3, 1).flagged).toEqual([]);
  });

  it('a group with one class has no AUC or KS, and is left out of those gaps', () => {
    const groups = [...sex];
    const y = [...labels];
    // Make a small group of good loans only.
    for (let i = 0; i < 20; i++) {
      groups[i] = 'ZZ';
      y[i] = 0;
    }
    const report = fairnessByGroup('Sex', y, pd, groups, 0.3, 0.05);
    const zz = report.groups.find((g) => g.group === 'ZZ')!;
    expect(zz).toMatchObject({ n: 20, defaults: 0, defaultRate: 0, auc: null, ks: null });
    const defined = report.groups.filter((g) => g.auc !== null).map((g) => g.auc!);
    expect(report.gaps.auc).toBe(Math.max(...defined) - Math.min(...defined));
  });
});

describe('population stability from bin counts', () => {
  it('known value, identical distributions give 0, empty bins stay finite', () => {
    expect(psiFromCounts([50, 50], [25, 75])).toBeCloseTo(0.25 * Math.log(2) + 0.25 * Math.log(1.5), 12);
    expect(psiFromCounts([10, 20, 30], [10, 20, 30])).toBe(0);
    expect(psiFromCounts([10, 20, 30], [20, 40, 60])).toBe(0);
    expect(Number.isFinite(psiFromCounts([100, 0], [99, 1]))).toBe(true);
    expect(() => psiFromCounts([1, 2], [1, 2, 3])).toThrow(/same bins/);
  });

  it('loan durations a year longer than at development are a clear shift (PSI > 0.25); a resample is not', () => {
    const duration = rows.map((r) => Number(r.Duration));
    const edges = quantileEdges(duration, 10);
    const counts = (values: number[]) => {
      const out = new Array<number>(binCount(edges)).fill(0);
      for (const b of binAssignments(values, edges)) out[b]!++;
      return out;
    };
    const development = counts(duration);
    expect(psiFromCounts(development, counts(duration.filter((_, i) => i % 2 === 0)))).toBeLessThan(0.02);
    expect(psiFromCounts(development, counts(duration.map((d) => d + 12)))).toBeGreaterThan(0.25);
  });
});
