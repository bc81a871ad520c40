/**
 * What a party reports at the end of a vertical step (StepDone.reportJson), by job and step: checked once where the
 * coordinator receives it (and where a restarted coordinator or an auditor reads it back from the ledger), typed
 * from there on. The schemas name what the arbiter reads; a report may carry more, recorded as sent.
 */
import { z } from 'zod';
import { ErrorCode, FedcreditError } from '../errors.js';
import type { VerticalStep } from '../wire/messages.js';

const count = z.number().int().min(0);
/** A figure a party computed; JSON turns NaN (no rows, one class) into null. */
const figure = z.number().nullable();
const byParty = <T extends z.ZodType>(value: T) => z.record(z.string(), value);

/** A training job's psi step: every party's id counts; the guest adds the split of the shared enterprises. */
const trainingPsi = z.looseObject({
  ids: count.optional(),
  invalid_ids: count.optional(),
  duplicate_ids: count.optional(),
  id_report: z.string().optional(),
  intersection: count,
  shared_with_guest: byParty(count).optional(),
  host_ids: byParty(count).optional(),
  train: count.optional(),
  validation: count.optional(),
  test: count.optional(),
});

const ivRow = z.looseObject({ feature: z.string(), party: z.string(), iv: z.number(), selected: z.boolean() });

export const TRAINING_STEP_REPORTS = {
  psi: trainingPsi,
  bin: z.looseObject({ features: count.optional(), model_features: count, iv: z.array(ivRow).optional(), warnings: z.array(z.string()).optional(), statistics: z.unknown().optional() }),
  scorecard: z.looseObject({ features: count, base_points: z.number().optional(), score_range: z.unknown().optional(), scorecard_sha256: z.string().optional() }),
  // A mini-batch's outcome is the party's state digest; its report is empty (and not recorded).
  batch: z.looseObject({}),
  validate: z.looseObject({ epoch: count, validation_auc: figure.optional(), validation_ks: figure.optional(), best_epoch: count.optional(), stop: z.boolean().optional() }),
  finalize: z.looseObject({ epoch: count, part_sha256: z.string().regex(/^[0-9a-f]{64}$/), calibration_warning: z.string().optional(), validation_warning: z.string().optional() }),
  evaluate: z.looseObject({ rows: count, test_auc: figure.optional(), test_ks: figure.optional(), evaluation: z.unknown().optional(), fairness: z.unknown().optional() }),
};

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/);

/**
 * A tree of a vertical-boost job as the guest reports it and the ledger records it (`tree_built`, src/vertical/boost/record.ts):
 * its digest (host splits as owner and id), the validation AUC after it, whether the model keeps it (early stopping
 * drops the trees after the best), every node's rows (training and validation) and a split's owner and children,
 * and per level the node ids asked of each host.
 */
export const TreeRecord = z.object({
  tree: count,
  sha256: sha256Hex,
  validation_auc: figure,
  kept: z.boolean(),
  nodes: z.array(z.object({ rows: count, owner: z.string().optional(), left: count.optional(), right: count.optional() })),
  levels: z.array(z.object({ level: count, nodes: z.array(count), histograms: byParty(z.array(count)), splits: byParty(z.array(count)) })),
});
export type TreeRecord = z.output<typeof TreeRecord>;

/** A vertical-boost job (docs/protocol-boost.md): the alignment of vertical-lr, the trees, the parts, the evaluation. */
export const BOOST_STEP_REPORTS = {
  psi: trainingPsi,
  // The guest: every tree it grew; a host: how many of its splits the trees use, and the digest of the asks it answered.
  boost: z.looseObject({ features: count, trees: z.array(TreeRecord).optional(), splits: count.optional(), asks: count.optional(), asks_sha256: sha256Hex.optional() }),
  finalize: z.looseObject({ part_sha256: sha256Hex }),
  evaluate: TRAINING_STEP_REPORTS.evaluate,
};

export const SCORING_STEP_REPORTS = {
  psi: z.looseObject({ requested: count.optional(), held: count.optional() }),
  score: z.looseObject({ requested: count.optional(), scored: count.optional(), feature_psi: z.unknown().optional() }),
};

export type StepReportSchemas = Partial<Record<VerticalStep, z.ZodType<Record<string, unknown>>>>;
export type StepReportOf<S extends StepReportSchemas, N extends keyof S> = S[N] extends z.ZodType ? z.output<S[N]> : never;

/**
 * A party's report of `step`, checked against its schema. The report itself is returned, not a rebuilt copy
 * (the schemas have no defaults or transforms), so it is recorded and summarised as the party sent it.
 */
export function stepReport<S extends StepReportSchemas, N extends keyof S & VerticalStep>(schemas: S, step: N, report: unknown, from: string): StepReportOf<S, N> {
  const schema = schemas[step] as z.ZodType | undefined;
  if (!schema) throw new FedcreditError(ErrorCode.PROTOCOL, `${from} reported a ${step} step, which this job does not have`, 'run the same fedcredit version at the coordinator and every party');
  const checked = schema.safeParse(report);
  if (!checked.success) {
    const problems = checked.error.issues.map((i) => `${i.path.join('.') || 'report'}: ${i.message}`).join('; ');
    throw new FedcreditError(ErrorCode.PROTOCOL, `${from}'s ${step} report does not follow the protocol (${problems})`, 'run the same fedcredit version at the coordinator and every party');
  }
  return report as StepReportOf<S, N>;
}
