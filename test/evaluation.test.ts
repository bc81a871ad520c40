/** The credit evaluation figures, on cases whose answers are known by hand. */
import { describe, expect, it } from 'vitest';
import { calibrationBins, confusionAt, evaluateCredit, liftTable, populationStabilityIndex } from '../src/evaluation.js';
import { Rng } from '../src/random.js';

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
