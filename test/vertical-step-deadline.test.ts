/**
 * A vertical step's deadline at the coordinator (training.step_timeout_s) counts from the step's last progress
 * (a payload relayed, a gradient decrypted, a party's report), not from its start; a step in which nothing moves
 * for that long fails after one retry, naming a silent party and the setting. The waits themselves are tested in
 * test/coordinator-mailbox.test.ts; here two real participants are frozen (SIGSTOP) in the middle of training.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Rng } from '../src/random.js';
import type { DatasetSpec } from '../src/data/schema.js';
import { TestFederation } from './helpers/federation.js';
import { verticalJob } from './helpers/vertical.js';

const STEP_TIMEOUT_S = 3;

const dir = mkdtempSync(join(tmpdir(), 'fedcredit-deadline-data-'));
const rng = new Rng(77);
writeFileSync(
  join(dir, 'bank.csv'),
  ['id,y,f1', ...Array.from({ length: 3_000 }, (_, i) => {
    const x = rng.normal();
    return `E${i},${rng.next() < 1 / (1 + Math.exp(-x)) ? 1 : 0},${x.toFixed(3)}`;
  })].join('\n') + '\n',
);
writeFileSync(join(dir, 'tax.csv'), ['id,h1', ...Array.from({ length: 2_500 }, (_, i) => `E${(i * 7) % 3_001},${rng.normal().toFixed(3)}`)].join('\n') + '\n');

const spec = (file: string, label: boolean): DatasetSpec => ({
  path: join(dir, file),
  delimiter: ',',
  id_column: 'id',
  ...(label ? { label_column: 'y' } : {}),
  features: [{ name: label ? 'f1' : 'h1', type: 'number', missing: 'impute' }],
  duplicate_ids: 'reject',
  missing_values: [''],
});

describe('a vertical step times out on silence', () => {
  let fed: TestFederation;
  beforeAll(async () => {
    fed = await TestFederation.start([
      { name: 'bank', data: spec('bank.csv', true) },
      { name: 'tax-bureau', data: spec('tax.csv', false) },
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
