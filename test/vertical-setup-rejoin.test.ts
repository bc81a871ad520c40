/**
 * A party of a vertical job lost while the job's setup (the keys and every party's bound box key) is in flight: the
 * coordinator cannot tell whether it arrived, so it sends it again when the party is back, before asking it for the
 * first step; the party installs the same setup once and refuses another (participant/vertical-channel.ts).
 *
 * Over gRPC with mutual TLS: the host's process is frozen (SIGSTOP) as the arbiter starts its CKKS keys, so the setup
 * reaches a party that does not read it; the coordinator finds the host unreachable (liveness_timeout_s) and drops
 * its stream; the host runs again once the setup was sent and `keys_ready` recorded. The PSI step pauses for it, the
 * host reconnects with the job in memory, gets the setup again, and the job publishes the AUC of the job in the clear.
 */
import { describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { readLedger } from '../src/ledger/read.js';
import { verifyLedger } from '../src/ledger/verify.js';
import { replayLedger } from '../src/jobs/replay.js';
import { awaitSucceeded } from './helpers/federation.js';
import { clearUciSliceAuc, uciHeteroPairForSuite, verticalJob } from './helpers/vertical.js';

const ROWS = 2000;
/** As test/participant-liveness.test.ts allows a vertical job's parties, whose steps keep their event loops busy for seconds under load. */
const LIVENESS_TIMEOUT_S = 6;
const JOB = verticalJob({ training: { epochs: 1, patience: 0, batch_size: 1024, grace_period_s: 60 } });

describe('a vertical party lost while its setup is in flight (gRPC, mutual TLS)', () => {
  const pair = uciHeteroPairForSuite(ROWS, { coordinator: { liveness_timeout_s: LIVENESS_TIMEOUT_S } }, (fed) => fed.cluster.process('tax-bureau')?.kill('SIGCONT'));

  /**
   * Submits the job and freezes (SIGSTOP) the host as the arbiter starts making its CKKS keys; waits until the
   * coordinator drops the frozen host (`coordinatorLogSince`) and sends the setup, then `after` acts on the host.
   */
  const submitFreezingHostUntilSetupSent = async (coordinatorLogSince: () => string, after: (host: ChildProcess) => unknown) => {
    const { fed, ledgerDir } = pair;
    const started = Date.now();
    const client = await fed.client();
    const jobId = await client.submitJob(stringify(JOB), 'test-bank');
    const host = fed.cluster.process('tax-bureau')!;
    let frozen = false;
    const running = client.watchJob(jobId, (e) => {
      if (!frozen && /generating the CKKS keys/.test(e.message)) frozen = host.kill('SIGSTOP');
    });
    const entries = () => readLedger(ledgerDir).entries.filter((e) => e.entry.jobId === jobId);
    const waitFor = async (what: () => boolean, ms: number) => {
      const deadline = Date.now() + ms;
      while (Date.now() < deadline && !what()) await new Promise((r) => setTimeout(r, 100));
      return what();
    };
    try {
      expect(await waitFor(() => frozen, 60_000), 'the host frozen as the arbiter makes the keys').toBe(true);
      const unreachable = () => /"participant":"tax-bureau"[^\n]*participant unreachable/.test(coordinatorLogSince());
      expect(await waitFor(unreachable, 60_000), 'the coordinator drops the frozen host').toBe(true);
      expect(await waitFor(() => entries().some((e) => e.entry.kind === 'keys_ready'), 60_000), 'the setup was sent').toBe(true);
    } finally {
      await after(host);
    }
    return { started, client, jobId, running, entries };
  };

  it('gets the setup again when it is back, before the first step; the job publishes the AUC of the job in the clear; the ledger verifies and replays', async () => {
    const { fed, ledgerDir, slice } = pair;
    const coordinatorLog = () => readFileSync(join(fed.dir, 'logs', 'coordinator.log'), 'utf8');
    const from = coordinatorLog().length;
    const { started, client, jobId, running, entries } = await submitFreezingHostUntilSetupSent(
      () => coordinatorLog().slice(from),
      (host) => host.kill('SIGCONT'),
    );
    const seconds = await awaitSucceeded(running, client, started);
    const resent = coordinatorLog()
      .slice(from)
      .split('\n')
      .filter((line) => line.includes("the job's setup sent again"))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(resent).toContainEqual(expect.objectContaining({ job: jobId, participant: 'tax-bureau' }));
    // The PSI step (step 1) paused for the host and ran again once it was back.
    const kinds = entries().map((e) => e.entry.kind);
    const paused = entries().find((e) => e.entry.kind === 'job_paused')?.body;
    expect(paused).toMatchObject({ step: 1, name: 'psi', waiting_for: expect.arrayContaining(['tax-bureau']) });
    expect(kinds.indexOf('keys_ready')).toBeLessThan(kinds.indexOf('job_paused'));

    const clearAuc = await clearUciSliceAuc(JOB, slice);
    const published = entries().find((e) => e.entry.kind === 'model_published')!.body as { test: { auc: number } };
    console.log(
      `ckks vertical over gRPC, ${ROWS} rows, host lost while its setup was in flight: test AUC ${published.test.auc.toFixed(4)} (${seconds.toFixed(1)} s), ${clearAuc.toFixed(4)} in the clear in one process`,
    );
    expect(Math.abs(published.test.auc - clearAuc)).toBeLessThan(0.005);
    const verified = await verifyLedger(ledgerDir, { receiptsDir: fed.dir });
    expect(verified.ok, verified.failure?.detail).toBe(true);
    const replay = await replayLedger(ledgerDir, { jobId });
    expect(replay.ok, replay.jobs[0]?.failures.join('; ')).toBe(true);
  }, 180_000);

  it('a host whose process is killed (SIGKILL) before its setup reached it and restarted comes back with its box key and takes the setup sent again; the AUC of the job in the clear', async () => {
    const { fed, ledgerDir, slice } = pair;
    const logOf = (org: string) => join(fed.dir, 'logs', `${org}.log`);
    const from = new Map(['coordinator', 'tax-bureau'].map((org) => [org, readFileSync(logOf(org), 'utf8').length]));
    const since = (org: string) => readFileSync(logOf(org), 'utf8').slice(from.get(org));
    const { started, client, jobId, running, entries } = await submitFreezingHostUntilSetupSent(
      () => since('coordinator'),
      () => fed.cluster.kill('tax-bureau', 'SIGKILL'),
    );
    fed.cluster.startParticipant('tax-bureau');
    const seconds = await awaitSucceeded(running, client, started);
    expect(since('tax-bureau'), 'the restarted host rejoined from its job folder').toMatch(/vertical job restored before its setup arrived/);
    expect(since('coordinator')).toMatch(new RegExp(`"job":"${jobId}"[^\n]*"participant":"tax-bureau"[^\n]*the job's setup sent again`));
    const clearAuc = await clearUciSliceAuc(JOB, slice);
    const published = entries().find((e) => e.entry.kind === 'model_published')!.body as { test: { auc: number } };
    console.log(
      `ckks vertical over gRPC, ${ROWS} rows, host killed before its setup arrived and restarted: test AUC ${published.test.auc.toFixed(4)} (${seconds.toFixed(1)} s), ${clearAuc.toFixed(4)} in the clear in one process`,
    );
    expect(Math.abs(published.test.auc - clearAuc)).toBeLessThan(0.005);
    const replay = await replayLedger(ledgerDir, { jobId });
    expect(replay.ok, replay.jobs[0]?.failures.join('; ')).toBe(true);
  }, 180_000);
});
