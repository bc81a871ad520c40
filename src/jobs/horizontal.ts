/** Horizontal jobs: the same features, different enterprises; FedAvg over CKKS-encrypted updates (docs/protocol.md). */
import { HorizontalJobSpec } from '../config/schemas.js';
import { replayHorizontalJob } from '../audit/replay.js';
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
      const categories = features.filter((f) => owner.categories.includes(f));
      const specials = features.find((f) => spec.binning?.features[f]?.special_values);
      return (
        plaintextRefusal(spec.encryption.scheme, owner) ??
        roundsRefusal(spec.training.rounds, 'rounds', owner) ??
        columnRefusal(features, owner) ??
        (categories.length > 0
          ? ['data.features', `${categories.join(', ')} ${categories.length > 1 ? 'are categories' : 'is a category'} (type: category); horizontal jobs do not bin categories yet: list the job's features without ${categories.length > 1 ? 'them' : 'it'}`]
          : undefined) ??
        (specials ? [`binning.features.${specials}.special_values`, `horizontal jobs do not count special values in their secure histograms yet: remove binning.features.${specials}.special_values`] : undefined) ??
        binningRefusal(spec.binning, features, owner) ??
        (owner.rows < owner.consent.min_rows ? ['consent.min_rows', `the job would use ${owner.rows} rows of this data owner; consent.min_rows is ${owner.consent.min_rows}`] : undefined)
      );
    },
  },
  finished: { plannedUnits: (submitted) => trainingCount(submitted, 'rounds'), producesModel: true },
  audit: { replay: replayHorizontalJob },
};
