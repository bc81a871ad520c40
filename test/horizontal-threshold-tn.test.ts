/**
 * Horizontal jobs under a t-of-n collective key (encryption.scheme ckks-threshold, encryption.threshold t): the key
 * shares are re-shared by Shamir after the ceremony, and a sum opens with the decryption shares of a quorum of t of
 * its contributors. In one process (test/helpers/memory-horizontal.ts) on four slices of the UCI default-credit homo
 * split: a participant that vanishes mid-job is a dropout and the job finishes with the model the single-key job
 * gets with the same dropout; with fewer than t left the job fails naming the missing; what t − 1 parties' shares
 * open is noise; the safe floor of t is enforced; and a participant's own rules (quorum, one contributor set per
 * round) hold against a coordinator double.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateBoxKeyPair } from '../src/crypto/sealed-box.js';
import { HorizontalJobSpec, minimumThreshold } from '../src/config/schemas.js';
import { validateConfig } from '../src/config/load.js';
import { ThresholdParty } from '../participant/threshold-party.js';
import { CkksEngine } from '../src/he/engine.js';
import { HorizontalVectors } from '../src/he/horizontal.js';
import { THRESHOLD_CKKS_PARAMS, paramsFingerprint } from '../src/he/params.js';
import { ThresholdVectors, sumLabel } from '../src/he/threshold-vectors.js';
import { ThresholdContext } from '../src/he/threshold/context.js';
import { VectorCodec, toFloat32, toFloat64, type Keys } from '../src/fl/vector-codec.js';
import { decryptionSharesDigest } from '../src/fl/secure-sum-round.js';
import { replayLedger } from '../src/jobs/replay.js';
import { ThresholdReplay } from '../src/audit/replay-threshold.js';
import { verifyLedger } from '../src/ledger/verify.js';
import { readLedger } from '../src/ledger/read.js';
import { decodeMessage } from '../src/wire/proto.js';
import type { EncryptedVector, KeyShareEntry, Recipient, ThresholdCeremony } from '../src/wire/messages.js';
import { UCI, horizontalJob, uciHomoSpec } from './helpers/federation.js';
import { MemoryFederation, type MemoryRun } from './helpers/memory-horizontal.js';

const NAMES = ['bank-a', 'bank-b', 'bank-c', 'bank-d'];
const SLICE_ROWS = 1500;
const T = 3;
const job = (overrides: Parameters<typeof horizontalJob>[0] = {}) => horizontalJob({ participants: NAMES, ...overrides, training: { rounds: 3, winsorize: 0, ...overrides.training } });
const tOfN = { scheme: 'ckks-threshold', threshold: T };

/** Four slices of the UCI homo split: rows 1–1500 of each of its three parts, and rows 1501–3000 of the first. */
async function writeFourSlices(): Promise<{ dir: string; files: string[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'fedcredit-uci-four-'));
  const parts: [string, number][] = [
    ['guest', 0],
    ['host_1', 0],
    ['host_2', 0],
    ['guest', SLICE_ROWS],
  ];
  const files = await Promise.all(
    parts.map(async ([part, from], i) => {
      const lines = (await readFile(join(UCI, `fate_default_credit_homo_${part}.csv`), 'utf8')).split('\n');
      const out = join(dir, `${NAMES[i]}.csv`);
      await writeFile(out, [lines[0], ...lines.slice(1 + from, 1 + from + SLICE_ROWS)].join('\n') + '\n');
      return out;
    }),
  );
  return { dir, files };
}

