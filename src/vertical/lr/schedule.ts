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
