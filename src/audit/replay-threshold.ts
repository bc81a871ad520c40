/**
 * The replay of what a horizontal job under a collective key (encryption.scheme ckks-threshold) adds to its record:
 * the key ceremony (every revealed share matches the commitment its party made, and the shares add up to the
 * recorded collective public key; a ceremony restarted after a lost participant, at most encryption.ceremony_restarts
 * times and every restart before the key, is checked under its last attempt's transcript), the one-share rules (a party gives one decryption share per ciphertext and per
 * label, only for a sum it opens: every contributor, or under t-of-n the recorded quorum of t; and for one contributor
 * set per round and purpose; under t-of-n a second share of the same ciphertext and label only after a recorded
 * `quorum_replaced`, once per sum, for the new quorum) and every opened aggregate (the recorded values are exactly
 * what the recorded decryption shares open the recorded aggregate to). Needs no secret: the auditor holds none, like
 * the coordinator.
 */
import { hex, sha256Hex } from '../bytes.js';
import { collectivePublicKey, collectiveTranscript } from '../he/key-ceremony.js';
import { paramsFingerprint, type CkksParams } from '../he/params.js';
import { ThresholdVectors, sumLabel } from '../he/threshold-vectors.js';
import { ThresholdContext } from '../he/threshold/context.js';
import { DecryptionShare } from '../he/threshold/decrypt.js';
import { shareCommitment } from '../he/threshold/commitment.js';
import { float64Bytes } from '../fl/vector-codec.js';
import { canonicalOrder } from '../fl/secure-sum-round.js';
import { DEFAULT_CEREMONY_RESTARTS } from '../config/schemas.js';
import { decodeMessage } from '../wire/proto.js';
import type { EncryptedVector } from '../wire/messages.js';

/**
 * A `key_ceremony_restarted` entry checked against the record before it, in either kind of job: no restart once the
 * key is in place or a share was given (a coordinator would then hold two keys' shares for one ciphertext), restarts
 * numbered 1, 2, … and at most encryption.ceremony_restarts of them. Returns the number of restarts after it.
 */
export function ceremonyRestart(attempt: unknown, record: { keyReady: boolean; sharesGiven: number; restarts: number; bound: number }, fail: (message: string) => void): number {
  if (record.keyReady) fail(`the key ceremony was restarted (attempt ${attempt}) after the collective key was in place`);
  if (record.sharesGiven > 0) fail(`the key ceremony was restarted (attempt ${attempt}) after decryption shares were given`);
  if (attempt !== record.restarts + 1) fail(`the key ceremony's restart is numbered ${attempt}; the record holds ${record.restarts} before it`);
  const restarts = record.restarts + 1;
  if (restarts > record.bound) fail(`the key ceremony was restarted ${restarts} times; the job allows ${record.bound} (encryption.ceremony_restarts)`);
  return restarts;
}

export class ThresholdReplay {
  private readonly commitments = new Map<string, Uint8Array>();
  private readonly shares = new Map<string, Uint8Array>();
  /**
   * The current sum: its round, purpose, contributors, quorum (t-of-n; the new one after a `quorum_replaced`, with the
   * one it replaced in `previous`), aggregate, and the decryption shares that open it (the current quorum's).
   */
  private sum?: {
    id: number;
    round: number;
    purpose: string;
    contributors: string[];
    quorum?: string[];
    previous?: string[];
    aggregate: EncryptedVector;
    given: { organisation: string; shares: Uint8Array[] }[];
    /** Who is recorded as giving none (`decryption_shares_missing`). */
    missing: string[];
  };
  private sums = 0;
  /**
   * The one-share rules, per party: `party|ciphertext digest` and `party|purpose label` of every decryption share it
   * gave → the sum and quorum each share was for (one share per ciphertext and per label; a second only for the same
   * sum's replacing quorum), and `party|purpose|round` → the contributor set it gave shares for (one set per round and
   * purpose).
   */
  private readonly given = new Map<string, string[]>();
  private readonly sets = new Map<string, string>();
  private readonly vectors: ThresholdVectors;
  /** The transcript of the ceremony's current attempt (each restart has its own). */
  private transcript: Uint8Array;
  /** How many times the record restarted the ceremony, and whether its key is in place. */
  private restarts = 0;
  private keyReady = false;

  private constructor(
    private readonly jobId: string,
    private readonly context: ThresholdContext,
    private readonly parties: string[],
    private readonly fingerprint: Uint8Array,
    /** t (encryption.threshold; the number of parties for N-of-N). */
    private readonly threshold: number,
    /** The job's bound on restarts of the key ceremony (encryption.ceremony_restarts). */
    private readonly restartBound: number,
  ) {
    this.vectors = new ThresholdVectors(context, parties.length);
    this.transcript = collectiveTranscript(jobId, parties, fingerprint);
  }

