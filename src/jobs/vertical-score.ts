/** Scoring new enterprises with a trained vertical model (docs/protocol-vertical.md §5, docs/protocol-boost.md). */
import { VerticalScoreSpec } from '../config/schemas.js';
import type { JobKind, JobKindName } from './kind.js';

/** The kinds of training job whose models a scoring job scores with. */
export const SCORED_KINDS = ['vertical-lr', 'vertical-boost'] as const satisfies readonly JobKindName[];

export const verticalScore: JobKind<'vertical-score'> = {
  name: 'vertical-score',
  schema: VerticalScoreSpec,
  parties: (spec) => [spec.guest, ...spec.hosts],
  // Scoring uses the data the way the training job it scores with did: its kind is the one consented to.
  consentKind: 'model_job',
  finished: { plannedUnits: () => 1, producesModel: false },
  audit: {
    notReplayed(submitted, entries, outcome) {
      const produced = entries.find((e) => e.entry.kind === 'scores_produced')?.body as { scored?: number; requested?: number } | undefined;
      const scored = produced ? `, ${produced.scored} of ${produced.requested} enterprises scored` : '';
      return `scoring with the model of ${String(submitted.model_job)}: changes no model, so nothing to replay (its data use is in \`fedcredit audit show\`); ${outcome}${scored}`;
    },
  },
};
