/**
 * A vertical-lr job under a collective gradient key (encryption.scheme ckks-threshold) rejoined after a restart.
 * Every shareholder (the arbiter, the guest, each host) keeps in its job folder, mode 0600, what it needs to go on:
 * its secret-key share, the sums that rebuild the collective keys, and its record of every decryption share it gave,
 * so that a restarted party never gives a second share for a ciphertext or a label. All of it goes when the job ends.
 *
 * Over gRPC with mutual TLS: a host killed (SIGKILL) mid-training and restarted rejoins, and so does the coordinator
 * (the arbiter), and the job publishes the AUC of the same job run in the clear. In one process: a party restarted from its
 * job folder refuses a second share for a ciphertext it shared before the restart.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { readLedger } from '../src/ledger/read.js';
import { verifyLedger } from '../src/ledger/verify.js';
import { replayLedger } from '../src/jobs/replay.js';
import type { EphemeralFederation } from '../src/federation/ephemeral.js';
import { COLLECTIVE_FILES, JobStore, PSI_DIR } from '../participant/job-store.js';
import { VerticalParty, type PartyData } from '../participant/vertical-job.js';
import { JobSpec, type VerticalJobSpec } from '../src/config/schemas.js';
import type { LoadedDataset } from '../src/data/csv.js';
import type { LoadReport } from '../src/data/load-report.js';
import { createLogger } from '../src/log.js';
import { CkksEngine } from '../src/he/engine.js';
import { collectiveTranscript, verticalCollectiveKeys, verticalCollectiveKeyShare, verticalKeyDigest } from '../src/he/key-ceremony.js';
import { residueClassSums, VERTICAL_MASK, verticalCollectiveRotationSteps } from '../src/he/packing.js';
import { paramsFingerprint, VERTICAL_THRESHOLD_CKKS_PARAMS } from '../src/he/params.js';
import { ThresholdContext } from '../src/he/threshold/context.js';
import { VerticalGradient } from '../src/he/vertical-gradient.js';
import { gradientLabel } from '../src/he/vertical-threshold.js';
import { ARBITER_SHAREHOLDER, GradientShareholder, gradientPeriods, thresholdOpener } from '../src/vertical/lr/threshold-opener.js';
import type { JobEvent, KeyShareEntry, ThresholdCeremony } from '../src/wire/messages.js';
import { expectCode } from './helpers/errors.js';
import { bankTaxSetup, clearUciSliceAuc, participantJobDir, startUciHeteroPair, verticalJob } from './helpers/vertical.js';

const ROWS = 4000;
const JOB = verticalJob({ training: { epochs: 2, patience: 0, batch_size: 1024, grace_period_s: 90 }, encryption: { scheme: 'ckks-threshold' } });

const mode = (path: string) => statSync(path).mode & 0o777;
const octal = (m: number) => `0${m.toString(8)}`;

describe('a ckks-threshold vertical job rejoined after a restart (gRPC, mutual TLS)', () => {
  let fed: EphemeralFederation;
  let stop: (() => Promise<void>) | undefined;
  let ledgerDir: string;
  /** The test AUC of the same job in the clear, in this process. */
  let clearAuc: number;
  const entriesOf = (jobId: string) => readLedger(ledgerDir).entries.filter((e) => e.entry.jobId === jobId);
  const aucOf = (jobId: string) => (entriesOf(jobId).find((e) => e.entry.kind === 'model_published')!.body as { test: { auc: number } }).test.auc;
  const arbiterDirOf = (jobId: string) => join(fed.stateDir, 'jobs', jobId, 'arbiter');

  beforeAll(async () => {
    let slice: Parameters<typeof clearUciSliceAuc>[1];
    ({ fed, ledgerDir, slice, stop } = await startUciHeteroPair(ROWS));
    clearAuc = await clearUciSliceAuc(JOB, slice);
  }, 180_000);
  afterAll(() => stop?.());

  /** The resumed job published the AUC of the job in the clear, its ledger verifies and replays, and no key share or record of shares is left anywhere. */
  async function expectFinishedLikeUninterrupted(jobId: string, last: JobEvent, where: string, seconds: number): Promise<void> {
    expect(last.state, last.message).toBe('succeeded');
    console.log(`ckks-threshold vertical over gRPC, ${ROWS} rows: test AUC ${aucOf(jobId).toFixed(4)} with ${where} (${seconds.toFixed(1)} s), ${clearAuc.toFixed(4)} in the clear in one process`);
    expect(Math.abs(aucOf(jobId) - clearAuc)).toBeLessThan(0.005);
    // No shareholder gave two shares for one ciphertext or one label, across the restart.
    const shares = entriesOf(jobId)
      .filter((e) => e.entry.kind === 'decryption_shares')
      .map((e) => e.body as { participant: string; ciphertext_sha256: string; purpose: string });
    for (const holder of [ARBITER_SHAREHOLDER, 'bank', 'tax-bureau']) {
      const given = shares.filter((s) => s.participant === holder);
      expect(given.length, holder).toBeGreaterThan(0);
      expect(new Set(given.map((s) => s.purpose)).size, holder).toBe(given.length);
      expect(new Set(given.map((s) => s.ciphertext_sha256)).size, holder).toBe(given.length);
    }
    // Nothing of the attempt the kill abandoned (a share request in flight, say) is recorded after the job's end.
    expect(entriesOf(jobId).at(-1)?.entry.kind).toBe('job_ended');
    const verified = await verifyLedger(ledgerDir, { receiptsDir: fed.dir });
    expect(verified.ok, verified.failure?.detail).toBe(true);
    const replay = await replayLedger(ledgerDir, { jobId });
    expect(replay.ok, replay.jobs[0]?.failures.join('; ')).toBe(true);
    expect(replay.jobs[0]!.publishedModelOk).toBe(true);
    // The job is over: every key share and record of shares is gone, at the arbiter and at both parties (once the end reaches them).
    expect(existsSync(arbiterDirOf(jobId))).toBe(false);
    for (const org of ['bank', 'tax-bureau'])
      for (const name of Object.values(COLLECTIVE_FILES))
        await expect.poll(() => existsSync(join(participantJobDir(fed.dir, org, jobId), name)), { timeout: 10_000, message: `${org}/${name}` }).toBe(false);
  }

  /** Every file the arbiter keeps for the job, each of mode 0600, in a folder of mode 0700; their sizes. */
  function arbiterFiles(jobId: string): Record<string, number> {
    const dir = arbiterDirOf(jobId);
    expect(octal(mode(dir))).toBe('0700');
    const files = readdirSync(dir).map((name) => join(dir, name));
    expect(files.map((f) => f.slice(dir.length + 1)).sort()).toEqual(['collective-key-share.fcth', 'collective-key-sums.fcth', 'collective-shares-given.json']);
    for (const file of files) expect(octal(mode(file)), file).toBe('0600');
    return Object.fromEntries(files.map((file) => [`arbiter/${file.slice(dir.length + 1)}`, statSync(file).size]));
  }

  it('a host killed (SIGKILL) mid-training and restarted rejoins with its key share and its record of shares given; the AUC of the job in the clear; the ledger replays; nothing kept after the end', async () => {
    // The tax bureau is killed once it has run four mini-batches (in epoch 2 of 2).
    const logFile = join(fed.dir, 'logs', 'tax-bureau.log');
    const before = readFileSync(logFile, 'utf8').length;
    const log = () => readFileSync(logFile, 'utf8').slice(before);
    const started = Date.now();
    const client = await fed.client();
    const jobId = await client.submitJob(stringify(JOB), 'test-bank');
    const running = client.watchJob(jobId, () => undefined);
    const deadline = Date.now() + 180_000;
    while (Date.now() < deadline && (log().match(/"name":"batch"/g) ?? []).length < 4) await new Promise((r) => setTimeout(r, 100));
    await fed.cluster.kill('tax-bureau', 'SIGKILL');

    // What the killed host left to rejoin with, and the arbiter's: files of mode 0600 in folders of mode 0700.
    const hostDir = participantJobDir(fed.dir, 'tax-bureau', jobId);
    expect(octal(mode(hostDir))).toBe('0700');
    const hostFiles = Object.values(COLLECTIVE_FILES).map((name) => join(hostDir, name));
    for (const file of hostFiles) expect(octal(mode(file)), file).toBe('0600');
    const sizes = { ...Object.fromEntries(hostFiles.map((file) => [`tax-bureau/${file.slice(hostDir.length + 1)}`, statSync(file).size])), ...arbiterFiles(jobId) };
    console.log(`kept to rejoin (bytes): ${JSON.stringify(sizes)}`);
    const given = JSON.parse(readFileSync(join(hostDir, COLLECTIVE_FILES.sharesGiven), 'utf8')) as { issued: unknown[] };
    expect(given.issued.length, 'the host gave shares before it was killed').toBeGreaterThanOrEqual(4);

    fed.cluster.startParticipant('tax-bureau');
    const last = await running;
    client.close();
    const restoredLine = log()
      .split('\n')
      .find((line) => /collective gradient key share restored from the job folder/.test(line));
    expect(restoredLine, 'the restarted host restored its key share').toBeDefined();
    const restored = JSON.parse(restoredLine!) as { sharesGiven: number; keysRebuiltMs: number };
    expect(restored.sharesGiven).toBe(given.issued.length);
    console.log(`the restarted host rebuilt the collective keys from their sums in ${restored.keysRebuiltMs} ms and reloaded ${restored.sharesGiven} records of shares given`);
    expect(log()).toMatch(/vertical job restored from its job folder; rejoining/);
    expect(entriesOf(jobId).map((e) => e.entry.kind)).toEqual(expect.arrayContaining(['job_paused', 'job_resumed']));
    await expectFinishedLikeUninterrupted(jobId, last, 'the host killed and restarted', (Date.now() - started) / 1000);
  }, 180_000);

  it("the coordinator killed (SIGKILL) after epoch 1 and restarted resumes with the arbiter's key share and its record of shares given; the AUC of the job in the clear; nothing kept after the end", async () => {
    const started = Date.now();
    const client = await fed.client();
    const jobId = await client.submitJob(stringify(JOB), 'test-bank');
    let killed: Promise<void> | undefined;
    await client.watchJob(jobId, (e) => void (e.progress?.round === 1 && !killed && (killed = fed.cluster.kill('coordinator', 'SIGKILL')))).catch(() => undefined);
    await killed;
    client.close();
    const given = JSON.parse(readFileSync(join(arbiterDirOf(jobId), 'collective-shares-given.json'), 'utf8')) as { issued: unknown[] };
    expect(given.issued.length, 'the arbiter gave shares before it was killed').toBeGreaterThanOrEqual(6);
    arbiterFiles(jobId);

    await fed.cluster.restartCoordinator();
    const after = await fed.client();
    const last = await after.watchJob(jobId, () => undefined);
    after.close();
    const coordinatorLog = (msg: string) =>
      readFileSync(join(fed.dir, 'logs', 'coordinator.log'), 'utf8')
        .split('\n')
        .filter((line) => line.includes(msg))
        .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(coordinatorLog("the arbiter's share of the collective key restored from the state folder"), 'the restarted arbiter reloaded its record of shares given').toEqual([
      expect.objectContaining({ job: jobId, sharesGiven: given.issued.length }),
    ]);
    // The ledger's entries name the arbiter as a shareholder: the restarted coordinator does not wait for it to connect.
    for (const waited of coordinatorLog("the ledger waits for these participants' receipts")) expect(waited.participants).not.toContain(ARBITER_SHAREHOLDER);
    const resumed = entriesOf(jobId).find((e) => e.entry.kind === 'job_resumed' && e.body.coordinator_restart === true);
    expect(resumed, 'the ledger records the resumption').toBeDefined();
    await expectFinishedLikeUninterrupted(jobId, last, 'the coordinator killed and restarted', (Date.now() - started) / 1000);
  }, 180_000);
});

