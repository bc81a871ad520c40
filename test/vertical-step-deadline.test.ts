/**
 * A vertical step's deadline at the coordinator (training.step_timeout_s) counts from the step's last progress
 * (a payload relayed, a gradient decrypted, a party's report), not from its start; a step in which nothing moves
 * for that long fails after one retry, naming a silent party and the setting. The waits themselves are tested in
 * test/coordinator-mailbox.test.ts; here two real participants are frozen (SIGSTOP) in the middle of training.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestFederation } from './helpers/federation.js';
import { verticalJob, writeTinyVertical } from './helpers/vertical.js';

const STEP_TIMEOUT_S = 3;

const tiny = writeTinyVertical('fedcredit-deadline-data-', 77);

describe('a vertical step times out on silence', () => {
  let fed: TestFederation;
  beforeAll(async () => {
    fed = await TestFederation.start([
      { name: 'bank', data: tiny.bank },
      { name: 'tax-bureau', data: tiny.tax },
    ]);
  });
  afterAll(async () => fed?.stop());

  it('no party making progress for step_timeout_s fails the step after one retry, naming a silent party and the setting', async () => {
    const logFile = join(fed.dir, 'logs', 'bank.log');
    const before = readFileSync(logFile, 'utf8').length;
    // Many short batch steps, so that the freeze below lands in the middle of training.
    const running = fed.run(verticalJob({ training: { epochs: 20, batch_size: 64, patience: 0, step_timeout_s: STEP_TIMEOUT_S, grace_period_s: 5 } }));
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline && !/"name":"batch"[^\n]*"step done"/.test(readFileSync(logFile, 'utf8').slice(before))) await new Promise((r) => setTimeout(r, 20));
    // Frozen, both parties keep their connections open (the coordinator's liveness_timeout_s allows 20 s without an
    // answer to its pings): silent, not gone.
    const frozen = ['bank', 'tax-bureau'].map((org) => fed.cluster.process(org)!.pid!);
    for (const pid of frozen) process.kill(pid, 'SIGSTOP');
    const started = Date.now();
    try {
      const { last } = await running;
      expect(last.state).toBe('failed');
      expect(last.message).toMatch(/(bank|tax-bureau) stayed connected but made no progress in the (batch|validate) step \(step \d+\) for step_timeout_s \(3s\), in 2 attempts; no model is published/);
      expect(last.message).toMatch(/raise training\.step_timeout_s/);
      // Two attempts, each ended by step_timeout_s of silence (timers fire a little late, never early).
      expect(Date.now() - started).toBeGreaterThanOrEqual(2 * STEP_TIMEOUT_S * 1000 - 1_000);
    } finally {
      for (const pid of frozen) process.kill(pid, 'SIGCONT');
    }
  });
});
