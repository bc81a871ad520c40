/** Scoring new enterprises with a trained vertical-lr model (docs/protocol-vertical.md §5). */
import { VerticalScoreSpec } from '../config/schemas.js';
import type { JobKind } from './kind.js';

export const verticalScore: JobKind<'vertical-score'> = {
  name: 'vertical-score',
  schema: VerticalScoreSpec,
  parties: (spec) => [spec.guest, ...spec.hosts],
  // Scoring uses the data the way the training job it scores with did.
  consentKind: 'vertical-lr',
  finished: { plannedUnits: () => 1, producesModel: false },
  audit: {
    notReplayed(submitted, entries, outcome) {
      const produced = entries.find((e) => e.entry.kind === 'scores_produced')?.body as { scored?: number; requested?: number } | undefined;
      const scored = produced ? `, ${produced.scored} of ${produced.requested} enterprises scored` : '';
      return `scoring with the model of ${String(submitted.model_job)}: changes no model, so nothing to replay (its data use is in \`fedcredit audit show\`); ${outcome}${scored}`;
    },
  },
};
