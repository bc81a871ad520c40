/**
 * Commit, then reveal: the key ceremony's defence against a party that waits for the others' shares.
 *
 * CKG and RTG add the shares as they come. A party that sees the other shares before sending its own can send
 * p0_r = (−a·s_r + e_r) − Σ_{i≠r} p0_i, and the "collective" public key becomes (−a·s_r + e_r, a): a key only it can
 * decrypt (the rogue-key attack; the tests run it). Mouchet et al. assume passive parties; against active ones every
 * party first publishes a commitment to its share and reveals the share only once every party has committed, so no
 * share can depend on another. A revealed share that does not match its commitment is refused, naming its sender.
 *
 * Commitment: SHA-256("fedcredit/threshold-ckks/commit/v1" ‖ transcript ‖ sender ‖ share bytes), each part length-
 * prefixed. The transcript (e.g. the hash of the signed job transcript and the ceremony step) and the sender's name
 * bind the commitment to one ceremony and one party, so a party cannot replay another's. Hiding rests on the share's
 * entropy (fresh secret and noise in every share).
 */
import { createHash } from 'node:crypto';
import { ErrorCode, FedcreditError } from '../../errors.js';

const DOMAIN = 'fedcredit/threshold-ckks/commit/v1';

function lengthPrefixed(bytes: Uint8Array): Uint8Array[] {
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(bytes.length));
  return [length, bytes];
}

export function shareCommitment(transcript: Uint8Array, sender: string, share: Uint8Array): Uint8Array {
  const hash = createHash('sha256');
  for (const part of [Buffer.from(DOMAIN), transcript, Buffer.from(sender, 'utf8'), share]) for (const piece of lengthPrefixed(part)) hash.update(piece);
  return hash.digest();
}

/** One ceremony step (e.g. the public key shares) among named parties: commitments first, then shares. */
export class CommitThenReveal {
  private readonly commitments = new Map<string, Uint8Array>();
  private readonly shares = new Map<string, Uint8Array>();

  constructor(
    readonly parties: readonly string[],
    readonly transcript: Uint8Array,
  ) {
    if (new Set(parties).size !== parties.length || parties.length === 0) throw new RangeError('a ceremony needs distinct, named parties');
  }

  commit(sender: string, commitment: Uint8Array): void {
    this.requireParty(sender);
    if (this.commitments.has(sender)) throw new FedcreditError(ErrorCode.PROTOCOL, `${sender} committed twice in one ceremony step`, `${sender} deviates from the key ceremony; the ceremony stops`);
    if (commitment.length !== 32)
      throw new FedcreditError(ErrorCode.PROTOCOL, `${sender} sent a commitment of ${commitment.length} bytes, not 32`, `${sender} runs another fedcredit version or deviates`);
    this.commitments.set(sender, Uint8Array.from(commitment));
  }

  /** Whether every party has committed: only then may any share be revealed. */
  get allCommitted(): boolean {
    return this.commitments.size === this.parties.length;
  }

  /** Accept a revealed share: refused before every party committed, or when it does not match its commitment. */
  reveal(sender: string, share: Uint8Array): void {
    this.requireParty(sender);
    if (!this.allCommitted) {
      const missing = this.parties.filter((p) => !this.commitments.has(p));
      throw new FedcreditError(
        ErrorCode.PROTOCOL,
        `${sender} revealed its share before every party committed (missing: ${missing.join(', ')})`,
        'shares are revealed only after all commitments are in; the ceremony stops',
      );
    }
    if (this.shares.has(sender)) throw new FedcreditError(ErrorCode.PROTOCOL, `${sender} revealed two shares in one ceremony step`, `${sender} deviates from the key ceremony; the ceremony stops`);
    const expected = this.commitments.get(sender)!;
    if (!Buffer.from(shareCommitment(this.transcript, sender, share)).equals(Buffer.from(expected))) {
      throw new FedcreditError(
        ErrorCode.PROTOCOL,
        `the share ${sender} revealed does not match the commitment it made`,
        `${sender} changed its share after seeing others': it deviates from the key ceremony, which stops`,
      );
    }
    this.shares.set(sender, share);
  }

  /** Every party's verified share, in the parties' order, once all are revealed. */
  revealed(): Uint8Array[] {
    const missing = this.parties.filter((p) => !this.shares.has(p));
    if (missing.length > 0) throw new FedcreditError(ErrorCode.PROTOCOL, `shares missing from ${missing.join(', ')}`, 'wait for every party, or stop the ceremony naming them');
    return this.parties.map((p) => this.shares.get(p)!);
  }

  private requireParty(sender: string): void {
    if (!this.parties.includes(sender)) throw new FedcreditError(ErrorCode.PROTOCOL, `${sender} is not a party of this ceremony`, "only the job's parties take part in its key ceremony");
  }
}
