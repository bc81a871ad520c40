/**
 * A data owner's caps on scoring (consent.scoring): requests against one model per rolling day, and ids per
 * request, counted by a host as the guest's blinded ids arrive, before any is answered.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ScoringQuota } from '../participant/scoring-quota.js';
import type { PsiLink } from '../src/psi/stream.js';

describe('scoring caps', () => {
  it('admits at most max_requests_per_model_per_day requests per model in any 24 hours, naming the rule and when the next is possible', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedcredit-quota-'));
    const quota = new ScoringQuota(dir, { max_requests_per_model_per_day: 2, max_ids_per_request: 10 });
    const t0 = Date.parse('2026-12-06T08:00:00Z');
    expect(quota.admit('s1', 'model-a', t0).refused).toBeUndefined();
    expect(quota.admit('s2', 'model-a', t0 + 1000).refused).toBeUndefined();
    expect(quota.admit('s3', 'model-b', t0 + 2000).refused).toBeUndefined();
    const third = quota.admit('s4', 'model-a', t0 + 3000).refused;
    expect(third?.[0]).toBe('consent.scoring.max_requests_per_model_per_day');
    expect(third?.[1]).toMatch(/2 scoring requests against model model-a in the last 24 hours; this data owner allows 2 \(the next is possible after 2026-12-07T08:00:00.000Z\)/);
    // The count survives a restart (another quota over the same folder), and a day later the window has moved on.
    const again = new ScoringQuota(dir, { max_requests_per_model_per_day: 2, max_ids_per_request: 10 });
    expect(again.admit('s5', 'model-a', t0 + 3600_000).refused).toBeDefined();
    expect(again.admit('s6', 'model-a', t0 + 86_400_000 + 1).refused).toBeUndefined();
    expect(statSync(join(dir, 'scoring-requests.jsonl')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(dir, 'scoring-requests.jsonl'), 'utf8').trim().split('\n')).toHaveLength(4);
  });

  it("a host stops reading the guest's blinded ids as soon as they exceed max_ids_per_request", async () => {
    const quota = new ScoringQuota(mkdtempSync(join(tmpdir(), 'fedcredit-quota-')), { max_requests_per_model_per_day: 5, max_ids_per_request: 100 });
    const chunks = [new Uint8Array(32 * 64), new Uint8Array(32 * 64), new Uint8Array(1)];
    let read = 0;
    const link: PsiLink = { send: async () => undefined, receive: async () => chunks[read++]!, checkpoint: () => undefined };
    const capped = quota.capGuestIds(link);
    await expect(capped.receive('psi.guest_blinded#0')).resolves.toHaveLength(32 * 64);
    await expect(capped.receive('psi.guest_blinded#1')).rejects.toThrow(
      /consent\.scoring\.max_ids_per_request: the scoring request lists at least 128 enterprises; this data owner allows 100 per request/,
    );
    expect(quota.refusalForIds(100)).toBeUndefined();
    expect(quota.refusalForIds(101)?.code).toBe('FC_JOB_REFUSED');
  });
});
