/**
 * A vertical-lr job under a collective gradient key (encryption.scheme ckks-threshold) whose party is killed during
 * the key ceremony. Nothing is encrypted under the key before the setup, so the coordinator restarts the ceremony
 * from the beginning (`key_ceremony_restarted`), every shareholder with a fresh share under the next attempt's
 * transcript, and the job goes on (docs/threshold-ckks.md, "A party lost during the key ceremony").
 *
 * Over gRPC with mutual TLS: the host killed (SIGKILL) while it makes its share and restarted rejoins; the job
 * publishes the AUC of the same job run in the clear in one process; the ledger verifies and replays, and a replay
 * of the same record with the restart moved after the key fails. In one process: a party refuses a restart once
 * its setup arrived (it encrypts under the key from then on), a stale attempt and one beyond the job's bound.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { readLedger } from '../src/ledger/read.js';
import { verifyLedger } from '../src/ledger/verify.js';
import { replayLedger } from '../src/jobs/replay.js';
import { replayVerticalJob } from '../src/audit/replay-vertical.js';
import { COLLECTIVE_FILES, JobStore } from '../participant/job-store.js';
import { VerticalParty, type PartyData } from '../participant/vertical-job.js';
import { ceremonyRestarts, JobSpec, type VerticalJobSpec } from '../src/config/schemas.js';
import type { LoadedDataset } from '../src/data/csv.js';
import type { LoadReport } from '../src/data/load-report.js';
import { createLogger } from '../src/log.js';
import { CkksEngine } from '../src/he/engine.js';
import { collectiveTranscript, verticalCollectiveKeys, verticalCollectiveKeyShare, verticalKeyDigest } from '../src/he/key-ceremony.js';
import { verticalCollectiveRotationSteps } from '../src/he/packing.js';
import { paramsFingerprint, VERTICAL_THRESHOLD_CKKS_PARAMS } from '../src/he/params.js';
import { ThresholdContext } from '../src/he/threshold/context.js';
import { ARBITER_SHAREHOLDER } from '../src/vertical/lr/threshold-opener.js';
import { hex, sha256 } from '../src/bytes.js';
import type { KeyShareEntry, ThresholdCeremony } from '../src/wire/messages.js';
import { awaitSucceeded, ceremonyCommitments, killCoordinatorInCeremony } from './helpers/federation.js';
import { bankTaxSetup, clearUciSliceAuc, uciHeteroPairForSuite, verticalJob } from './helpers/vertical.js';

const ROWS = 2000;
const SHAREHOLDERS = [ARBITER_SHAREHOLDER, 'bank', 'tax-bureau'];
const JOB = verticalJob({ training: { epochs: 1, patience: 0, batch_size: 1024, grace_period_s: 60 }, encryption: { scheme: 'ckks-threshold' } });

describe('a ckks-threshold vertical job whose host is killed during the key ceremony (gRPC, mutual TLS)', () => {
  const pair = uciHeteroPairForSuite(ROWS);
  let clearAucOnce: Promise<number> | undefined;

  /**
   * What both tests check once the job is over: attempt 1's commitments are fresh ones from every shareholder, the
   * job publishes the AUC of the job in the clear, and the ledger verifies and replays.
   */
  const expectFreshSharesAucAndReplay = async (jobId: string, seconds: number, killed: string) => {
    const { fed, ledgerDir, slice } = pair;
    const entries = readLedger(ledgerDir).entries.filter((e) => e.entry.jobId === jobId);
    // Fresh shares: no commitment of the abandoned attempt (the arbiter's among them) comes back in the next.
    const { abandoned, final } = ceremonyCommitments(entries);
    expect(abandoned.map((c) => c.participant)).toContain(ARBITER_SHAREHOLDER);
    expect(final.map((c) => c.participant).sort()).toEqual([...SHAREHOLDERS].sort());
    for (const c of abandoned) expect(final.find((f) => f.participant === c.participant)!.commitment, c.participant).not.toBe(c.commitment);

    // The AUC: the same job in the clear, in one process, over the same rows (run once for both tests).
    clearAucOnce ??= clearUciSliceAuc(JOB, slice);
    const clearAuc = await clearAucOnce;
    const published = entries.find((e) => e.entry.kind === 'model_published')!.body as { test: { auc: number } };
    console.log(
      `ckks-threshold vertical over gRPC, ${ROWS} rows, ${killed} killed in the key ceremony: test AUC ${published.test.auc.toFixed(4)} (${seconds.toFixed(1)} s), ${clearAuc.toFixed(4)} in the clear in one process`,
    );
    expect(Math.abs(published.test.auc - clearAuc)).toBeLessThan(0.005);

    const verified = await verifyLedger(ledgerDir, { receiptsDir: fed.dir });
    expect(verified.ok, verified.failure?.detail).toBe(true);
    const replay = await replayLedger(ledgerDir, { jobId });
    expect(replay.ok, replay.jobs[0]?.failures.join('; ')).toBe(true);
    expect(replay.jobs[0]!.publishedModelOk).toBe(true);
  };

  it('restarts the ceremony with fresh shares once the host is back; the job publishes the AUC of the job in the clear; the ledger verifies and replays; a restart after the key does not replay', async () => {
    const { fed, ledgerDir } = pair;
    const logFile = join(fed.dir, 'logs', 'tax-bureau.log');
    const before = readFileSync(logFile, 'utf8').length;
    const log = () => readFileSync(logFile, 'utf8').slice(before);
    const started = Date.now();
    const client = await fed.client();
    const jobId = await client.submitJob(stringify(JOB), 'test-bank');
    const events: { stage: string; message: string; unixMs: number }[] = [];
    const running = client.watchJob(jobId, (e) => events.push(e));
    // The host is killed as it starts making its share of attempt 0 (about 2 s of work at N = 16384).
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && !/"attempt":0[^\n]*making this party's share/.test(log())) await new Promise((r) => setTimeout(r, 50));
    expect(log(), 'the host began the ceremony').toMatch(/making this party's share of the collective gradient key/);
    await fed.cluster.kill('tax-bureau', 'SIGKILL');
    fed.cluster.startParticipant('tax-bureau');
    const seconds = await awaitSucceeded(running, client, started);
    const at = (re: RegExp) => ((events.find((e) => re.test(e.message))?.unixMs ?? Number.NaN) - started) / 1000;
    console.log(
      `seconds from submission: ceremony restarted ${at(/lost during the key ceremony/).toFixed(1)}, key in place ${at(/collective gradient key in place/).toFixed(1)}, job ended ${seconds.toFixed(1)}`,
    );
    expect(log(), 'the restarted host rejoined from its job folder').toMatch(/vertical job restored during its key ceremony/);

    // The ledger: one restart naming the host, then attempt 1's ceremony, whose key is the job's.
    const entries = readLedger(ledgerDir).entries.filter((e) => e.entry.jobId === jobId);
    const kinds = entries.map((e) => e.entry.kind);
    const restarts = entries.filter((e) => e.entry.kind === 'key_ceremony_restarted');
    expect(restarts.map((e) => e.body)).toEqual([expect.objectContaining({ attempt: 1, lost: ['tax-bureau'] })]);
    const ready = entries.filter((e) => e.entry.kind === 'collective_key_ready');
    expect(ready).toHaveLength(1);
    expect(kinds.indexOf('key_ceremony_restarted')).toBeLessThan(kinds.indexOf('collective_key_ready'));
    const transcript = collectiveTranscript(jobId, SHAREHOLDERS, paramsFingerprint(VERTICAL_THRESHOLD_CKKS_PARAMS), 'vertical', 1);
    expect(ready[0]!.body).toMatchObject({ attempt: 1, transcript_sha256: hex(sha256(transcript)) });
    await expectFreshSharesAucAndReplay(jobId, seconds, 'host');

    // A coordinator that "restarts" the ceremony after the key is in place is caught by the replay.
    const blob = (ref: { sha256: Uint8Array }) => readFile(join(ledgerDir, 'blobs', hex(ref.sha256)));
    const restartAt = kinds.indexOf('key_ceremony_restarted');
    const restart = entries[restartAt]!;
    const readyAt = kinds.indexOf('collective_key_ready');
    const moved = [...entries.slice(0, restartAt), ...entries.slice(restartAt + 1, readyAt + 1), restart, ...entries.slice(readyAt + 1)];
    const tampered = await replayVerticalJob(jobId, moved, blob);
    expect(tampered.failures.join('; ')).toMatch(/the key ceremony was restarted \(attempt 1\) after the collective key was in place/);

    // The job is over: no key share is left at either party.
    for (const org of ['bank', 'tax-bureau'])
      for (const name of Object.values(COLLECTIVE_FILES))
        await expect.poll(() => existsSync(join(fed.dir, 'fedcredit-state', org, 'jobs', jobId, name)), { timeout: 10_000, message: `${org}/${name}` }).toBe(false);
  }, 120_000);

  it('the coordinator killed (SIGKILL) during the key ceremony and restarted restarts it with fresh shares from every shareholder; the AUC of the job in the clear; the ledger verifies and replays', async () => {
    const { fed, ledgerDir } = pair;
    const logOf = (org: string) => join(fed.dir, 'logs', `${org}.log`);
    const before = new Map(['bank', 'tax-bureau', 'coordinator'].map((org) => [org, readFileSync(logOf(org), 'utf8').length]));
    const linesSince = (org: string, jobId: string) =>
      readFileSync(logOf(org), 'utf8')
        .slice(before.get(org))
        .split('\n')
        .filter((line) => line.includes(jobId));
    const started = Date.now();
    const client = await fed.client();
    const jobId = await client.submitJob(stringify(JOB), 'test-bank');
    const watching = client.watchJob(jobId, () => undefined).catch(() => undefined);
    // The coordinator is killed as the host starts making its share of attempt 0 (the host frozen meanwhile).
    const deadline = Date.now() + 60_000;
    const making = () => linesSince('tax-bureau', jobId).some((line) => /"attempt":0[^\n]*making this party's share/.test(line));
    while (Date.now() < deadline && !making()) await new Promise((r) => setTimeout(r, 20));
    expect(making(), 'the host began the ceremony').toBe(true);
    const seconds = await killCoordinatorInCeremony(fed, 'tax-bureau', watching, client, jobId, started);
    expect(linesSince('coordinator', jobId).join('\n')).toMatch(/key ceremony restarted: the coordinator restarted before the key was in place/);
    // Each party wiped the share it made for the killed attempt before it made the next one.
    for (const org of ['bank', 'tax-bureau']) expect(linesSince(org, jobId).join('\n'), org).toMatch(/key ceremony restarted by the coordinator/);

    // The ledger: one restart, by the coordinator's, then attempt 1's ceremony, whose key is the job's.
    const entries = readLedger(ledgerDir).entries.filter((e) => e.entry.jobId === jobId);
    const kinds = entries.map((e) => e.entry.kind);
    const restarts = entries.filter((e) => e.entry.kind === 'key_ceremony_restarted');
    expect(restarts.map((e) => e.body)).toEqual([expect.objectContaining({ attempt: 1, lost: [], coordinator_restart: true })]);
    const ready = entries.filter((e) => e.entry.kind === 'collective_key_ready');
    expect(ready).toHaveLength(1);
    const transcript = collectiveTranscript(jobId, SHAREHOLDERS, paramsFingerprint(VERTICAL_THRESHOLD_CKKS_PARAMS), 'vertical', 1);
    expect(ready[0]!.body).toMatchObject({ attempt: 1, transcript_sha256: hex(sha256(transcript)) });
    // No offer again: each party's acceptance is recorded once, and its box key is the one it accepted with.
    expect(kinds.filter((k) => k === 'data_bound')).toHaveLength(2);
    await expectFreshSharesAucAndReplay(jobId, seconds, 'coordinator');
  }, 180_000);
});

