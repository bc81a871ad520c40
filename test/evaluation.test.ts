/** The credit evaluation figures, on cases whose answers are known by hand, and the validation AUC's standard error on real data. */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import {
  aucStandardError,
  calibrationBins,
  confusionAt,
  evaluateCredit,
  liftTable,
  populationStabilityIndex,
  validationAucText,
  validationSizeWarning,
  VALIDATION_AUC_SE_BOUND,
} from '../src/evaluation.js';
import { auc } from '../src/metrics.js';
import { Rng, seededShuffle } from '../src/random.js';

const DATASETS = new URL('../../shared/datasets/', import.meta.url);
const readCsv = (path: string) => parse(readFileSync(new URL(path, DATASETS), 'utf8'), { columns: true, skip_empty_lines: true }) as Record<string, string>[];

describe('credit evaluation', () => {
  it('lift and gain by decile: a perfect ranking puts every default in the top deciles', () => {
    // 100 rows, 10 defaults with the 10 highest PDs.
    const pd = Array.from({ length: 100 }, (_, i) => i / 100);
    const y = pd.map((p) => (p >= 0.9 ? 1 : 0));
    const t = liftTable(y, pd);
    expect(t).toHaveLength(10);
    expect(t[0]).toMatchObject({ decile: 1, count: 10, defaults: 10, defaultRate: 1, lift: 10, cumulativeGain: 1 });
    expect(t[9]).toMatchObject({ defaults: 0, lift: 0, cumulativeGain: 1 });
  });

  it('confusion at a cut-off counts declines and approvals', () => {
    const c = confusionAt([1, 1, 0, 0, 0], [0.9, 0.2, 0.8, 0.1, 0.05], 0.5);
    expect(c).toMatchObject({ truePositives: 1, falseNegatives: 1, falsePositives: 1, trueNegatives: 2 });
    expect(c.approvalRate).toBeCloseTo(3 / 5);
    expect(c.approvedDefaultRate).toBeCloseTo(1 / 3);
  });

  it('calibration by bin: well-calibrated PDs match the observed rate within sampling error', () => {
    const rng = new Rng(3);
    const pd = Array.from({ length: 20_000 }, () => rng.next() * 0.4);
    const y = pd.map((p) => (rng.next() < p ? 1 : 0));
    for (const bin of calibrationBins(y, pd)) expect(Math.abs(bin.meanPd - bin.observedRate)).toBeLessThan(0.02);
  });

  it('PSI is ~0 for the same population and large for a shifted one', () => {
    const rng = new Rng(5);
    const base = Array.from({ length: 10_000 }, () => rng.normal());
    const same = Array.from({ length: 10_000 }, () => rng.normal());
    const shifted = Array.from({ length: 10_000 }, () => rng.normal() + 0.5);
    expect(populationStabilityIndex(base, same)).toBeLessThan(0.01);
    expect(populationStabilityIndex(base, shifted)).toBeGreaterThan(0.2);
  });

  it('evaluateCredit: Gini is 2·AUC − 1', () => {
    const e = evaluateCredit([0, 1, 0, 1], [0.1, 0.9, 0.4, 0.3], 0.5);
    expect(e.auc).toBeCloseTo(0.75);
    expect(e.gini).toBeCloseTo(0.5);
    expect(e.deciles.reduce((s, d) => s + d.count, 0)).toBe(4);
  });
});

