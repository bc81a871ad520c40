/**
 * The finalize step of vertical LR: every party takes the weights of the epoch the job chose; the guest calibrates
 * its scores on that epoch's validation scores. Each party's model part (which never leaves its node) and its
 * commitment come back to the party.
 */
import type { VerticalJobSpec } from '../../config/schemas.js';
import { ErrorCode, FedcreditError } from '../../errors.js';
import { featureBinning } from '../../credit/settle.js';
import { validationSizeWarning } from '../../evaluation.js';
import { layoutOf, type BinnedFeature } from '../binning.js';
import { fitCalibration, modelPartDigest, type ModelPart, type PartyModel } from '../party-model.js';
import type { TrainingState } from './state.js';

export interface PartInputs {
  jobId: string;
  org: string;
  role: 'guest' | 'host';
  /** The features the model reads (after binning: the selected ones). */
  features: string[];
  model: PartyModel;
  /** After a binning step: this party's binned features and the job's binning section. */
  binned?: BinnedFeature[];
  binning?: VerticalJobSpec['binning'];
}

/** WOE of an enterprise this party does not hold, at scoring (binning.not_held): neutral 0 by default. */
export function notHeldWoe(binning: NonNullable<VerticalJobSpec['binning']>, b: BinnedFeature): number {
  const notHeld = featureBinning(binning, b.feature).notHeld;
  return notHeld === 'neutral' ? 0 : notHeld === 'missing' ? b.woe[b.woe.length - 1]! : notHeld;
}

/** The party's model part as it stands at `epoch`. */
export function modelPartOf(state: TrainingState, inputs: PartInputs, epoch: number): ModelPart {
  const { model: m, role, binned, binning } = inputs;
  return {
    format: 'fedcredit-vertical-part/1',
    jobId: inputs.jobId,
    organisation: inputs.org,
    role,
    features: inputs.features,
    mean: Array.from(m.mean),
    scale: Array.from(m.scale),
    clip: m.clip,
    ...(m.clipLow ? { clipLow: Array.from(m.clipLow), clipHigh: Array.from(m.clipHigh!) } : {}),
    weights: Array.from(m.weights.subarray(0, m.dim)),
    ...(role === 'guest' ? { intercept: m.weights[m.dim]!, calibration: state.calibration! } : {}),
    epoch,
    ...(binned
      ? {
          transform: binning!.woe_transform ? ('woe' as const) : ('standardise' as const),
          bins: binned.filter((b) => b.selected).map((b) => ({ ...layoutOf(b), woe: b.woe, trainCounts: b.trainCounts, notHeldWoe: notHeldWoe(binning!, b) })),
        }
      : {}),
  };
}

/** The model takes the weights of `epoch`. */
function takeEpoch(state: TrainingState, inputs: PartInputs, epoch: number): void {
  const weights = state.epochWeights.get(epoch);
  if (!weights) throw new FedcreditError(ErrorCode.JOB_FAILED, `no weights of epoch ${epoch} on ${inputs.org}`, 'the participant restarted during the job; resubmit it');
  inputs.model.weights = weights.slice();
}

const finalized = (part: ModelPart, epoch: number) => ({ part, report: { epoch, part_sha256: Buffer.from(modelPartDigest(part)).toString('hex') } });

/**
 * The guest takes the chosen epoch and fits its calibration on that epoch's joint validation scores (`validation`, read
 * once the epoch is known to be kept); a calibration that could not be fitted as asked is reported (`calibration_warning`),
 * and so are validation rows too few to choose the epoch (`validation_warning`).
 */
export function guestFinalize(
  state: TrainingState,
  inputs: PartInputs,
  epoch: number,
  validation: () => { scores: Float64Array; labels: Float64Array },
  validationFraction: number,
): { part: ModelPart; report: Record<string, unknown> } {
  takeEpoch(state, inputs, epoch);
  const { scores, labels } = validation();
  const { calibration, warning } = fitCalibration(scores, labels);
  state.calibration = calibration;
  state.calibrationWarning = warning;
  const done = finalized(modelPartOf(state, inputs, epoch), epoch);
  const validationWarning = epochChoiceWarning(state, labels, epoch, validationFraction);
  return { ...done, report: { ...done.report, ...(warning ? { calibration_warning: warning } : {}), ...(validationWarning ? { validation_warning: validationWarning } : {}) } };
}

/**
 * Guest: when more than one epoch was validated, whether the validation rows were too few for their AUC to choose
 * the kept epoch (evaluation.ts validationSizeWarning). The job's result stands; the warning says how far to trust it.
 */
export function epochChoiceWarning(state: TrainingState, labels: Float64Array, epoch: number, validationFraction: number): string | undefined {
  const auc = state.validationCurve.find((p) => p.epoch === epoch)?.auc;
  if (state.validationCurve.length < 2 || auc === undefined) return undefined;
  const defaults = labels.reduce((n, y) => n + y, 0);
  return validationSizeWarning(
    { rows: labels.length, defaults, auc },
    `the epoch to keep (epoch ${epoch} of ${state.validationCurve.length} validated)`,
    `raise training.validation_fraction (now ${validationFraction}); or set training.epochs to the epochs to train with patience: 0, which turns early stopping off (the epoch with the best validation AUC is still the one kept)`,
  );
}

export function hostFinalize(state: TrainingState, inputs: PartInputs, epoch: number): { part: ModelPart; report: Record<string, unknown> } {
  takeEpoch(state, inputs, epoch);
  return finalized(modelPartOf(state, inputs, epoch), epoch);
}
