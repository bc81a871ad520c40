/** Vertical logistic regression: different features of the same enterprises, aligned by PSI (docs/protocol-vertical.md). */
import { VerticalJobSpec } from '../config/schemas.js';
import { replayVerticalJob } from '../audit/replay-vertical.js';
import { binningRefusal, columnRefusal, fairnessRefusal, hostCountRefusal, plaintextRefusal, roundsRefusal } from './consent.js';
import { trainingCount, type DataOwner, type JobKind } from './kind.js';

/** The owner's columns the job uses. */
const columns = (spec: VerticalJobSpec, owner: DataOwner): string[] => spec.features?.[owner.org] ?? owner.offered;

export const verticalLr: JobKind<'vertical-lr'> = {
  name: 'vertical-lr',
  schema: VerticalJobSpec,
  parties: (spec) => [spec.guest, ...spec.hosts],
  consentKind: 'vertical-lr',
  policy: {
    columns,
    refusal(spec, owner) {
      const features = columns(spec, owner);
      return (
        plaintextRefusal(spec.encryption.scheme, owner) ??
        hostCountRefusal(spec, owner) ??
        roundsRefusal(spec.training.epochs, 'epochs', owner) ??
        columnRefusal(features, owner) ??
        binningRefusal(spec.binning, features, owner) ??
        fairnessRefusal(spec.fairness, owner)
      );
    },
  },
  finished: { plannedUnits: (submitted) => trainingCount(submitted, 'epochs'), producesModel: true },
  audit: { replay: replayVerticalJob },
};
