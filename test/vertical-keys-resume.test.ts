/**
 * A vertical-lr job whose coordinator is killed (SIGKILL, as `kill -9`) after every party accepted it and before it
 * recorded `keys_ready`, with its keys made: the restarted coordinator restores them from its state folder (the
 * arbiter's CKKS secret key, or its share of the collective key checked against `collective_key_ready`) and sends the
 * setup it first sent, unchanged, to every party; a party that installed it takes it as a no-op (it refuses any other
 * setup: no key is swapped), and the job goes on from its PSI step. No second key, no second ceremony.
 *
 * Over gRPC with mutual TLS, on the first 2,000 rows of the UCI hetero split:
 * - `ckks`: the host stops itself (SIGSTOP) as it would write the setup it received, so it installs none, and the
 *   coordinator is held as it would write `keys_ready` (both by test/helpers/kill-at-entry.mjs), then killed once the
 *   guest installed the setup.
 * - `ckks-threshold`: the coordinator killed at an exact ledger point: held as it would write `keys_ready` until both
 *   parties installed the setup, or once `collective_key_ready` is on disk (no setup sent yet).
 * And killed just after `keys_ready` with the host stopped before it installed the setup: the restarted coordinator, resuming
 * from the ledger, sends the setup it kept to every party before the first step.
 * And a host (not the coordinator) killed with its setup installed, as it would record its PSI step complete: restarted,
 * it rejoins from its job folder and the PSI runs again.
 * Each job publishes the AUC of the job in the clear; the ledger verifies and replays.
 */
import { describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { stringify } from 'yaml';
import { readLedger } from '../src/ledger/read.js';
import { verifyLedger } from '../src/ledger/verify.js';
import { replayLedger } from '../src/jobs/replay.js';
import { replayVerticalJob } from '../src/audit/replay-vertical.js';
import { decodeMessage } from '../src/wire/proto.js';
import type { VerticalSetup } from '../src/wire/messages.js';
import { hex, sha256 } from '../src/bytes.js';
import { JOB_FILES } from '../participant/job-store.js';
import { arbiterKeyFile } from '../coordinator/vertical-run.js';
import { awaitSucceeded } from './helpers/federation.js';
import { clearUciSliceAuc, participantJobDir, uciHeteroPairForSuite, verticalJob } from './helpers/vertical.js';

const ROWS = 2000;
const TRAINING = { epochs: 1, patience: 0, batch_size: 1024, grace_period_s: 60 };
const CKKS_JOB = verticalJob({ training: TRAINING });
const THRESHOLD_JOB = verticalJob({ training: TRAINING, encryption: { scheme: 'ckks-threshold' } });
const PRELOAD = pathToFileURL(fileURLToPath(new URL('./helpers/kill-at-entry.mjs', import.meta.url))).href;
/** Where the coordinator (from its environment) looks for the kill plan a test writes before it submits a job. */
const PLAN_FILE = join(tmpdir(), `fc-kill-plan-${process.pid}-${randomUUID()}.json`);
/** What a plan that holds the coordinator at an entry waits for (`holdUntil`): the test creates it when the kill is due. */
const GO_FILE = `${PLAN_FILE}.go`;

/** The plan's part that stops the host as it would write the setup it received (kill-at-entry.mjs). */
const HOST_SETUP = { participant: 'tax-bureau', file: JOB_FILES.setup };
/** Whether a process is stopped (state T in /proc), as a party that stopped itself is. */
const stopped = (child: ChildProcess) => {
  try {
    return readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1]?.startsWith('T') ?? false;
  } catch {
    return false;
  }
};

const exited = (child: ChildProcess) => new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));

