/** Step reports: checked once where the coordinator receives them, and recorded exactly as the party sent them. */
import { describe, expect, it } from 'vitest';
import { SCORING_STEP_REPORTS, TRAINING_STEP_REPORTS, stepReport } from '../src/vertical/step-reports.js';

describe('step reports', () => {
  it('returns a valid report itself, extra fields and key order kept (the ledger and the scoring summary record it as sent)', () => {
    const sent = { test: 20, intersection: 100, id_report: '100 valid ids', ids: 120, train: 70, validation: 10, extra: { a: 1 } };
    const report = stepReport(TRAINING_STEP_REPORTS, 'psi', JSON.parse(JSON.stringify(sent)), 'bank');
    expect(JSON.stringify(report)).toBe(JSON.stringify(sent));
    expect(report.intersection).toBe(100);
    // A figure computed on no rows arrives as null (JSON has no NaN).
    expect(stepReport(TRAINING_STEP_REPORTS, 'validate', { epoch: 3, validation_auc: null }, 'bank').epoch).toBe(3);
    expect(stepReport(TRAINING_STEP_REPORTS, 'batch', {}, 'tax')).toEqual({});
  });

  it('refuses a report that breaks the protocol, naming the party, the step and the field', () => {
    expect(() => stepReport(TRAINING_STEP_REPORTS, 'bin', { model_features: -1 }, 'tax')).toThrow(/tax's bin report does not follow the protocol \(model_features: /);
    expect(() => stepReport(TRAINING_STEP_REPORTS, 'finalize', { epoch: 4, part_sha256: 'not a digest' }, 'power')).toThrow(/power's finalize report .*part_sha256/);
    expect(() => stepReport(TRAINING_STEP_REPORTS, 'psi', 'nonsense', 'bank')).toThrow(/bank's psi report does not follow the protocol/);
  });

  it('refuses a step the job does not have', () => {
    expect(() => stepReport(SCORING_STEP_REPORTS, 'bin' as 'psi', { model_features: 1 }, 'tax')).toThrow(/tax reported a bin step, which this job does not have/);
  });
});
