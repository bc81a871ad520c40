/**
 * A vertical-lr job under a collective gradient key (encryption.scheme ckks-threshold) rejoined after a restart.
 * Every shareholder (the arbiter, the guest, each host) keeps in its job folder, mode 0600, what it needs to go on:
 * its secret-key share, the sums that rebuild the collective keys, and its record of every decryption share it gave,
 * so that a restarted party never gives a second share for a ciphertext or a label. All of it goes when the job ends.
 *
 * Over gRPC with mutual TLS: a host killed (SIGKILL) mid-training and restarted rejoins, and the job publishes the
 * AUC of an uninterrupted run. In one process: a party restarted from its job folder refuses a second share for a
 * ciphertext it shared before the restart.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { readLedger } from '../src/ledger/read.js';
import { verifyLedger } from '../src/ledger/verify.js';
import { replayLedger } from '../src/jobs/replay.js';
import type { EphemeralFederation } from '../src/federation/ephemeral.js';
import { COLLECTIVE_FILES } from '../participant/job-store.js';
import { csvHead, TestFederation, UCI } from './helpers/federation.js';
import { participantJobDir, uciHeteroSpec, verticalJob } from './helpers/vertical.js';

const ROWS = 4000;
const JOB = verticalJob({ training: { epochs: 3, patience: 0, batch_size: 1024, grace_period_s: 90 }, encryption: { scheme: 'ckks-threshold' } });

const mode = (path: string) => statSync(path).mode & 0o777;
const octal = (m: number) => `0${m.toString(8)}`;

describe('a ckks-threshold vertical job rejoined after a party restarts (gRPC, mutual TLS)', () => {
  let fed: EphemeralFederation;
  let data: string;
  beforeAll(async () => {
    data = mkdtempSync(join(tmpdir(), 'fc-vthreshold-rejoin-'));
    const guest = csvHead(join(UCI, 'fate_default_credit_hetero_guest.csv'), ROWS, join(data, 'guest.csv'));
    const host = csvHead(join(UCI, 'fate_default_credit_hetero_host.csv'), ROWS, join(data, 'host.csv'));
    fed = await TestFederation.start([
      { name: 'bank', data: { ...uciHeteroSpec('guest'), path: guest } },
      { name: 'tax-bureau', data: { ...uciHeteroSpec('host'), path: host } },
    ]);
  });
  afterAll(async () => {
    await fed?.stop();
    rmSync(data, { recursive: true, force: true });
  });

  it('a host killed (SIGKILL) mid-training and restarted rejoins with its key share and memory of shares given; the AUC of the uninterrupted job; the ledger replays; nothing kept after the end', async () => {
    const started = Date.now();
    const uninterrupted = await fed.run(JOB);
    uninterrupted.client.close();
    expect(uninterrupted.last.state, uninterrupted.last.message).toBe('succeeded');
    const uninterruptedSeconds = (Date.now() - started) / 1000;

    // The same job again; the tax bureau is killed once it has run four mini-batches (in epoch 2 of 3).
    const logFile = join(fed.dir, 'logs', 'tax-bureau.log');
    const before = readFileSync(logFile, 'utf8').length;
    const log = () => readFileSync(logFile, 'utf8').slice(before);
    const killedAt = Date.now();
    const client = await fed.client();
    const jobId = await client.submitJob(stringify(JOB), 'test-bank');
    const running = client.watchJob(jobId, () => undefined);
    const deadline = Date.now() + 180_000;
    while (Date.now() < deadline && (log().match(/"name":"batch"/g) ?? []).length < 4) await new Promise((r) => setTimeout(r, 100));
    await fed.cluster.kill('tax-bureau', 'SIGKILL');

    // What the killed host left to rejoin with, and the arbiter's: files of mode 0600 in folders of mode 0700.
    const hostDir = participantJobDir(fed.dir, 'tax-bureau', jobId);
    const arbiterDir = join(fed.dir, 'coordinator-state', 'jobs', jobId, 'arbiter');
    expect(octal(mode(hostDir))).toBe('0700');
    expect(octal(mode(arbiterDir))).toBe('0700');
    const kept = [...Object.values(COLLECTIVE_FILES).map((name) => join(hostDir, name)), ...readdirSync(arbiterDir).map((name) => join(arbiterDir, name))];
    for (const file of kept) expect(octal(mode(file)), file).toBe('0600');
    const sizes = Object.fromEntries(kept.map((file) => [file.slice(fed.dir.length + 1), statSync(file).size]));
    console.log(`kept to rejoin (bytes): ${JSON.stringify(sizes)}`);
    const given = JSON.parse(readFileSync(join(hostDir, COLLECTIVE_FILES.sharesGiven), 'utf8')) as { issued: { ciphertextDigest: string; purpose: string }[] };
    expect(given.issued.length, 'the host gave shares before it was killed').toBeGreaterThanOrEqual(4);

    fed.cluster.startParticipant('tax-bureau');
    const last = await running;
    client.close();
    const resumedSeconds = (Date.now() - killedAt) / 1000;
    expect(last.state, last.message).toBe('succeeded');
    expect(log()).toMatch(/collective gradient key share restored from the job folder/);
    expect(log()).toMatch(/vertical job restored from its job folder; rejoining/);

    const ledgerDir = join(fed.dir, 'coordinator-state', 'ledger');
    const entries = readLedger(ledgerDir).entries;
    const of = (id: string) => entries.filter((e) => e.entry.jobId === id);
    const auc = (id: string) => (of(id).find((e) => e.entry.kind === 'model_published')!.body as { test: { auc: number } }).test.auc;
    console.log(
      `ckks-threshold vertical over gRPC, ${ROWS} rows: test AUC ${auc(jobId).toFixed(4)} with the host killed and restarted (${resumedSeconds.toFixed(1)} s), ${auc(uninterrupted.jobId).toFixed(4)} uninterrupted (${uninterruptedSeconds.toFixed(1)} s)`,
    );
    expect(Math.abs(auc(jobId) - auc(uninterrupted.jobId))).toBeLessThan(0.005);
    expect(of(jobId).map((e) => e.entry.kind)).toEqual(expect.arrayContaining(['job_paused', 'job_resumed']));

    // The restarted host went on from its record: no ciphertext and no label twice, across the restart.
    const hostShares = of(jobId)
      .filter((e) => e.entry.kind === 'decryption_shares' && (e.body as { participant: string }).participant === 'tax-bureau')
      .map((e) => e.body as { ciphertext_sha256: string; purpose: string });
    expect(new Set(hostShares.map((s) => s.purpose)).size).toBe(hostShares.length);
    expect(new Set(hostShares.map((s) => s.ciphertext_sha256)).size).toBe(hostShares.length);

    expect((await verifyLedger(ledgerDir, { receiptsDir: fed.dir })).ok).toBe(true);
    const replay = await replayLedger(ledgerDir, { jobId });
    expect(replay.ok, replay.jobs[0]?.failures.join('; ')).toBe(true);
    expect(replay.jobs[0]!.publishedModelOk).toBe(true);

    // The job is over: every key share and record of shares is gone, at both parties and at the arbiter.
    for (const org of ['bank', 'tax-bureau']) for (const name of Object.values(COLLECTIVE_FILES)) expect(existsSync(join(participantJobDir(fed.dir, org, jobId), name)), `${org}/${name}`).toBe(false);
    expect(existsSync(arbiterDir)).toBe(false);
  });
});
