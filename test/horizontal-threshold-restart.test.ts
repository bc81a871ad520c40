/**
 * A horizontal participant under a collective key (encryption.scheme ckks-threshold) that restarts mid-job keeps its
 * record of decryption shares given and of the contributor set of each sum it shared in its job folder
 * (collective-shares-given.json, mode 0600, written before its shares leave it): the participant restored from the
 * folder refuses what it gave before the restart, as the one in memory does, under N-of-N and t-of-n; the record is
 * deleted with the job's keys when the job ends. The coordinator is a double that asks again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, statSync, existsSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateBoxKeyPair } from '../src/crypto/sealed-box.js';
import { ThresholdParty } from '../participant/threshold-party.js';
import { JobStore } from '../participant/job-store.js';
import { CkksEngine } from '../src/he/engine.js';
import { HorizontalVectors } from '../src/he/horizontal.js';
import { THRESHOLD_CKKS_PARAMS, paramsFingerprint } from '../src/he/params.js';
import { ThresholdContext } from '../src/he/threshold/context.js';
import type { SharesGiven, ShareholderMemory } from '../src/he/threshold/decrypt.js';
import { VectorCodec, type Keys } from '../src/fl/vector-codec.js';
import type { AggregateReady, KeyShareEntry, Recipient, ThresholdCeremony } from '../src/wire/messages.js';

const NAMES = ['bank-a', 'bank-b', 'bank-c', 'bank-d'];
const fingerprint = paramsFingerprint(THRESHOLD_CKKS_PARAMS);

describe('a horizontal participant restarted mid-job under a collective key', () => {
  let context: ThresholdContext;
  let engine: CkksEngine;
  let codec: VectorCodec;
  let dir: string;
  let store: JobStore;

  beforeAll(async () => {
    context = await ThresholdContext.create(THRESHOLD_CKKS_PARAMS);
    engine = await CkksEngine.create(THRESHOLD_CKKS_PARAMS);
    codec = VectorCodec.ckksCollective(new HorizontalVectors(engine));
    dir = mkdtempSync(join(tmpdir(), 'fc-htn-restart-'));
    store = new JobStore(join(dir, 'jobs'));
  });
  /** Every party the tests make, forgotten at the end (a party keeps SEAL copies of its key share). */
  const made: ThresholdParty[] = [];
  afterAll(() => {
    for (const p of made) p.forget();
    context?.dispose();
    engine?.dispose();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /**
   * The job's parties after the ceremony (t-of-n: after the re-sharing too); bank-a keeps its key and its record in
   * its job folder as a node does (participant/node.ts), the others in memory.
   */
  function ceremony(jobId: string, names: string[], threshold: number) {
    store.save({ id: jobId, specJson: JSON.stringify({ kind: 'horizontal' }), features: [] });
    const boxes = names.map(() => generateBoxKeyPair());
    const recipients: Recipient[] = names.map((organisation, i) => ({ organisation, boxPublicKey: boxes[i]!.publicKey, binding: null }));
    const ask = (step: ThresholdCeremony['step'], entries: KeyShareEntry[]): ThresholdCeremony => ({
      step,
      parties: entries,
      paramsFingerprint: fingerprint,
      publicKeySha256: new Uint8Array(),
      recipients,
    });
    const party = (org: string, memory: ShareholderMemory = {}) => {
      const p = new ThresholdParty(
        jobId,
        org,
        names,
        context,
        fingerprint,
        () => undefined,
        threshold,
        () => boxes[names.indexOf(org)]!,
        undefined,
        memory,
      );
      made.push(p);
      return p;
    };
    const parties = names.map((org) => party(org, org === 'bank-a' ? store.sharesGiven(jobId) : {}));
    const commits = parties.map((p) => p.ceremony(ask('commit', [])).reply.parties[0]!);
    const reveals = parties.map((p) => p.ceremony(ask('reveal', commits)).reply.parties[0]!);
    let keys: Keys[] = parties.map(
      (p) =>
        p.ceremony(
          ask(
            'key',
            commits.map((c, i) => ({ ...c, share: reveals[i]!.share })),
          ),
        ).keys!,
    );
    if (threshold < names.length) {
      const outgoing = parties.map((p) => p.ceremony(ask('reshare', [])).reply.parties);
      const inbox = (org: string) => outgoing.flatMap((entries, i) => entries.filter((e) => e.organisation === org).map((e) => ({ ...e, organisation: names[i]! })));
      keys = names.map((org, i) => parties[i]!.ceremony(ask('reshared', inbox(org))).keys!);
    }
    store.saveKeys(jobId, keys[0]!);
    /** bank-a as a restarted node rebuilds it: its stored key, and the record its job folder holds (or none). */
    const restarted = (memory: ShareholderMemory = store.sharesGiven(jobId)) => {
      const stored = store.unfinished().find((j) => j.id === jobId)!;
      const p = party('bank-a', memory);
      p.restore(stored.keys!);
      return p;
    };
    return { parties, publicKey: keys[0]!, restarted };
  }

  const recordOf = (jobId: string) => {
    const file = join(store.dirOf(jobId), 'collective-shares-given.json');
    return { file, given: JSON.parse(readFileSync(file, 'utf8')) as SharesGiven };
  };
  const aggregate = (publicKey: Keys, contributors: string[], quorum?: string[]): AggregateReady => ({
    purpose: 'update',
    sum: codec.encode(new Float64Array([1.5, -2, 3]), publicKey, 'update'),
    contributors,
    ...(quorum ? { quorum } : {}),
  });
  /** Ask `party` (after its contribution to the round) for its shares of `agg`. */
  const ask = (party: ThresholdParty, agg: AggregateReady, round: number) => {
    party.contributed('update', round);
    return () => party.decryptionShares(agg, round);
  };

  it('N-of-N: the participant restored from its job folder refuses a second share for a ciphertext it shared before the restart', () => {
    const names = NAMES.slice(0, 3);
    const { parties, publicKey, restarted } = ceremony('job-nn', names, names.length);
    expect(recordOf('job-nn').given).toEqual({ issued: [], contributorSets: {} });
    const agg = aggregate(publicKey, names);
    expect(ask(parties[0]!, agg, 1)()!.parties[0]!.shares).toHaveLength(agg.sum.blocks.length);
    const { file, given } = recordOf('job-nn');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(given.issued).toHaveLength(agg.sum.blocks.length);
    expect(given.contributorSets).toEqual({ 'update/1': names });

    expect(ask(restarted(), agg, 1)).toThrow(/this ciphertext \(SHA-256 [0-9a-f]{16}…\) was already decrypted for "[^"]+"; a party gives one decryption share per ciphertext/);
    // What the record does: a participant restored without it gives the share again.
    expect(ask(restarted({}), agg, 1)()!.parties).toHaveLength(1);

    store.end('job-nn', 'succeeded');
    expect(existsSync(file)).toBe(false);
    expect(readdirSync(store.dirOf('job-nn')).sort()).toEqual(['ckks-public.key', 'job.json']);
  });

  it('t-of-n: refuses a second contributor set in a round, the same quorum again and a third quorum after the restart; a record it cannot write gives no share; the record goes with the job', () => {
    const { parties, publicKey, restarted } = ceremony('job-tn', NAMES, 3);
    const a = parties[0]!;
    const first = ['bank-a', 'bank-b', 'bank-c'];
    const second = ['bank-a', 'bank-b', 'bank-d'];
    const third = ['bank-a', 'bank-c', 'bank-d'];
    // Round 1: bank-a gives its shares for the first quorum.
    const round1 = aggregate(publicKey, NAMES, first);
    expect(ask(a, round1, 1)()!.parties).toHaveLength(1);
    // Round 2: bank-c is lost before its shares; the same aggregate is opened with a second quorum (bank-a is in both).
    const round2 = aggregate(publicKey, NAMES, first);
    a.contributed('update', 2);
    a.decryptionShares(round2, 2);
    expect(a.decryptionShares({ ...round2, quorum: second }, 2)!.parties).toHaveLength(1);
    const { file, given } = recordOf('job-tn');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(given.contributorSets).toEqual({ 'update/1': NAMES, 'update/2': NAMES });
    expect(given.issued.filter((r) => r.quorum?.join() === second.join())).toHaveLength(round2.sum.blocks.length);

    const again = restarted();
    // The coordinator double asks again over a smaller set in round 1, after a claimed dropout: refused.
    expect(ask(again, aggregate(publicKey, first, first), 1)).toThrow(
      /already gave decryption shares for the update sum of round 1 over \[bank-a, bank-b, bank-c, bank-d\], and gives them for one contributor set per round/,
    );
    // Round 1's aggregate to the same quorum again, round 2's to a third quorum: refused by the record of each ciphertext.
    expect(ask(again, round1, 1)).toThrow(/was already decrypted for "[^"]+" for this quorum \[bank-a, bank-b, bank-c\]; a party gives one decryption share per ciphertext/);
    expect(ask(again, { ...round2, quorum: third }, 2)).toThrow(/was already decrypted for "[^"]+" and for a second quorum; a party gives one decryption share per ciphertext/);
    // Without the record both would be given.
    expect(ask(restarted({}), aggregate(publicKey, first, first), 1)()!.parties).toHaveLength(1);
    expect(ask(restarted({}), { ...round2, quorum: third }, 2)()!.parties).toHaveLength(1);

    // A record that cannot be written: no share, and the record on disk is unchanged.
    const before = readFileSync(file, 'utf8');
    const full = restarted({
      given: recordOf('job-tn').given,
      keep: () => {
        throw new Error('ENOSPC: no space left on device');
      },
    });
    expect(ask(full, aggregate(publicKey, NAMES, first), 3)).toThrow(
      /bank-a could not record its decryption shares for job job-tn in its job folder \(ENOSPC: no space left on device\), so it sends none/,
    );
    expect(readFileSync(file, 'utf8')).toBe(before);
    // The restarted participant goes on with the job: a new round's aggregate is shared and recorded.
    expect(ask(again, aggregate(publicKey, NAMES, first), 3)()!.parties).toHaveLength(1);
    expect(recordOf('job-tn').given.contributorSets).toHaveProperty('update/3', NAMES);

    store.end('job-tn', 'failed');
    expect(existsSync(file)).toBe(false);
    expect(readdirSync(store.dirOf('job-tn'))).toEqual(['job.json']);
  });
});
