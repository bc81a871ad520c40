/**
 * The replay of what a horizontal job under a collective key (encryption.scheme ckks-threshold) adds to its record:
 * the key ceremony (every revealed share matches the commitment its party made, and the shares add up to the
 * recorded collective public key), the one-share rules (a party gives one decryption share per ciphertext and per
 * label, only for a sum it opens: every contributor, or under t-of-n the recorded quorum of t; and for one contributor
 * set per round and purpose) and every opened aggregate (the recorded values are exactly what the recorded decryption shares open the recorded
 * aggregate to). Needs no secret: the auditor holds none, like the coordinator.
 */
import { hex, sha256Hex } from '../bytes.js';
import { collectivePublicKey, collectiveTranscript } from '../he/key-ceremony.js';
import { paramsFingerprint, type CkksParams } from '../he/params.js';
import { ThresholdVectors, sumLabel } from '../he/threshold-vectors.js';
import { ThresholdContext } from '../he/threshold/context.js';
import { DecryptionShare } from '../he/threshold/decrypt.js';
import { shareCommitment } from '../he/threshold/commitment.js';
import { float64Bytes } from '../fl/vector-codec.js';
import { decodeMessage } from '../wire/proto.js';
import type { EncryptedVector } from '../wire/messages.js';

export class ThresholdReplay {
  private readonly commitments = new Map<string, Uint8Array>();
  private readonly shares = new Map<string, Uint8Array>();
  /** The current sum: its round, purpose, contributors, quorum (t-of-n), aggregate and the decryption shares given for it. */
  private sum?: { round: number; purpose: string; contributors: string[]; quorum?: string[]; aggregate: EncryptedVector; given: { organisation: string; shares: Uint8Array[] }[] };
  /**
   * The one-share rules, per party: `party|ciphertext digest` and `party|purpose label` of every decryption share it
   * gave (one share per ciphertext and per label), and `party|purpose|round` → the contributor set it gave shares
   * for (one set per round and purpose).
   */
  private readonly given = new Set<string>();
  private readonly sets = new Map<string, string>();
  private readonly vectors: ThresholdVectors;
  private readonly transcript: Uint8Array;

  private constructor(
    private readonly jobId: string,
    private readonly context: ThresholdContext,
    parties: string[],
    private readonly fingerprint: Uint8Array,
    /** t (encryption.threshold; the number of parties for N-of-N). */
    private readonly threshold: number,
  ) {
    this.vectors = new ThresholdVectors(context, parties.length);
    this.transcript = collectiveTranscript(jobId, parties, fingerprint);
  }

  static async start(jobId: string, parties: string[], params: CkksParams, threshold = parties.length): Promise<ThresholdReplay> {
    return new ThresholdReplay(jobId, await ThresholdContext.create(params), parties, paramsFingerprint(params), threshold);
  }

  /** Check one entry of the job; `fail` takes what does not follow from the record. */
  async entry(kind: string, b: Record<string, any>, blob: (name: string) => Promise<Uint8Array | undefined>, fail: (message: string) => void): Promise<void> {
    switch (kind) {
      case 'key_share_committed':
        this.commitments.set(b.participant, Buffer.from(b.commitment, 'hex'));
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
          ? { round: b.round, purpose: b.purpose, contributors: b.contributors ?? [], quorum: b.quorum, aggregate: decodeMessage<EncryptedVector>('EncryptedVector', bytes), given: [] }
          : undefined;
        if (b.quorum && !(b.quorum.length === this.threshold && b.quorum.every((o: string) => b.contributors.includes(o))))
          fail(`round ${b.round}: the ${b.purpose} aggregate names a quorum [${b.quorum.join(', ')}] that is not ${this.threshold} of its contributors`);
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
          for (const [key, what] of [
            [`${b.participant}|ciphertext|${share.ciphertextDigest}`, `ciphertext ${share.ciphertextDigest.slice(0, 16)}…`],
            [`${b.participant}|label|${share.purpose}`, `"${share.purpose}"`],
          ] as const) {
            if (this.given.has(key)) fail(`round ${b.round}: ${b.participant} gave a second decryption share for ${what}`);
            this.given.add(key);
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
