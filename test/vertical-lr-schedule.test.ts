/**
 * The training schedule that the coordinator and the in-memory harness both run: every mini-batch of an epoch, then
 * its validation; training ends at the job's last epoch or when validation says stop, keeping the epoch it names.
 */
import { describe, expect, it } from 'vitest';
import { runTraining, trainingPlan } from '../src/vertical/lr/schedule.js';

/** The steps the schedule asks for, with the guest's validation verdict of each epoch given in turn. */
async function steps(epochs: number, trainRows: number, verdicts: { best_epoch: number; stop?: boolean }[]) {
  const asked: string[] = [];
  const outcome = await runTraining(trainingPlan({ epochs, batch_size: 100 }, trainRows), {
    beginEpoch: (epoch) => void asked.push(`epoch ${epoch}`),
    batch: async (epoch, b) => void asked.push(`batch ${epoch}.${b}`),
    validate: async (epoch) => {
      asked.push(`validate ${epoch}`);
      return verdicts[epoch - 1]!;
    },
  });
  return { asked, outcome };
}

describe('the vertical training schedule', () => {
  it('runs every mini-batch of every epoch (the last one partial), each epoch closed by its validation', async () => {
    const { asked, outcome } = await steps(2, 250, [{ best_epoch: 1 }, { best_epoch: 1 }]);
    expect(asked).toEqual(['epoch 1', 'batch 1.0', 'batch 1.1', 'batch 1.2', 'validate 1', 'epoch 2', 'batch 2.0', 'batch 2.1', 'batch 2.2', 'validate 2']);
    expect(outcome).toEqual({ best: 1, epochs: 2, stoppedEarly: false });
  });

  it('stops after the epoch whose validation says stop, keeping the best epoch it names', async () => {
    const { asked, outcome } = await steps(10, 100, [{ best_epoch: 1 }, { best_epoch: 2 }, { best_epoch: 2 }, { best_epoch: 2, stop: true }, { best_epoch: 5 }]);
    expect(asked.filter((s) => s.startsWith('validate'))).toEqual(['validate 1', 'validate 2', 'validate 3', 'validate 4']);
    expect(outcome).toEqual({ best: 2, epochs: 4, stoppedEarly: true });
  });
});