describe('a vertical job interrupted with its keys made, before its first step completed (gRPC, mutual TLS)', () => {
  // Not dropped for its silence while frozen: the coordinator is killed first.
  const pair = uciHeteroPairForSuite(ROWS, { coordinator: { liveness_timeout_s: 120 }, env: { NODE_OPTIONS: `--import=${PRELOAD}`, FEDCREDIT_TEST_KILL_PLAN: PLAN_FILE } }, (fed) =>
    fed.cluster.process('tax-bureau')?.kill('SIGCONT'),
  );

  const since = (org: string) => {
    const file = join(pair.fed.dir, 'logs', `${org}.log`);
    const from = readFileSync(file, 'utf8').length;
    return () => readFileSync(file, 'utf8').slice(from);
  };
  const jobEntries = (jobId: string) => readLedger(pair.ledgerDir).entries.filter((e) => e.entry.jobId === jobId);
  const waitFor = async (what: () => boolean, ms: number) => {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline && !what()) await new Promise((r) => setTimeout(r, 50));
    return what();
  };

  /** The coordinator started again on its state folder; the seconds from `started` to the job's success. */
  const restartAndAwait = async (jobId: string, started: number) => {
    await pair.fed.cluster.restartCoordinator();
    const after = await pair.fed.client();
    return awaitSucceeded(
      after.watchJob(jobId, () => undefined),
      after,
      started,
    );
  };

  /** A test that failed before it restarted the coordinator leaves none running: the next starts it. */
  const coordinatorRunning = async () => {
    if (!pair.fed.cluster.process('coordinator')) await pair.fed.cluster.restartCoordinator();
  };

  /** After the restart: the job succeeded with the AUC of the job in the clear, once resumed, with one setup; the ledger verifies and replays. */
  const expectResumed = async (job: object, jobId: string, seconds: number, label: string) => {
    const { fed, ledgerDir, slice } = pair;
    const entries = jobEntries(jobId);
    const kinds = entries.map((e) => e.entry.kind);
    // Every party took the setup sent again: the same one where it had arrived, refused nowhere.
    for (const org of ['bank', 'tax-bureau']) expect(readFileSync(join(fed.dir, 'logs', `${org}.log`), 'utf8'), org).not.toMatch(new RegExp(`"job":"${jobId}"[^\n]*vertical job setup failed`));
    // No offer again (each acceptance recorded once), one setup recorded, after the resumption.
    expect(kinds.filter((k) => k === 'data_bound')).toHaveLength(2);
    expect(kinds.filter((k) => k === 'keys_ready')).toHaveLength(1);
    const resumed = entries.filter((e) => e.entry.kind === 'job_resumed').map((e) => e.body);
    expect(resumed).toHaveLength(1);
    expect(kinds.indexOf('job_resumed')).toBeLessThan(kinds.indexOf('keys_ready'));
    const clearAuc = await clearUciSliceAuc(job, slice);
    const published = entries.find((e) => e.entry.kind === 'model_published')!.body as { test: { auc: number } };
    console.log(`${label}: test AUC ${published.test.auc.toFixed(4)} (${seconds.toFixed(1)} s), ${clearAuc.toFixed(4)} in the clear in one process`);
    expect(Math.abs(published.test.auc - clearAuc)).toBeLessThan(0.005);
    const verified = await verifyLedger(ledgerDir, { receiptsDir: fed.dir });
    expect(verified.ok, verified.failure?.detail).toBe(true);
    const replay = await replayLedger(ledgerDir, { jobId });
    expect(replay.ok, replay.jobs[0]?.failures.join('; ')).toBe(true);
    // A record that made the keys twice, or resumed "before keys_ready" after them, does not replay.
    const blob = (ref: { sha256: Uint8Array }) => readFile(join(ledgerDir, 'blobs', hex(ref.sha256)));
    const readyAt = kinds.indexOf('keys_ready');
    const twice = await replayVerticalJob(jobId, [...entries.slice(0, readyAt + 1), ...entries.slice(readyAt)], blob);
    expect(twice.failures.join('; ')).toMatch(/a second keys_ready: the job's keys were put in place twice/);
    const resumedAt = kinds.indexOf('job_resumed');
    const late = [...entries.slice(0, resumedAt), ...entries.slice(resumedAt + 1, readyAt + 1), entries[resumedAt]!, ...entries.slice(readyAt + 1)];
    expect((await replayVerticalJob(jobId, late, blob)).failures.join('; ')).toMatch(
      /a resumption before keys_ready that does not follow every party's acceptance and precede the keys and every step/,
    );
    // The arbiter's key (or share) and the setup it kept go with the job.
    expect(existsSync(dirname(arbiterKeyFile(fed.stateDir, jobId)))).toBe(false);
    return resumed[0]!;
  };

  it('ckks: killed with the setup installed by the guest and not by the frozen host; the restarted coordinator sends the same setup, the guest takes it once, the host installs it; the AUC of the job in the clear', async () => {
    const { fed } = pair;
    await coordinatorRunning();
    const coordinatorLog = since('coordinator');
    const guestLog = since('bank');
    // The coordinator is held as it would record keys_ready (the setup sent), and killed once the guest installed it.
    const go = GO_FILE;
    // The host stops itself as it would write the setup it received (so it installs nothing), whatever the timing.
    writeFileSync(PLAN_FILE, JSON.stringify({ before: 'keys_ready', holdUntil: go, stopBeforeWriting: HOST_SETUP }));
    const started = Date.now();
    const client = await fed.client();
    const host = fed.cluster.process('tax-bureau')!;
    let firstSetup: VerticalSetup;
    let jobId = '';
    try {
      jobId = await client.submitJob(stringify(CKKS_JOB), 'test-bank');
      const watching = client.watchJob(jobId, () => undefined).catch(() => undefined);
      const guestSetup = join(participantJobDir(fed.dir, 'bank', jobId), JOB_FILES.setup);
      expect(await waitFor(() => existsSync(guestSetup), 60_000), 'the guest installed the setup').toBe(true);
      expect(await waitFor(() => stopped(host), 60_000), 'the host stopped as it would install the setup').toBe(true);
      firstSetup = decodeMessage<VerticalSetup>('VerticalSetup', readFileSync(guestSetup));
      const coordinator = fed.cluster.process('coordinator')!;
      writeFileSync(go, '');
      await exited(coordinator);
      expect(coordinator.signalCode, 'the coordinator killed at keys_ready').toBe('SIGKILL');
      await fed.cluster.kill('coordinator');
      await watching;
      expect(existsSync(join(participantJobDir(fed.dir, 'tax-bureau', jobId), JOB_FILES.setup)), 'the frozen host has no setup').toBe(false);
    } finally {
      // The plan first: a host that goes on must not stop again at a setup it writes later.
      rmSync(PLAN_FILE, { force: true });
      rmSync(go, { force: true });
      host.kill('SIGCONT');
      client.close();
    }
    expect(
      jobEntries(jobId).map((e) => e.entry.kind),
      'killed before keys_ready',
    ).not.toContain('keys_ready');

    const seconds = await restartAndAwait(jobId, started);
    const resumed = await expectResumed(CKKS_JOB, jobId, seconds, 'ckks vertical, coordinator killed with the setup in flight');
    expect(resumed).toMatchObject({ coordinator_restart: true, steps_done: 0, before: 'keys_ready', setup_sent_again: true });
    // The keys recorded are those the guest installed before the kill: the same setup, no key made again.
    const ready = jobEntries(jobId).find((e) => e.entry.kind === 'keys_ready')!.body;
    expect(ready.public_key_sha256).toBe(hex(sha256(firstSetup!.ckksPublicKey)));
    expect(ready.psi_salt).toBe(hex(firstSetup!.psiSalt));
    expect(coordinatorLog()).toMatch(new RegExp(`"job":"${jobId}"[^\\n]*resuming the vertical job from its ledger`));
    expect(guestLog()).not.toMatch(/vertical job setup failed/);
  }, 240_000);

  it('ckks: killed just after keys_ready with the host frozen, before the setup reached it; the restarted coordinator sends the kept setup to every party before the first step; the AUC of the job in the clear', async () => {
    const { fed } = pair;
    await coordinatorRunning();
    const coordinatorLog = since('coordinator');
    writeFileSync(PLAN_FILE, JSON.stringify({ after: 'keys_ready', stopBeforeWriting: HOST_SETUP }));
    const started = Date.now();
    const client = await fed.client();
    const host = fed.cluster.process('tax-bureau')!;
    let jobId = '';
    try {
      jobId = await client.submitJob(stringify(CKKS_JOB), 'test-bank');
      const watching = client.watchJob(jobId, () => undefined).catch(() => undefined);
      const coordinator = fed.cluster.process('coordinator')!;
      await Promise.race([exited(coordinator), new Promise((r) => setTimeout(r, 150_000))]);
      expect(coordinator.signalCode, 'the coordinator killed after keys_ready').toBe('SIGKILL');
      await fed.cluster.kill('coordinator');
      await watching;
      expect(existsSync(join(participantJobDir(fed.dir, 'tax-bureau', jobId), JOB_FILES.setup)), 'the frozen host has no setup').toBe(false);
    } finally {
      rmSync(PLAN_FILE, { force: true });
      host.kill('SIGCONT');
      client.close();
    }
    const killed = jobEntries(jobId).map((e) => e.entry.kind);
    expect(killed).toContain('keys_ready');
    expect(killed).not.toContain('step_completed');

    const seconds = await restartAndAwait(jobId, started);
    const { fed: f, ledgerDir, slice } = pair;
    const entries = jobEntries(jobId);
    expect(entries.filter((e) => e.entry.kind === 'keys_ready')).toHaveLength(1);
    expect(entries.find((e) => e.entry.kind === 'job_resumed')?.body).toMatchObject({ coordinator_restart: true, steps_done: 0, step: 1 });
    expect(coordinatorLog()).toMatch(new RegExp(`"job":"${jobId}"[^\n]*"participant":"tax-bureau"[^\n]*the job's setup sent again`));
    for (const org of ['bank', 'tax-bureau']) expect(readFileSync(join(f.dir, 'logs', `${org}.log`), 'utf8'), org).not.toMatch(new RegExp(`"job":"${jobId}"[^\n]*vertical job setup failed`));
    const clearAuc = await clearUciSliceAuc(CKKS_JOB, slice);
    const published = entries.find((e) => e.entry.kind === 'model_published')!.body as { test: { auc: number } };
    console.log(
      `ckks vertical, coordinator killed after keys_ready before the host got the setup: test AUC ${published.test.auc.toFixed(4)} (${seconds.toFixed(1)} s), ${clearAuc.toFixed(4)} in the clear in one process`,
    );
    expect(Math.abs(published.test.auc - clearAuc)).toBeLessThan(0.005);
    const replay = await replayLedger(ledgerDir, { jobId });
    expect(replay.ok, replay.jobs[0]?.failures.join('; ')).toBe(true);
    expect(existsSync(dirname(arbiterKeyFile(f.stateDir, jobId)))).toBe(false);
  }, 240_000);

  it('ckks: a host killed (SIGKILL) with its setup installed, as it would record its PSI step complete, and restarted rejoins from its job folder; the PSI runs again; the AUC of the job in the clear', async () => {
    const { fed, ledgerDir, slice } = pair;
    await coordinatorRunning();
    const hostLogFile = join(fed.dir, 'logs', 'tax-bureau.log');
    writeFileSync(PLAN_FILE, JSON.stringify({ stopBeforeWriting: { participant: 'tax-bureau', file: 'done.json' } }));
    const started = Date.now();
    const client = await fed.client();
    const host = fed.cluster.process('tax-bureau')!;
    let jobId = '';
    let running: Promise<{ state: string; message: string }> | undefined;
    try {
      jobId = await client.submitJob(stringify(CKKS_JOB), 'test-bank');
      running = client.watchJob(jobId, () => undefined);
      expect(await waitFor(() => stopped(host), 90_000), 'the host stopped as it would record its PSI step complete').toBe(true);
      expect(existsSync(join(participantJobDir(fed.dir, 'tax-bureau', jobId), JOB_FILES.setup)), 'the host installed the setup').toBe(true);
    } finally {
      rmSync(PLAN_FILE, { force: true });
    }
    await fed.cluster.kill('tax-bureau', 'SIGKILL');
    const restartedAt = readFileSync(hostLogFile, 'utf8').length;
    fed.cluster.startParticipant('tax-bureau');
    const seconds = await awaitSucceeded(running!, client, started);
    expect(readFileSync(hostLogFile, 'utf8').slice(restartedAt)).toMatch(new RegExp(`"job":"${jobId}"[^\n]*vertical job restored before its PSI step completed`));
    const entries = jobEntries(jobId);
    const kinds = entries.map((e) => e.entry.kind);
    // The job paused in its PSI step (step 1) and ran it again, attempt 1, once the host was back; one setup.
    expect(entries.find((e) => e.entry.kind === 'job_paused')?.body).toMatchObject({ step: 1, waiting_for: ['tax-bureau'] });
    expect(entries.find((e) => e.entry.kind === 'job_resumed')?.body).toMatchObject({ step: 1, attempt: 1, returned: ['tax-bureau'] });
    expect(kinds.filter((k) => k === 'keys_ready')).toHaveLength(1);
    const clearAuc = await clearUciSliceAuc(CKKS_JOB, slice);
    const published = entries.find((e) => e.entry.kind === 'model_published')!.body as { test: { auc: number } };
    console.log(
      `ckks vertical, host killed before its PSI step completed and restarted: test AUC ${published.test.auc.toFixed(4)} (${seconds.toFixed(1)} s), ${clearAuc.toFixed(4)} in the clear in one process`,
    );
    expect(Math.abs(published.test.auc - clearAuc)).toBeLessThan(0.005);
    const replay = await replayLedger(ledgerDir, { jobId });
    expect(replay.ok, replay.jobs[0]?.failures.join('; ')).toBe(true);
  }, 240_000);

  it.each([
    { plan: { before: 'keys_ready', holdUntil: GO_FILE }, sentAgain: true, when: 'as it records keys_ready, the setup installed by both parties' },
    { plan: { after: 'collective_key_ready' }, sentAgain: false, when: 'once collective_key_ready is on disk, no setup sent' },
  ])(
    'ckks-threshold: killed $when; the restarted coordinator restores its share of the collective key (no second ceremony) and the job goes on; the AUC of the job in the clear',
    async ({ plan, sentAgain, when }) => {
      const { fed } = pair;
      await coordinatorRunning();
      writeFileSync(PLAN_FILE, JSON.stringify(plan));
      try {
        const started = Date.now();
        const client = await fed.client();
        const jobId = await client.submitJob(stringify(THRESHOLD_JOB), 'test-bank');
        const watching = client.watchJob(jobId, () => undefined).catch(() => undefined);
        const coordinator = fed.cluster.process('coordinator')!;
        const setupAt = (org: string) => existsSync(join(participantJobDir(fed.dir, org, jobId), JOB_FILES.setup));
        if ('holdUntil' in plan) {
          // Held at keys_ready: killed once both parties installed the setup.
          expect(await waitFor(() => setupAt('bank') && setupAt('tax-bureau'), 150_000), 'both parties installed the setup').toBe(true);
          writeFileSync(GO_FILE, '');
        }
        await Promise.race([exited(coordinator), new Promise((r) => setTimeout(r, 150_000))]);
        expect(coordinator.signalCode, 'the coordinator killed itself at the planned entry').toBe('SIGKILL');
        await fed.cluster.kill('coordinator');
        await watching;
        client.close();
        const kinds = jobEntries(jobId).map((e) => e.entry.kind);
        // Held at keys_ready, both parties hold the setup; killed at collective_key_ready, none does.
        expect(['bank', 'tax-bureau'].map(setupAt)).toEqual([sentAgain, sentAgain]);
        expect(kinds).toContain('collective_key_ready');
        expect(kinds).not.toContain('keys_ready');

        const seconds = await restartAndAwait(jobId, started);
        const resumed = await expectResumed(THRESHOLD_JOB, jobId, seconds, `ckks-threshold vertical, coordinator killed ${when}`);
        expect(resumed).toMatchObject({ coordinator_restart: true, steps_done: 0, before: 'keys_ready', setup_sent_again: sentAgain });
        const entries = jobEntries(jobId);
        // The one key of the one ceremony: no restart, no second key.
        expect(entries.filter((e) => e.entry.kind === 'collective_key_ready')).toHaveLength(1);
        expect(entries.map((e) => e.entry.kind)).not.toContain('key_ceremony_restarted');
      } finally {
        rmSync(PLAN_FILE, { force: true });
        rmSync(GO_FILE, { force: true });
      }
    },
    300_000,
  );
});
