/**
 * Which round's model a horizontal job publishes (`training.model_selection`): the coordinator, its resumption, the
 * auditor's replay and the central baselines all call selectRound on the recorded validation AUCs.
 */
import { describe, expect, it } from 'vitest';
import { MIN_AUC_GAIN, selectRound } from '../src/fl/fedavg.js';
import { TrainingSpec } from '../src/config/schemas.js';

const rounds = (...aucs: (number | null)[]) => aucs.map((validationAuc, i) => ({ round: i + 1, validationAuc }));

describe('model selection', () => {
  it('publishes the round with the best validation AUC by default, the last round under last_round', () => {
    expect(TrainingSpec.parse({ rounds: 5 }).model_selection).toBe('best_validation_auc');
    const history = rounds(0.71, 0.74, 0.73, 0.72);
    expect(selectRound(history, 'best_validation_auc')).toBe(2);
    expect(selectRound(history, 'last_round')).toBe(4);
  });

  it('keeps the earlier round on a near tie: a later one must gain more than MIN_AUC_GAIN', () => {
    expect(selectRound(rounds(0.75, 0.75 + MIN_AUC_GAIN / 2, 0.7), 'best_validation_auc')).toBe(1);
    expect(selectRound(rounds(0.75, 0.75 + 2 * MIN_AUC_GAIN, 0.7), 'best_validation_auc')).toBe(2);
  });

  it('skips rounds without a validation AUC, and publishes the last round when none has one', () => {
    expect(selectRound(rounds(null, 0.6, null, 0.65, null), 'best_validation_auc')).toBe(4);
    expect(selectRound(rounds(null, null, null), 'best_validation_auc')).toBe(3);
    expect(selectRound(rounds(Number.NaN, 0.6), 'best_validation_auc')).toBe(2);
    expect(selectRound([], 'best_validation_auc')).toBe(0);
  });

  it('refuses an unknown rule, naming the choices', () => {
    expect(() => TrainingSpec.parse({ rounds: 5, model_selection: 'best_loss' })).toThrow(/best_validation_auc|last_round/);
  });
});
