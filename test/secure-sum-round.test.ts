/**
 * The horizontal secure sum's rules, without processes, ledger or timers (src/fl/secure-sum-round.ts): who must
 * contribute, drops and retries, the canonical order, stale and replayed messages, and the digest agreement that
 * catches a participant lying about what it decrypted.
 */
import { describe, expect, it } from 'vitest';
import { SumAttempt, afterShortfall, agreeOnOpened, canonicalOrder, contributorsNeeded, globalWeightsOf, openedReport, purposeDecision, type OpenedReply } from '../src/fl/secure-sum-round.js';
import { float32Bytes } from '../src/fl/vector-codec.js';
import { sha256 } from '../src/bytes.js';
import type { ValidationMetrics } from '../src/wire/messages.js';

const PARTIES = ['bank-c', 'bank-a', 'bank-b'];
const all = () => true;

/** What each contributor reports when every one of them decrypted `values`. */
function honestReplies(values: number[], contributors: string[], validation: (org: string) => ValidationMetrics | null = () => null): OpenedReply[] {
  return contributors.map((org) => ({ org, opened: openedReport('update', Float64Array.from(values), org, contributors, validation(org)) }));
}

describe('who must contribute', () => {
  it('every participant for moments, quantiles and histograms; min_participants for the others; never a sum of one', () => {
    expect(contributorsNeeded(3, { needAll: true, minParticipants: 2 })).toBe(3);
    expect(contributorsNeeded(3, { minParticipants: 2 })).toBe(2);
    expect(contributorsNeeded(3, {})).toBe(3);
    // min_participants: 1 would open a single participant's vector to the coordinator.
    expect(contributorsNeeded(3, { minParticipants: 1 })).toBe(2);
    expect(contributorsNeeded(1, { minParticipants: 1 })).toBe(1);
  });
});

describe('one attempt at a sum', () => {
  it('asks only the connected participants and names the others as dropped', () => {
    const attempt = new SumAttempt(4, PARTIES, (o) => o !== 'bank-b', 2);
    expect(attempt.asked).toEqual(['bank-c', 'bank-a']);
    expect(attempt.notConnected).toEqual(['bank-b']);
    attempt.take('bank-c');
    attempt.take('bank-a');
    const outcome = attempt.outcome();
    expect(outcome).toEqual({ ok: true, contributors: ['bank-a', 'bank-c'], reporter: 'bank-a' });
    expect(attempt.dropped).toEqual(['bank-b (not connected)']);
  });

  it('masked: a sum opens only over everyone asked (a drop means asking again), and nobody is asked while fewer than needed are connected', () => {
    const attempt = new SumAttempt(4, PARTIES, all, 2, true);
    attempt.take('bank-c');
    attempt.take('bank-a');
    attempt.drop('bank-b', 'stream closed');
    const outcome = attempt.outcome();
    expect(outcome.ok).toBe(false);
    expect(!outcome.ok && outcome.why).toMatch(/2 of the 3 participants asked contributed; the masks of a sum cancel only over everyone asked; dropped: bank-b \(stream closed\)/);
    const short = new SumAttempt(4, PARTIES, (o) => o === 'bank-a', 2, true);
    expect(short.asked).toEqual([]);
    expect(short.notConnected).toEqual(['bank-c', 'bank-b']);
    expect(short.outcome().ok).toBe(false);
    // Enough connected: the connected are asked, as unmasked.
    expect(new SumAttempt(4, PARTIES, (o) => o !== 'bank-b', 2, true).asked).toEqual(['bank-c', 'bank-a']);
    // A participant whose contribution was refused in an earlier attempt is not asked again, and named with why.
    const retry = new SumAttempt(4, PARTIES, all, 2, true, new Map([['bank-b', 'truncated ciphertext']]));
    expect(retry.asked).toEqual(['bank-c', 'bank-a']);
    expect(retry.dropped).toEqual(['bank-b (truncated ciphertext)']);
  });

  it('adds in canonical order whatever order the contributions arrive in', () => {
    const orders = [
      ['bank-a', 'bank-b', 'bank-c'],
      ['bank-c', 'bank-b', 'bank-a'],
      ['bank-b', 'bank-a', 'bank-c'],
    ];
    for (const order of orders) {
      const attempt = new SumAttempt(1, PARTIES, all, 3);
      for (const org of order) attempt.take(org);
      expect(attempt.outcome()).toMatchObject({ ok: true, contributors: ['bank-a', 'bank-b', 'bank-c'] });
    }
    expect(canonicalOrder(new Set(['tax', 'Bank', 'bank', 'power']))).toEqual(['bank', 'Bank', 'power', 'tax']);
  });

  it('refuses a replayed (second) contribution and one from a participant that was not asked', () => {
    const attempt = new SumAttempt(2, PARTIES, (o) => o !== 'bank-c', 2);
    attempt.take('bank-a');
    expect(() => attempt.take('bank-a')).toThrow(/round 2: a second contribution from bank-a/);
    expect(() => attempt.take('bank-c')).toThrow(/a contribution from bank-c, which was not asked/);
    expect(() => attempt.take('mallory')).toThrow(/mallory, which was not asked/);
    attempt.take('bank-b');
    expect(attempt.outcome()).toMatchObject({ ok: true, contributors: ['bank-a', 'bank-b'] });
  });

  it('a dropped participant leaves the sum even after its contribution was taken, and the shortfall names every reason', () => {
    const attempt = new SumAttempt(3, PARTIES, (o) => o !== 'bank-c', 2);
    attempt.take('bank-a');
    attempt.take('bank-b');
    // Its update could not be recorded, say: it is taken back out.
    attempt.drop('bank-b', 'FC_PROTOCOL: ciphertext under other parameters');
    const outcome = attempt.outcome();
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.contributors).toEqual(['bank-a']);
    expect(outcome.why).toBe('round 3: 1 of 3 participants contributed, 2 needed; dropped: bank-c (not connected); bank-b (FC_PROTOCOL: ciphertext under other parameters)');
  });

  it('shows who is late until each has answered', () => {
    const attempt = new SumAttempt(1, PARTIES, all, 3);
    expect(attempt.late()).toEqual(PARTIES);
    attempt.answer('bank-a');
    attempt.answer('bank-c');
    expect(attempt.late()).toEqual(['bank-b']);
  });
});

