/**
 * Collective decryption of the horizontal secure sum's aggregate (encryption.scheme ckks-threshold): each
 * contributor gives one flooded decryption share per ciphertext block (src/he/threshold/decrypt.ts), and anyone
 * holding every contributor's shares, and no secret, combines them into the values. The flooding hides the
 * ciphertext's noise to statistical distance 2^−40 per share; its cost is an error of about floodingSlotError in
 * every value (horizontalRule states the bound the flooding is sized for).
 */
import { createHash } from 'node:crypto';
import { ErrorCode, FedcreditError } from '../errors.js';
import type { CkksParams } from './params.js';
import { blockCount, collectiveLevel } from './packing.js';
import {
  DecryptionParty,
  DecryptionProtocol,
  DecryptionShare,
  DEFAULT_STATISTICAL_SECURITY,
  floodingSigma,
  floodingSlotError,
  freshSumNoiseBits,
  type DecryptionRule,
  requireShareFor,
  type IssuedShareRecord,
} from './threshold/decrypt.js';
import type { SecretKeyShare } from './threshold/secret-key.js';
import type { ThresholdContext } from './threshold/context.js';

/**
 * The purpose label of one sum's decryption, which every contributor and the auditor derive alike: the job, the
 * round, the sum's purpose and the aggregate's block digests (a retried round's new aggregate gets a new label).
 */
export function sumLabel(jobId: string, round: number, purpose: string, blockSha256: Uint8Array[]): string {
  const digest = createHash('sha256');
  for (const d of blockSha256) digest.update(d);
  return `${jobId}/round ${round}/${purpose}/aggregate ${digest.digest('hex').slice(0, 32)}`;
}

/**
 * The class of ciphertext a horizontal participant decrypts at `level`: a sum of at most `parties` fresh public-key
 * encryptions under the `parties`-share key, at the job's scale. Its noise bound is freshSumNoiseBits.
 */
export function horizontalRule(params: CkksParams, parties: number, level = 0): DecryptionRule {
  return { name: `horizontal-aggregate-level-${level}`, level, scale: 2 ** params.scaleBits, noiseBits: freshSumNoiseBits(params.polyModulusDegree, parties, parties) };
}

/** The standard deviation of the flooding's error in each opened value, for `parties` shares under `params` (the same at every level: the same noise bound, so the same flooding). */
export function openedValueError(params: CkksParams, parties: number): number {
  const rule = horizontalRule(params, parties);
  return floodingSlotError(params.polyModulusDegree, floodingSigma(params.polyModulusDegree, rule.noiseBits, DEFAULT_STATISTICAL_SECURITY), parties, rule.scale);
}

export class ThresholdVectors {
  /** One rule per level a sum can open at (collectiveLevel). */
  readonly rules: DecryptionRule[];

  constructor(
    readonly context: ThresholdContext,
    parties: number,
  ) {
    this.rules = context.levels.slice(0, 2).map((info) => horizontalRule(context.params, parties, info.level));
  }

  /**
   * A party's decryption side: its secret share, the horizontal rules, the shares it gave before, and under t-of-n
   * the quorum the secret is the additive share for.
   */
  party(secret: SecretKeyShare, issued: IssuedShareRecord[] = [], quorum?: readonly string[]): DecryptionParty {
    return new DecryptionParty(this.context, secret, { rules: this.rules, issued, quorum });
  }

  /**
   * One share per block, each under `${label} block b` (a party gives one share per label and per ciphertext), for a
   * sum of `purpose`: the blocks must be at its level (collectiveLevel), or the party refuses.
   */
  shares(party: DecryptionParty, blocks: Uint8Array[], label: string, purpose: string): Uint8Array[] {
    const rule = this.rules[collectiveLevel(this.context.params, purpose)]!;
    return blocks.map((block, b) => party.generateShare(block, `${label} block ${b}`, rule.name).serialize());
  }

  /**
   * The sum of every contributor's shares (one list per contributor, one share per block, all for `label`), one
   * combined share per block: what opens the aggregate. A share for another ciphertext or label is refused
   * (FC_PROTOCOL) naming its sender.
   */
  sumShares(blocks: Uint8Array[], label: string, shares: { organisation: string; shares: Uint8Array[] }[]): Uint8Array[] {
    const protocol = new DecryptionProtocol(this.context);
    return blocks.map((block, b) => {
      const purpose = `${label} block ${b}`;
      const ct = this.context.canonicalCiphertext(block);
      const sum = protocol.allocateShare(ct.digest, purpose, ct.level);
      for (const party of shares) {
        const bytes = party.shares[b];
        const fail = (why: string) =>
          new FedcreditError(
            ErrorCode.PROTOCOL,
            `${party.organisation}'s decryption share of block ${b} for "${label}" ${why}`,
            `${party.organisation} (or the coordinator relaying it) deviates from the protocol; the sum is not opened`,
          );
        if (!bytes || party.shares.length !== blocks.length) throw fail(`is missing (${party.shares.length} shares for ${blocks.length} blocks)`);
        let share: DecryptionShare;
        try {
          share = DecryptionShare.deserialize(this.context, bytes);
        } catch (err) {
          throw fail(`does not parse (${(err as Error).message})`);
        }
        requireShareFor(party.organisation, share, ct, purpose);
        protocol.aggregateShares(sum, share, sum);
      }
      return sum.serialize();
    });
  }

  /**
   * The first `length` values of the aggregate from its combined shares (sumShares), one per block. A combined share
   * for another ciphertext or label is refused (FC_PROTOCOL).
   */
  open(blocks: Uint8Array[], length: number, label: string, combined: Uint8Array[]): Float64Array {
    const slots = this.context.degree / 2;
    if (blocks.length !== blockCount(length, slots))
      throw new FedcreditError(ErrorCode.CIPHERTEXT_INVALID, `${blocks.length} ciphertexts cannot hold ${length} values`, 'the coordinator sent a malformed aggregate');
    if (combined.length !== blocks.length)
      throw new FedcreditError(
        ErrorCode.PROTOCOL,
        `${combined.length} combined decryption shares for an aggregate of ${blocks.length} blocks`,
        'the coordinator deviates from the protocol; the sum is not opened',
      );
    const protocol = new DecryptionProtocol(this.context);
    const out = new Float64Array(length);
    blocks.forEach((block, b) => {
      const fail = (why: string) =>
        new FedcreditError(ErrorCode.PROTOCOL, `the combined decryption share of block ${b} for "${label}" ${why}`, 'the coordinator deviates from the protocol; the sum is not opened');
      let sum: DecryptionShare;
      try {
        sum = DecryptionShare.deserialize(this.context, combined[b]!);
      } catch (err) {
        throw fail(`does not parse (${(err as Error).message})`);
      }
      const values = protocol.finalize(block, `${label} block ${b}`, new Map([['the coordinator', sum]]));
      out.set(values.subarray(0, Math.min(slots, length - b * slots)), b * slots);
    });
    return out;
  }

  /** The first `length` values of the aggregate from every contributor's shares: open(sumShares(…)). */
  combine(blocks: Uint8Array[], length: number, label: string, shares: { organisation: string; shares: Uint8Array[] }[]): Float64Array {
    return this.open(blocks, length, label, this.sumShares(blocks, label, shares));
  }
}