  static async start(jobId: string, parties: string[], params: CkksParams, threshold = parties.length, restartBound = DEFAULT_CEREMONY_RESTARTS): Promise<ThresholdReplay> {
    return new ThresholdReplay(jobId, await ThresholdContext.create(params), parties, paramsFingerprint(params), threshold, restartBound);
  }

  /** Check one entry of the job; `fail` takes what does not follow from the record. */
  async entry(kind: string, b: Record<string, any>, blob: (name: string) => Promise<Uint8Array | undefined>, fail: (message: string) => void): Promise<void> {
    switch (kind) {
      case 'key_share_committed':
        this.commitments.set(b.participant, Buffer.from(b.commitment, 'hex'));
        return;
      case 'key_ceremony_restarted':
        // A restart once the key is in place (so under it a contribution or a share) would let a coordinator open a
        // sum under two keys, over two contributor sets: every restart comes before the one key.
        this.restarts = ceremonyRestart(b.attempt, { keyReady: this.keyReady, sharesGiven: this.given.size, restarts: this.restarts, bound: this.restartBound }, fail);
        // The next attempt's shares are fresh, under its own transcript: nothing of the abandoned attempt counts.
        this.commitments.clear();
        this.shares.clear();
        this.transcript = collectiveTranscript(this.jobId, this.parties, this.fingerprint, 'horizontal', this.restarts);
        return;
      case 'key_share_revealed': {
        const share = await blob('share');
        const commitment = this.commitments.get(b.participant);
        if (!share || !commitment || !Buffer.from(shareCommitment(this.transcript, b.participant, share)).equals(Buffer.from(commitment))) {
          fail(`the key share recorded for ${b.participant} does not match the commitment it made`);
          return;
        }
        this.shares.set(b.participant, share);
        return;
      }
      case 'collective_key_ready': {
        if (this.keyReady) fail('a second collective key: every ciphertext of a job is under the one key of its ceremony');
        if ((b.attempt ?? 0) !== this.restarts) fail(`the collective key is recorded for attempt ${b.attempt ?? 0} of the ceremony; the record restarted it ${this.restarts} times`);
        if (b.transcript_sha256 !== undefined && b.transcript_sha256 !== sha256Hex(this.transcript)) fail("the collective key's transcript is not the job's");
        this.keyReady = true;
        if (b.params_fingerprint !== hex(this.fingerprint)) fail('the collective key was made under other CKKS parameters than the job names');
        try {
          const parties = (b.parties as string[]).map((organisation) => ({
            organisation,
            commitment: this.commitments.get(organisation) ?? new Uint8Array(32),
            share: this.shares.get(organisation) ?? new Uint8Array(),
          }));
          if (sha256Hex(collectivePublicKey(this.context, this.transcript, parties)) !== b.public_key_sha256) fail('the recorded collective public key is not the sum of the recorded key shares');
        } catch (err) {
          fail(`the collective public key does not follow from the recorded key shares (${(err as Error).message})`);
        }
        return;
      }
      case 'aggregate_produced': {
        const bytes = await blob('aggregate');
        this.sum = bytes
          ? {
              id: ++this.sums,
              round: b.round,
              purpose: b.purpose,
              contributors: b.contributors ?? [],
              quorum: b.quorum,
              aggregate: decodeMessage<EncryptedVector>('EncryptedVector', bytes),
              given: [],
              missing: [],
            }
          : undefined;
        if (b.quorum && !(b.quorum.length === this.threshold && b.quorum.every((o: string) => b.contributors.includes(o))))
          fail(`round ${b.round}: the ${b.purpose} aggregate names a quorum [${b.quorum.join(', ')}] that is not ${this.threshold} of its contributors`);
        return;
      }
      case 'decryption_shares_missing': {
        const sum = this.sum;
        if (sum && sum.round === b.round && sum.purpose === b.purpose) sum.missing.push(b.participant);
        return;
      }
      case 'quorum_replaced': {
        const sum = this.sum;
        const lost: string[] = b.lost ?? [];
        const quorum: string[] = b.quorum ?? [];
        if (!sum?.quorum || sum.round !== b.round || sum.purpose !== b.purpose) {
          fail(`round ${b.round}: a replaced quorum for no recorded t-of-n aggregate`);
          return;
        }
        const names = (orgs: string[]) => `[${orgs.join(', ')}]`;
        if (sum.previous) fail(`round ${b.round}: the ${b.purpose} aggregate's quorum is replaced a second time; a sum opens with at most two quorums`);
        if (names(b.previous ?? []) !== names(sum.quorum)) fail(`round ${b.round}: the replaced quorum is recorded as ${names(b.previous ?? [])}; the aggregate named ${names(sum.quorum)}`);
        if (lost.length === 0 || lost.some((o) => !sum.quorum!.includes(o))) fail(`round ${b.round}: the lost ${names(lost)} are not members of the quorum ${names(sum.quorum)}`);
        for (const o of lost) {
          if (sum.given.some((g) => g.organisation === o)) fail(`round ${b.round}: ${o} is recorded as lost, yet its decryption shares are recorded`);
          if (!sum.missing.includes(o)) fail(`round ${b.round}: ${o} is recorded as lost with no decryption_shares_missing before it`);
        }
        const canonical = canonicalOrder(quorum);
        if (quorum.length !== this.threshold || new Set(quorum).size !== quorum.length || names(canonical) !== names(quorum) || quorum.some((o) => !sum.contributors.includes(o) || lost.includes(o)))
          fail(`round ${b.round}: the new quorum ${names(quorum)} is not ${this.threshold} distinct contributors other than the lost ${names(lost)}, in canonical order`);
        this.sum = { ...sum, previous: sum.quorum, quorum, given: [] };
        return;
      }
      case 'decryption_shares': {
        const bytes = await blob('shares');
        const sum = this.sum;
        if (!bytes || !sum || sum.round !== b.round || sum.purpose !== b.purpose) {
          fail(`round ${b.round}: decryption shares from ${b.participant} for no recorded aggregate`);
          return;
        }
        if (!(sum.quorum ?? sum.contributors).includes(b.participant))
          fail(`round ${b.round}: ${b.participant} gave decryption shares for a sum it does not open (not among [${(sum.quorum ?? sum.contributors).join(', ')}])`);
        const set = [...sum.contributors].sort().join(', ');
        const setKey = `${b.participant}|${sum.purpose}|${sum.round}`;
        const before = this.sets.get(setKey);
        if (before !== undefined && before !== set) fail(`round ${b.round}: ${b.participant} gave decryption shares for ${sum.purpose} sums over two contributor sets, [${before}] and [${set}]`);
        this.sets.set(setKey, set);
        const party = decodeMessage<{ organisation: string; shares: Uint8Array[] }>('PartyDecryptionShares', bytes);
        for (const bytes of party.shares) {
          let share: DecryptionShare;
          try {
            share = DecryptionShare.deserialize(this.context, bytes);
          } catch (err) {
            fail(`round ${b.round}: a decryption share of ${b.participant} does not parse (${(err as Error).message})`);
            continue;
          }
          const quorumOf = (q: string[] | undefined) => `${sum.id}|${(q ?? sum.contributors).join(', ')}`;
          for (const [key, what] of [
            [`${b.participant}|ciphertext|${share.ciphertextDigest}`, `ciphertext ${share.ciphertextDigest.slice(0, 16)}…`],
            [`${b.participant}|label|${share.purpose}`, `"${share.purpose}"`],
          ] as const) {
            const before = this.given.get(key) ?? [];
            // The one second share allowed: for the same sum's new quorum, after one for the quorum it replaced.
            const reopening = sum.previous !== undefined && before.length === 1 && before[0] === quorumOf(sum.previous);
            if (before.length > 0 && !reopening)
              fail(
                `round ${b.round}: ${b.participant} gave ${before.length === 1 ? 'a second' : 'a third'} decryption share for ${what}${sum.previous ? ' (a second is allowed only for the quorum that replaced the one it gave its first for)' : ''}`,
              );
            this.given.set(key, [...before, quorumOf(sum.quorum)]);
          }
        }
        sum.given.push(party);
        return;
      }
      case 'aggregate_opened': {
        const sum = this.sum;
        const values = await blob('values');
        if (!sum || !values) return;
        try {
          const opened = this.vectors.combine(sum.aggregate.blocks, sum.aggregate.length, sumLabel(this.jobId, sum.round, sum.purpose, sum.aggregate.blockSha256), sum.given);
          if (sha256Hex(float64Bytes(opened)) !== sha256Hex(values)) fail(`round ${sum.round}: the recorded ${sum.purpose} values are not what the recorded decryption shares open the aggregate to`);
        } catch (err) {
          fail(`round ${sum.round}: the recorded decryption shares do not open the ${sum.purpose} aggregate (${(err as Error).message})`);
        }
        this.sum = undefined;
        return;
      }
    }
  }

  dispose(): void {
    this.context.dispose();
  }
}
