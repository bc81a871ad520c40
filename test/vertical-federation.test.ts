/**
 * Vertical logistic regression over real processes on loopback: the UCI default-credit hetero split, the bank
 * (guest: labels + 13 features) and the tax bureau (host: 10 features), aligned by PSI and trained with CKKS. What
 * needs processes stays here: a party killed and restarted, the files each party keeps, the ledger an auditor
 * replays, and a refusal by the coordinator. The model's quality against the pooled and bank-only baselines is
 * test/vertical-quality.test.ts, the same job in one process.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { VerticalJobSpec } from '../src/config/schemas.js';
import { loadDataset } from '../src/data/csv.js';
import { readLedger } from '../src/ledger/read.js';
import { replayLedger } from '../src/jobs/replay.js';
import { TestFederation } from './helpers/federation.js';
import { alignedByHoldout, participantJobDir, runKillingMidTraining, uciHeteroSlice, verticalJob } from './helpers/vertical.js';

describe('vertical LR on UCI default credit (bank + tax bureau)', () => {
  let fed: TestFederation;
  // The first 15,000 enterprises (three batches an epoch, so the kill after nine lands in the last epoch): the
  // properties here are the rejoin, the files and the record, not the model, and the PSI of all 30,000 took longest.
  const uci = uciHeteroSlice(15_000);
  beforeAll(async () => {
    fed = await TestFederation.start([
      { name: 'bank', data: uci('guest') },
      { name: 'tax-bureau', data: uci('host') },
    ]);
  });
  afterAll(async () => {
    await fed?.stop();
    rmSync(uci.dir, { recursive: true, force: true });
  });

  it('a host killed mid-training (kill -9) and restarted within the grace period rejoins from its last step; the job completes', async () => {
    const job = verticalJob({ training: { epochs: 4, patience: 0, grace_period_s: 60 } });
    const { jobId, last, events, restored } = await runKillingMidTraining(fed, 'tax-bureau', job);
    expect(last.state, last.message).toBe('succeeded');
    expect(events.some((e) => /enterprises shared by all parties/.test(e.message))).toBe(true);
    const entries = readLedger(fed.ledgerDir).entries.filter((e) => e.entry.jobId === jobId);
    const kinds = entries.map((e) => e.entry.kind);
    expect(kinds).toContain('job_paused');
    expect(kinds).toContain('job_resumed');
    expect(restored).toBe(true);
    const published = entries.find((e) => e.entry.kind === 'model_published')!.body as { test: { auc: number; rows: number } };
    expect(published.test.auc).toBeGreaterThan(0.7);
    // The PSI over the wire held out the enterprises the in-memory alignment (as test/vertical-quality.test.ts uses it) holds out.
    const aligned = alignedByHoldout(await loadDataset(uci('guest')), await loadDataset(uci('host')), VerticalJobSpec.parse(job));
    expect(published.test.rows).toBe(aligned.test.length);

    // The bank keeps its held-out scores and its model part in its job folder; the tax bureau keeps only its own part.
    const scores = readFileSync(join(participantJobDir(fed.dir, 'bank', jobId), 'test-scores.csv'), 'utf8')
      .trim()
      .split('\n');
    expect(scores.length - 1).toBe(published.test.rows);
    const hostPart = JSON.parse(readFileSync(join(participantJobDir(fed.dir, 'tax-bureau', jobId), 'model-part.json'), 'utf8'));
    expect(hostPart.weights).toHaveLength(10);
    expect(hostPart.intercept).toBeUndefined();

    // An auditor's replay: every batch followed the protocol, and the manifest commits to the parts kept.
    const replay = await replayLedger(fed.ledgerDir, { jobId });
    expect(replay.ok, replay.jobs[0]?.failures.join('; ')).toBe(true);
    expect(replay.jobs[0]!.rounds.length).toBeGreaterThan(3);
    expect(replay.jobs[0]!.publishedModelOk).toBe(true);
  });

  it('a binned job refuses two parties offering a column of the same name, naming both and the fix', async () => {
    // The UCI hetero files name their columns x0, x1, … at both parties.
    const { last } = await fed.run({ ...verticalJob({ training: { epochs: 1 } }), binning: {} });
    expect(last.state).toBe('failed');
    expect(last.message).toMatch(/both bank and tax-bureau offer a column named x0/);
    expect(last.message).toMatch(/rename the column at one party/);
  });
});
