/**
 * Vertical logistic regression over real processes on loopback: the UCI default-credit hetero split, the bank
 * (guest: labels + 13 features) and the tax bureau (host: 10 features), aligned by PSI and trained with CKKS.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { VerticalJobSpec } from '../src/config/schemas.js';
import { loadDataset } from '../src/data/csv.js';
import { verticalBaselines } from '../src/vertical/baseline.js';
import { readLedger } from '../src/ledger/read.js';
import { replayLedger } from '../src/jobs/replay.js';
import { TestFederation } from './helpers/federation.js';
import { participantJobDir, runKillingMidTraining, uciHeteroSpec, UCI_GUEST_FEATURES, UCI_HOST_FEATURES, verticalJob } from './helpers/vertical.js';

describe('vertical LR on UCI default credit (bank + tax bureau)', () => {
  let fed: TestFederation;
  beforeAll(async () => {
    fed = await TestFederation.start([
      { name: 'bank', data: uciHeteroSpec('guest') },
      { name: 'tax-bureau', data: uciHeteroSpec('host') },
    ]);
  });
  afterAll(async () => fed?.stop());

  it('trains with CKKS to within 0.005 AUC of the centralised LR on the pooled columns, well above the bank alone', async () => {
    const job = verticalJob();
    const { jobId, last, events } = await fed.run(job);
    expect(last.state, last.message).toBe('succeeded');
    expect(events.some((e) => /enterprises shared by all parties/.test(e.message))).toBe(true);

    const spec = VerticalJobSpec.parse(job);
    const baselines = verticalBaselines(
      [
        { organisation: 'bank', data: await loadDataset(uciHeteroSpec('guest')), features: UCI_GUEST_FEATURES },
        { organisation: 'tax-bureau', data: await loadDataset(uciHeteroSpec('host')), features: UCI_HOST_FEATURES },
      ],
      spec,
    );
    const ledger = readLedger(join(fed.dir, 'coordinator-state', 'ledger'));
    const published = ledger.entries.find((e) => e.entry.kind === 'model_published' && e.entry.jobId === jobId)!.body as {
      test: { auc: number; ks: number; rows: number; evaluation: { gini: number; deciles: { count: number; lift: number }[]; confusion: { approvalRate: number }; calibration: { count: number }[] } };
    };
    const fedAuc = published.test.auc;
    console.log(
      `vertical UCI: federated AUC ${fedAuc.toFixed(4)} KS ${published.test.ks.toFixed(4)}; pooled ${baselines.pooled.auc.toFixed(4)}; guest only ${baselines.guestOnly.auc.toFixed(4)}; intersection ${baselines.intersection}`,
    );
    expect(published.test.rows).toBe(baselines.pooled.n);
    // The bank's evaluation report travels with the model: aggregates over the held-out rows only.
    const ev = published.test.evaluation;
    expect(ev.gini).toBeCloseTo(2 * fedAuc - 1, 6);
    expect(ev.deciles.reduce((n, d) => n + d.count, 0)).toBe(published.test.rows);
    expect(ev.deciles[0]!.lift).toBeGreaterThan(ev.deciles[9]!.lift);
    expect(ev.calibration.reduce((n, b) => n + b.count, 0)).toBe(published.test.rows);
    expect(ev.confusion.approvalRate).toBeGreaterThan(0);
    expect(fedAuc).toBeGreaterThan(baselines.pooled.auc - 0.005);
    expect(fedAuc).toBeGreaterThan(baselines.guestOnly.auc + 0.05);

    // The bank keeps its held-out scores and its model part; the tax bureau keeps only its own part.
    const scores = readFileSync(join(participantJobDir(fed.dir, 'bank', jobId), 'test-scores.csv'), 'utf8')
      .trim()
      .split('\n');
    expect(scores.length - 1).toBe(published.test.rows);
    const hostPart = JSON.parse(readFileSync(join(participantJobDir(fed.dir, 'tax-bureau', jobId), 'model-part.json'), 'utf8'));
    expect(hostPart.weights).toHaveLength(10);
    expect(hostPart.intercept).toBeUndefined();

    // An auditor's replay: every batch followed the protocol, and the manifest commits to the parts kept.
    const replay = await replayLedger(join(fed.dir, 'coordinator-state', 'ledger'), { jobId });
    expect(replay.ok, replay.jobs[0]?.failures.join('; ')).toBe(true);
    expect(replay.jobs[0]!.rounds.length).toBeGreaterThan(3);
    expect(replay.jobs[0]!.publishedModelOk).toBe(true);
  });

  it('a host killed mid-training (kill -9) and restarted within the grace period rejoins from its last step; the job completes', async () => {
    const { jobId, last, restored } = await runKillingMidTraining(fed, 'tax-bureau', verticalJob({ training: { epochs: 4, patience: 0, grace_period_s: 60 } }));
    expect(last.state, last.message).toBe('succeeded');
    const entries = readLedger(join(fed.dir, 'coordinator-state', 'ledger')).entries.filter((e) => e.entry.jobId === jobId);
    const kinds = entries.map((e) => e.entry.kind);
    expect(kinds).toContain('job_paused');
    expect(kinds).toContain('job_resumed');
    expect(restored).toBe(true);
    const published = entries.find((e) => e.entry.kind === 'model_published')!.body as { test: { auc: number } };
    expect(published.test.auc).toBeGreaterThan(0.7);
    const replay = await replayLedger(join(fed.dir, 'coordinator-state', 'ledger'), { jobId });
    expect(replay.ok, replay.jobs[0]?.failures.join('; ')).toBe(true);
  });

  it('a binned job refuses two parties offering a column of the same name, naming both and the fix', async () => {
    // The UCI hetero files name their columns x0, x1, … at both parties.
    const { last } = await fed.run({ ...verticalJob({ training: { epochs: 1 } }), binning: {} });
    expect(last.state).toBe('failed');
    expect(last.message).toMatch(/both bank and tax-bureau offer a column named x0/);
    expect(last.message).toMatch(/rename the column at one party/);
  });
});
