/** Horizontal jobs: the same features, different enterprises; FedAvg over CKKS-encrypted updates (docs/protocol.md). */
import { HorizontalJobSpec } from '../config/schemas.js';
import { replayHorizontalJob } from '../audit/replay.js';
import { categoryRefusal } from '../fl/histogram.js';
import { binningRefusal, columnRefusal, plaintextRefusal, roundsRefusal } from './consent.js';
import { trainingCount, type DataOwner, type JobKind } from './kind.js';

/** The owner's columns the job uses. */
const columns = (spec: HorizontalJobSpec, owner: DataOwner): string[] => spec.features ?? owner.offered;

export const horizontal: JobKind<'horizontal'> = {
  name: 'horizontal',
  schema: HorizontalJobSpec,
  parties: (spec) => spec.participants,
  consentKind: 'horizontal',
  policy: {
    columns,
    refusal(spec, owner) {
      const features = columns(spec, owner);
      return (
        plaintextRefusal(spec.encryption.scheme, owner) ??
        roundsRefusal(spec.training.rounds, 'rounds', owner) ??
        columnRefusal(features, owner) ??
        categoryRefusal(spec.binning, features, owner.levels, owner.undeclaredLevels) ??
        binningRefusal(spec.binning, features, owner) ??
        (owner.rows < owner.consent.min_rows ? ['consent.min_rows', `the job would use ${owner.rows} rows of this data owner; consent.min_rows is ${owner.consent.min_rows}`] : undefined)
      );
    },
  },
  finished: { plannedUnits: (submitted) => trainingCount(submitted, 'rounds'), producesModel: true },
  audit: { replay: replayHorizontalJob },
};