describe(`a horizontal job under a ${T}-of-${NAMES.length} collective CKKS key on UCI slices`, () => {
  let slices: string;
  let fed: MemoryFederation;
  let run: MemoryRun;
  const entriesOf = (jobId: string) => readLedger(fed.ledgerDir).entries.filter((e) => e.entry.jobId === jobId);
  const blobOf = async (ref: { sha256: Uint8Array }) => new Uint8Array(await readFile(`${fed.ledgerDir}/blobs/${Buffer.from(ref.sha256).toString('hex')}`));
  /** bank-d's stream closes as it sends its round-2 update: the contribution never arrives. */
  const vanishInRound2 = (org: string) => {
    fed.participant(org).tamper = (reply) => {
      if (reply.body !== 'contribution' || reply.contribution.purpose !== 'update' || reply.round !== 2) return reply;
      fed.disconnect(org, 'stream closed');
      return undefined;
    };
  };
  /** `org` contributes to round 2's update, then its stream closes before it gives its decryption shares (or, under a single key, its decryption report). */
  const vanishBeforeShares = (org: string) => {
    fed.participant(org).tamper = (reply) => {
      if (reply.round !== 2 || (reply.body !== 'decryptionShares' && reply.body !== 'aggregateOpened')) return reply;
      fed.disconnect(org, 'stream closed');
      return undefined;
    };
  };
  const restore = (org: string) => {
    fed.participant(org).tamper = undefined;
    fed.reconnect(org);
  };

  beforeAll(async () => {
    const written = await writeFourSlices();
    slices = written.dir;
    fed = await MemoryFederation.start(NAMES.map((name, i) => ({ name, data: uciHomoSpec(written.files[i]!) })));
    vanishInRound2('bank-d');
    try {
      run = await fed.run(job({ encryption: tOfN }));
    } finally {
      restore('bank-d');
    }
  }, 600_000);
  afterAll(async () => {
    await fed?.stop();
    if (slices) await rm(slices, { recursive: true, force: true });
  });

  it('refuses a threshold below the safe floor, on another scheme, or above min_participants, naming the field and the fix', () => {
    expect([2, 3, 4, 5, 10, 100].map(minimumThreshold)).toEqual([2, 3, 3, 4, 6, 51]);
    const parse =
      (encryption: Record<string, unknown>, training: Record<string, unknown> = {}) =>
      () =>
        validateConfig(HorizontalJobSpec, job({ encryption, training }), 'job spec', 'job');
    expect(parse({ scheme: 'ckks-threshold', threshold: 2 })).toThrow(/encryption\.threshold.*is 2, below the safe floor 3 for 4 participants.*Use encryption\.threshold 3 or more/);
    expect(parse({ scheme: 'ckks', threshold: 3 })).toThrow(/encryption\.threshold.*applies to encryption\.scheme ckks-threshold only/);
    expect(parse({ scheme: 'ckks-threshold', threshold: 5 })).toThrow(/encryption\.threshold.*is 5 but only 4 participants are named/);
    expect(parse(tOfN, { min_participants: 2 })).toThrow(/min_participants.*is 2, below encryption\.threshold 3/);
    expect(parse({ scheme: 'ckks-threshold' }, { min_participants: 3 })).toThrow(/min_participants.*set encryption\.threshold \(t-of-n\)/);
    expect(validateConfig(HorizontalJobSpec, job({ encryption: tOfN }), 'job spec', 'job').encryption.threshold).toBe(3);
  });

  it('a participant that vanishes in round 2 is a dropout: the job finishes on the other three, with the model of the single-key job with the same dropout', async () => {
    expect(run.state, run.message).toBe('succeeded');
    expect(run.events.some((e) => e.stage === 'keys' && e.message.includes(`any ${T} of the ${NAMES.length} participants' shares open a sum`))).toBe(true);
    const rounds = run.events.filter((e) => e.progress?.unit === 'round').map((e) => e.progress!);
    expect(rounds.map((r) => r.participants.length)).toEqual([4, 3, 3]);
    expect(rounds[1]!.dropped.join()).toMatch(/bank-d/);
    vanishInRound2('bank-d');
    let single: MemoryRun;
    try {
      single = await fed.run(job({ training: { min_participants: T } }));
    } finally {
      restore('bank-d');
    }
    expect(single.state, single.message).toBe('succeeded');
    const w = toFloat32(run.files['weights.bin']!);
    const wSingle = toFloat32(single.files['weights.bin']!);
    const maxDiff = w.reduce((m, x, i) => Math.max(m, Math.abs(x - wSingle[i]!)), 0);
    const auc = (r: MemoryRun) => (JSON.parse(Buffer.from(r.files['fedcredit.json']!).toString('utf8')).evaluation as { auc: number }).auc;
    console.log(`t-of-n with a dropout: max |w − w_single_key| = ${maxDiff.toExponential(2)}; AUC ${auc(run).toFixed(4)} vs ${auc(single).toFixed(4)}`);
    expect(maxDiff).toBeLessThan(1e-4);
    expect(auc(run)).toBeGreaterThan(0.65);
    expect(Math.abs(auc(run) - auc(single))).toBeLessThan(0.005);
  });

  it('records the re-sharing and a quorum of t for every sum; only the quorum gives shares, and the ledger verifies and replays', async () => {
    const entries = entriesOf(run.jobId);
    const reshared = entries.filter((e) => e.entry.kind === 'key_share_reshared').map((e) => e.body as { participant: string; boxes: { receiver: string }[] });
    expect(reshared.map((r) => r.participant)).toEqual(NAMES);
    for (const r of reshared) expect(r.boxes.map((b) => b.receiver).sort()).toEqual(NAMES.filter((o) => o !== r.participant));
    expect(entries.find((e) => e.entry.kind === 'collective_key_ready')?.body).toMatchObject({ threshold: T });
    let current: string[] = [];
    let opened = 0;
    for (const e of entries) {
      const b = e.body as { quorum?: string[]; contributors?: string[]; participant?: string };
      if (e.entry.kind === 'aggregate_produced') {
        expect(b.quorum).toHaveLength(T);
        current = b.quorum!;
        opened++;
      }
      if (e.entry.kind === 'decryption_shares') expect(current).toContain(b.participant);
    }
    expect(entries.filter((e) => e.entry.kind === 'decryption_shares')).toHaveLength(T * opened);
    expect((await verifyLedger(fed.ledgerDir)).ok).toBe(true);
    const report = await replayLedger(fed.ledgerDir, { jobId: run.jobId });
    expect(report.jobs[0]!.failures).toEqual([]);
    expect(report.jobs[0]!.publishedModelOk).toBe(true);
  });

  it('fewer than t shares open nothing: a coordinator double with t − 1 recorded shares of every aggregate gets noise', async () => {
    const entries = entriesOf(run.jobId);
    const context = await ThresholdContext.create(THRESHOLD_CKKS_PARAMS);
    try {
      const vectors = new ThresholdVectors(context, NAMES.length);
      let checked = 0;
      for (let at = 0; at < entries.length; at++) {
        const e = entries[at]!;
        if (e.entry.kind !== 'aggregate_produced') continue;
        const b = e.body as { round: number; purpose: string };
        const aggregate = decodeMessage<EncryptedVector>('EncryptedVector', await blobOf(e.entry.blobs.find((x) => x.name === 'aggregate')!));
        const rest = entries.slice(at + 1);
        const shares = await Promise.all(
          rest
            .slice(
              0,
              rest.findIndex((x) => x.entry.kind === 'aggregate_opened'),
            )
            .filter((x) => x.entry.kind === 'decryption_shares')
            .map(async (x) => decodeMessage<{ organisation: string; shares: Uint8Array[] }>('PartyDecryptionShares', await blobOf(x.entry.blobs[0]!))),
        );
        const recorded = toFloat64(await blobOf(rest.find((x) => x.entry.kind === 'aggregate_opened')!.entry.blobs[0]!));
        const label = sumLabel(run.jobId, b.round, b.purpose, aggregate.blockSha256);
        expect(shares).toHaveLength(T);
        expect(Array.from(vectors.combine(aggregate.blocks, aggregate.length, label, shares))).toEqual(Array.from(recorded));
        for (let leftOut = 0; leftOut < T; leftOut++) {
          const values = vectors.combine(
            aggregate.blocks,
            aggregate.length,
            label,
            shares.filter((_, i) => i !== leftOut),
          );
          const off = values.reduce((m, v, i) => Math.max(m, Math.abs(v - recorded[i]!)), 0);
          expect(off, `round ${b.round} ${b.purpose} without ${shares[leftOut]!.organisation}`).toBeGreaterThan(1e6);
        }
        checked++;
      }
      expect(checked).toBeGreaterThan(4);
    } finally {
      context.dispose();
    }
  });

  it('audit replay names a second share for one ciphertext, shares from outside the quorum, and shares for two contributor sets of a round', async () => {
    const entries = entriesOf(run.jobId);
    const replay = await ThresholdReplay.start(run.jobId, NAMES, THRESHOLD_CKKS_PARAMS, T);
    const failures: string[] = [];
    type Entry = (typeof entries)[number];
    const feed = (e: Entry, body: Record<string, unknown> = e.body as Record<string, unknown>) =>
      replay.entry(
        e.entry.kind,
        body,
        async (name) => {
          const ref = e.entry.blobs.find((b) => b.name === name);
          return ref ? blobOf(ref) : undefined;
        },
        (message) => failures.push(message),
      );
    try {
      const produced = entries.findIndex((e) => e.entry.kind === 'aggregate_produced' && (e.body as { purpose: string }).purpose === 'update');
      for (const e of entries.slice(0, produced + 1)) await feed(e);
      expect(failures).toEqual([]);
      const { quorum, contributors } = entries[produced]!.body as { quorum: string[]; contributors: string[] };
      const first = entries.slice(produced).find((e) => e.entry.kind === 'decryption_shares')!;
      await feed(first);
      expect(failures).toEqual([]);
      const giver = (first.body as { participant: string }).participant;
      await feed(first);
      expect(failures.join('\n')).toMatch(new RegExp(`${giver} gave a second decryption share for ciphertext`));
      const outsider = contributors.find((o) => !quorum.includes(o))!;
      await feed(first, { ...(first.body as object), participant: outsider });
      expect(failures.join('\n')).toMatch(new RegExp(`${outsider} gave decryption shares for a sum it does not open`));
      // The same round's sum again over a smaller set, and the giver's shares for it.
      await feed(entries[produced]!, { ...(entries[produced]!.body as object), contributors: quorum });
      await feed(first);
      expect(failures.join('\n')).toMatch(new RegExp(`${giver} gave decryption shares for update sums over two contributor sets`));
    } finally {
      replay.dispose();
    }
  });

  describe('a quorum member lost after its contribution and before its decryption shares', () => {
    let recovered: MemoryRun;
    beforeAll(async () => {
      vanishBeforeShares('bank-c');
      try {
        recovered = await fed.run(job({ encryption: tOfN }));
      } finally {
        restore('bank-c');
      }
    }, 600_000);
    const round2 = () =>
      entriesOf(recovered.jobId)
        .filter((e) => (e.body as { round?: number }).round === 2)
        .filter((e) => ['aggregate_produced', 'decryption_shares', 'decryption_shares_missing', 'quorum_replaced', 'aggregate_opened'].includes(e.entry.kind));

    it('the other contributors open the same aggregate with a new quorum; the job publishes the model of the single-key job with the same dropout', async () => {
      expect(recovered.state, recovered.message).toBe('succeeded');
      const rounds = recovered.events.filter((e) => e.progress?.unit === 'round').map((e) => e.progress!);
      // Round 2's sum holds bank-c's update (it contributed); round 3 goes on without it.
      expect(rounds.map((r) => r.participants)).toEqual([NAMES, NAMES, ['bank-a', 'bank-b', 'bank-d']]);
      expect(recovered.events.some((e) => /round 2: bank-c left before giving decryption shares; bank-a, bank-b, bank-d open the same update aggregate/.test(e.message))).toBe(true);
      vanishBeforeShares('bank-c');
      let single: MemoryRun;
      try {
        single = await fed.run(job({ training: { min_participants: T } }));
      } finally {
        restore('bank-c');
      }
      expect(single.state, single.message).toBe('succeeded');
      const singleRounds = single.events.filter((e) => e.progress?.unit === 'round').map((e) => e.progress!.participants);
      expect(singleRounds).toEqual(rounds.map((r) => r.participants));
      const w = toFloat32(recovered.files['weights.bin']!);
      const wSingle = toFloat32(single.files['weights.bin']!);
      const maxDiff = w.reduce((m, x, i) => Math.max(m, Math.abs(x - wSingle[i]!)), 0);
      const auc = (r: MemoryRun) => (JSON.parse(Buffer.from(r.files['fedcredit.json']!).toString('utf8')).evaluation as { auc: number }).auc;
      const seconds = (r: MemoryRun) => r.events.flatMap((e) => (e.progress?.unit === 'round' ? [`${e.progress.seconds.toFixed(2)} s`] : [])).join(', ');
      console.log(`t-of-n, a quorum member lost before its shares: max |w − w_single_key| = ${maxDiff.toExponential(2)}; AUC ${auc(recovered).toFixed(4)} vs ${auc(single).toFixed(4)}`);
      console.log(`rounds 1–3: ${seconds(recovered)} (3-of-4, round 2 opened by a new quorum) vs ${seconds(single)} (single key)`);
      expect(maxDiff).toBeLessThan(1e-4);
      expect(auc(recovered)).toBeGreaterThan(0.65);
      expect(Math.abs(auc(recovered) - auc(single))).toBeLessThan(0.005);
    });

    it('the ledger records the lost member and the new quorum, every share given (two per ciphertext only from members of both quorums), and verifies and replays', async () => {
      const flow = round2().map((e) => {
        const b = e.body as { participant?: string; lost?: string[]; quorum?: string[]; previous?: string[] };
        return e.entry.kind === 'quorum_replaced'
          ? { kind: e.entry.kind, lost: b.lost, previous: b.previous, quorum: b.quorum }
          : { kind: e.entry.kind, ...(b.participant ? { participant: b.participant } : {}), ...(b.quorum ? { quorum: b.quorum } : {}) };
      });
      expect(flow).toEqual([
        { kind: 'aggregate_produced', quorum: ['bank-a', 'bank-b', 'bank-c'] },
        { kind: 'decryption_shares', participant: 'bank-a' },
        { kind: 'decryption_shares', participant: 'bank-b' },
        { kind: 'decryption_shares_missing', participant: 'bank-c' },
        { kind: 'quorum_replaced', lost: ['bank-c'], previous: ['bank-a', 'bank-b', 'bank-c'], quorum: ['bank-a', 'bank-b', 'bank-d'] },
        { kind: 'decryption_shares', participant: 'bank-a' },
        { kind: 'decryption_shares', participant: 'bank-b' },
        { kind: 'decryption_shares', participant: 'bank-d' },
        { kind: 'aggregate_opened' },
      ]);
      expect(round2().find((e) => e.entry.kind === 'decryption_shares_missing')!.body).toMatchObject({ reason: expect.stringMatching(/stream closed|not connected/) });
      expect((await verifyLedger(fed.ledgerDir)).ok).toBe(true);
      const report = await replayLedger(fed.ledgerDir, { jobId: recovered.jobId });
      expect(report.jobs[0]!.failures).toEqual([]);
      expect(report.jobs[0]!.publishedModelOk).toBe(true);
    });

    it('what the coordinator holds (every share of both quorums) opens nothing but with the new quorum: any other three of the five recorded shares give noise', async () => {
      const entries = round2();
      const produced = entries.find((e) => e.entry.kind === 'aggregate_produced')!;
      const aggregate = decodeMessage<EncryptedVector>('EncryptedVector', await blobOf(produced.entry.blobs.find((x) => x.name === 'aggregate')!));
      const shares = await Promise.all(
        entries
          .filter((e) => e.entry.kind === 'decryption_shares')
          .map(async (e) => decodeMessage<{ organisation: string; shares: Uint8Array[] }>('PartyDecryptionShares', await blobOf(e.entry.blobs[0]!))),
      );
      const recorded = toFloat64(await blobOf(entries.find((e) => e.entry.kind === 'aggregate_opened')!.entry.blobs[0]!));
      const label = sumLabel(recovered.jobId, 2, 'update', aggregate.blockSha256);
      const context = await ThresholdContext.create(THRESHOLD_CKKS_PARAMS);
      try {
        const vectors = new ThresholdVectors(context, NAMES.length);
        expect(shares).toHaveLength(5);
        let tried = 0;
        for (let i = 0; i < 5; i++)
          for (let j = i + 1; j < 5; j++)
            for (let k = j + 1; k < 5; k++) {
              const picked = [shares[i]!, shares[j]!, shares[k]!];
              const values = vectors.combine(aggregate.blocks, aggregate.length, label, picked);
              const off = values.reduce((m, v, x) => Math.max(m, Math.abs(v - recorded[x]!)), 0);
              if (i === 2 && j === 3 && k === 4) expect(off).toBe(0);
              else expect(off, `shares ${i}, ${j}, ${k}`).toBeGreaterThan(1e6);
              tried++;
            }
        expect(tried).toBe(10);
      } finally {
        context.dispose();
      }
    });

    it('audit replay names a new quorum that keeps the lost member, a lost member whose shares are recorded or whose silence is not, a third quorum, and a second share without a replacement', async () => {
      const entries = round2();
      type Entry = (typeof entries)[number];
      /** The failures a fresh replay names for these entries (each with the body given, or as recorded). */
      const replayed = async (...fed: (Entry | [Entry, Record<string, unknown>])[]) => {
        const replay = await ThresholdReplay.start(recovered.jobId, NAMES, THRESHOLD_CKKS_PARAMS, T);
        const failures: string[] = [];
        try {
          for (const item of fed) {
            const [e, body] = Array.isArray(item) ? item : [item, item.body as Record<string, unknown>];
            await replay.entry(
              e.entry.kind,
              body,
              async (name) => {
                const ref = e.entry.blobs.find((b) => b.name === name);
                return ref ? blobOf(ref) : undefined;
              },
              (message) => failures.push(message),
            );
          }
        } finally {
          replay.dispose();
        }
        return failures.join('\n');
      };
      const [produced, a1, b1, missing, replaced, a2, b2, d2, opened] = entries as [Entry, Entry, Entry, Entry, Entry, Entry, Entry, Entry, Entry];
      const replacedAs = (fields: Record<string, unknown>): [Entry, Record<string, unknown>] => [replaced, { ...(replaced.body as object), ...fields }];
      expect(await replayed(produced, a1, b1, missing, replaced, a2, b2, d2, opened)).toBe('');
      expect(await replayed(produced, a1, b1, a2)).toMatch(/bank-a gave a second decryption share for ciphertext/);
      expect(await replayed(produced, a1, b1, replacedAs({ quorum: ['bank-a', 'bank-c', 'bank-d'] }))).toMatch(
        /the new quorum \[bank-a, bank-c, bank-d\] is not 3 distinct contributors other than the lost \[bank-c\]/,
      );
      expect(await replayed(produced, a1, b1, replacedAs({ lost: ['bank-a'], quorum: ['bank-b', 'bank-c', 'bank-d'] }))).toMatch(/bank-a is recorded as lost, yet its decryption shares are recorded/);
      expect(await replayed(produced, a1, b1, replaced)).toMatch(/bank-c is recorded as lost with no decryption_shares_missing before it/);
      expect(await replayed(produced, a1, b1, replaced, replacedAs({ previous: ['bank-a', 'bank-b', 'bank-d'], lost: ['bank-d'], quorum: ['bank-a', 'bank-b', 'bank-c'] }))).toMatch(
        /quorum is replaced a second time; a sum opens with at most two quorums/,
      );
      // A third share of bank-a; and its first quorum's share recorded in place of its second does not open the sum.
      expect(await replayed(produced, a1, b1, replaced, a2, b2, d2, a2)).toMatch(/bank-a gave a third decryption share for ciphertext .*allowed only for the quorum that replaced/);
      expect(await replayed(produced, a1, b1, missing, replaced, a1, b2, d2, opened)).toMatch(/round 2: the recorded update values are not what the recorded decryption shares open the aggregate to/);
    });
  });

  it('a quorum member that stays connected but silent past the deadline is lost too: the sum opens with a new quorum, and the member takes part again in round 3', async () => {
    fed.participant('bank-c').tamper = (reply) => (reply.round === 2 && reply.body === 'decryptionShares' ? undefined : reply);
    let silent: MemoryRun;
    try {
      silent = await fed.run(job({ encryption: tOfN, training: { round_timeout_s: 6 } }));
    } finally {
      restore('bank-c');
    }
    expect(silent.state, silent.message).toBe('succeeded');
    expect(silent.events.filter((e) => e.progress?.unit === 'round').map((e) => e.progress!.participants.length)).toEqual([4, 4, 4]);
    const missing = entriesOf(silent.jobId).filter((e) => e.entry.kind === 'decryption_shares_missing');
    expect(missing.map((e) => e.body)).toEqual([expect.objectContaining({ round: 2, participant: 'bank-c', reason: expect.stringMatching(/no decryptionShares within the deadline/) })]);
    expect((await replayLedger(fed.ledgerDir, { jobId: silent.jobId })).jobs[0]!.failures).toEqual([]);
  });

  it('without t contributors left to form a new quorum, or with a member of the new quorum lost too, the job fails naming the lost', async () => {
    const failing = async (lost: string[]) => {
      for (const org of lost) vanishBeforeShares(org);
      try {
        return await fed.run(job({ encryption: tOfN }));
      } finally {
        for (const org of lost) restore(org);
      }
    };
    const two = await failing(['bank-b', 'bank-c']);
    expect(two.state).toBe('failed');
    expect(two.message).toMatch(
      /round 2: bank-b gave no decryption shares of the update aggregate \(.*\); .* the shares of its quorum \[bank-a, bank-b, bank-c\], and only 2 other contributors remain to open it with a new quorum of 3/,
    );
    expect(
      entriesOf(two.jobId)
        .filter((e) => e.entry.kind === 'decryption_shares_missing')
        .map((e) => (e.body as { participant: string }).participant),
    ).toEqual(['bank-b', 'bank-c']);
    expect(entriesOf(two.jobId).some((e) => e.entry.kind === 'quorum_replaced')).toBe(false);
    const again = await failing(['bank-c', 'bank-d']);
    expect(again.state).toBe('failed');
    expect(again.message).toMatch(/round 2: bank-d gave no decryption shares of the update aggregate \(.*\); .* the shares of its quorum \[bank-a, bank-b, bank-d\]/);
    expect(
      entriesOf(again.jobId)
        .filter((e) => e.entry.kind === 'quorum_replaced')
        .map((e) => e.body),
    ).toEqual([expect.objectContaining({ lost: ['bank-c'], quorum: ['bank-a', 'bank-b', 'bank-d'] })]);
    expect((await replayLedger(fed.ledgerDir, { jobId: again.jobId })).jobs[0]!.failures).toEqual([]);
  });

  it('a quorum member that refuses its shares (a coordinator double sends it another quorum) is recorded and named; the job fails', async () => {
    fed.coordinatorTamper = (org, message) => {
      if (org !== 'bank-a' || message.body !== 'aggregateReady' || message.round !== 2) return message;
      const quorum = message.aggregateReady.quorum ?? [];
      return { ...message, aggregateReady: { ...message.aggregateReady, quorum: [...quorum].reverse() } };
    };
    try {
      const refused = await fed.run(job({ encryption: tOfN }));
      expect(refused.state).toBe('failed');
      expect(refused.message).toMatch(/round 2: bank-a gave no decryption shares of the update aggregate/);
      const missing = entriesOf(refused.jobId).filter((e) => e.entry.kind === 'decryption_shares_missing');
      expect(missing.map((e) => e.body)).toEqual([
        expect.objectContaining({ round: 2, purpose: 'update', participant: 'bank-a', reason: expect.stringMatching(/is not 3 distinct contributors of the sum in canonical order/) }),
      ]);
    } finally {
      fed.coordinatorTamper = undefined;
    }
  });

  it('with fewer than t participants left the job fails, naming the missing', async () => {
    vanishInRound2('bank-c');
    vanishInRound2('bank-d');
    try {
      const lost = await fed.run(job({ encryption: tOfN, training: { max_round_retries: 0 } }));
      expect(lost.state).toBe('failed');
      expect(lost.message).toMatch(/round 2: 2 of 4 participants contributed, 3 needed; dropped: .*bank-c.*bank-d/);
      expect(entriesOf(lost.jobId).some((e) => e.entry.kind === 'aggregate_produced' && (e.body as { round: number }).round === 2)).toBe(false);
    } finally {
      restore('bank-c');
      restore('bank-d');
    }
  });
});

