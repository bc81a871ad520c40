/**
 * A party's training state in a vertical LR job as plain data: its model's optimiser state (PartyModel.snapshot),
 * the best epoch so far, the weights of every epoch, the calibration and the validation curve. A step begins with a
 * snapshot (StepStart); a retried step restores it, so it computes exactly what the first attempt would have. The
 * participant saves it (Progress) to rejoin after a restart.
 */
import type { PartyModel } from '../party-model.js';

/** The best epoch so far by validation AUC, and the epochs since it. */
export interface Best {
  epoch: number;
  auc: number;
  stale: number;
}

export type ModelSnapshot = ReturnType<PartyModel['snapshot']>;

export interface TrainingState {
  best: Best;
  /** Each epoch's weights at its validation, for the epoch finally chosen. */
  epochWeights: Map<number, Float64Array>;
  /** Guest: probability of default = sigmoid(a · score + b), fitted on the validation rows of the chosen epoch. */
  calibration?: { a: number; b: number };
  /** Guest: why the calibration is not the maximum-likelihood fit, when it is not (fitCalibration). */
  calibrationWarning?: string;
  /** Guest: the validation AUC of each epoch. */
  validationCurve: { epoch: number; auc: number }[];
}

export const freshTrainingState = (): TrainingState => ({ best: { epoch: 0, auc: -1, stale: 0 }, epochWeights: new Map(), validationCurve: [] });

/** What a step's retry goes back to: the model and the best epoch (epoch weights and the curve are keyed by epoch). */
export interface StepStart {
  model?: ModelSnapshot;
  best: Best;
}

export function snapshot(model: PartyModel | undefined, state: TrainingState): StepStart {
  return { model: model?.snapshot(), best: { ...state.best } };
}

export function restore(start: StepStart, model: PartyModel | undefined, state: TrainingState): void {
  if (start.model) model?.restore(start.model);
  state.best = { ...start.best };
}

interface SavedSnapshot {
  weights: number[];
  m: number[];
  v: number[];
  t: number;
}

/** The state around the current step as a participant saves it (progress.json). */
export interface Progress {
  step: number;
  attempt: number;
  before: SavedSnapshot | null;
  bestBefore: Best;
  after: SavedSnapshot | null;
  bestAfter: Best | null;
  epochWeights: Record<string, number[]>;
  calibration: { a: number; b: number } | null;
  calibrationWarning?: string;
  validationCurve?: { epoch: number; auc: number }[];
}

const saved = (s: ModelSnapshot): SavedSnapshot => ({ weights: Array.from(s.weights), m: Array.from(s.m), v: Array.from(s.v), t: s.t });
const loaded = (s: SavedSnapshot): ModelSnapshot => ({ weights: Float64Array.from(s.weights), m: Float64Array.from(s.m), v: Float64Array.from(s.v), t: s.t });

/**
 * The state at the start of step `at` and, once it has run (`done`), after it: a node restarted mid-job re-runs
 * the step from the first, or goes on from the second if the federation moved on.
 */
export function progressOf(at: { step: number; attempt: number }, start: StepStart | undefined, model: PartyModel, state: TrainingState, done: boolean): Progress {
  return {
    step: at.step,
    attempt: at.attempt,
    before: start?.model ? saved(start.model) : null,
    bestBefore: { ...(start?.best ?? state.best) },
    after: done ? saved(model.snapshot()) : null,
    bestAfter: done ? { ...state.best } : null,
    epochWeights: Object.fromEntries([...state.epochWeights].map(([e, w]) => [e, Array.from(w)])),
    calibration: state.calibration ?? null,
    ...(state.calibrationWarning ? { calibrationWarning: state.calibrationWarning } : {}),
    validationCurve: state.validationCurve,
  };
}

/** Back to where a saved Progress left the party: its model and state as they stood; the step's start, for a retry. */
export function fromProgress(p: Progress, model: PartyModel, state: TrainingState): StepStart {
  const start: StepStart = { model: p.before ? loaded(p.before) : undefined, best: { ...p.bestBefore } };
  const now = p.after ?? p.before;
  if (now) model.restore(loaded(now));
  state.best = { ...(p.bestAfter ?? p.bestBefore) };
  for (const [e, w] of Object.entries(p.epochWeights)) state.epochWeights.set(Number(e), Float64Array.from(w));
  if (p.calibration) state.calibration = p.calibration;
  if (p.calibrationWarning) state.calibrationWarning = p.calibrationWarning;
  state.validationCurve = p.validationCurve ?? [];
  return start;
}
