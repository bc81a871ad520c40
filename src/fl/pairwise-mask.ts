/**
 * Zero-sum pairwise masks for the horizontal secure sum, exact modulo the ciphertext modulus q. Every contributor i
 * of one sum over the set S shares, with every other contributor j, a seed from X25519 of their per-job box keys
 * (bound to their certificates, src/crypto/key-binding.ts) hashed with the sum's transcript (job, purpose, round,
 * attempt, the sorted set S). Before encrypting block b it adds to the encoded plaintext (RNS, NTT form, one residue
 * per prime) PRG(seed_ij, b) mod each prime for j after i in S's order and subtracts it for j before i. Adding a
 * uniform polynomial to the plaintext is adding it to the ciphertext's c0, so:
 *  - the coordinator's homomorphic sum over exactly S adds every mask once with each sign: they cancel exactly (SEAL
 *    adds residues mod each prime), and the aggregate decrypts to the same values as without masks;
 *  - one contribution, or a sum over any strict subset of S, carries at least one uncancelled uniform polynomial: it
 *    decrypts to uniformly random residues, which decode to values of the order of q / scale, i.e. noise.
 * The ciphertexts stay fresh encryptions of a valid plaintext (every residue below its prime), so the coordinator's
 * form checks (seeded, canonical, level, scale) accept them unchanged.
 *
 * The PRG is AES-256-CTR (node:crypto) keyed by the pair's seed with the block index as the counter's start; residues
 * are drawn by rejection (the prime's bit length, kept when below the prime), so they are uniform mod each prime and
 * both ends of a pair draw the same sequence.
 */
import { createCipheriv, diffieHellman, hkdfSync, type KeyObject } from 'node:crypto';
import { ErrorCode, FedcreditError } from '../errors.js';
import { publicKeyFromRaw, RAW_KEY_BYTES } from '../crypto/raw-keys.js';

/** What one sum's masks are bound to: two sums with different transcripts share no mask. */
export interface MaskTranscript {
  jobId: string;
  purpose: string;
  round: number;
  attempt: number;
  /** The contributor set S the coordinator named in its request (any order: it is sorted here). */
  contributors: readonly string[];
}

/** Another contributor of the sum and its per-job X25519 box key (raw 32 bytes), already checked against its certificate. */
export interface MaskPeer {
  organisation: string;
  boxPublicKey: Uint8Array;
}

const INFO = 'fedcredit pairwise mask v1';
const STREAM_CHUNK = 1 << 16;

function transcriptBytes(t: MaskTranscript): Buffer {
  const fields = [INFO, t.jobId, t.purpose, String(t.round), String(t.attempt), ...[...t.contributors].sort()];
  return Buffer.concat(
    fields.map((f) => {
      const bytes = Buffer.from(f);
      const length = Buffer.alloc(4);
      length.writeUInt32BE(bytes.length);
      return Buffer.concat([length, bytes]);
    }),
  );
}

/** Uniform residues mod each prime from one pair's AES-256-CTR stream, drawn by rejection. */
class ResidueStream {
  private readonly cipher;
  private buffer = Buffer.alloc(0);
  private offset = 0;
  private static readonly zeros = Buffer.alloc(STREAM_CHUNK);

  constructor(seed: Buffer, block: number) {
    const iv = Buffer.alloc(16);
    iv.writeUInt32BE(block, 0);
    this.cipher = createCipheriv('aes-256-ctr', seed, iv);
  }

  next(mask: bigint, prime: bigint): bigint {
    for (;;) {
      if (this.offset + 8 > this.buffer.length) {
        this.buffer = this.cipher.update(ResidueStream.zeros);
        this.offset = 0;
      }
      const v = this.buffer.readBigUInt64LE(this.offset) & mask;
      this.offset += 8;
      if (v < prime) return v;
    }
  }
}

export class PairwiseMask {
  /** Per other contributor: the pair's seed and whether its mask is added (+1) or subtracted (−1) by this party. */
  private readonly pairs: { seed: Buffer; sign: 1 | -1 }[];

  /**
   * This party's masks for one sum. `peers` must be exactly the other members of `transcript.contributors`: a
   * missing or extra peer would leave masks that never cancel (the sum opens to noise).
   */
  constructor(
    readonly organisation: string,
    boxPrivateKey: KeyObject,
    ownBoxPublicKey: Uint8Array,
    peers: readonly MaskPeer[],
    readonly transcript: MaskTranscript,
  ) {
    const others = [...transcript.contributors].filter((o) => o !== organisation).sort();
    const named = peers.map((p) => p.organisation).sort();
    if (!transcript.contributors.includes(organisation) || named.join('\n') !== others.join('\n') || new Set(transcript.contributors).size !== transcript.contributors.length) {
      throw new FedcreditError(
        ErrorCode.PROTOCOL,
        `the masks of the ${transcript.purpose} sum of round ${transcript.round} need the box key of every other contributor of [${transcript.contributors.join(', ')}]; got [${named.join(', ')}]`,
        'the coordinator deviates from the protocol; tell the federation operator',
      );
    }
    const info = transcriptBytes(transcript);
    this.pairs = peers.map((p) => {
      if (p.boxPublicKey.length !== RAW_KEY_BYTES) throw new FedcreditError(ErrorCode.KEY_BINDING, `${p.organisation}'s box key is not an X25519 key`, 'the coordinator relayed a malformed key');
      const shared = diffieHellman({ privateKey: boxPrivateKey, publicKey: publicKeyFromRaw('x25519', p.boxPublicKey) });
      const keys = [Buffer.from(ownBoxPublicKey), Buffer.from(p.boxPublicKey)].sort(Buffer.compare);
      const seed = Buffer.from(hkdfSync('sha256', shared, Buffer.concat(keys), info, 32));
      return { seed, sign: organisation.localeCompare(p.organisation) < 0 ? 1 : -1 };
    });
  }

  /**
   * Add this party's mask of block `block` to a plaintext's residues: `words` is N·k words, prime-major (SEAL's
   * layout), each below its prime in `primes` (the k primes of the plaintext's level).
   */
  apply(block: number, words: BigUint64Array, primes: BigUint64Array): void {
    const degree = words.length / primes.length;
    if (!Number.isInteger(degree)) throw new RangeError(`${words.length} words are not a whole number of residues for ${primes.length} primes`);
    for (const { seed, sign } of this.pairs) {
      const stream = new ResidueStream(seed, block);
      for (let k = 0; k < primes.length; k++) {
        const prime = primes[k]!;
        const mask = (1n << BigInt(prime.toString(2).length)) - 1n;
        const base = k * degree;
        for (let t = 0; t < degree; t++) {
          const r = stream.next(mask, prime);
          const w = words[base + t]!;
          if (sign === 1) {
            const s = w + r;
            words[base + t] = s >= prime ? s - prime : s;
          } else {
            words[base + t] = w >= r ? w - r : w + prime - r;
          }
        }
      }
    }
  }
}
