/**
 * A participant lost mid-job: the rounds go on with the others (at least min_participants), the record names who
 * was dropped and why, and the model is still as good as the pooled one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { HOMO_PARTIES, TestFederation, UCI, horizontalJob, pooledUciBaseline, uciHomoSpec } from './helpers/federation.js';
import { CoordinatorClient } from '../src/client.js';
import { readLedger } from '../src/ledger/read.js';
import { stringify } from 'yaml';
import type { JobEvent } from '../src/wire/messages.js';

const NAMES = ['bank-a', 'bank-b', 'bank-c'];
const files = HOMO_PARTIES.map((p) => join(UCI, `fate_default_credit_homo_${p}.csv`));

describe('a participant killed mid-job (kill -9)', () => {
  let fed: TestFederation;
  beforeAll(async () => {
    fed = await TestFederation.start(NAMES.map((name, i) => ({ name, data: uciHomoSpec(files[i]!) })));
  });
  afterAll(async () => {
    await fed?.stop();
  });

  it('the job completes with the other two, the ledger names the dropped one, and AUC stays within 0.01 of pooled', async () => {
    const job = horizontalJob({ participants: NAMES, training: { rounds: 8, min_participants: 2, round_timeout_s: 30 } });
    const client = new CoordinatorClient(fed.cluster.address);
    const jobId = await client.submitJob(stringify(job), 'test-bank');
    const events: JobEvent[] = [];
    let killed: Promise<void> | undefined;
    const last = await client.watchJob(jobId, (e) => {
      events.push(e);
      if (e.progress?.round === 2 && !killed) killed = fed.cluster.kill('bank-c', 'SIGKILL');
    });
    await killed;
    expect(last.state, last.message).toBe('succeeded');
    const rounds = events.filter((e) => e.progress).map((e) => e.progress!);
    expect(rounds).toHaveLength(8);
    expect(rounds[0]!.participants).toHaveLength(3);
    const after = rounds.slice(3);
    for (const r of after) {
      expect(r.participants).toEqual(['bank-a', 'bank-b']);
      expect(r.dropped.join(' ')).toContain('bank-c');
    }
    const { entries } = readLedger(join(fed.dir, 'coordinator-state', 'ledger'));
    const closed = entries.filter((e) => e.entry.jobId === jobId && e.entry.kind === 'round_closed').map((e) => e.body as { round: number; dropped: string[] });
    expect(closed.at(-1)!.dropped.join(' ')).toContain('bank-c');

    // Model quality: the published model against the pooled LR on the held-out rows.
    const downloaded = await client.downloadModel(jobId);
    client.close();
    const { pooled: pooledMetrics, scoreModel } = await pooledUciBaseline(job);
    const pooled = pooledMetrics.auc;
    const federated = (await scoreModel(downloaded)).auc;
    console.log(`after losing bank-c at round 2: federated AUC ${federated.toFixed(4)}, pooled ${pooled.toFixed(4)}`);
    expect(Math.abs(federated - pooled)).toBeLessThanOrEqual(0.01);
  });
});
