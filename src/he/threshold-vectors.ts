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
import { blockCount } from './packing.js';
import {
  DecryptionParty,
  DecryptionProtocol,
  DecryptionShare,
  DEFAULT_STATISTICAL_SECURITY,
  floodingSigma,
  floodingSlotError,
  freshSumNoiseBits,
  type DecryptionRule,
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
 * The one class of ciphertext a horizontal participant decrypts: a sum of at most `parties` fresh public-key
 * encryptions under the `parties`-share key, at level 0 and the job's scale. Its noise bound is freshSumNoiseBits.
 */
export function horizontalRule(params: CkksParams, parties: number): DecryptionRule {
  return { name: 'horizontal-aggregate', level: 0, scale: 2 ** params.scaleBits, noiseBits: freshSumNoiseBits(params.polyModulusDegree, parties, parties) };
}

/** The standard deviation of the flooding's error in each opened value, for `parties` shares under `params`. */
export function openedValueError(params: CkksParams, parties: number): number {
  const rule = horizontalRule(params, parties);
  return floodingSlotError(params.polyModulusDegree, floodingSigma(params.polyModulusDegree, rule.noiseBits, DEFAULT_STATISTICAL_SECURITY), parties, rule.scale);
}

export class ThresholdVectors {
  readonly rule: DecryptionRule;

  constructor(
    readonly context: ThresholdContext,
    parties: number,
  ) {
    this.rule = horizontalRule(context.params, parties);
  }

  /** A party's decryption side: its secret share, the horizontal rule, the shares it gave before. */
  party(secret: SecretKeyShare, issued: IssuedShareRecord[] = [], onIssue?: (record: IssuedShareRecord) => void): DecryptionParty {
    return new DecryptionParty(this.context, secret, { rules: [this.rule], issued, onIssue });
  }

  /** One share per block, each under `${label} block b` (a party gives one share per label and per ciphertext). */
  shares(party: DecryptionParty, blocks: Uint8Array[], label: string): Uint8Array[] {
    return blocks.map((block, b) => party.generateShare(block, `${label} block ${b}`, this.rule.name).serialize());
  }

  /**
   * The first `length` values of the aggregate, from every contributor's shares (one list per contributor, one share
   * per block, all for `label`). A share for another ciphertext or label is refused (FC_PROTOCOL) naming its sender.
   */
  combine(blocks: Uint8Array[], length: number, label: string, shares: { organisation: string; shares: Uint8Array[] }[]): Float64Array {
    const slots = this.context.degree / 2;
    if (blocks.length !== blockCount(length, slots))
      throw new FedcreditError(ErrorCode.CIPHERTEXT_INVALID, `${blocks.length} ciphertexts cannot hold ${length} values`, 'the coordinator sent a malformed aggregate');
    const protocol = new DecryptionProtocol(this.context);
    const out = new Float64Array(length);
    blocks.forEach((block, b) => {
      const purpose = `${label} block ${b}`;
      const digest = this.context.canonicalCiphertext(block).digest;
      const sum = protocol.allocateShare(digest, purpose, this.rule.level);
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
        if (share.ciphertextDigest !== digest || share.purpose !== purpose) throw fail('is for another ciphertext or purpose');
        protocol.aggregateShares(sum, share, sum);
      }
      const values = protocol.finalize(block, sum);
      out.set(values.subarray(0, Math.min(slots, length - b * slots)), b * slots);
    });
    return out;
  }
}
