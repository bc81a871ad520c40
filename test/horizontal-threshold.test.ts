/**
 * Horizontal jobs under a collective key (encryption.scheme ckks-threshold), end to end in one process
 * (test/helpers/memory-horizontal.ts: real CKKS, real ledger, every message through the wire encoding) on slices of
 * the UCI default-credit homo split: the model equals the single-key job's within the flooding's error, the record
 * replays, what the coordinator holds opens nothing without every contributor's share, and a party that changes its
 * key share after committing is caught, named, and recorded.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rm } from 'node:fs/promises';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { identityDir, writeFederationPki } from '../src/federation/pki-layout.js';
import { identityFromDir, jobBinding } from '../src/wire/transport.js';
import { ThresholdParty } from '../participant/threshold-party.js';
import { collectiveKeyShare } from '../src/he/key-ceremony.js';
import { CkksEngine } from '../src/he/engine.js';
import { HorizontalVectors } from '../src/he/horizontal.js';
import type { DecryptionShares, KeyShareEntry, SumPurpose, ThresholdCeremony } from '../src/wire/messages.js';
import { UCI_FEATURES, horizontalJob, uciHomoSpec } from './helpers/federation.js';
import { MemoryFederation, writeUciSlices, type MemoryRun } from './helpers/memory-horizontal.js';
import { replayLedger } from '../src/jobs/replay.js';
import { verifyLedger } from '../src/ledger/verify.js';
import { readLedger } from '../src/ledger/read.js';
import { VectorCodec, toFloat32, toFloat64 } from '../src/fl/vector-codec.js';
import { THRESHOLD_CKKS_PARAMS, paramsFingerprint } from '../src/he/params.js';
import { ThresholdVectors, openedValueError, sumLabel } from '../src/he/threshold-vectors.js';
import { collectiveLevel } from '../src/he/packing.js';
import { ThresholdContext } from '../src/he/threshold/context.js';
import { decryptionSharesDigest } from '../src/fl/secure-sum-round.js';
import { decodeMessage } from '../src/wire/proto.js';
import { hex } from '../src/bytes.js';
import type { EncryptedVector } from '../src/wire/messages.js';

const NAMES = ['bank-a', 'bank-b', 'bank-c'];
const SLICE_ROWS = 2000;
const job = (overrides: Parameters<typeof horizontalJob>[0] = {}) => horizontalJob({ participants: NAMES, ...overrides, training: { rounds: 3, winsorize: 0, ...overrides.training } });
const threshold = { scheme: 'ckks-threshold' };

describe('a horizontal job under a collective CKKS key (threshold, 3 of 3) on UCI slices', () => {
  let slices: string;
  let fed: MemoryFederation;
  let run: MemoryRun;
  const entriesOf = (jobId: string) => readLedger(fed.ledgerDir).entries.filter((e) => e.entry.jobId === jobId);
  const blobOf = async (ref: { sha256: Uint8Array }) => new Uint8Array(await import('node:fs/promises').then((fs) => fs.readFile(`${fed.ledgerDir}/blobs/${Buffer.from(ref.sha256).toString('hex')}`)));

  beforeAll(async () => {
    const written = await writeUciSlices(NAMES, SLICE_ROWS);
    slices = written.dir;
    fed = await MemoryFederation.start(NAMES.map((name, i) => ({ name, data: uciHomoSpec(written.files[i]!) })));
    run = await fed.run(job({ encryption: threshold }));
  });
  afterAll(async () => {
    await fed?.stop();
    if (slices) await rm(slices, { recursive: true, force: true });
  });

  it("publishes the single-key job's model within the flooding's error, with the same AUC within 0.005", async () => {
    expect(run.state, run.message).toBe('succeeded');
    expect(run.events.some((e) => e.stage === 'keys' && e.message.includes('nobody the secret key'))).toBe(true);
    const single = await fed.run(job());
    expect(single.state, single.message).toBe('succeeded');
    const error = openedValueError(THRESHOLD_CKKS_PARAMS, NAMES.length);
    console.log(`flooding error per opened value: sd ${error.toExponential(2)} (λ = 40, 3 parties, scale 2^80)`);
    expect(error).toBeLessThan(1e-5);
    const wThreshold = toFloat32(run.files['weights.bin']!);
    const wSingle = toFloat32(single.files['weights.bin']!);
    expect(wThreshold.length).toBe(UCI_FEATURES.length + 1);
    const maxDiff = wThreshold.reduce((m, w, i) => Math.max(m, Math.abs(w - wSingle[i]!)), 0);
    console.log(`max |w_threshold - w_single_key| = ${maxDiff.toExponential(2)}`);
    expect(maxDiff).toBeLessThan(1e-4);
    const auc = (r: MemoryRun) => (JSON.parse(Buffer.from(r.files['fedcredit.json']!).toString('utf8')).evaluation as { auc: number }).auc;
    console.log(`published AUC: threshold ${auc(run).toFixed(4)}, single key ${auc(single).toFixed(4)}`);
    expect(auc(run)).toBeGreaterThan(0.65);
    expect(Math.abs(auc(run) - auc(single))).toBeLessThan(0.005);
  });

  it('records the ceremony and every decryption share, and the ledger verifies and replays', async () => {
    const kinds = entriesOf(run.jobId).map((e) => e.entry.kind);
    expect(kinds.filter((k) => k === 'key_share_committed')).toHaveLength(3);
    expect(kinds.filter((k) => k === 'key_share_revealed')).toHaveLength(3);
    expect(kinds.filter((k) => k === 'collective_key_ready')).toHaveLength(1);
    expect(kinds).not.toContain('keys_ready');
    const opened = kinds.filter((k) => k === 'aggregate_opened').length;
    expect(kinds.filter((k) => k === 'decryption_shares')).toHaveLength(3 * opened);
    expect((await verifyLedger(fed.ledgerDir)).ok).toBe(true);
    const report = await replayLedger(fed.ledgerDir, { jobId: run.jobId });
    expect(report.jobs[0]!.failures).toEqual([]);
    expect(report.jobs[0]!.publishedModelOk).toBe(true);
  });

  it("a coordinator double holding every key share, ciphertext and decryption share opens nothing without all contributors' shares", async () => {
    const entries = entriesOf(run.jobId);
    // Round 1's update aggregate, its opened values and its three parties' decryption shares, as the coordinator holds them.
    const at = entries.findIndex((e) => e.entry.kind === 'aggregate_produced' && (e.body as { round: number; purpose: string }).round === 1 && (e.body as { purpose: string }).purpose === 'update');
    const aggregate = decodeMessage<EncryptedVector>('EncryptedVector', await blobOf(entries[at]!.entry.blobs.find((b) => b.name === 'aggregate')!));
    const shareEntries = entries
      .slice(at)
      .filter((e) => e.entry.kind === 'decryption_shares')
      .slice(0, 3);
    const shares = await Promise.all(shareEntries.map(async (e) => decodeMessage<{ organisation: string; shares: Uint8Array[] }>('PartyDecryptionShares', await blobOf(e.entry.blobs[0]!))));
    const openedEntry = entries.slice(at).find((e) => e.entry.kind === 'aggregate_opened')!;
    const recorded = toFloat64(await blobOf(openedEntry.entry.blobs[0]!));
    const context = await ThresholdContext.create(THRESHOLD_CKKS_PARAMS);
    try {
      const vectors = new ThresholdVectors(context, 3);
      const label = sumLabel(run.jobId, 1, 'update', aggregate.blockSha256);
      expect(Array.from(vectors.combine(aggregate.blocks, aggregate.length, label, shares))).toEqual(Array.from(recorded));
      // Any strict subset: the missing share's c1·s_i term is uniform mod Q, so the values are noise of about Q/Δ.
      for (const subset of [[0, 1], [0, 2], [1, 2], [0], [1], [2], []]) {
        const values = vectors.combine(
          aggregate.blocks,
          aggregate.length,
          label,
          subset.map((i) => shares[i]!),
        );
        const off = values.reduce((m, v, i) => Math.max(m, Math.abs(v - recorded[i]!)), 0);
        expect(off, `shares of ${subset.map((i) => NAMES[i]).join(', ') || 'nobody'}`).toBeGreaterThan(1e6);
      }
      // No party gave a share for anything but an aggregate: no update ciphertext of the job was ever decrypted.
      const updateBlocks = new Set<string>();
      for (const e of entries.filter((x) => x.entry.kind === 'update_received')) {
        for (const d of decodeMessage<EncryptedVector>('EncryptedVector', await blobOf(e.entry.blobs[0]!)).blockSha256) updateBlocks.add(Buffer.from(d).toString('hex'));
      }
      const decrypted = entries.filter((e) => e.entry.kind === 'aggregate_produced').length;
      expect(entries.filter((e) => e.entry.kind === 'decryption_shares').length).toBe(3 * decrypted);
      for (const e of entries.filter((x) => x.entry.kind === 'aggregate_produced')) {
        const agg = decodeMessage<EncryptedVector>('EncryptedVector', await blobOf(e.entry.blobs[0]!));
        for (const d of agg.blockSha256) expect(updateBlocks.has(Buffer.from(d).toString('hex'))).toBe(false);
      }
    } finally {
      context.dispose();
    }
  });

  it('every sum needs every participant (the key is the sum of all shares): min_participants is refused, and a participant lost in round 2 fails the job naming it', async () => {
    await expect(fed.run(job({ encryption: threshold, training: { min_participants: 2 } }))).rejects.toThrow(/min_participants.*every sum opens only with every participant's key share/);
    fed.participant('bank-b').tamper = (reply) => {
      if (reply.body !== 'contribution' || reply.contribution.purpose !== 'update' || reply.round !== 2) return reply;
      fed.disconnect('bank-b', 'stream closed');
      return undefined;
    };
    try {
      const lost = await fed.run(job({ encryption: threshold, training: { max_round_retries: 0 } }));
      expect(lost.state).toBe('failed');
      expect(lost.message).toMatch(/round 2: .*bank-b/);
      const entries = entriesOf(lost.jobId);
      // No round-2 aggregate was ever formed, so nothing was decrypted for it.
      expect(entries.some((e) => e.entry.kind === 'aggregate_produced' && (e.body as { round: number }).round === 2)).toBe(false);
      expect(entries.find((e) => e.entry.kind === 'job_ended')?.body).toMatchObject({ state: 'failed' });
    } finally {
      fed.participant('bank-b').tamper = undefined;
      fed.reconnect('bank-b');
    }
  });

  it('a party that substitutes its key share after committing is caught and named; the job fails and the ledger records it', async () => {
    fed.participant('bank-b').tamper = (reply) => {
      if (reply.body !== 'thresholdCeremony' || reply.thresholdCeremony.step !== 'reveal') return reply;
      const own = reply.thresholdCeremony.parties[0]!;
      const share = Uint8Array.from(own.share);
      share[share.length - 1]! ^= 1;
      return { ...reply, thresholdCeremony: { ...reply.thresholdCeremony, parties: [{ ...own, share }] } };
    };
    try {
      const failed = await fed.run(job({ encryption: threshold }));
      expect(failed.state).toBe('failed');
      expect(failed.message).toMatch(/key ceremony: bank-b revealed a share that is refused: .*does not match the commitment it made/);
      const entries = entriesOf(failed.jobId);
      const rejected = entries.filter((e) => e.entry.kind === 'key_share_rejected').map((e) => (e.body as { participant: string }).participant);
      expect(rejected).toEqual(['bank-b']);
      expect(entries.some((e) => e.entry.kind === 'collective_key_ready')).toBe(false);
      expect(entries.some((e) => e.entry.kind === 'update_received')).toBe(false);
      expect(entries.find((e) => e.entry.kind === 'job_ended')?.body).toMatchObject({ state: 'failed' });
    } finally {
      fed.participant('bank-b').tamper = undefined;
    }
  });
});

describe("a participant's side of the collective key, with certificates, against a coordinator double", () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedcredit-threshold-binding-'));
  const specJson = '{"kind":"horizontal","participants":["bank-a","bank-b","bank-c"]}';
  let parties: ThresholdParty[];
  let context: ThresholdContext;
  const fingerprint = paramsFingerprint(THRESHOLD_CKKS_PARAMS);
  const ask = (step: ThresholdCeremony['step'], entries: KeyShareEntry[]): ThresholdCeremony => ({ step, parties: entries, paramsFingerprint: fingerprint, publicKeySha256: new Uint8Array() });
  /** What the coordinator relays once it has every contributor's shares: one combined share per block, each contributor's shares digest. */
  const relayOf = <P extends SumPurpose>(purpose: P, given: DecryptionShares['parties'], combined: Uint8Array[]) => ({
    purpose,
    parties: given.map((g) => ({ organisation: g.organisation, shares: [], sharesSha256: decryptionSharesDigest(g.organisation, g.shares) })),
    combined,
  });

  beforeAll(async () => {
    await writeFederationPki(dir, NAMES);
    context = await ThresholdContext.create(THRESHOLD_CKKS_PARAMS);
    parties = NAMES.map((org) => new ThresholdParty('job-t', org, NAMES, context, fingerprint, () => jobBinding(identityFromDir(identityDir(dir, org, 'participant')), specJson, NAMES)));
  });
  afterAll(() => {
    for (const p of parties ?? []) p.forget();
    context?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a swapped commitment (naming its party), and gives decryption shares only for the aggregate of its own latest contribution, once', () => {
    const commits = parties.map((p) => p.ceremony(ask('commit', [])).reply.parties[0]!);
    // The double replaces bank-b's commitment by one to a share of its own, keeping bank-b's signature.
    const rogue = collectiveKeyShare(context, parties[0]!.transcript, 'bank-b');
    const swapped = commits.map((c) => (c.organisation === 'bank-b' ? { ...c, commitment: rogue.commitment } : c));
    expect(() => parties[0]!.ceremony(ask('reveal', swapped))).toThrow(/bank-b's commitment to its CKKS key share in job job-t is not bound to bank-b's certificate: the signature does not match/);
    const reveals = parties.map((p) => p.ceremony(ask('reveal', commits)).reply.parties[0]!);
    const full = commits.map((c, i) => ({ ...c, share: reveals[i]!.share }));
    const keys = parties.map((p) => p.ceremony(ask('key', full)));
    expect(new Set(keys.map((k) => Buffer.from(k.reply.publicKeySha256).toString('hex'))).size).toBe(1);

    // bank-a contributed to round 1's update sum; the double asks it to decrypt something else.
    const vectors = new HorizontalVectors(engine!);
    const codec = VectorCodec.ckksCollective(vectors);
    const update = codec.encode(new Float64Array([1, 2, 3]), keys[1]!.keys, 'update');
    const aggregate = { purpose: 'update' as const, sum: update, contributors: NAMES };
    expect(() => parties[0]!.decryptionShares(aggregate, 1)).toThrow(/FC_DECRYPTION_REFUSED|contributed to no such sum/);
    parties[0]!.contributed('update', 1);
    expect(() => parties[0]!.decryptionShares({ ...aggregate, contributors: ['bank-b', 'bank-c'] }, 1)).toThrow(/does not name this node among its contributors/);
    expect(() => parties[0]!.decryptionShares({ ...aggregate, contributors: ['bank-a', 'bank-x'] }, 1)).toThrow(/are not distinct parties of the job/);
    // The key is the sum of every party's share: a sum that leaves one out is not opened.
    expect(() => parties[0]!.decryptionShares({ ...aggregate, contributors: ['bank-a', 'bank-b'] }, 1)).toThrow(
      /the sum is over 2 contributors; under a collective key it must be over all 3 participants/,
    );
    // An update sum opens at level 1 (collectiveLevel): a full-modulus ciphertext offered as an update aggregate is not decrypted.
    const atLevel0 = codec.encode(new Float64Array([1, 2, 3]), keys[1]!.keys, 'moments');
    expect([collectiveLevel(THRESHOLD_CKKS_PARAMS, 'update'), collectiveLevel(THRESHOLD_CKKS_PARAMS, 'moments')]).toEqual([1, 0]);
    // A chain whose level 1 cannot hold the scale keeps every sum on the whole modulus.
    expect(collectiveLevel({ ...THRESHOLD_CKKS_PARAMS, coeffModulusBits: [60, 40, 60] }, 'update')).toBe(0);
    // A value the sum could not hold at its level is refused before it is encrypted, not opened as garbage.
    expect(() => codec.encode(new Float64Array([1, 2e9, 3]), keys[1]!.keys, 'update')).toThrow(/value 2000000000 at position 1 of this node's update contribution is beyond ±1\.07e\+9/);
    codec.encode(new Float64Array([1, 2e9, 3]), keys[1]!.keys, 'moments');
    expect(() => parties[0]!.decryptionShares({ ...aggregate, sum: atLevel0 }, 1)).toThrow(/at level 0, class "horizontal-aggregate-level-1" is decrypted only at level 1/);
    const given = parties.map((p) => {
      p.contributed('update', 1);
      return p.decryptionShares(aggregate, 1)!.parties[0]!;
    });
    expect(() => parties[0]!.decryptionShares(aggregate, 1)).toThrow(/already gave its shares for that sum/);

    // The coordinator sends one combined share per block and each contributor's shares digest (as the ledger records it).
    const combined = parties[0]!.vectors.sumShares(update.blocks, sumLabel('job-t', 1, 'update', update.blockSha256), given);
    const relay = relayOf('update', given, combined);
    expect(combined[0]!.length).toBeLessThan(given[0]!.shares[0]!.length + 1024); // one share's size, not n shares'
    const opened = parties.map((p) => Array.from(p.open(relay).values));
    for (const values of opened) values.forEach((v, i) => expect(Math.abs(v - [1, 2, 3][i]!)).toBeLessThan(1e-4));
    // A double that names other shares for bank-a than bank-a sent (e.g. it dropped or replaced them) is caught by bank-a.
    const renamed = { ...relay, parties: relay.parties.map((p, i) => (i === 0 ? { ...p, sharesSha256: relay.parties[1]!.sharesSha256 } : p)) };
    expect(() => parties[0]!.open(renamed)).toThrow(/the coordinator names other decryption shares for bank-a than it sent/);
    // A combined share made for another sum (label) is refused; one missing block too.
    const foreign = parties[0]!.vectors.sumShares(update.blocks, sumLabel('job-t', 2, 'update', update.blockSha256), []);
    expect(() => parties[0]!.open({ ...relay, combined: foreign })).toThrow(/the coordinator's decryption share is not for this request: it is for "job-t\/round 2\/update\/.* block 0"/);
    expect(() => parties[0]!.open({ ...relay, combined: [] })).toThrow(/0 combined decryption shares for an aggregate of 1 blocks/);
  });

  it('refuses a second commit and a second key step, naming the step; the second gives nothing and changes nothing', () => {
    const fresh = NAMES.map((org) => new ThresholdParty('job-twice', org, NAMES, context, fingerprint, () => jobBinding(identityFromDir(identityDir(dir, org, 'participant')), specJson, NAMES)));
    try {
      const commits = fresh.map((p) => p.ceremony(ask('commit', [])).reply.parties[0]!);
      // A second commit would have the party make a second share, so that the coordinator could pick which to use.
      expect(() => fresh[0]!.ceremony(ask('commit', []))).toThrow(expect.objectContaining({ code: 'FC_KEY_BINDING', message: 'the coordinator asked bank-a to commit twice in job job-twice' }));
      // The share it reveals is still the one of its first commitment: its check of its own commitment passes.
      const reveals = fresh.map((p) => p.ceremony(ask('reveal', commits)).reply.parties[0]!);
      const full = commits.map((c, i) => ({ ...c, share: reveals[i]!.share }));
      const first = fresh.map((p) => p.ceremony(ask('key', full)));
      expect(new Set(first.map((k) => hex(k.reply.publicKeySha256))).size).toBe(1);
      // A second key step, with the same shares or others (a key of the coordinator's making), gives no keys.
      const other = collectiveKeyShare(context, fresh[0]!.transcript, 'bank-b');
      for (const parties of [full, full.map((c) => (c.organisation === 'bank-b' ? { ...c, share: other.share } : c))])
        expect(() => fresh[0]!.ceremony(ask('key', parties))).toThrow(expect.objectContaining({ code: 'FC_KEY_BINDING', message: 'the coordinator sent the collective key twice in job job-twice' }));
      // The key of the first step is the one the party encrypts under and decrypts with: the job's sum opens.
      const codec = VectorCodec.ckksCollective(new HorizontalVectors(engine!));
      const sum = codec.encode(new Float64Array([4, 5]), first[0]!.keys!, 'moments');
      const given = fresh.map((p) => {
        p.contributed('moments', 0);
        return p.decryptionShares({ purpose: 'moments', sum, contributors: NAMES }, 0)!.parties[0]!;
      });
      const combined = fresh[0]!.vectors.sumShares(sum.blocks, sumLabel('job-twice', 0, 'moments', sum.blockSha256), given);
      Array.from(fresh[0]!.open(relayOf('moments', given, combined)).values).forEach((v, i) => expect(v).toBeCloseTo([4, 5][i]!, 3));
    } finally {
      for (const p of fresh) p.forget();
    }
  });

  let engine: CkksEngine | undefined;
  beforeAll(async () => {
    engine = await CkksEngine.create(THRESHOLD_CKKS_PARAMS);
  });
  afterAll(() => engine?.dispose());
});