describe("a participant's side of a t-of-n collective key against a coordinator double", () => {
  const fingerprint = paramsFingerprint(THRESHOLD_CKKS_PARAMS);
  const boxes = NAMES.map(() => generateBoxKeyPair());
  const recipients: Recipient[] = NAMES.map((organisation, i) => ({ organisation, boxPublicKey: boxes[i]!.publicKey, binding: null }));
  let context: ThresholdContext;
  let engine: CkksEngine;
  let parties: ThresholdParty[];
  const ask = (step: ThresholdCeremony['step'], entries: KeyShareEntry[]): ThresholdCeremony => ({
    step,
    parties: entries,
    paramsFingerprint: fingerprint,
    publicKeySha256: new Uint8Array(),
    recipients,
  });

  beforeAll(async () => {
    context = await ThresholdContext.create(THRESHOLD_CKKS_PARAMS);
    engine = await CkksEngine.create(THRESHOLD_CKKS_PARAMS);
    parties = NAMES.map(
      (org, i) =>
        new ThresholdParty(
          'job-tn',
          org,
          NAMES,
          context,
          fingerprint,
          () => undefined,
          T,
          () => boxes[i]!,
        ),
    );
  });
  afterAll(() => {
    context?.dispose();
    engine?.dispose();
  });

  it('re-shares by Shamir, opens a sum with any quorum of t, refuses a malformed quorum and a second contributor set in a round', () => {
    const commits = parties.map((p) => p.ceremony(ask('commit', [])).reply.parties[0]!);
    const reveals = parties.map((p) => p.ceremony(ask('reveal', commits)).reply.parties[0]!);
    const full = commits.map((c, i) => ({ ...c, share: reveals[i]!.share }));
    const publicKeys = parties.map((p) => p.ceremony(ask('key', full)).keys!);
    const outgoing = parties.map((p) => p.ceremony(ask('reshare', [])).reply.parties);
    expect(() => parties[0]!.ceremony(ask('reshare', []))).toThrow(/re-share its key share twice/);
    const inbox = (org: string) => outgoing.flatMap((entries, i) => entries.filter((e) => e.organisation === org).map((e) => ({ ...e, organisation: NAMES[i]! })));
    // A box from bank-b relabelled as bank-c's does not open with bank-c's key: the coordinator cannot move shares.
    const swapped = inbox('bank-a').map((e) => (e.organisation === 'bank-b' ? { ...e, organisation: 'bank-c' } : e.organisation === 'bank-c' ? { ...e, organisation: 'bank-b' } : e));
    expect(() => parties[0]!.ceremony(ask('reshared', swapped))).toThrow(/the Shamir share from bank-[bc] for bank-a in job job-tn is refused: cannot open sealed box/);
    expect(() => parties[0]!.ceremony(ask('reshared', inbox('bank-a').slice(1)))).toThrow(/it needs one from each of \[bank-b, bank-c, bank-d\]/);
    const kept: Keys[] = NAMES.map((org, i) => parties[i]!.ceremony(ask('reshared', inbox(org))).keys!);
    for (const k of kept) expect(k.secretKey![5]).toBe(5); // a Shamir share replaces the additive one at rest

    const codec = VectorCodec.ckksCollective(new HorizontalVectors(engine));
    const plain = [1.5, -2, 3];
    // Not masked here: a sum is one encryption, which is enough for the decryption's rules (one share per ciphertext:
    // each round has its own).
    const encrypt = () => codec.encode(new Float64Array(plain), publicKeys[0]!, 'update');
    const sum = encrypt();
    const open = (quorum: string[], round: number) => {
      const sum = encrypt();
      const aggregate = { purpose: 'update' as const, sum, contributors: NAMES, quorum };
      parties.forEach((p) => p.contributed('update', round));
      const given = parties.flatMap((p) => p.decryptionShares(aggregate, round)?.parties ?? []);
      expect(given.map((g) => g.organisation)).toEqual(quorum);
      const combined = parties[0]!.vectors.sumShares(sum.blocks, sumLabel('job-tn', round, 'update', sum.blockSha256), given);
      const relay = { purpose: 'update' as const, parties: given.map((g) => ({ organisation: g.organisation, shares: [], sharesSha256: decryptionSharesDigest(g.organisation, g.shares) })), combined };
      // Every contributor opens it, the one outside the quorum too; the first of the quorum reports.
      return parties.map((p) => p.open(relay));
    };
    for (const [round, quorum] of [
      [1, ['bank-a', 'bank-b', 'bank-c']],
      [2, ['bank-b', 'bank-c', 'bank-d']],
      [3, ['bank-a', 'bank-c', 'bank-d']],
    ] as const) {
      for (const { values, contributors } of open([...quorum], round)) {
        expect(contributors).toEqual(quorum);
        values.forEach((v, i) => expect(Math.abs(v - plain[i]!)).toBeLessThan(1e-4));
      }
    }
    const refusedWith = (quorum: string[], contributors = NAMES, round = 4) => {
      parties[0]!.contributed('update', round);
      return () => parties[0]!.decryptionShares({ purpose: 'update', sum, contributors, quorum }, round);
    };
    expect(refusedWith(['bank-a', 'bank-b'])).toThrow(/the quorum \[bank-a, bank-b\] is not 3 distinct contributors of the sum in canonical order/);
    expect(refusedWith(['bank-b', 'bank-a', 'bank-c'])).toThrow(/is not 3 distinct contributors/);
    expect(refusedWith(['bank-a', 'bank-b'], ['bank-a', 'bank-b'])).toThrow(/the sum is over 2 contributors; it opens only with the shares of 3/);
    // A round asked again over a smaller set after this party gave shares for the first: refused (a claimed dropout
    // would otherwise open two sums whose difference is the left-out participant's update).
    parties[0]!.contributed('update', 5);
    parties[0]!.decryptionShares({ purpose: 'update', sum: encrypt(), contributors: NAMES, quorum: ['bank-a', 'bank-b', 'bank-c'] }, 5);
    parties[0]!.contributed('update', 5);
    expect(() => parties[0]!.decryptionShares({ purpose: 'update', sum: encrypt(), contributors: ['bank-a', 'bank-b', 'bank-c'], quorum: ['bank-a', 'bank-b', 'bank-c'] }, 5)).toThrow(
      /already gave decryption shares for the update sum of round 5 over \[bank-a, bank-b, bank-c, bank-d\], and gives them for one contributor set per round/,
    );
  });

  it('opens the same aggregate once more with a new quorum after a member is lost, and refuses a re-opening that breaks the rules', () => {
    const holders = NAMES.map(
      (org, i) =>
        new ThresholdParty(
          'job-tn-reopen',
          org,
          NAMES,
          context,
          fingerprint,
          () => undefined,
          T,
          () => boxes[i]!,
        ),
    );
    const commits = holders.map((p) => p.ceremony(ask('commit', [])).reply.parties[0]!);
    const reveals = holders.map((p) => p.ceremony(ask('reveal', commits)).reply.parties[0]!);
    const publicKey = holders.map(
      (p) =>
        p.ceremony(
          ask(
            'key',
            commits.map((c, i) => ({ ...c, share: reveals[i]!.share })),
          ),
        ).keys!,
    )[0]!;
    const outgoing = holders.map((p) => p.ceremony(ask('reshare', [])).reply.parties);
    NAMES.forEach((org, i) =>
      holders[i]!.ceremony(
        ask(
          'reshared',
          outgoing.flatMap((entries, j) => entries.filter((e) => e.organisation === org).map((e) => ({ ...e, organisation: NAMES[j]! }))),
        ),
      ),
    );
    const [a, b, c, d] = holders as [ThresholdParty, ThresholdParty, ThresholdParty, ThresholdParty];
    const codec = VectorCodec.ckksCollective(new HorizontalVectors(engine));
    const plain = [4.25, -1, 0.5];
    const sum = codec.encode(new Float64Array(plain), publicKey, 'update');
    const first = ['bank-a', 'bank-b', 'bank-c'];
    const second = ['bank-a', 'bank-b', 'bank-d'];
    const ready = (quorum: string[], fields: Partial<{ sum: EncryptedVector; contributors: string[] }> = {}) => ({ purpose: 'update' as const, sum, contributors: NAMES, quorum, ...fields });
    for (const p of holders) p.contributed('update', 2);
    // The first quorum: bank-a and bank-b give their shares, bank-c is lost before its own; bank-d is outside it.
    for (const p of [a, b]) expect(p.decryptionShares(ready(first), 2)?.parties).toHaveLength(1);
    expect(d.decryptionShares(ready(first), 2)).toBeUndefined();
    // A coordinator double asking again with the same quorum, another aggregate (a fresh encryption, one
    // participant's update in its place) or another contributor set: refused.
    expect(() => a.decryptionShares(ready(first), 2)).toThrow(/it already gave its shares for that sum to the quorum \[bank-a, bank-b, bank-c\]/);
    const other = codec.encode(new Float64Array(plain), publicKey, 'update');
    expect(() => a.decryptionShares(ready(second, { sum: other }), 2)).toThrow(/an aggregate asked again must be the same ciphertexts/);
    expect(() => a.decryptionShares(ready(second, { contributors: second }), 2)).toThrow(/the sum was over \[bank-a, bank-b, bank-c, bank-d\]; asked again, it names \[bank-a, bank-b, bank-d\]/);
    // The same aggregate with a new quorum: given, and it opens.
    const given = [a, b, d].flatMap((p) => p.decryptionShares(ready(second), 2)!.parties);
    expect(given.map((g) => g.organisation)).toEqual(second);
    const combined = a.vectors.sumShares(sum.blocks, sumLabel('job-tn-reopen', 2, 'update', sum.blockSha256), given);
    const relay = { purpose: 'update' as const, parties: given.map((g) => ({ organisation: g.organisation, shares: [], sharesSha256: decryptionSharesDigest(g.organisation, g.shares) })), combined };
    for (const p of [a, b, d]) {
      const { values, contributors } = p.open(relay);
      expect(contributors).toEqual(second);
      values.forEach((v, i) => expect(Math.abs(v - plain[i]!)).toBeLessThan(1e-4));
    }
    // A third quorum: every party asked twice refuses (bank-a gave two shares; bank-d was asked for the first and the
    // second quorum). bank-c, asked for the first time, gives its share, but the third quorum never completes.
    const third = ['bank-a', 'bank-c', 'bank-d'];
    for (const p of [a, d]) expect(() => p.decryptionShares(ready(third), 2)).toThrow(/at most two quorums per sum/);
    expect(c.decryptionShares(ready(third), 2)?.parties).toHaveLength(1);
  });
});
