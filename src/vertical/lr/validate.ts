/**
 * The validation step of vertical LR: after each epoch the guest scores the validation rows jointly (its own partial
 * scores plus the secure sum of the hosts'), keeps the best epoch by AUC and says when to stop early. Every party
 * keeps the epoch's weights, for the epoch finally chosen.
 */
import { auc, ks } from '../../metrics.js';
import type { PartyModel } from '../party-model.js';
import type { PeerPort } from './port.js';
import type { TrainingState } from './state.js';

/** The guest's full scores of `rows`: its own part plus the secure sum of the hosts' shares. */
export async function guestJointScores(port: PeerPort, model: PartyModel, rows: Uint32Array): Promise<Float64Array> {
  const own = model.scores(rows);
  const hostSum = await port.receiveScoreSum(own.length);
  return own.map((s, i) => s + hostSum[i]!);
}

/** A host's share of the joint scores of `rows`, for `purpose` (each purpose masks with its own pads). */
export async function hostJointScores(port: PeerPort, model: PartyModel, rows: Uint32Array, purpose: string): Promise<void> {
  await port.sendScoreShare(model.scores(rows), purpose);
}

export interface ValidateInputs {
  model: PartyModel;
  /** The aligned validation rows. */
  rows: Uint32Array;
  epoch: number;
}

/** The guest's validation of an epoch: its report, and the joint scores (kept to calibrate the epoch finally chosen). */
export async function guestValidate(
  state: TrainingState,
  port: PeerPort,
  inputs: ValidateInputs & { labels: Float64Array; patience: number },
): Promise<{ report: Record<string, unknown>; scores: Float64Array }> {
  const { model, rows, epoch, labels: y, patience } = inputs;
  state.epochWeights.set(epoch, model.weights.slice());
  const z = await guestJointScores(port, model, rows);
  const a = auc(y, z);
  const k = ks(y, z);
  state.validationCurve = [...state.validationCurve.filter((p) => p.epoch !== epoch), { epoch, auc: a }];
  if (a > state.best.auc + 1e-6) state.best = { epoch, auc: a, stale: 0 };
  else state.best.stale++;
  return { report: { epoch, validation_auc: a, validation_ks: k, best_epoch: state.best.epoch, stop: patience > 0 && state.best.stale >= patience }, scores: z };
}

export async function hostValidate(state: TrainingState, port: PeerPort, inputs: ValidateInputs): Promise<Record<string, unknown>> {
  const { model, rows, epoch } = inputs;
  state.epochWeights.set(epoch, model.weights.slice());
  await hostJointScores(port, model, rows, 'validate');
  return { epoch };
}
