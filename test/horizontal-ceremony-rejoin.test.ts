/**
 * A horizontal job under a collective key (encryption.scheme ckks-threshold) whose participant is lost during the key
 * ceremony. Nothing is encrypted under the key before the first sum, so the coordinator restarts the ceremony from
 * the beginning (`key_ceremony_restarted`), every participant with a fresh share under the next attempt's
 * transcript, and the job goes on (docs/threshold-ckks.md, "A party lost during the key ceremony").
 *
 * Over gRPC with mutual TLS: bank-a, killed (SIGKILL) after it accepted the job and restarted once the coordinator
 * found it gone at the ceremony, rejoins from its job folder with the box key it kept at the acceptance; the job
 * publishes the AUC of the same job uninterrupted; the ledger verifies and replays, and a replay of the same record
 * with the restart moved after the key fails. In memory, under a 3-of-4 key: a participant whose stream closes as it
 * answers the re-sharing (after the key step) restarts the ceremony, and the job publishes the uninterrupted job's
 * AUC. In one process: a participant refuses a restart once its record (read
 * again from its job folder, so across a restart of the node too) says it contributed under the key or gave a
 * decryption share, a stale attempt, one beyond the job's bound, and one that does not begin with commit.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { cliPath } from '../src/federation/local-cluster.js';
import { readLedger } from '../src/ledger/read.js';
import { verifyLedger } from '../src/ledger/verify.js';
import { replayLedger } from '../src/jobs/replay.js';
import { ThresholdReplay } from '../src/audit/replay-threshold.js';
import { Approvals } from '../participant/approvals.js';
import { HorizontalJob } from '../participant/horizontal-job.js';
import { JobStore } from '../participant/job-store.js';
import { ThresholdParty } from '../participant/threshold-party.js';
import { ceremonyRestarts, ckksParamsOf, HorizontalJobSpec } from '../src/config/schemas.js';
import { ingestSource } from '../src/data/source.js';
import { collectiveTranscript } from '../src/he/key-ceremony.js';
import { paramsFingerprint } from '../src/he/params.js';
import { ThresholdContext } from '../src/he/threshold/context.js';
import { loadTf } from '../src/model/tf.js';
import { hex, sha256 } from '../src/bytes.js';
import { generateBoxKeyPair } from '../src/crypto/sealed-box.js';
import type { CoordinatorMessage, JobEvent, KeyShareEntry, ThresholdCeremony } from '../src/wire/messages.js';
import { awaitSucceeded, ceremonyCommitments, horizontalJob, killCoordinatorInCeremony, TestFederation, UCI, uciHomoSpec } from './helpers/federation.js';
import { MemoryFederation, writeUciSlices } from './helpers/memory-horizontal.js';

const run = promisify(execFile);
const NAMES = ['bank-a', 'bank-b', 'bank-c'];
const ROWS = 1000;
const JOB = horizontalJob({ participants: NAMES, encryption: { scheme: 'ckks-threshold' }, training: { rounds: 3, winsorize: 0 } });

describe('a ckks-threshold horizontal job whose participant is lost during the key ceremony (gRPC, mutual TLS)', () => {
  let slices: { dir: string; files: string[] };
  let fed: TestFederation;

  beforeAll(async () => {
    slices = await writeUciSlices(NAMES, ROWS);
    fed = await TestFederation.start(
      NAMES.map((name, i) => ({
        name,
        data: uciHomoSpec(slices.files[i]!),
        // bank-c approves by hand: the offer waits for it, which holds the ceremony back while bank-a is killed.
        ...(name === 'bank-c' ? { consent: { approval: 'manual', approval_timeout_s: 120 } } : {}),
      })),
      { coordinator: { offer_timeout_s: 90 } },
    );
  }, 120_000);
  afterAll(async () => {
    await fed?.stop();
    if (slices) await rm(slices.dir, { recursive: true, force: true });
  });

  /** The AUC of the same job, uninterrupted, in one process over the same rows. */
  const uninterruptedAuc = async () => {
    const memory = await MemoryFederation.start(NAMES.map((name, i) => ({ name, data: uciHomoSpec(slices.files[i]!) })));
    try {
      const reference = await memory.run(JOB);
      expect(reference.state, reference.message).toBe('succeeded');
      return (JSON.parse(Buffer.from(reference.files['fedcredit.json']!).toString('utf8')).evaluation as { auc: number }).auc;
    } finally {
      await memory.stop();
    }
  };

  /** The job's ledger entries record one collective key, attempt 1's (its transcript's digest). */
  const expectOneKeyOfAttemptOne = (jobId: string, entries: ReturnType<typeof readLedger>['entries']) => {
    const ready = entries.filter((e) => e.entry.kind === 'collective_key_ready');
    expect(ready).toHaveLength(1);
    const transcript = collectiveTranscript(jobId, NAMES, paramsFingerprint(ckksParamsOf(HorizontalJobSpec.parse(JOB))), 'horizontal', 1);
    expect(ready[0]!.body).toMatchObject({ attempt: 1, transcript_sha256: hex(sha256(transcript)) });
  };

  /** The ledger verifies, and the job replays with the model it published. */
  const expectVerifiesAndReplays = async (jobId: string) => {
    const verified = await verifyLedger(fed.ledgerDir, { receiptsDir: fed.dir });
    expect(verified.ok, verified.failure?.detail).toBe(true);
    const replay = await replayLedger(fed.ledgerDir, { jobId });
    expect(replay.jobs[0]!.failures).toEqual([]);
    expect(replay.jobs[0]!.publishedModelOk).toBe(true);
  };

  it('restarts the ceremony with fresh shares once the participant is back; the job publishes the AUC of the job uninterrupted; the ledger verifies and replays; a restart after the key does not replay', async () => {
    const waitFor = async (what: () => boolean, ms: number) => {
      const deadline = Date.now() + ms;
      while (Date.now() < deadline && !what()) await new Promise((r) => setTimeout(r, 100));
      return what();
    };
    const logOf = (org: string) => join(fed.dir, 'logs', `${org}.log`);
    const from = Object.fromEntries(NAMES.map((org) => [org, readFileSync(logOf(org), 'utf8').length]));
    const logSince = (org: string) => readFileSync(logOf(org), 'utf8').slice(from[org]);
    const started = Date.now();
    const client = await fed.client();
    const jobId = await client.submitJob(stringify(JOB), 'test-bank');
    const events: JobEvent[] = [];
    const running = client.watchJob(jobId, (e) => events.push(e));

    // bank-a accepts (its box key kept in its job folder from then on) and its acceptance has left it; bank-c's
    // offer waits for its owner. bank-a is killed, then bank-c approves: the ceremony begins without bank-a.
    const stateA = join(fed.dir, 'fedcredit-state', 'bank-a');
    const approvals = new Approvals(join(fed.dir, 'fedcredit-state', 'bank-c'));
    const acceptedA = () => existsSync(join(stateA, 'egress.jsonl')) && readFileSync(join(stateA, 'egress.jsonl'), 'utf8').includes(`"job":"${jobId}","round":0,"kind":"jobAccepted"`);
    expect(await waitFor(() => acceptedA() && approvals.pending().length > 0, 60_000), 'bank-a accepted and bank-c waits for approval').toBe(true);
    expect(existsSync(join(stateA, 'jobs', jobId, 'box-x25519.pem')), "bank-a's box key is kept from the acceptance").toBe(true);
    // The acceptance was written to the stream; the coordinator takes it within milliseconds.
    await new Promise((r) => setTimeout(r, 2000));
    await fed.cluster.kill('bank-a', 'SIGKILL');
    await run(process.execPath, [cliPath(), 'participant', 'approve', jobId, '--config', join(fed.dir, 'bank-c.yaml')]);
    expect(await waitFor(() => events.some((e) => /lost during the key ceremony/.test(e.message)), 60_000), 'the coordinator restarts the ceremony').toBe(true);
    fed.cluster.startParticipant('bank-a');
    const seconds = await awaitSucceeded(running, client, started);
    expect(logSince('bank-a'), 'bank-a rejoined from its job folder').toMatch(/horizontal job restored during its key ceremony/);
    expect(logSince('bank-b'), "bank-b abandoned attempt 0's share").toMatch(/key ceremony restarted by the coordinator/);

    // The ledger: one restart naming bank-a at the commit step, then attempt 1's ceremony, whose key is the job's.
    const ledgerDir = fed.ledgerDir;
    const entries = readLedger(ledgerDir).entries.filter((e) => e.entry.jobId === jobId);
    const kinds = entries.map((e) => e.entry.kind);
    expect(entries.filter((e) => e.entry.kind === 'key_ceremony_restarted').map((e) => e.body)).toEqual([
      expect.objectContaining({ attempt: 1, lost: ['bank-a'], step: 'commit', offer_timeout_s: 90 }),
    ]);
    expectOneKeyOfAttemptOne(jobId, entries);
    const spec = HorizontalJobSpec.parse(JOB);
    const restartAt = kinds.indexOf('key_ceremony_restarted');
    const readyAt = kinds.indexOf('collective_key_ready');
    expect(restartAt).toBeLessThan(readyAt);
    expect(kinds.slice(restartAt, readyAt).filter((k) => k === 'key_share_committed')).toHaveLength(NAMES.length);

    const uninterrupted = await uninterruptedAuc();
    const published = (entries.find((e) => e.entry.kind === 'model_published')!.body as { evaluation: { auc: number } }).evaluation.auc;
    console.log(
      `ckks-threshold horizontal over gRPC, ${ROWS} rows a participant, bank-a lost in the key ceremony: AUC ${published.toFixed(4)} (${seconds.toFixed(1)} s), uninterrupted ${uninterrupted.toFixed(4)}`,
    );
    expect(Math.abs(published - uninterrupted)).toBeLessThan(0.005);

    await expectVerifiesAndReplays(jobId);

    // A coordinator that "restarts" the ceremony after the key is in place is caught by the replay.
    const blob = async (name: string, at: (typeof entries)[number]) => {
      const ref = at.entry.blobs?.find((b) => b.name === name);
      return ref ? new Uint8Array(await readFile(join(ledgerDir, 'blobs', hex(ref.sha256)))) : undefined;
    };
    const moved = [...entries.slice(0, restartAt), ...entries.slice(restartAt + 1, readyAt + 1), entries[restartAt]!];
    const auditor = await ThresholdReplay.start(jobId, NAMES, ckksParamsOf(spec), NAMES.length, ceremonyRestarts(spec));
    const failures: string[] = [];
    try {
      for (const e of moved)
        await auditor.entry(
          e.entry.kind,
          e.body as Record<string, unknown>,
          (name) => blob(name, e),
          (message) => failures.push(message),
        );
    } finally {
      auditor.dispose();
    }
    expect(failures.join('; ')).toMatch(/the key ceremony was restarted \(attempt 1\) after the collective key was in place/);
  }, 240_000);

  it('the coordinator killed (SIGKILL) during the key ceremony and restarted restarts it with fresh shares from every participant; the AUC of the job uninterrupted; the ledger verifies and replays', async () => {
    const logOf = (org: string) => join(fed.dir, 'logs', `${org}.log`);
    const from = Object.fromEntries([...NAMES, 'coordinator'].map((org) => [org, readFileSync(logOf(org), 'utf8').length]));
    const linesSince = (org: string, jobId: string) =>
      readFileSync(logOf(org), 'utf8')
        .slice(from[org])
        .split('\n')
        .filter((line) => line.includes(jobId));
    const waitFor = async (what: () => boolean, ms: number) => {
      const deadline = Date.now() + ms;
      while (Date.now() < deadline && !what()) await new Promise((r) => setTimeout(r, 20));
      return what();
    };
    const started = Date.now();
    const client = await fed.client();
    const jobId = await client.submitJob(stringify(JOB), 'test-bank');
    const watching = client.watchJob(jobId, () => undefined).catch(() => undefined);
    const approvals = new Approvals(join(fed.dir, 'fedcredit-state', 'bank-c'));
    expect(await waitFor(() => approvals.pending().some((p) => p.jobId === jobId), 60_000), 'bank-c waits for approval').toBe(true);
    await run(process.execPath, [cliPath(), 'participant', 'approve', jobId, '--config', join(fed.dir, 'bank-c.yaml')]);
    // The coordinator is killed as bank-c starts its share of attempt 0 (bank-c frozen meanwhile).
    const making = () => linesSince('bank-c', jobId).some((line) => /"attempt":0[^\n]*making this participant's share/.test(line));
    expect(await waitFor(making, 60_000), 'bank-c began the ceremony').toBe(true);
    const seconds = await killCoordinatorInCeremony(fed, 'bank-c', watching, client, jobId, started);
    expect(linesSince('coordinator', jobId).join('\n')).toMatch(/key ceremony restarted: the coordinator restarted before the key was in place/);
    for (const org of NAMES) expect(linesSince(org, jobId).join('\n'), `${org} abandoned attempt 0's share`).toMatch(/key ceremony restarted by the coordinator/);

    // The ledger: one restart, the coordinator's, then attempt 1's ceremony with a fresh commitment from everyone.
    const entries = readLedger(fed.ledgerDir).entries.filter((e) => e.entry.jobId === jobId);
    const kinds = entries.map((e) => e.entry.kind);
    expect(entries.filter((e) => e.entry.kind === 'key_ceremony_restarted').map((e) => e.body)).toEqual([
      expect.objectContaining({ attempt: 1, lost: [], coordinator_restart: true, offer_timeout_s: 90 }),
    ]);
    expect(
      kinds.filter((k) => k === 'data_bound'),
      'no offer again',
    ).toHaveLength(NAMES.length);
    expectOneKeyOfAttemptOne(jobId, entries);
    const { abandoned, final } = ceremonyCommitments(entries);
    expect(final.map((c) => c.participant).sort()).toEqual([...NAMES].sort());
    for (const c of abandoned) expect(final.find((f) => f.participant === c.participant)!.commitment, c.participant).not.toBe(c.commitment);

    const uninterrupted = await uninterruptedAuc();
    const published = (entries.find((e) => e.entry.kind === 'model_published')!.body as { evaluation: { auc: number } }).evaluation.auc;
    console.log(
      `ckks-threshold horizontal over gRPC, ${ROWS} rows a participant, the coordinator killed in the key ceremony: AUC ${published.toFixed(4)} (${seconds.toFixed(1)} s), uninterrupted ${uninterrupted.toFixed(4)}`,
    );
    expect(Math.abs(published - uninterrupted)).toBeLessThan(0.005);
    await expectVerifiesAndReplays(jobId);
  }, 240_000);
});

