/**
 * The training schedule of a vertical LR job: epochs of mini-batches, each closed by a validation step, until the
 * job's epochs are done or validation says to stop early (no better AUC for `patience` epochs); the epoch kept is
 * the one validation names best. The coordinator (coordinator/vertical-run.ts) and the in-memory harness run their
 * steps through runTraining, so both follow one schedule.
 */

export interface TrainingPlan {
  epochs: number;
  /** Mini-batches per epoch. */
  batches: number;
}

export function trainingPlan(training: { epochs: number; batch_size: number }, trainRows: number): TrainingPlan {
  return { epochs: training.epochs, batches: Math.ceil(trainRows / training.batch_size) };
}

/** What the schedule reads of the guest's validation report (src/vertical/lr/validate.ts). */
export interface ValidationVerdict {
  readonly best_epoch?: unknown;
  readonly stop?: unknown;
}

/** After epoch `epoch`'s validation: the epoch kept so far, and whether training ends, early or at the last epoch. */
export function afterValidation(plan: TrainingPlan, epoch: number, report: ValidationVerdict): { best: number; done: boolean; stoppedEarly: boolean } {
  const stoppedEarly = report.stop === true;
  return { best: Number(report.best_epoch), done: stoppedEarly || epoch >= plan.epochs, stoppedEarly };
}

export interface TrainingSteps<V extends ValidationVerdict> {
  /** Called before an epoch's first mini-batch. */
  beginEpoch?(epoch: number): void;
  batch(epoch: number, batch: number): Promise<void>;
  /** The guest's validation report of the epoch. */
  validate(epoch: number): Promise<V>;
}

/** Run the schedule: the epoch kept, the epochs run, and whether validation stopped training early. */
export async function runTraining<V extends ValidationVerdict>(plan: TrainingPlan, steps: TrainingSteps<V>): Promise<{ best: number; epochs: number; stoppedEarly: boolean }> {
  let outcome = { best: 0, done: plan.epochs < 1, stoppedEarly: false };
  let epoch = 0;
  while (!outcome.done) {
    epoch++;
    steps.beginEpoch?.(epoch);
    for (let b = 0; b < plan.batches; b++) await steps.batch(epoch, b);
    outcome = afterValidation(plan, epoch, await steps.validate(epoch));
  }
  return { best: outcome.best, epochs: epoch, stoppedEarly: outcome.stoppedEarly };
}

/** An epoch's validation figures, as the guest's validation step reported them. */
export interface EpochFigures {
  epoch: number;
  auc: number;
  ks: number;
}

/**
 * The end of a job's status: the epoch whose model was published (validation's best) with its figures, and the
 * last epoch run, labelled as such, when training went on past the kept one.
 */
export function keptEpochLine(kept: EpochFigures, last: EpochFigures): string {
  const figures = (e: EpochFigures) => `validation AUC ${e.auc.toFixed(4)}, KS ${e.ks.toFixed(4)}`;
  const line = `kept epoch ${kept.epoch} (best ${figures(kept)})`;
  return last.epoch === kept.epoch ? `${line}, the last epoch run` : `${line}; last epoch run ${last.epoch} (${figures(last)}), not published`;
}
