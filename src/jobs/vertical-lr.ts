/** Vertical logistic regression: different features of the same enterprises, aligned by PSI (docs/protocol-vertical.md). */
import { VerticalJobSpec } from '../config/schemas.js';
import { replayVerticalJob } from '../audit/replay-vertical.js';
import { binningRefusal, columnRefusal, plaintextRefusal, roundsRefusal } from './consent.js';
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
      const fair = spec.fairness;
      return (
        plaintextRefusal(spec.encryption.scheme, owner) ??
        roundsRefusal(spec.training.epochs, 'epochs', owner) ??
        columnRefusal(features, owner) ??
        binningRefusal(spec.binning, features, owner) ??
        (fair?.party === owner.org && !owner.groupColumns.includes(fair.column)
          ? ['data.group_columns', `the job groups its fairness figures by ${fair.column}, which ${owner.org} does not list in data.group_columns (listed: ${owner.groupColumns.join(', ') || 'none'})`]
          : undefined)
      );
    },
  },
  finished: { plannedUnits: (submitted) => trainingCount(submitted, 'epochs'), producesModel: true },
  audit: { replay: replayVerticalJob },
};
