/**
 * Vectors for the horizontal secure sum on a CkksEngine: a vector longer than the slot count (N/2) is packed into
 * ceil(length / slots) ciphertexts, slot-full each; participants encrypt symmetrically (seeded, half the bytes),
 * the coordinator adds without any key and checks every block's form, and participants decrypt the sum.
 */
import type { CipherText } from 'node-seal/implementation/cipher-text.js';
import type { SEALLibrary } from 'node-seal/implementation/seal.js';
import type { CiphertextExpectation, CkksEngine, PlaintextMask } from './engine.js';
import { blockCount, TOP_LEVEL_ZSTD, type SumLayout } from './packing.js';
import { comprModeOf, invalidCiphertext, sameBytes } from './seal.js';

/** How a ciphertext on the wire was produced: see HorizontalVectors.checkCiphertext. */
export type CiphertextForm = 'seeded' | 'canonical';

export class HorizontalVectors {
  constructor(readonly engine: CkksEngine) {}

  /** Ciphertexts a vector of `length` values takes. */
  blocksFor(length: number): number {
    return blockCount(length, this.engine.slotCount);
  }

  /**
   * Encrypt a vector into slot-full ciphertexts. With the secret key (every participant holds it) encryption is
   * symmetric and seeded, which halves the bytes on the wire; with only the public key it is public-key
   * encryption. With `mask` (src/fl/pairwise-mask.ts) each block's plaintext is masked first: only the sum over the
   * mask's whole contributor set decrypts to the values.
   */
  encryptVector(values: Float64Array, publicKey: Uint8Array, secretKey?: Uint8Array, layout: SumLayout = TOP_LEVEL_ZSTD, mask?: PlaintextMask): Uint8Array[] {
    return this.engine.encryptBlocks(values, publicKey, secretKey, this.compression(layout), layout.level, mask);
  }

  private compression(layout: SumLayout) {
    return layout.uncompressed ? this.engine.seal.ComprModeType.none : this.engine.seal.ComprModeType.zstd;
  }

  /**
   * Decrypt ciphertexts made by encryptVector/sumVectors back into the first `length` values. With `form`
   * 'canonical' each block must first pass checkCiphertext's canonical test (on the same load).
   */
  decryptVector(blocks: Uint8Array[], length: number, secretKey: Uint8Array, form?: 'canonical'): Float64Array {
    if (blocks.length !== this.blocksFor(length)) {
      throw invalidCiphertext(`${blocks.length} ciphertexts cannot hold a vector of ${length} values (${this.blocksFor(length)} expected)`);
    }
    const { encoder } = this.engine.tools();
    const decryptor = this.engine.decryptor(secretKey);
    const out = new Float64Array(length);
    blocks.forEach((bytes, b) => {
      const cipher = this.engine.loadCiphertext(bytes);
      try {
        if (form === 'canonical') this.requireCanonical(cipher, bytes);
        const plain = decryptor.decrypt(cipher) as ReturnType<SEALLibrary['PlainText']>;
        try {
          const decoded = encoder.decode(plain);
          out.set(decoded.subarray(0, Math.min(this.engine.slotCount, length - b * this.engine.slotCount)), b * this.engine.slotCount);
        } finally {
          plain.delete();
        }
      } finally {
        cipher.delete();
      }
    });
    return out;
  }

  /**
   * Homomorphic sum of several encrypted vectors of equal shape: what the coordinator computes without any key,
   * serialised as `layout` says. Each input is validated (header, parameters, scale) before use.
   */
  sumVectors(vectors: Uint8Array[][], layout: SumLayout = TOP_LEVEL_ZSTD): Uint8Array[] {
    if (vectors.length === 0) throw new RangeError('sumVectors needs at least one vector');
    const blocks = vectors[0]!.length;
    if (vectors.some((v) => v.length !== blocks)) throw invalidCiphertext('encrypted vectors to add have different numbers of ciphertexts');
    const evaluator = this.engine.seal.Evaluator(this.engine.context);
    try {
      const out: Uint8Array[] = [];
      for (let b = 0; b < blocks; b++) {
        const acc = this.engine.loadCiphertext(vectors[0]![b]!);
        try {
          for (let v = 1; v < vectors.length; v++) {
            const next = this.engine.loadCiphertext(vectors[v]![b]!);
            try {
              evaluator.add(acc, next, acc);
            } finally {
              next.delete();
            }
          }
          out.push(acc.saveArray(this.compression(layout)));
        } finally {
          acc.delete();
        }
      }
      return out;
    } finally {
      evaluator.delete();
    }
  }

