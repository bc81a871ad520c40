/**
 * The coordinator's per-job mailbox: a wait ends with the awaited message, the participant's error, or its
 * deadline, and a deadline given as a function moves with it (a vertical step's deadline follows the step's
 * progress, so a long step that keeps moving is never cut off).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Mailbox, ParticipantGone, refusalFix } from '../coordinator/mailbox.js';
import type { ParticipantMessage } from '../src/wire/messages.js';

const stepDone = (round: number) => ({ jobId: 'j', round, body: 'stepDone', stepDone: { step: 'psi', attempt: 0, stateSha256: new Uint8Array(), reportJson: '{}' } }) as unknown as ParticipantMessage;
const connected = () => true;

describe('Mailbox.waitFor', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('a deadline that moves with progress lets a message arriving after the first deadline through', async () => {
    const box = new Mailbox();
    let progressAt = Date.now();
    const wait = box.waitFor('tax-bureau', 'stepDone', 1, () => progressAt + 1_000, connected);
    // Progress every 800 ms for 5 s: five times the timeout, never 1 s without progress.
    for (let t = 0; t < 5_000; t += 800) {
      await vi.advanceTimersByTimeAsync(800);
      progressAt = Date.now();
    }
    box.deliver('tax-bureau', stepDone(1));
    await expect(wait).resolves.toMatchObject({ body: 'stepDone', round: 1 });
  });

  it('a deadline that stops moving ends the wait when it passes, not before', async () => {
    const box = new Mailbox();
    let progressAt = Date.now();
    let outcome: unknown;
    const wait = box
      .waitFor('tax-bureau', 'stepDone', 1, () => progressAt + 1_000, connected)
      .then(
        () => 'message',
        (err: unknown) => err,
      );
    void wait.then((o) => (outcome = o));
    await vi.advanceTimersByTimeAsync(900);
    progressAt = Date.now(); // the last progress: the deadline is now 1,900 ms from the start
    await vi.advanceTimersByTimeAsync(950);
    expect(outcome).toBeUndefined();
    await vi.advanceTimersByTimeAsync(100);
    expect(outcome).toBeInstanceOf(ParticipantGone);
    expect((outcome as ParticipantGone).reason).toBe('no stepDone within the deadline');
    // Too late: a message after the deadline waits in the queue for the next wait (a retry), which takes it.
    box.deliver('tax-bureau', stepDone(1));
    await expect(box.waitFor('tax-bureau', 'stepDone', 1, Date.now() + 1_000, connected)).resolves.toMatchObject({ round: 1 });
  });

  it('a fixed deadline still ends the wait on time, and an error report ends it at once', async () => {
    const box = new Mailbox();
    const timedOut = box.waitFor('bank', 'stepDone', 2, Date.now() + 500, connected);
    const caught = expect(timedOut).rejects.toThrow(/no stepDone within the deadline/);
    await vi.advanceTimersByTimeAsync(500);
    await caught;
    const failed = box.waitFor('bank', 'stepDone', 2, Date.now() + 60_000, connected);
    box.deliver('bank', { jobId: 'j', round: 2, body: 'error', error: { code: 'FC_DATA_SCHEMA', message: 'no valid ids', hint: 'check the id column' } } as unknown as ParticipantMessage);
    await expect(failed).rejects.toMatchObject({ reason: 'FC_DATA_SCHEMA: no valid ids', hint: 'check the id column' });
  });
});

describe('a refused offer', () => {
  const refusal = (code: string) => ({ jobId: 'j', round: 0, body: 'jobRefused', jobRefused: { code, reason: 'because' } }) as unknown as ParticipantMessage;

  it('keeps the field the refusal names, and the fix follows whose it is to change', async () => {
    const box = new Mailbox();
    const wait = box.waitFor('bureau', 'jobAccepted', 0, Date.now() + 60_000, connected);
    box.deliver('bureau', refusal('alignment.id_format'));
    const err = (await wait.catch((e: unknown) => e)) as ParticipantGone;
    expect(err).toBeInstanceOf(ParticipantGone);
    expect(err.refused).toBe(true);
    expect(err.field).toBe('alignment.id_format');
    expect(err.reason).toBe('refused (alignment.id_format): because');
    // A job field is the submitter's to change; a consent rule or a data section is the owner's.
    expect(refusalFix('bureau', err.field)).toBe('change `alignment.id_format` in the job file as the reason says, and submit it again');
    expect(refusalFix('bureau', 'consent.min_rows')).toBe(
      "`consent.min_rows` is bureau's data owner's rule (its participant config): change the job to fit it, or ask the owner; bureau's log has the details",
    );
    expect(refusalFix('bureau', 'data.features')).toContain("the job needs what bureau's data section does not declare (`data.features`)");
    // A coordinator caught deviating is not fixed by editing the job; a daily cap is not fixed by changing the job.
    expect(refusalFix('bureau', 'protocol')).toMatch(/^bureau found the coordinator deviating from the protocol: tell the federation's operator/);
    expect(refusalFix('bureau', 'consent.scoring.max_requests_per_model_per_day')).toMatch(/score again tomorrow, or ask the owner to raise/);
  });
});
