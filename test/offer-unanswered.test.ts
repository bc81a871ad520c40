/**
 * A job whose offer a participant did not answer in time. Found by a new user whose data owner approves offers by
 * hand (consent.approval: manual) and took longer than the coordinator's offer_timeout_s: the submitter was told to
 * restart a participant that was up, waiting for its owner.
 */
import { describe, expect, it } from 'vitest';
import { offerUnanswered } from '../coordinator/job-base.js';
import { ErrorCode } from '../src/errors.js';

describe('an unanswered job offer', () => {
  it('from a participant still connected names manual approval and offer_timeout_s, not a restart', () => {
    const err = offerUnanswered('bank-c', 'no jobAccepted within the deadline', true, 60);
    expect(err.code).toBe(ErrorCode.JOB_FAILED);
    expect(err.message).toBe("participant bank-c is connected but did not answer the job offer within the coordinator's offer_timeout_s (60s): no jobAccepted within the deadline");
    expect(err.hint).toBe(
      "if bank-c's owner approves offers by hand (consent.approval: manual), ask them to answer within 60s (`fedcredit participant pending`, then `approve`) and resubmit, or raise offer_timeout_s in the coordinator config; else see bank-c's log",
    );
    expect(err.hint).not.toContain('restart');
  });

  it('from a participant that left says to restart it', () => {
    const err = offerUnanswered('bank-b', 'disconnected', false, 60);
    expect(err.message).toBe('participant bank-b did not answer the job offer: disconnected');
    expect(err.hint).toContain('restart it if it is down');
  });
});
