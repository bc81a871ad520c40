/**
 * The PDs of a vertical LR job at a high learning rate (issue: a published test AUC of 0.5 beside a validation AUC of
 * 0.72): the kept epoch's scores are large and badly centred, and the Platt calibration fitted on them must still
 * converge, keep the scores' ranking and give PDs strictly inside (0, 1); a calibration that cannot be fitted is
 * reported, never used silently.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { JobSpec, type VerticalJobSpec } from '../src/config/schemas.js';
import { CkksEngine } from '../src/he/engine.js';
import { VERTICAL_CKKS_PARAMS } from '../src/he/params.js';
import { loadDataset, type LoadedDataset } from '../src/data/csv.js';
import { evaluateCredit } from '../src/evaluation.js';
import { auc, ks } from '../src/metrics.js';
import { plaintextCipher } from '../src/vertical/cipher.js';
import { fitCalibration } from '../src/vertical/party-model.js';
import { plaintextOpener } from '../src/vertical/lr/opener.js';
import { checkPartCalibration } from '../participant/vertical-score.js';
import { runMemoryVerticalJob, uciHeteroSlice, UCI_GUEST_FEATURES, UCI_HOST_FEATURES, verticalJob } from './helpers/vertical.js';

describe('a vertical LR job at a high learning rate (first 4,000 UCI enterprises, in the clear)', () => {
  const slice = uciHeteroSlice(4000);
  let guest: LoadedDataset;
  let host: LoadedDataset;
  let engine: CkksEngine;
  beforeAll(async () => {
    [guest, host] = await Promise.all([loadDataset(slice('guest')), loadDataset(slice('host'))]);
    engine = await CkksEngine.create(VERTICAL_CKKS_PARAMS);
  });
  afterAll(() => {
    engine?.dispose();
    rmSync(slice.dir, { recursive: true, force: true });
  });

  it('publishes the test AUC and KS of its scores, with PDs strictly inside (0, 1) that rank as the scores do', async () => {
    const spec = JobSpec.parse(verticalJob({ training: { learning_rate: 3, epochs: 10 }, encryption: { scheme: 'plaintext' } })) as VerticalJobSpec;
    const run = await runMemoryVerticalJob(
      spec,
      [
        { org: 'bank', data: guest, features: UCI_GUEST_FEATURES, engine },
        { org: 'tax-bureau', data: host, features: UCI_HOST_FEATURES, engine },
      ],
      { cipher: () => plaintextCipher, opener: plaintextOpener },
    );
    const rows = run.kept
      .get('bank')!
      .testScores!.trim()
      .split('\n')
      .slice(1)
      .map((line) => line.split(',').map(Number));
    const y = rows.map((r) => r[1]!);
    const score = rows.map((r) => r[2]!);
    const pd = rows.map((r) => r[3]!);
    const { a } = run.kept.get('bank')!.modelPart!.calibration!;
    const rankAuc = auc(y, score);
    console.log(
      `[high learning rate] kept epoch ${run.best}, calibration slope ${a.toPrecision(4)}, scores ${Math.min(...score).toFixed(2)}..${Math.max(...score).toFixed(2)}, PDs ${Math.min(...pd)}..${Math.max(...pd)}, test AUC ${Number(run.evaluation.test_auc).toFixed(4)} (scores ${rankAuc.toFixed(4)})`,
    );
    // The scores rank defaults (the job learnt something), and the published figures are theirs.
    expect(rankAuc).toBeGreaterThan(0.6);
    expect(a).toBeGreaterThan(0);
    expect(Math.abs(Number(run.evaluation.test_auc) - rankAuc)).toBeLessThan(1e-9);
    expect(Math.abs(Number(run.evaluation.test_ks) - ks(y, score))).toBeLessThan(1e-9);
    for (const p of pd) {
      expect(p).toBeGreaterThan(0);
      expect(p).toBeLessThan(1);
    }
    // The PDs as written rank the held-out enterprises as the scores do.
    expect(Math.abs(auc(y, pd) - rankAuc)).toBeLessThan(1e-3);
    // A fit that converged on ranking validation scores: no warning in the finalize report.
    expect(run.reports.find((r) => r.name === 'finalize')!.reports.get('bank')!.calibration_warning).toBeUndefined();
  }, 300_000);
});

describe('the Platt calibration of a vertical job', () => {
  const scores = (n: number, shift: number, spread: number) => Float64Array.from({ length: n }, (_, i) => shift + spread * Math.sin(i * 12.9898) * 3);
  const labelsOf = (z: Float64Array, slope: number, offset: number) => Float64Array.from(z, (s, i) => ((Math.sin(i * 78.233) + 1) / 2 < 1 / (1 + Math.exp(-(slope * s + offset))) ? 1 : 0));

  it('converges from scores far from the optimum (large and shifted, as a high learning rate leaves them) to the maximum-likelihood fit', () => {
    const z = scores(4000, 12, 4);
    const y = labelsOf(z, 0.3, -4.5);
    const { calibration, warning } = fitCalibration(z, y);
    expect(warning).toBeUndefined();
    expect(calibration.a).toBeGreaterThan(0.15);
    expect(calibration.a).toBeLessThan(0.6);
    // At the maximum: the mean PD equals the default rate, and the score-weighted residuals vanish.
    const p = Array.from(z, (s) => 1 / (1 + Math.exp(-(calibration.a * s + calibration.b))));
    const rate = y.reduce((s, v) => s + v, 0) / y.length;
    expect(Math.abs(p.reduce((s, v) => s + v, 0) / p.length - rate)).toBeLessThan(1e-9);
    expect(Math.abs(p.reduce((s, v, i) => s + (v - y[i]!) * z[i]!, 0) / p.length)).toBeLessThan(1e-8);
  });

  it('gives the same fit whatever the scale of the scores', () => {
    const z = scores(2000, -1, 1);
    const y = labelsOf(z, 1.3, -0.8);
    const unit = fitCalibration(z, y).calibration;
    for (const k of [1e-4, 1e4]) {
      const { calibration, warning } = fitCalibration(
        z.map((s) => s * k),
        y,
      );
      expect(warning).toBeUndefined();
      expect(calibration.a * k).toBeCloseTo(unit.a, 8);
      expect(calibration.b).toBeCloseTo(unit.b, 8);
    }
  });

  it('regularises the fit of validation scores that separate the classes, and says so', () => {
    const z = Float64Array.from({ length: 200 }, (_, i) => i - 100);
    const y = Float64Array.from(z, (s) => (s > 60 ? 1 : 0));
    const { calibration, warning } = fitCalibration(z, y);
    expect(warning).toMatch(/separate defaults from non-defaults/);
    expect(Number.isFinite(calibration.a) && calibration.a > 0).toBe(true);
    // Platt's prior keeps every PD of an ordinary score off 0 and 1.
    for (const s of z) {
      const p = 1 / (1 + Math.exp(-(calibration.a * s + calibration.b)));
      expect(p).toBeGreaterThan(0);
      expect(p).toBeLessThan(1);
    }
  });

  it("keeps the model's own log-odds, with a warning, when the validation scores rank defaults backwards or hold one class", () => {
    const z = scores(1000, 0, 1);
    const backwards = fitCalibration(z, labelsOf(z, -1, -1));
    expect(backwards.calibration).toEqual({ a: 1, b: 0 });
    expect(backwards.warning).toMatch(/do not rank defaults/);
    const oneClass = fitCalibration(z, new Float64Array(z.length));
    expect(oneClass.calibration).toEqual({ a: 1, b: 0 });
    expect(oneClass.warning).toMatch(/no default/);
  });

  it('evaluates saturated PDs on their log-odds: ties of PDs rounded to 1 do not lose the ranking', () => {
    const logOdds = [40, 41, 42, 43, -1, 0];
    const y = [0, 1, 0, 1, 0, 1];
    const pd = logOdds.map((t) => 1 / (1 + Math.exp(-t)));
    expect(pd.slice(0, 4).every((p) => p === 1)).toBe(true);
    const e = evaluateCredit(y, pd, 0.5, logOdds);
    expect(e.auc).toBeCloseTo(auc(y, logOdds), 12);
    expect(e.auc).not.toBeCloseTo(auc(y, pd), 3);
  });
});

describe('fedcredit score with a model part whose calibration diverged', () => {
  const part = (calibration?: { a: number; b: number }) => ({ format: 'fedcredit-vertical-part/1', role: 'guest', ...(calibration ? { calibration } : {}) });

  it('refuses it before scoring, naming the calibration and the fix', () => {
    // What the fit before the line search kept at learning_rate 3 on 4,000 UCI rows.
    for (const bad of [part({ a: -411409.09, b: -15755.5 }), part({ a: Number.NaN, b: 0 }), part()]) {
      expect(() => checkPartCalibration(bad, 'job-20261207-0000abcd', 'bank')).toThrow(
        expect.objectContaining({ code: 'FC_JOB_INVALID', message: expect.stringMatching(/job job-20261207-0000abcd's model part at bank holds the calibration .*would be reversed or all 0 or 1/) }),
      );
    }
    expect(() => checkPartCalibration(part({ a: 0.47, b: -2.2 }), 'job-20261207-0000abcd', 'bank')).not.toThrow();
    // A host's part has no calibration.
    expect(() => checkPartCalibration({ format: 'fedcredit-vertical-part/1', role: 'host' }, 'job-20261207-0000abcd', 'tax-bureau')).not.toThrow();
  });
});