describe('encryption.ceremony_restarts in a job file', () => {
  it('defaults to 2, takes 0 to 10 under ckks-threshold, and is refused under another scheme, naming the field', () => {
    const parse = (encryption: Record<string, unknown>) => JobSpec.safeParse(verticalJob({ encryption }));
    const parsed = parse({ scheme: 'ckks-threshold' });
    expect(parsed.success && ceremonyRestarts(parsed.data as VerticalJobSpec)).toBe(2);
    const zero = parse({ scheme: 'ckks-threshold', ceremony_restarts: 0 });
    expect(zero.success && ceremonyRestarts(zero.data as VerticalJobSpec)).toBe(0);
    expect(parse({ scheme: 'ckks-threshold', ceremony_restarts: 11 }).success).toBe(false);
    const single = parse({ scheme: 'ckks', ceremony_restarts: 1 });
    expect(single.success).toBe(false);
    expect(JSON.stringify(single.error?.issues)).toMatch(/"path":\["encryption","ceremony_restarts"\].*applies to encryption.scheme ckks-threshold only/);
  });
});

describe('a party asked to restart the key ceremony (one process; the test plays the coordinator)', () => {
  const dirs: string[] = [];
  // Both tests play one job's ceremony (each host in a folder of its own): the context and the arbiter's and the
  // guest's bundles of attempt 0 are made once (seconds each at N = 16384).
  const jobId = 'job-ceremony-restart';
  const fingerprint = paramsFingerprint(VERTICAL_THRESHOLD_CKKS_PARAMS);
  let context: ThresholdContext;
  let engine: CkksEngine;
  let steps: number[];
  /** The arbiter's and the guest's bundles of an attempt, made here; attempt 0's are shared by both tests. */
  const othersOf = (attempt: number) => {
    const transcript = collectiveTranscript(jobId, SHAREHOLDERS, fingerprint, 'vertical', attempt);
    return new Map([ARBITER_SHAREHOLDER, 'bank'].map((org) => [org, verticalCollectiveKeyShare(context, transcript, org, steps)]));
  };
  let attempt0: ReturnType<typeof othersOf>;
  beforeAll(async () => {
    context = await ThresholdContext.create(VERTICAL_THRESHOLD_CKKS_PARAMS);
    engine = await CkksEngine.create(VERTICAL_THRESHOLD_CKKS_PARAMS);
    steps = verticalCollectiveRotationSteps(context.degree / 2);
    attempt0 = othersOf(0);
  }, 120_000);
  afterAll(() => {
    engine?.dispose();
    context?.dispose();
    dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
  });

  it('makes a fresh share and deletes the old one before the setup; refuses a stale attempt, one beyond encryption.ceremony_restarts, and any once the setup arrived (it encrypts under the key from then on)', async () => {
    const spec = JobSpec.parse(verticalJob({ encryption: { scheme: 'ckks-threshold', ceremony_restarts: 1 } })) as VerticalJobSpec;
    const data: LoadedDataset = { ids: ['A', 'B'], features: ['h1'], x: Float32Array.from([1, 2]), groups: {}, rows: 2, report: {} as LoadReport };
    const source: PartyData = { ids: () => data.ids.map((id, r) => [id, r] as const), load: () => data, rowsDigest: () => 'rows-v1' };
    const root = mkdtempSync(join(tmpdir(), 'fc-ceremony-restart-'));
    dirs.push(root);
    const store = new JobStore(join(root, 'jobs'));
    store.save({ id: jobId, specJson: JSON.stringify(spec), features: ['h1'] });
    const dir = store.dirOf(jobId);
    const host = new VerticalParty(jobId, spec, 'tax-bureau', source, ['h1'], { relay: async () => undefined, decrypt: async () => undefined }, createLogger('test', 'silent'), dir);
    try {
      const ask = (step: ThresholdCeremony['step'], parties: KeyShareEntry[], attempt: number) =>
        host.ceremony({ step, parties, paramsFingerprint: fingerprint, publicKeySha256: new Uint8Array(), attempt });
      /** One whole attempt of the ceremony, the arbiter's and the guest's bundles made here: the host's commitment. */
      const ceremony = async (attempt: number, made?: KeyShareEntry) => {
        const transcript = collectiveTranscript(jobId, SHAREHOLDERS, fingerprint, 'vertical', attempt);
        const others = attempt === 0 ? attempt0 : othersOf(attempt);
        const entry = (organisation: string, share = false): KeyShareEntry => {
          const made = others.get(organisation)!;
          return { organisation, commitment: made.commitment, commitmentBinding: null, share: share ? made.share : new Uint8Array() };
        };
        const committed = made ?? (await ask('commit', [], attempt)).parties[0]!;
        const revealed = (await ask('reveal', [entry(ARBITER_SHAREHOLDER), entry('bank'), committed], attempt)).parties[0]!;
        const all = [entry(ARBITER_SHAREHOLDER, true), entry('bank', true), revealed];
        expect((await ask('key', all, attempt)).publicKeySha256).toEqual(verticalKeyDigest(verticalCollectiveKeys(context, transcript, steps, all)));
        return committed.commitment;
      };

      // Attempt 0 runs to the key (the host keeps its share and the keys' sums), then a party is lost elsewhere.
      const first = await ceremony(0);
      const files = Object.values(COLLECTIVE_FILES).map((name) => join(dir, name));
      for (const file of files) expect(existsSync(file), file).toBe(true);
      // A restart must begin at commit.
      await expect(ask('reveal', [], 1)).rejects.toMatchObject({ code: 'FC_CEREMONY_RESTART_REFUSED', message: expect.stringMatching(/a restarted ceremony begins with commit, not reveal/) });
      // Before the setup nothing is encrypted under the key: attempt 1 is made with a fresh share, the old files deleted.
      const committed = (await ask('commit', [], 1)).parties[0]!;
      expect(hex(committed.commitment)).not.toBe(hex(first));
      for (const file of files) expect(existsSync(file), file).toBe(false);
      // A stale attempt, and one beyond the job's bound (encryption.ceremony_restarts 1), are refused.
      await expect(ask('commit', [], 0)).rejects.toMatchObject({ code: 'FC_CEREMONY_RESTART_REFUSED', message: expect.stringMatching(/it is at attempt 1 already/) });
      await expect(ask('commit', [], 2)).rejects.toMatchObject({ code: 'FC_CEREMONY_RESTART_REFUSED', message: expect.stringMatching(/at most 1 restarts \(encryption.ceremony_restarts\)/) });

      // Attempt 1 runs to the key, and the setup arrives: from here on the host encrypts under the key, so a
      // "restart" would give the coordinator shares of two keys for what it holds. Refused; the share in use stays.
      await ceremony(1, committed);
      // A restart of the host's process from here rebuilds the keys of attempt 1 (its transcript) from their sums, and
      // they match the digest it reported; rebuilt under attempt 0's transcript they would not.
      const restarted = new VerticalParty(jobId, spec, 'tax-bureau', source, ['h1'], { relay: async () => undefined, decrypt: async () => undefined }, createLogger('test', 'silent'), dir);
      try {
        await (restarted as unknown as { restoreCollective(): Promise<void> }).restoreCollective();
      } finally {
        restarted.dispose();
        restarted.channel.dispose();
      }
      await host.channel.install(bankTaxSetup(engine.fingerprint));
      await expect(ask('commit', [], 2)).rejects.toMatchObject({
        code: 'FC_CEREMONY_RESTART_REFUSED',
        message: expect.stringMatching(/refuses attempt 2 of the key ceremony .*: the collective key is in use \(its setup arrived/),
      });
      for (const file of files) expect(existsSync(file), file).toBe(true);
    } finally {
      host.dispose();
      host.channel.dispose();
    }
  }, 120_000);

  it('restarted after the key step and before its setup, it comes back with its share: it takes the setup for that key, or a restart of the ceremony, which wipes the share, and refuses a stale attempt', async () => {
    const spec = JobSpec.parse(verticalJob({ encryption: { scheme: 'ckks-threshold' } })) as VerticalJobSpec;
    const data: LoadedDataset = { ids: ['A', 'B'], features: ['h1'], x: Float32Array.from([1, 2]), groups: {}, rows: 2, report: {} as LoadReport };
    const source: PartyData = { ids: () => data.ids.map((id, r) => [id, r] as const), load: () => data, rowsDigest: () => 'rows-v1' };
    const io = { relay: async () => undefined, decrypt: async () => undefined };
    const log = createLogger('test', 'silent');
    const entry = (organisation: string, share = false): KeyShareEntry => {
      const made = attempt0.get(organisation)!;
      return { organisation, commitment: made.commitment, commitmentBinding: null, share: share ? made.share : new Uint8Array() };
    };
    const setup = bankTaxSetup(engine.fingerprint);
    const ask = (party: VerticalParty, step: ThresholdCeremony['step'], parties: KeyShareEntry[], attempt: number) =>
      party.ceremony({ step, parties, paramsFingerprint: fingerprint, publicKeySha256: new Uint8Array(), attempt });
    const parties: VerticalParty[] = [];
    const root = mkdtempSync(join(tmpdir(), 'fc-restored-before-setup-'));
    dirs.push(root);
    const store = new JobStore(join(root, 'jobs'));
    store.save({ id: jobId, specJson: JSON.stringify(spec), features: ['h1'] });
    const keyedDir = store.dirOf(jobId);
    /**
     * The host restarted from a copy of its job folder as attempt 0's key step left it (its share and the keys' sums
     * kept, no setup yet): each case starts from the same folder, made by one ceremony.
     */
    const restarted = async (name: string) => {
      const dir = join(root, name);
      cpSync(keyedDir, dir, { recursive: true });
      const restored = await VerticalParty.restore(jobId, spec, 'tax-bureau', source, ['h1'], io, log, dir);
      expect(restored, 'the host comes back from its folder').toBeDefined();
      parties.push(restored!);
      return { dir, restored: restored! };
    };
    try {
      const host = new VerticalParty(jobId, spec, 'tax-bureau', source, ['h1'], io, log, keyedDir);
      parties.push(host);
      const committed = (await ask(host, 'commit', [], 0)).parties[0]!;
      const revealed = (await ask(host, 'reveal', [entry(ARBITER_SHAREHOLDER), entry('bank'), committed], 0)).parties[0]!;
      await ask(host, 'key', [entry(ARBITER_SHAREHOLDER, true), entry('bank', true), revealed], 0);

      // The setup for the key of attempt 0 reaches the restarted host: it encrypts under the key it computed itself.
      const first = await restarted('setup-after-restart');
      for (const name of Object.values(COLLECTIVE_FILES)) expect(existsSync(join(first.dir, name)), name).toBe(true);
      await first.restored.channel.install(setup);
      await expect(ask(first.restored, 'commit', [], 1)).rejects.toMatchObject({ code: 'FC_CEREMONY_RESTART_REFUSED', message: expect.stringMatching(/its setup arrived/) });

      // Or the coordinator restarts the ceremony: a stale attempt is refused; the next one wipes the restored share.
      const second = await restarted('restart-after-restart');
      await expect(ask(second.restored, 'commit', [], 0)).rejects.toMatchObject({ code: 'FC_CEREMONY_RESTART_REFUSED', message: expect.stringMatching(/it is at attempt 0 already/) });
      const fresh = (await ask(second.restored, 'commit', [], 1)).parties[0]!;
      expect(hex(fresh.commitment)).not.toBe(hex(committed.commitment));
      for (const name of Object.values(COLLECTIVE_FILES)) expect(existsSync(join(second.dir, name)), name).toBe(false);
    } finally {
      for (const party of parties) {
        party.dispose();
        party.channel.dispose();
      }
    }
  }, 120_000);
});