describe('after too few contributions', () => {
  const rule = { maxRetries: 2, needed: 2 };
  it('retries at once when enough are connected, waits for the missing when too few are', () => {
    expect(afterShortfall(0, rule, PARTIES, all)).toEqual({ action: 'retry', waitFor: [] });
    expect(afterShortfall(1, rule, PARTIES, (o) => o === 'bank-a')).toEqual({ action: 'retry', waitFor: ['bank-c', 'bank-b'] });
  });
  it('once the retries are spent, skips an optional sum and fails any other', () => {
    expect(afterShortfall(2, rule, PARTIES, all)).toEqual({ action: 'fail' });
    expect(afterShortfall(2, { ...rule, optional: true }, PARTIES, all)).toEqual({ action: 'skip' });
  });
});

describe('late and foreign messages', () => {
  it('a late moments or quantiles message during a later round-0 sum is stale; any other purpose is foreign', () => {
    expect(purposeDecision('update', 'update')).toBe('take');
    expect(purposeDecision('quantiles', 'moments')).toBe('stale');
    expect(purposeDecision('histogram', 'quantiles')).toBe('stale');
    expect(purposeDecision('histogram', 'moments')).toBe('stale');
    expect(purposeDecision('update', 'moments')).toBe('foreign');
    expect(purposeDecision('moments', 'histogram')).toBe('foreign');
    expect(purposeDecision('evaluation', 'update')).toBe('foreign');
  });
});

describe('digest agreement on the opened aggregate', () => {
  const contributors = ['bank-a', 'bank-b', 'bank-c'];
  const values = [12.5, -3, 7000, 1234.25];

  it('only the reporter (first in canonical order) sends the values; everyone agrees on them', () => {
    const replies = honestReplies(values, contributors, (org) => ({ rows: org === 'bank-b' ? 0 : 100, auc: 0.7, loss: 0.5 }));
    expect(replies.map((r) => r.opened.values.length)).toEqual([values.length * 8, 0, 0]);
    const agreed = agreeOnOpened(5, 'bank-a', replies);
    expect(Array.from(agreed.values)).toEqual(values);
    expect(agreed.agreeing).toEqual(contributors);
    expect(agreed.digest).toBe(Buffer.from(replies[1]!.opened.valuesSha256).toString('hex'));
    expect(agreed.validation.map((v) => v.org)).toEqual(contributors);
  });

  it('a contributor that did not report is left out, but the reporter must report', () => {
    const replies: (OpenedReply | undefined)[] = honestReplies(values, contributors);
    replies[2] = undefined;
    expect(agreeOnOpened(1, 'bank-a', replies).agreeing).toEqual(['bank-a', 'bank-b']);
    replies[0] = undefined;
    expect(() => agreeOnOpened(1, 'bank-a', replies)).toThrow(/round 1: bank-a did not report the opened aggregate/);
  });

  it('a participant that decrypted something else, or lies about it, fails the sum naming it', () => {
    const lying = honestReplies(values, contributors);
    lying[2] = { org: 'bank-c', opened: openedReport('update', Float64Array.from([12.5, -3, 7001, 1234.25]), 'bank-c', contributors, null) };
    expect(() => agreeOnOpened(2, 'bank-a', lying)).toThrow(/round 2: bank-c decrypted a different aggregate than bank-a/);
  });

  it('a reporter whose values do not match its own digest (inflated counts, say) is caught by the others', () => {
    const replies = honestReplies(values, contributors);
    // The reporter sends a larger row count than it decrypted, with the digest of what it really decrypted.
    const inflated = Float64Array.from([12.5, -3, 9000, 1234.25]);
    replies[0] = { org: 'bank-a', opened: { ...replies[0]!.opened, values: new Uint8Array(inflated.buffer) } };
    expect(() => agreeOnOpened(3, 'bank-a', replies)).toThrow(/decrypted a different aggregate than bank-a/);
  });
});

describe('the global model a round asks for', () => {
  it('is taken only with the digest it came with', () => {
    const weights = Float32Array.from([0.5, -1, 2]);
    const globalWeights = float32Bytes(weights);
    const request = { purpose: 'update' as const, globalWeights, globalWeightsSha256: sha256(globalWeights), deadlineUnixMs: 0, contributors: [], attempt: 0 };
    expect(Array.from(globalWeightsOf(request, 1))).toEqual(Array.from(weights));
    expect(() => globalWeightsOf({ ...request, globalWeightsSha256: sha256(new Uint8Array(3)) }, 7)).toThrow(/round 7: global weights do not match their digest/);
  });
});
