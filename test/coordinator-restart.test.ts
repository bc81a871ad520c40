/**
 * Finished jobs and published models outlive the coordinator: after a restart, `job status`, `job watch`,
 * `job model` and scoring against a vertical model answer as they did before it, from the ledger alone.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { loadDataset } from '../src/data/csv.js';
import { requestScores } from '../src/vertical/score-client.js';
import type { JobEvent, JobStatus } from '../src/wire/messages.js';
import { TestFederation } from './helpers/federation.js';
import { participantJobDir, uciHeteroSlice, verticalJob } from './helpers/vertical.js';

describe('a coordinator restarted after its jobs ended (UCI hetero, bank + tax bureau)', () => {
  let fed: TestFederation;
  // The first 10,000 enterprises: what outlives a restart does not depend on how many were trained on.
  const uci = uciHeteroSlice(10_000);
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

  it('serves the finished and failed jobs, the model and scoring as before the restart', async () => {
    const train = await fed.run(verticalJob({ training: { epochs: 2, patience: 0 } }));
    expect(train.last.state, train.last.message).toBe('succeeded');
    const ids = (await loadDataset(uci('guest'))).ids.slice(0, 25);
    const stateDir = join(fed.dir, 'fedcredit-state', 'bank');
    const score = async () =>
      requestScores({
        coordinator: fed.cluster.address,
        transport: await fed.identity('bank', 'submitter'),
        organisation: 'bank',
        stateDir,
        modelJob: train.jobId,
        ids,
        purpose: 'test: scoring across a restart',
      });

    // A scoring job that fails at once: it names a model this coordinator never trained.
    const failing = await fed.run({
      name: 'score-nothing',
      kind: 'vertical-score',
      purpose: 'test',
      model_job: 'job-20000101-nothere',
      guest: 'bank',
      hosts: ['tax-bureau'],
      ids_file: 'none.csv',
      id_format: 'any',
    });
    expect(failing.last.state).toBe('failed');

    const client = await fed.client();
    const seen = async () => {
      const events: JobEvent[] = [];
      await client.watchJob(train.jobId, (e) => events.push(e));
      return {
        status: await client.getJob(train.jobId),
        failed: await client.getJob(failing.jobId),
        model: await client.downloadModel(train.jobId),
        // What a watcher of the finished job is shown: its epochs and its end.
        events: events
          .filter((e) => e.progress || e.state !== 'running')
          .map((e) => ({ state: e.state, stage: e.stage, message: e.message, round: e.progress?.round ?? null, auc: e.progress?.validationAuc ?? null })),
      };
    };
    const before = await seen();
    const scoredBefore = await score();
    client.close();

    await fed.cluster.kill('coordinator', 'SIGKILL');
    await fed.cluster.restartCoordinator();

    const after = await fed.client();
    const statusAfter = await after.getJob(train.jobId);
    const strip = (s: JobStatus) => ({ ...s, modelSha256: Buffer.from(s.modelSha256).toString('hex') });
    expect(strip(statusAfter)).toEqual(strip(before.status));
    expect(before.status.state).toBe('succeeded');
    expect(before.status.roundsDone).toBe(2);

    const failedAfter = await after.getJob(failing.jobId);
    expect(failedAfter.state).toBe('failed');
    expect(failedAfter.message).toMatch(/knows no job job-20000101-nothere/);
    expect(strip(failedAfter)).toEqual(strip(before.failed));

    const eventsAfter: JobEvent[] = [];
    const last = await after.watchJob(train.jobId, (e) => eventsAfter.push(e));
    expect(last.state).toBe('succeeded');
    expect(
      eventsAfter
        .filter((e) => e.progress || e.state !== 'running')
        .map((e) => ({ state: e.state, stage: e.stage, message: e.message, round: e.progress?.round ?? null, auc: e.progress?.validationAuc ?? null })),
    ).toEqual(before.events);

    const modelAfter = await after.downloadModel(train.jobId);
    expect(Object.keys(modelAfter)).toEqual(Object.keys(before.model));
    for (const name of Object.keys(modelAfter)) expect(Buffer.from(modelAfter[name]!).equals(Buffer.from(before.model[name]!))).toBe(true);

    // The published vertical model still scores, with the same figures (the participants reconnect by themselves).
    const scoredAfter = await score();
    expect(scoredAfter.csv).toBe(scoredBefore.csv);
    expect(scoredAfter.csv.trim().split('\n')).toHaveLength(ids.length + 1);

    // The scoring job run before the restart is served too, with its summary as its artifact (to the bank, which ran it).
    const bank = await fed.client('bank');
    const scoring = await bank.getJob(scoredBefore.jobId);
    bank.close();
    expect(scoring.state).toBe('succeeded');
    expect(scoring.message).toBe(scoredBefore.message);
    after.close();
  });

  it('a vertical job the restarted coordinator cannot continue (its arbiter key lost) is failed, and every party deletes what it kept to rejoin it', async () => {
    const client = await fed.client();
    const jobId = await client.submitJob(stringify(verticalJob({ training: { epochs: 6, patience: 0 } })), 'test-bank');
    let killed: Promise<void> | undefined;
    await client
      .watchJob(jobId, (e) => {
        if (e.progress?.round === 1 && !killed) killed = fed.cluster.kill('coordinator', 'SIGKILL');
      })
      .catch(() => undefined); // the watch breaks with the coordinator
    await killed;
    client.close();
    const dirs = ['bank', 'tax-bureau'].map((org) => participantJobDir(fed.dir, org, jobId));
    // Mid-job, each party keeps its per-job X25519 key and progress, to rejoin after a restart of its own.
    for (const dir of dirs) expect(readdirSync(dir)).toEqual(expect.arrayContaining(['box-x25519.pem', 'progress.json', 'vertical-setup.bin']));
    // So does the coordinator keep the arbiter's secret key (mode 0600); without it the job cannot go on.
    const arbiterKey = join(fed.stateDir, 'jobs', jobId, 'arbiter', 'ckks-secret.key');
    expect(statSync(arbiterKey).mode & 0o777).toBe(0o600);
    rmSync(arbiterKey);

    await fed.cluster.restartCoordinator();
    const after = await fed.client();
    const status = await after.getJob(jobId);
    after.close();
    expect(status.state).toBe('failed');
    expect(status.stage).toBe('recovery');
    expect(status.message).toMatch(/arbiter's CKKS secret key of the job is not in/);
    // Told at reconnection (the participants find the restarted coordinator by themselves, with back-off).
    const deadline = Date.now() + 90_000;
    const state = (dir: string) => JSON.parse(readFileSync(join(dir, 'job.json'), 'utf8')).state as string;
    while (Date.now() < deadline && dirs.some((d) => state(d) !== 'failed')) await new Promise((r) => setTimeout(r, 250));
    for (const dir of dirs) {
      expect(state(dir)).toBe('failed');
      expect(readdirSync(dir)).toEqual(['job.json']);
    }
  });
});