describe('encryption.ceremony_restarts in a horizontal job file', () => {
  it('defaults to 2, takes 0 to 10 under ckks-threshold, and is refused under another scheme, naming the field', () => {
    const parse = (encryption: Record<string, unknown>) => HorizontalJobSpec.safeParse(horizontalJob({ participants: NAMES, encryption }));
    const parsed = parse({ scheme: 'ckks-threshold' });
    expect(parsed.success && ceremonyRestarts(parsed.data)).toBe(2);
    const one = parse({ scheme: 'ckks-threshold', ceremony_restarts: 1 });
    expect(one.success && ceremonyRestarts(one.data)).toBe(1);
    expect(parse({ scheme: 'ckks-threshold', ceremony_restarts: 11 }).success).toBe(false);
    const single = parse({ scheme: 'ckks', ceremony_restarts: 1 });
    expect(single.success).toBe(false);
    expect(JSON.stringify(single.error?.issues)).toMatch(/"path":\["encryption","ceremony_restarts"\].*applies to encryption.scheme ckks-threshold only/);
  });
});

describe('a horizontal participant asked to restart the key ceremony (one process; the test plays the coordinator)', () => {
  let slices: { dir: string; files: string[] };
  const jobId = 'job-h-ceremony-restart';

  beforeAll(async () => {
    slices = await writeUciSlices(NAMES, 200);
  });
  afterAll(async () => {
    if (slices) await rm(slices.dir, { recursive: true, force: true });
  });

  it('makes a fresh share and deletes the old keys before any sum; refuses a stale attempt, one beyond encryption.ceremony_restarts or not at commit, and any once its record says it contributed or gave a share, after a restart of the node too', async () => {
    const spec = HorizontalJobSpec.parse(horizontalJob({ participants: NAMES, encryption: { scheme: 'ckks-threshold' } }));
    const data = uciHomoSpec(slices.files[0]!);
    const rows = await ingestSource(data, { baseDir: slices.dir, columns: data.features.map((f) => f.name), dir: join(slices.dir, 'rows'), scatter: true });
    const { tf } = await loadTf();
    const store = new JobStore(join(slices.dir, 'jobs'));
    store.save({ id: jobId, specJson: JSON.stringify(spec), features: rows.features });
    const node = {
      organisation: 'bank-a',
      rows,
      tf,
      log: pino({ level: 'silent' }),
      saveKeys: (id: string, keys: Parameters<JobStore['saveKeys']>[1]) => store.saveKeys(id, keys),
      sharesGiven: (id: string) => store.sharesGiven(id),
      forgetCeremony: (id: string) => store.forgetCeremony(id),
    };
    let job = await HorizontalJob.open(jobId, spec, rows.features, node);
    const context = await ThresholdContext.create(ckksParamsOf(spec));
    const fingerprint = paramsFingerprint(ckksParamsOf(spec));
    const dir = store.dirOf(jobId);
    const keyFiles = ['ckks-secret.key', 'ckks-public.key', 'collective-shares-given.json'].map((name) => join(dir, name));
    try {
      const ask = async (step: ThresholdCeremony['step'], parties: KeyShareEntry[], attempt: number) => {
        const m: CoordinatorMessage = {
          jobId,
          round: attempt,
          body: 'thresholdCeremony',
          thresholdCeremony: { step, parties, paramsFingerprint: fingerprint, publicKeySha256: new Uint8Array(), attempt },
        };
        const reply = await job.handle(m);
        if (reply?.body !== 'thresholdCeremony') throw new Error('no ceremony reply');
        return reply.thresholdCeremony;
      };
      /** One whole attempt of the ceremony, bank-b's and bank-c's parties played here: bank-a's commitment. */
      const ceremony = async (attempt: number, afterCommit?: () => void) => {
        const others = ['bank-b', 'bank-c'].map((org) => new ThresholdParty(jobId, org, NAMES, context, fingerprint, () => undefined, NAMES.length, undefined, undefined, {}, attempt));
        const step = (party: ThresholdParty, s: ThresholdCeremony['step'], parties: KeyShareEntry[]) =>
          party.ceremony({ step: s, parties, paramsFingerprint: fingerprint, publicKeySha256: new Uint8Array(), attempt }).reply;
        const commits = [(await ask('commit', [], attempt)).parties[0]!, ...others.map((p) => step(p, 'commit', []).parties[0]!)];
        afterCommit?.();
        const reveals = [(await ask('reveal', commits, attempt)).parties[0]!, ...others.map((p) => step(p, 'reveal', commits).parties[0]!)];
        const key = await ask('key', reveals, attempt);
        for (const p of others) expect(hex(step(p, 'key', reveals).publicKeySha256)).toBe(hex(key.publicKeySha256));
        return commits[0]!.commitment;
      };

      // Attempt 0 runs to the key (bank-a keeps its key share and its empty record), then a participant is lost elsewhere.
      const first = await ceremony(0);
      for (const file of keyFiles) expect(existsSync(file), file).toBe(true);
      await expect(ask('reveal', [], 1)).rejects.toMatchObject({ code: 'FC_CEREMONY_RESTART_REFUSED', message: expect.stringMatching(/a restarted ceremony begins with commit, not reveal/) });
      // Nothing is encrypted under the key yet: attempt 1 is made with a fresh share, the old keys deleted.
      const second = await ceremony(1, () => {
        for (const file of keyFiles) expect(existsSync(file), file).toBe(false);
      });
      expect(hex(second)).not.toBe(hex(first));
      await expect(ask('commit', [], 0)).rejects.toMatchObject({ code: 'FC_CEREMONY_RESTART_REFUSED', message: expect.stringMatching(/it is at attempt 1 already/) });
      await expect(ask('commit', [], 3)).rejects.toMatchObject({ code: 'FC_CEREMONY_RESTART_REFUSED', message: expect.stringMatching(/at most 2 restarts \(encryption.ceremony_restarts\)/) });

      // bank-a contributes its moments under attempt 1's key: the record says so before the contribution leaves.
      const contributors = NAMES.map((organisation) => ({ organisation, boxPublicKey: organisation === 'bank-a' ? job.state.box.publicKey : generateBoxKeyPair().publicKey, binding: null }));
      const contribution = await job.handle({
        jobId,
        round: 0,
        body: 'contributionRequest',
        contributionRequest: {
          purpose: 'moments',
          globalWeights: new Uint8Array(),
          globalWeightsSha256: new Uint8Array(),
          preprocessing: null,
          deadlineUnixMs: Date.now() + 60_000,
          contributors,
          attempt: 0,
        },
      });
      expect(contribution?.body).toBe('contribution');
      const recordFile = keyFiles[2]!;
      expect(JSON.parse(readFileSync(recordFile, 'utf8')).contributed).toBe('moments/0');
      const inUse = /the collective key is in use: this node contributed the moments sum of round 0 under it/;
      await expect(ask('commit', [], 2)).rejects.toMatchObject({ code: 'FC_CEREMONY_RESTART_REFUSED', message: expect.stringMatching(inUse) });

      // The node restarts: the job restored from its folder refuses by its record, and so does it with a share given.
      job.dispose();
      job = await HorizontalJob.open(jobId, spec, rows.features, node);
      const stored = store.unfinished().find((s) => s.id === jobId)!;
      await job.restoreKeys(stored.keys!);
      await expect(ask('commit', [], 2)).rejects.toMatchObject({ code: 'FC_CEREMONY_RESTART_REFUSED', message: expect.stringMatching(inUse) });
      const { contributed: _contributed, ...record } = JSON.parse(readFileSync(recordFile, 'utf8'));
      writeFileSync(recordFile, JSON.stringify({ ...record, issued: [{ ciphertextDigest: '0'.repeat(64), purpose: `${jobId}/moments`, rule: 'horizontal' }] }));
      await expect(ask('commit', [], 2)).rejects.toMatchObject({
        code: 'FC_CEREMONY_RESTART_REFUSED',
        message: expect.stringMatching(/the collective key is in use: 1 decryption shares given under it/),
      });
      // Refused, the key and the record stay.
      for (const file of keyFiles) expect(existsSync(file), file).toBe(true);
    } finally {
      job.dispose();
      context.dispose();
    }
  }, 120_000);
});