describe('a shareholder restarted from its job folder (one process; the test plays the coordinator)', () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('refuses a second share for a ciphertext it shared before the restart, and a second ciphertext under a label it served; its restored share opens with the others; the job end deletes it all', async () => {
    const jobId = 'job-rejoin';
    const spec = JobSpec.parse(verticalJob({ encryption: { scheme: 'ckks-threshold' } })) as VerticalJobSpec;
    const data: LoadedDataset = { ids: ['A', 'B', 'C', 'D'], features: ['h1'], x: Float32Array.from([1, 2, 3, 4]), groups: {}, rows: 4, report: {} as LoadReport };
    const source: PartyData = { ids: () => data.ids.map((id, r) => [id, r] as const), load: () => data, rowsDigest: () => 'rows-v1' };
    const io = { relay: async () => undefined, decrypt: async () => undefined };
    const log = createLogger('test', 'silent');
    const root = mkdtempSync(join(tmpdir(), 'fc-vthreshold-restart-'));
    dirs.push(root);
    const store = new JobStore(join(root, 'jobs'));
    store.save({ id: jobId, specJson: JSON.stringify(spec), features: ['h1'] });
    const dir = store.dirOf(jobId);

    const context = await ThresholdContext.create(VERTICAL_THRESHOLD_CKKS_PARAMS);
    const engine = await CkksEngine.create(VERTICAL_THRESHOLD_CKKS_PARAMS);
    const host = new VerticalParty(jobId, spec, 'tax-bureau', source, ['h1'], io, log, dir);
    let restored: VerticalParty | undefined;
    try {
      // The ceremony as the coordinator relays it; the arbiter's and the guest's bundles are made here.
      const fingerprint = paramsFingerprint(VERTICAL_THRESHOLD_CKKS_PARAMS);
      const shareholders = [ARBITER_SHAREHOLDER, 'bank', 'tax-bureau'];
      const transcript = collectiveTranscript(jobId, shareholders, fingerprint, 'vertical');
      const steps = verticalCollectiveRotationSteps(context.degree / 2);
      const others = new Map([ARBITER_SHAREHOLDER, 'bank'].map((org) => [org, verticalCollectiveKeyShare(context, transcript, org, steps)]));
      const entry = (organisation: string, share = false): KeyShareEntry => {
        const made = others.get(organisation)!;
        return { organisation, commitment: made.commitment, commitmentBinding: null, share: share ? made.share : new Uint8Array() };
      };
      const ceremony = (step: ThresholdCeremony['step'], parties: KeyShareEntry[]) => host.ceremony({ step, parties, paramsFingerprint: fingerprint, publicKeySha256: new Uint8Array() });
      const committed = (await ceremony('commit', [])).parties[0]!;
      const revealed = (await ceremony('reveal', [entry(ARBITER_SHAREHOLDER), entry('bank'), committed])).parties[0]!;
      const all = [entry(ARBITER_SHAREHOLDER, true), entry('bank', true), revealed];
      const keys = verticalCollectiveKeys(context, transcript, steps, all);
      expect((await ceremony('key', all)).publicKeySha256).toEqual(verticalKeyDigest(keys));
      await host.channel.install(bankTaxSetup(engine.fingerprint));
      // The PSI step's rows, as it leaves them: the job can be rejoined from here on.
      const rows = join(dir, PSI_DIR, 'aligned');
      mkdirSync(rows, { recursive: true });
      for (const [part, list] of [
        ['train', [2, 0]],
        ['validation', [1]],
        ['test', [3]],
      ] as const)
        writeFileSync(join(rows, `${part}.rows`), new Uint8Array(Uint32Array.from(list).buffer));
      writeFileSync(join(rows, 'done.json'), JSON.stringify({ step: 1, attempt: 0, rowsDigest: 'rows-v1' }));

      // Two masked gradients of the guest's, as the guest makes them under the collective keys.
      const gradient = VerticalGradient.of(engine);
      const S = engine.slotCount;
      const random = (n: number, scale: number) => Float64Array.from({ length: n }, () => (Math.random() * 2 - 1) * scale);
      const batch = 4096;
      const partial = random(batch, 0.5);
      const weights = new Float64Array(batch).fill(1 / batch);
      const offset = Float64Array.from(weights, (w, i) => w * (0.25 * partial[i]! + 0.5 - (i % 3 === 0 ? 1 : 0)));
      const fore = Float64Array.from(offset, (o, i) => o + weights[i]! * partial[i]!);
      const columns = Array.from({ length: 14 }, () => random(batch, 5));
      const masks = [random(S, VERTICAL_MASK), random(S, VERTICAL_MASK)];
      const [first, second] = masks.map((mask) =>
        gradient.maskedGradient(gradient.foreGradient([gradient.encryptSlots(partial, keys.publicKey)], weights, offset), columns, mask, keys.galoisKeys),
      ) as [Uint8Array, Uint8Array];
      const ask = (party: VerticalParty, attempt: number, ciphertext: Uint8Array) => party.gradientShare(7, { attempt, party: 'bank', ciphertext });

      // Before the restart: the host shares the first under the label of attempt 0, and keeps the record at once.
      expect(ask(host, 0, first).length).toBeGreaterThan(0);
      const kept = Object.values(COLLECTIVE_FILES).map((name) => join(dir, name));
      for (const file of kept) expect(octal(mode(file)), file).toBe('0600');
      expect(octal(mode(dir))).toBe('0700');
      const given = JSON.parse(readFileSync(join(dir, COLLECTIVE_FILES.sharesGiven), 'utf8')) as { issued: { purpose: string }[] };
      expect(given.issued.map((r) => r.purpose)).toEqual([gradientLabel(jobId, 7, 0, 'bank')]);
      host.dispose();
      host.channel.dispose();

      // The node restarts: the party comes back from its job folder alone.
      restored = await VerticalParty.restore(jobId, spec, 'tax-bureau', source, ['h1'], io, log, dir);
      expect(restored).toBeDefined();
      // A coordinator asking again: the same ciphertext under a new label, another ciphertext under the label served.
      expectCode(() => ask(restored!, 1, first), 'FC_DECRYPTION_REFUSED', /already decrypted for .*gradient of bank.*a party gives one decryption share per ciphertext/);
      expectCode(() => ask(restored!, 0, second), 'FC_DECRYPTION_REFUSED', /a party gives one decryption share per purpose/);

      // A new ciphertext under a new label: the restored share, with the arbiter's and the guest's, opens it.
      const request = { party: 'bank', purpose: gradientLabel(jobId, 7, 2, 'bank') };
      const periods = gradientPeriods(spec);
      const holders = new Map([ARBITER_SHAREHOLDER, 'bank'].map((org) => [org, new GradientShareholder(context, org, others.get(org)!.secret, shareholders.length, periods)]));
      holders.get('bank')!.sent(request.purpose, second);
      const shares = new Map([...holders].map(([org, holder]) => [org, holder.share({ ...request, masked: second })]));
      for (const holder of holders.values()) holder.forget();
      shares.set('tax-bureau', ask(restored!, 2, second));
      const opened = thresholdOpener(context, shareholders, periods, () => shares).openGradient(second, columns.length, request);
      const P = 16;
      const truth = Float64Array.from(masks[1]!);
      columns.forEach((column, c) => column.forEach((x, r) => (truth[(r - ((r - c) & (P - 1)) + S) % S]! += x * fore[r]!)));
      const expected = residueClassSums(truth, columns.length);
      opened.forEach((v, j) => expect(Math.abs(v - expected[j]!), `class ${j}`).toBeLessThan(1e-6));

      // The job ends: the share, the keys' sums and the record go with it.
      store.end(jobId, 'failed');
      for (const file of kept) expect(existsSync(file), file).toBe(false);
    } finally {
      restored?.dispose();
      restored?.channel.dispose();
      engine.dispose();
      context.dispose();
    }
  }, 120_000);
});
