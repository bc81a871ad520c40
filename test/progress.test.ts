/** Progress lines say only what the job has: a vertical epoch has a validation AUC and no training loss. */
import { describe, expect, it } from 'vitest';
import { createProgressRenderer } from '../src/cli/progress.js';
import type { JobEvent, RoundProgress } from '../src/wire/messages.js';

function lines(progress: RoundProgress): string {
  let text = '';
  const write = (s: string) => {
    text += s;
    return true;
  };
  const out = { isTTY: false, write } as unknown as NodeJS.WriteStream;
  const renderer = createProgressRenderer(out);
  const event: JobEvent = { jobId: 'job-1', unixMs: 0, state: 'running', stage: 'training', message: '', progress };
  renderer.onEvent(event);
  renderer.stop();
  return text;
}

describe('progress lines', () => {
  it('a vertical epoch shows its validation AUC and no loss column', () => {
    const text = lines({ round: 3, rounds: 30, participants: ['bank', 'tax-bureau'], trainLoss: Number.NaN, validationAuc: 0.81234, seconds: 4.2, dropped: [], unit: 'epoch' });
    expect(text).toBe('[running] epoch 3/30  participants 2 (bank, tax-bureau)  val AUC 0.8123  4.2s\n');
    expect(text).not.toContain('loss');
  });

  it('a horizontal round shows its training loss and validation AUC', () => {
    const text = lines({ round: 2, rounds: 8, participants: ['bank-a', 'bank-b'], trainLoss: 0.45678, validationAuc: 0.7, seconds: 1, dropped: [], unit: 'round' });
    expect(text).toBe('[running] round 2/8  participants 2 (bank-a, bank-b)  loss 0.4568  val AUC 0.7000  1.0s\n');
  });
});
