import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../src/log.js';
import type { StepRequest } from '../src/wire/messages.js';
import { PartyChannel, Superseded } from '../participant/vertical-channel.js';

/** A party whose every step does some local work, then waits for one payload from the guest. */
class WaitingParty extends PartyChannel {
  readonly outcomes: string[] = [];

  protected async execute(step: number, req: StepRequest): Promise<Record<string, unknown>> {
    await new Promise((r) => setTimeout(r, 200)); // local work (preparing ids, say) before the first wait
    try {
      await this.receive('bank', 'payload', step, req.attempt);
      this.outcomes.push(`attempt ${req.attempt}: received`);
    } catch (err) {
      this.outcomes.push(`attempt ${req.attempt}: ${err instanceof Superseded ? 'superseded' : (err as Error).message}`);
      throw err;
    }
    return {};
  }

  protected stateDigest(): Uint8Array {
    return new Uint8Array();
  }

  protected beginStep(): void {}
}

const io = { relay: async () => undefined, decrypt: async () => undefined };
const request = (attempt: number): StepRequest => ({ step: 'psi', attempt, epoch: 0, batch: 0, argsJson: '{}' });
const parties: PartyChannel[] = [];
afterAll(() => parties.forEach((p) => p.dispose()));

describe('a vertical step retried while its first attempt is still working', () => {
  it('stops the first attempt at its next wait instead of letting it wait out the step deadline', async () => {
    // A one-minute step deadline: the test's 10 s timeout fails it if the first attempt waits it out.
    const party = new WaitingParty('job-1', 'tax-bureau', 'bank', io, createLogger('test', 'silent'), '/nonexistent', 60_000);
    parties.push(party);
    const first = party.runStep(1, request(0));
    await new Promise((r) => setTimeout(r, 50));
    const second = party.runStep(1, request(1));
    expect(await first).toBeUndefined();
    expect(party.outcomes).toEqual(['attempt 0: superseded']);
    party.dispose();
    await expect(second).resolves.toBeUndefined();
    expect(party.outcomes).toEqual(['attempt 0: superseded', 'attempt 1: superseded']);
  }, 10_000);
});