describe('a validation set too small to choose a model', () => {
  // German credit (1,000 loans, 30% bad) scored by its checking account status and duration, a score of AUC about 0.75.
  const german = readCsv('german_credit/german_credit.csv');
  const risk: Record<string, number> = { A11: 3, A12: 2, A13: 1, A14: 0 };
  const y = german.map((r): number => (r.Class === '2' ? 1 : 0));
  const score = german.map((r) => risk[r.CheckingAccountStatus!]! + Number(r.Duration) / 24);
  const sample = (rows: ArrayLike<number>) => {
    const ys = Array.from(rows, (i) => y[i]!);
    return {
      rows: ys.length,
      defaults: ys.reduce((n, v) => n + v, 0),
      auc: auc(
        ys,
        Array.from(rows, (i) => score[i]!),
      ),
    };
  };

  it("Hanley–McNeil's standard error is the spread of the AUC over 62-row validation sets drawn from German credit", () => {
    const rng = new Rng(62);
    const aucs = Array.from({ length: 2000 }, () => sample(seededShuffle(german.length, rng).subarray(0, 62)).auc);
    const mean = aucs.reduce((s, a) => s + a, 0) / aucs.length;
    const sd = Math.sqrt(aucs.reduce((s, a) => s + (a - mean) ** 2, 0) / (aucs.length - 1));
    const whole = sample(german.map((_, i) => i));
    // 62 rows of 1,000 drawn without replacement: the finite-population factor √(1 − 62/1000).
    const se = aucStandardError(whole.auc, 62 * 0.3, 62 * 0.7) * Math.sqrt(1 - 62 / 1000);
    console.log(`German credit, 62-row validation sets: AUC ${mean.toFixed(3)} ± ${sd.toFixed(4)} over 2,000 draws; Hanley–McNeil ${se.toFixed(4)}`);
    expect(se / sd).toBeGreaterThan(0.9);
    expect(se / sd).toBeLessThan(1.1);
  });

  it('a published validation AUC tells the standard error of its rows apart from the bound of its PD histogram', () => {
    // bank-c of Give Me Some Credit alone (3,000 rows, 20% for validation): the histogram's bound is 15 times smaller
    // than the rows' own error, and was shown as "AUC 0.8312 (±0.0025)" beside a warning of a 0.037 standard error.
    const text = validationAucText({ auc: 0.8312, aucMaxError: 0.0025, n: 618, defaults: 48 });
    expect(text).toBe(`AUC 0.8312 (standard error ${aucStandardError(0.8312, 48, 570).toFixed(3)}; read from the PD histogram to within ±0.0025)`);
    expect(text).toContain('standard error 0.03');
    expect(validationAucText({ auc: 0.5, aucMaxError: 0, n: 10, defaults: 0 })).toBe('AUC 0.5000 (read from the PD histogram to within ±0.0000)');
  });

  it('62 validation rows of German credit get a warning naming rows, defaults, the error and the fix; UCI-sized ones do not', () => {
    const small = sample(seededShuffle(german.length, new Rng(5)).subarray(0, 62));
    const se = aucStandardError(small.auc, small.defaults, small.rows - small.defaults);
    const warning = validationSizeWarning(small, 'the epoch to keep', 'raise training.validation_fraction');
    expect(warning).toBe(
      `the validation set is too small to choose the epoch to keep: on 62 validation rows, ${small.defaults} of them defaults, the validation AUC has a standard error of ${se.toFixed(3)} (Hanley–McNeil), above ${VALIDATION_AUC_SE_BOUND} and more than epochs or rounds usually differ by; raise training.validation_fraction`,
    );
    expect(se).toBeGreaterThan(0.05);
    // UCI default of credit card clients: a vertical job's validation rows (10% of 30,000), and a horizontal job's
    // (20% of three participants' 8,000).
    const uci = readCsv('uci_default_credit/UCI_Credit_Card.csv');
    const set = (rows: Record<string, string>[]) => {
      const ys = rows.map((r) => Number(r['default.payment.next.month']));
      return {
        rows: rows.length,
        defaults: ys.reduce((n, v) => n + v, 0),
        auc: auc(
          ys,
          rows.map((r) => Number(r.PAY_0)),
        ),
      };
    };
    for (const rows of [3000, 4800]) {
      const v = set(uci.slice(0, rows));
      expect(aucStandardError(v.auc, v.defaults, v.rows - v.defaults), `${rows} rows`).toBeLessThan(VALIDATION_AUC_SE_BOUND);
      expect(validationSizeWarning(v, 'the epoch to keep', '')).toBeUndefined();
    }
    // One class, or no AUC: nothing to say.
    expect(validationSizeWarning({ rows: 62, defaults: 0, auc: Number.NaN }, 'the epoch to keep', '')).toBeUndefined();
    // The bound's own example: 1,000 rows at a 22% default rate and an AUC of 0.77 stay under it, 800 do not.
    expect(aucStandardError(0.77, 220, 780)).toBeLessThan(VALIDATION_AUC_SE_BOUND);
    expect(aucStandardError(0.77, 176, 624)).toBeGreaterThan(VALIDATION_AUC_SE_BOUND);
  });
});
