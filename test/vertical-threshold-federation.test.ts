/**
 * Vertical LR under a collective gradient key (encryption.scheme ckks-threshold) over real processes with mutual
 * TLS: the ceremony among the arbiter (the coordinator), the bank (guest) and the tax bureau (host) runs over the
 * coordinator, and every masked gradient opens only with a decryption share from each of the three, asked over
 * the wire and recorded in the ledger. A slice of the UCI hetero split and two epochs keep it short; the
 * accuracy on the whole split is test/vertical-threshold.test.ts (in one process).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { VerticalJobSpec } from '../src/config/schemas.js';
import { readLedger } from '../src/ledger/read.js';
import { verifyLedger } from '../src/ledger/verify.js';
import { replayLedger } from '../src/jobs/replay.js';
import { replayVerticalJob } from '../src/audit/replay-vertical.js';
import { identityDir } from '../src/federation/pki-layout.js';
import { identityFromDir } from '../src/wire/transport.js';
import { ThresholdContext } from '../src/he/threshold/context.js';
import { collectiveTranscript, verticalCollectiveKeys, verticalCollectiveKeyShare } from '../src/he/key-ceremony.js';
import { verticalCollectiveRotationSteps } from '../src/he/packing.js';
import { paramsFingerprint, VERTICAL_THRESHOLD_CKKS_PARAMS } from '../src/he/params.js';
import { CkksEngine } from '../src/he/engine.js';
import { VerticalGradient } from '../src/he/vertical-gradient.js';
import { ARBITER_SHAREHOLDER } from '../src/vertical/lr/threshold-opener.js';
import type { KeyShareEntry, ParticipantMessage, ThresholdCeremony } from '../src/wire/messages.js';
import type { EphemeralFederation } from '../src/federation/ephemeral.js';
import { participantJobDir, startUciHeteroPair, verticalJob } from './helpers/vertical.js';
import { RogueCoordinator } from './helpers/rogue-coordinator.js';

const ROWS = 4000;
const SETTINGS = { training: { epochs: 2, patience: 0 }, alignment: { min_intersection: 1000 } };

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

describe('vertical LR under a collective gradient key over gRPC (arbiter, guest and host each hold a share)', () => {
  let fed: EphemeralFederation;
  let stop: (() => Promise<void>) | undefined;
  beforeAll(async () => {
    ({ fed, stop } = await startUciHeteroPair(ROWS));
  });
  afterAll(() => stop?.());

  it('trains to the single-key AUC (within 0.005); every gradient opened with one share of each shareholder; the ledger verifies and replays; no key share is left', async () => {
    const single = await fed.run(verticalJob(SETTINGS));
    expect(single.last.state, single.last.message).toBe('succeeded');
    const collective = await fed.run(verticalJob({ ...SETTINGS, encryption: { scheme: 'ckks-threshold' } }));
    expect(collective.last.state, collective.last.message).toBe('succeeded');

    const ledgerDir = fed.ledgerDir;
    const all = readLedger(ledgerDir).entries;
    const of = (jobId: string) => all.filter((e) => e.entry.jobId === jobId);
    const auc = (jobId: string) => (of(jobId).find((e) => e.entry.kind === 'model_published')!.body as { test: { auc: number } }).test.auc;
    console.log(`vertical over gRPC, ${ROWS} rows: test AUC ${auc(collective.jobId).toFixed(4)} under the collective key, ${auc(single.jobId).toFixed(4)} under the single key`);
    expect(Math.abs(auc(collective.jobId) - auc(single.jobId))).toBeLessThan(0.005);

    // The single-key job records no ceremony and no share.
    const singleKinds = of(single.jobId).map((e) => e.entry.kind);
    expect(singleKinds.filter((k) => /key_share|collective_key|decryption_shares/.test(k))).toEqual([]);

    // The ceremony: each of the three committed and revealed, the keys agreed.
    const entries = of(collective.jobId);
    const shareholders = [ARBITER_SHAREHOLDER, 'bank', 'tax-bureau'];
    for (const kind of ['key_share_committed', 'key_share_revealed'])
      expect(entries.filter((e) => e.entry.kind === kind).map((e) => (e.body as { participant: string }).participant)).toEqual(shareholders);
    expect((entries.find((e) => e.entry.kind === 'collective_key_ready')!.body as { parties: string[] }).parties).toEqual(shareholders);

    // One share per gradient opened from each shareholder, and none twice for a ciphertext or a label.
    const batches = entries.filter((e) => e.entry.kind === 'step_completed' && (e.body as { name: string }).name === 'batch');
    const opened = batches.flatMap((e) => (e.body as { decrypted: { party: string; sha256: string }[] }).decrypted);
    expect(opened.length).toBe(2 * batches.length);
    const shares = entries.filter((e) => e.entry.kind === 'decryption_shares').map((e) => e.body as { participant: string; ciphertext_sha256: string; purpose: string });
    for (const holder of shareholders) {
      const given = shares.filter((s) => s.participant === holder);
      expect(given.length, holder).toBe(opened.length);
      expect(new Set(given.map((s) => s.ciphertext_sha256)).size).toBe(given.length);
      expect(new Set(given.map((s) => s.purpose)).size).toBe(given.length);
    }
    for (const d of opened) expect(shares.filter((s) => s.ciphertext_sha256 === d.sha256).map((s) => s.participant)).toEqual(expect.arrayContaining(shareholders));

    const verified = await verifyLedger(ledgerDir);
    expect(verified.ok).toBe(true);
    const replay = await replayLedger(ledgerDir, { jobId: collective.jobId });
    expect(replay.ok, replay.jobs[0]?.failures.join('; ')).toBe(true);
    expect(replay.jobs[0]!.publishedModelOk).toBe(true);

    // The auditor's checks bite: a second share of the bank's for a ciphertext it already decrypted (under a fresh
    // label), and a batch whose gradient lacks the tax bureau's share, are named.
    const blob = (ref: { sha256: Uint8Array }) => readFile(join(ledgerDir, 'blobs', Buffer.from(ref.sha256).toString('hex')));
    const bankShare = entries.find((e) => e.entry.kind === 'decryption_shares' && (e.body as { participant: string }).participant === 'bank')!;
    const again = { ...bankShare, body: { ...(bankShare.body as object), purpose: `${collective.jobId}/step 999/attempt 0/gradient of bank` } };
    const twice = await replayVerticalJob(collective.jobId, [...entries.slice(0, entries.indexOf(bankShare) + 1), again, ...entries.slice(entries.indexOf(bankShare) + 1)], blob);
    expect(twice.failures.join('; ')).toMatch(/bank gave a second decryption share for ciphertext/);
    const firstHostShare = entries.find((e) => e.entry.kind === 'decryption_shares' && (e.body as { participant: string }).participant === 'tax-bureau')!;
    const withoutHost = await replayVerticalJob(
      collective.jobId,
      entries.filter((e) => e !== firstHostShare),
      blob,
    );
    expect(withoutHost.failures.join('; ')).toMatch(/gradient was opened without a decryption share of tax-bureau/);

    // Key shares do not outlive the job: once the end reaches a party, no share (the codec's "FCTH" magic) is left in
    // its job folder, and no arbiter key or share in the coordinator's.
    for (const org of ['bank', 'tax-bureau']) {
      const shares = () => filesUnder(participantJobDir(fed.dir, org, collective.jobId)).filter((file) => readFileSync(file).subarray(0, 4).toString('latin1') === 'FCTH');
      await expect.poll(shares, { timeout: 10_000, message: org }).toEqual([]);
    }
    expect(existsSync(join(fed.stateDir, 'jobs', collective.jobId, 'arbiter'))).toBe(false);
  });

  it('a party refuses a share request outside the step it runs, naming the step asked for and its own', async () => {
    await fed.cluster.kill('coordinator');
    const rogue = await RogueCoordinator.start(fed.cluster.address, identityFromDir(identityDir(fed.dir, 'coordinator', 'coordinator')));
    try {
      const parties = ['bank', 'tax-bureau'];
      await rogue.waitConnected(parties, 90_000);
      const specJson = JSON.stringify(VerticalJobSpec.parse(verticalJob({ ...SETTINGS, encryption: { scheme: 'ckks-threshold' } })));
      const jobId = 'job-rogue-shares';
      // The first message of `body` from `org` in this job that arrived after `mark` messages.
      const from = (org: string, body: ParticipantMessage['body'] | ParticipantMessage['body'][], mark = 0) =>
        rogue.waitFor(org, (x) => x.jobId === jobId && [body].flat().includes(x.body) && rogue.received.findIndex((r) => r.message === x) >= mark);
      for (const org of parties) await rogue.send(org, { jobId, round: 0, body: 'jobOffer', jobOffer: { specJson, submitter: 'test-bank', lead: 'bank' } });
      for (const org of parties) await from(org, 'jobAccepted');
      // The double plays the arbiter honestly through the ceremony.
      const context = await ThresholdContext.create(VERTICAL_THRESHOLD_CKKS_PARAMS);
      const engine = await CkksEngine.create(VERTICAL_THRESHOLD_CKKS_PARAMS);
      try {
        const fingerprint = paramsFingerprint(VERTICAL_THRESHOLD_CKKS_PARAMS);
        const shareholders = [ARBITER_SHAREHOLDER, ...parties];
        const transcript = collectiveTranscript(jobId, shareholders, fingerprint, 'vertical');
        const own = verticalCollectiveKeyShare(context, transcript, ARBITER_SHAREHOLDER, verticalCollectiveRotationSteps(context.degree / 2));
        const entries = new Map<string, KeyShareEntry>([[ARBITER_SHAREHOLDER, { organisation: ARBITER_SHAREHOLDER, commitment: own.commitment, commitmentBinding: null, share: new Uint8Array() }]]);
        const step = async (name: ThresholdCeremony['step'], list: KeyShareEntry[]) => {
          const mark = rogue.received.length;
          for (const org of parties)
            await rogue.send(org, { jobId, round: 0, body: 'thresholdCeremony', thresholdCeremony: { step: name, parties: list, paramsFingerprint: fingerprint, publicKeySha256: new Uint8Array() } });
          const replies = new Map<string, ThresholdCeremony>();
          for (const org of parties) {
            const m = await from(org, 'thresholdCeremony', mark);
            if (m.body !== 'thresholdCeremony') throw new Error('unreachable');
            replies.set(org, m.thresholdCeremony);
          }
          return replies;
        };
        for (const [org, reply] of await step('commit', [])) entries.set(org, reply.parties[0]!);
        const ordered = () => shareholders.map((o) => entries.get(o)!);
        for (const [org, reply] of await step('reveal', ordered())) entries.get(org)!.share = reply.parties[0]!.share;
        entries.get(ARBITER_SHAREHOLDER)!.share = own.share;
        const digests = [...(await step('key', ordered())).values()].map((r) => Buffer.from(r.publicKeySha256).toString('hex'));
        expect(new Set(digests).size, 'every party computed the same keys').toBe(1);

        // A ciphertext under the collective key that the bank never sent, asked for as the bank's gradient.
        const { publicKey } = verticalCollectiveKeys(context, transcript, verticalCollectiveRotationSteps(context.degree / 2), ordered());
        const forged = VerticalGradient.of(engine).encryptSlots(new Float64Array(engine.slotCount).fill(1), publicKey);
        const ask = async (org: string, party: string) => {
          const mark = rogue.received.length;
          await rogue.send(org, { jobId, round: 5, body: 'gradientShareRequest', gradientShareRequest: { attempt: 0, party, ciphertext: forged } });
          const m = await from(org, ['error', 'gradientShare'], mark);
          return m.body === 'error' ? m.error : undefined;
        };
        // No step is running (the rogue ran none): every request is refused for that, before any other rule. A
        // coordinator with one colluding party could otherwise have any number of crafted ciphertexts opened under
        // that party's label (docs/threshold-ckks.md, "A with G"); the rules each request also breaks (the bank sent
        // no such gradient; power is no party; a fresh encryption is not of the masked-gradient class) are checked
        // one by one in test/vertical-threshold.test.ts.
        for (const [org, party] of [
          ['bank', 'bank'],
          ['tax-bureau', 'power'],
          ['tax-bureau', 'bank'],
        ] as const) {
          const refusal = await ask(org, party);
          expect(refusal?.code).toBe('FC_DECRYPTION_REFUSED');
          expect(refusal?.message).toMatch(new RegExp(`a decryption share for step 5 attempt 0 asked of ${org}, which runs no step; a gradient is opened only in the step that makes it`));
        }
        expect(rogue.received.filter((r) => r.message.jobId === jobId && r.message.body === 'gradientShare')).toEqual([]);
      } finally {
        engine.dispose();
        context.dispose();
      }
    } finally {
      await rogue.close();
    }
  });
});