  /**
   * Validate one serialised ciphertext without keeping it. SEAL's own checks miss some truncations of a
   * compressed ciphertext whose header was rewritten to match, so the form is checked too:
   *  - 'seeded': a fresh symmetric encryption (what participants send). Reloaded, its second polynomial is
   *    expanded from the seed, so it re-serialises to far more bytes; a non-seeded or truncated block does not.
   *  - 'canonical': SEAL's own serialisation of a full ciphertext (what the coordinator sends back); it must
   *    re-serialise to exactly the bytes received.
   */
  checkCiphertext(bytes: Uint8Array, form: CiphertextForm): void {
    const cipher = this.engine.loadCiphertext(bytes);
    try {
      if (form === 'canonical') {
        this.requireCanonical(cipher, bytes);
        return;
      }
      this.requireSeeded(cipher, bytes);
    } finally {
      cipher.delete();
    }
  }

  /** The 'seeded' test of checkCiphertext on a loaded ciphertext. */
  private requireSeeded(cipher: CipherText, bytes: Uint8Array): void {
    // Uncompressed size is enough to tell a seeded ciphertext (about 2.3x smaller compressed) and costs no zstd.
    if (cipher.saveArray(this.engine.seal.ComprModeType.none).length < bytes.length * 1.5) {
      throw invalidCiphertext('ciphertext is not a seeded symmetric encryption as contributions must be (truncated, altered, or public-key encrypted)');
    }
  }

  /**
   * A homomorphic sum that takes contributions as they arrive (the coordinator's side of a secure sum): `add` loads
   * each block once, checks it as checkCiphertext in `form` does ('seeded'; 'canonical' for public-key encryptions
   * under a collective key) and, since everything is added at the top level,
   * that it is at the layout's level, then adds it. Adding ciphertexts is exact modular arithmetic, so `result` is the
   * same bytes as sumVectors of the same vectors in any order (serialised as the layout says). The running sum lives
   * on the WASM heap until dispose().
   */
  runningSum(blockCount: number, form: CiphertextForm = 'seeded', layout: SumLayout = TOP_LEVEL_ZSTD): RunningSum {
    const { evaluator } = this.engine.tools();
    const fresh: CiphertextExpectation = { scale: this.engine.scale, level: layout.level, what: 'a fresh CKKS encryption' };
    const acc: (CipherText | undefined)[] = Array.from({ length: blockCount }, () => undefined);
    const requireShape = (blocks: Uint8Array[]) => {
      if (blocks.length !== blockCount) throw invalidCiphertext(`${blocks.length} ciphertexts cannot be added to a sum of ${blockCount}`);
    };
    let vectors = 0;
    // Exact inverse of adding blocks [0, count) of a vector (each loads: it passed the checks). With no other vector
    // in the sum the block is dropped instead: SEAL refuses to produce the all-zero (transparent) ciphertext.
    const takeBack = (blocks: Uint8Array[], count: number) => {
      for (let b = 0; b < count; b++) {
        if (vectors === 0) {
          acc[b]!.delete();
          acc[b] = undefined;
          continue;
        }
        const cipher = this.engine.loadCiphertext(blocks[b]!, fresh);
        try {
          evaluator.sub(acc[b]!, cipher, acc[b]!);
        } finally {
          cipher.delete();
        }
      }
    };
    return {
      add: (blocks) => {
        requireShape(blocks);
        let added = 0;
        try {
          for (const bytes of blocks) {
            const cipher = this.engine.loadCiphertext(bytes, fresh);
            try {
              if (form === 'seeded') this.requireSeeded(cipher, bytes);
              else this.requireCanonical(cipher, bytes);
              const sum = acc[added];
              if (sum) evaluator.add(sum, cipher, sum);
              else acc[added] = cipher.clone();
            } finally {
              cipher.delete();
            }
            added++;
          }
        } catch (err) {
          takeBack(blocks, added);
          throw err;
        }
        vectors++;
      },
      subtract: (blocks) => {
        requireShape(blocks);
        if (vectors === 0) throw new RangeError('nothing to subtract from an empty running sum');
        vectors--;
        takeBack(blocks, blockCount);
      },
      result: () =>
        acc.map((sum) => {
          if (!sum) throw new RangeError('a running sum with nothing added has no result');
          return sum.saveArray(this.compression(layout));
        }),
      dispose: () => {
        for (const sum of acc) sum?.delete();
        acc.fill(undefined);
        vectors = 0;
      },
    };
  }

  /**
   * The 'canonical' test of checkCiphertext on a loaded ciphertext: SEAL's serialisation of it, in the compression
   * mode its header declares, is `bytes`.
   */
  private requireCanonical(cipher: CipherText, bytes: Uint8Array): void {
    if (!sameBytes(cipher.saveArray(comprModeOf(this.engine.seal, bytes)), bytes)) {
      throw invalidCiphertext('ciphertext does not re-serialise to the bytes received (truncated or altered)');
    }
  }
}

/** See HorizontalVectors.runningSum. */
export interface RunningSum {
  /** Check a contribution's blocks and add them; a vector that fails a check leaves the sum as it was. */
  add(blocks: Uint8Array[]): void;
  /** Take back a vector added before (e.g. its sender was dropped after all). */
  subtract(blocks: Uint8Array[]): void;
  /** The sum's blocks, serialised as sumVectors serialises them. */
  result(): Uint8Array[];
  dispose(): void;
}