describe('a 3-of-4 horizontal job whose participant is lost as it answers the re-sharing (in memory)', () => {
  const FOUR = ['bank-a', 'bank-b', 'bank-c', 'bank-d'];
  const SLICE = 500;
  let dir: string;
  let fed: MemoryFederation;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fc-h-ceremony-tn-'));
    // Rows 1–500 of each of the UCI homo split's three parts, and rows 501–1000 of the first.
    const parts: [string, number][] = [
      ['guest', 0],
      ['host_1', 0],
      ['host_2', 0],
      ['guest', SLICE],
    ];
    const files = await Promise.all(
      parts.map(async ([part, from], i) => {
        const lines = (await readFile(join(UCI, `fate_default_credit_homo_${part}.csv`), 'utf8')).split('\n');
        const out = join(dir, `${FOUR[i]}.csv`);
        await writeFile(out, [lines[0], ...lines.slice(1 + from, 1 + from + SLICE)].join('\n') + '\n');
        return out;
      }),
    );
    fed = await MemoryFederation.start(FOUR.map((name, i) => ({ name, data: uciHomoSpec(files[i]!) })));
  }, 120_000);
  afterAll(async () => {
    await fed?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('restarts the ceremony after the key, before any sum: every participant abandons its key and Shamir points, and the job publishes the AUC of the job uninterrupted; the ledger replays', async () => {
    const job = horizontalJob({ participants: FOUR, encryption: { scheme: 'ckks-threshold', threshold: 3 }, training: { rounds: 2, winsorize: 0 } });
    // bank-b's stream closes as it sends its Shamir shares of attempt 0, and it is back at once: it lost the attempt.
    let blinked = false;
    fed.participant('bank-b').tamper = (reply) => {
      if (!blinked && reply.body === 'thresholdCeremony' && reply.thresholdCeremony.step === 'reshare') {
        blinked = true;
        fed.disconnect('bank-b', 'stream closed');
        fed.reconnect('bank-b');
      }
      return reply;
    };
    let restarted: Awaited<ReturnType<MemoryFederation['run']>>;
    try {
      restarted = await fed.run(job);
    } finally {
      fed.participant('bank-b').tamper = undefined;
    }
    expect(restarted.state, restarted.message).toBe('succeeded');
    expect(blinked).toBe(true);
    const entries = readLedger(fed.ledgerDir).entries.filter((e) => e.entry.jobId === restarted.jobId);
    const kinds = entries.map((e) => e.entry.kind);
    expect(entries.filter((e) => e.entry.kind === 'key_ceremony_restarted').map((e) => e.body)).toEqual([expect.objectContaining({ attempt: 1, lost: ['bank-b'], step: 'reshare' })]);
    const restartAt = kinds.indexOf('key_ceremony_restarted');
    const readyAt = kinds.indexOf('collective_key_ready');
    expect(kinds.slice(0, restartAt)).not.toContain('key_share_reshared');
    expect(kinds.slice(restartAt, readyAt).filter((k) => k === 'key_share_reshared')).toHaveLength(FOUR.length);
    expect(entries[readyAt]!.body).toMatchObject({ attempt: 1, threshold: 3 });
    const replay = await replayLedger(fed.ledgerDir, { jobId: restarted.jobId });
    expect(replay.jobs[0]!.failures).toEqual([]);
    expect(replay.jobs[0]!.publishedModelOk).toBe(true);

    const uninterrupted = await fed.run(job);
    expect(uninterrupted.state, uninterrupted.message).toBe('succeeded');
    const auc = (r: typeof restarted) => (JSON.parse(Buffer.from(r.files['fedcredit.json']!).toString('utf8')).evaluation as { auc: number }).auc;
    console.log(`3-of-4, bank-b lost in the re-sharing: AUC ${auc(restarted).toFixed(4)}, uninterrupted ${auc(uninterrupted).toFixed(4)}`);
    expect(Math.abs(auc(restarted) - auc(uninterrupted))).toBeLessThan(0.005);
  }, 240_000);
});
