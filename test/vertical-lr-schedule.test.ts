/**
 * The training schedule that the coordinator and the in-memory harness both run: every mini-batch of an epoch, then
 * its validation; training ends at the job's last epoch or when validation says stop, keeping the epoch it names.
 */
import { describe, expect, it } from 'vitest';
import { VerticalJobSpec } from '../src/config/schemas.js';
import { createLogger } from '../src/log.js';
import { LrParty, type LrKeeper } from '../src/vertical/lr/party.js';
import type { PeerPort } from '../src/vertical/lr/port.js';
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

describe('a party holds the coordinator to the schedule', () => {
  const spec = VerticalJobSpec.parse({ name: 'v', kind: 'vertical-lr', purpose: 'test', guest: 'bank', hosts: ['tax'], training: { epochs: 3 } });
  const notNeeded = () => {
    throw new Error('an off-schedule step must be refused before the party touches its data');
  };
  const host = () => new LrParty({ jobId: 'job-1', org: 'tax', spec, features: ['x'], data: notNeeded, engine: async () => notNeeded(), keeper: {} as LrKeeper, log: createLogger('test', 'silent') });
  const port = {} as PeerPort;

  it('refuses a validation or a mini-batch of an epoch beyond training.epochs, and a finalize of one, naming the step', async () => {
    await expect(host().run({ step: 'validate', epoch: 4, batch: 0, argsJson: '{}' }, port)).rejects.toThrow(
      'the coordinator asked tax for a validate step of epoch 4; the job has epochs 1 to 3 (training.epochs, training.batch_size)',
    );
    await expect(host().run({ step: 'batch', epoch: 0, batch: 0, argsJson: '{}' }, port)).rejects.toThrow(/batch step of epoch 0; the job has epochs 1 to 3/);
    await expect(host().run({ step: 'finalize', epoch: 0, batch: 0, argsJson: JSON.stringify({ epoch: 9 }) }, port)).rejects.toThrow(/finalize step of epoch 9/);
  });
});
