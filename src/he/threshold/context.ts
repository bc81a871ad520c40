/**
 * The SEAL context the threshold protocols run on, and the ring views of its levels.
 *
 * Levels, as SEAL numbers them: the key level holds every prime q_0 … q_{L−1} and the special prime P = q_L (keys
 * live there); data level 0 (fresh ciphertexts) holds q_0 … q_{L−1}; each rescale drops the last data prime. Every
 * level's primes are a prefix of the key level's, so a key-level polynomial restricted to a level is its first
 * words (ring.prefixPoly).
 */
import { sha256Hex } from '../../bytes.js';
import type { SEALLibrary } from 'node-seal/implementation/seal.js';
import type { Context } from 'node-seal/implementation/context.js';
import type { CipherText } from 'node-seal/implementation/cipher-text.js';
import type { PlainText } from 'node-seal/implementation/plain-text.js';
import type { SecretKey } from 'node-seal/implementation/secret-key.js';
import type { Decryptor } from 'node-seal/implementation/decryptor.js';
import { DEFAULT_CKKS_PARAMS, type CkksParams } from '../params.js';
import { createSealContext } from '../seal.js';
import { ErrorCode, FedcreditError } from '../../errors.js';
import { addPoly, modPow, zeroPoly, type FloodingSample, type RingModulus } from './ring.js';
import { readCiphertext, readPlaintext, writeCiphertext, writePlaintext, type SealCiphertextData } from '../seal-format.js';

/** A linear map applied in place to a polynomial in NTT form over a level's ring. */
export type PolyTransform = (ring: RingModulus, poly: BigUint64Array) => void;

export interface LevelInfo {
  /** 0 = the top data level (fresh ciphertexts), 1 after one rescale, … */
  level: number;
  parmsId: BigUint64Array;
  ring: RingModulus;
}

/** A ciphertext received for decryption, loaded by SEAL (which checks it) and re-saved uncompressed. */
export interface CanonicalCiphertext {
  /** SHA-256 of the uncompressed bytes: the name a decryption share carries. */
  digest: string;
  /** The uncompressed bytes. */
  bytes: Uint8Array;
  data: SealCiphertextData;
  level: number;
  scale: number;
}

export class ThresholdContext {
  readonly degree: number;
  /** Every prime, the special prime last: where keys live. */
  readonly keyRing: RingModulus;
  readonly keyParmsId: BigUint64Array;
  /** Data levels, top first. */
  readonly levels: LevelInfo[];
  /** P mod q_j for each data prime q_j (SEAL's key-switching factor). */
  readonly specialPrime: bigint;

  private constructor(
    readonly seal: SEALLibrary,
    readonly context: Context,
    readonly params: CkksParams,
  ) {
    this.degree = params.polyModulusDegree;
    const keyData = context.keyContextData;
    const keyParms = keyData.parms;
    const keyId = keyData.parmsId;
    try {
      this.keyRing = { degree: this.degree, primes: [...keyParms.coeffModulus] };
      this.keyParmsId = keyId.values.slice();
    } finally {
      keyId.delete();
      keyParms.delete();
      keyData.delete();
    }
    this.specialPrime = this.keyRing.primes[this.keyRing.primes.length - 1]!;
    this.levels = [];
    let data = context.firstContextData;
    for (let level = 0; level < params.coeffModulusBits.length - 1; level++) {
      const parms = data.parms;
      const id = data.parmsId;
      try {
        this.levels.push({ level, parmsId: id.values.slice(), ring: { degree: this.degree, primes: [...parms.coeffModulus] } });
      } finally {
        id.delete();
        parms.delete();
      }
      const next = level + 1 < params.coeffModulusBits.length - 1 ? data.nextContextData : undefined;
      data.delete();
      if (!next) break;
      data = next;
    }
  }

  static async create(params: CkksParams = DEFAULT_CKKS_PARAMS): Promise<ThresholdContext> {
    // ring.ts and crs.ts split words into 32-bit halves assuming every prime has 33 to 61 bits.
    if (params.coeffModulusBits.some((bits) => bits <= 32 || bits > 60)) {
      throw new FedcreditError(
        ErrorCode.CKKS_PARAMS,
        `threshold CKKS needs primes of 33 to 60 bits, got ${params.coeffModulusBits.join(',')}`,
        'use the default CKKS parameters or primes of 40 to 60 bits',
      );
    }
    const { seal, context } = await createSealContext(params);
    return new ThresholdContext(seal, context, params);
  }

  /** Number of data primes: how many key-switching ciphertexts each Galois key has. */
  get dataPrimeCount(): number {
    return this.keyRing.primes.length - 1;
  }

  /** Free the SEAL objects this context made (SEAL's context itself is shared by the process: createSealContext). */
  dispose(): void {
    for (const { key, decryptor } of this.radixDecryptors.values()) {
      decryptor.delete();
      key.delete();
    }
    this.radixDecryptors.clear();
  }

  levelOf(parmsId: BigUint64Array): LevelInfo | undefined {
    return this.levels.find((l) => l.parmsId.every((v, i) => v === parmsId[i]));
  }

  /**
   * T(c1·s) + NTT(flooding) for a ciphertext (c0, c1) at its level, computed by SEAL where it can: the ciphertext as
   * received, loaded once more, times s (a Plaintext of s's words at the ciphertext's level, nttPlaintext) by
   * Evaluator.multiplyPlain, of which c1·s is read back; `transform` T (a linear map on NTT slots, such as a sum of
   * automorphisms) applied to it here; and the flooding low + 2^k·high (sampleFlooding, coefficient form)
   * transformed and recombined by SEAL: its two digits are the two halves of a ciphertext marked "not in NTT form",
   * which Evaluator.transformToNtt transforms, and decrypting that with a key whose every NTT slot is 2^k
   * (radixDecryptor) gives low + 2^k·high modulo each prime, in NTT form: a decryption is c0 + c1·s. Both are SEAL's
   * slot-by-slot arithmetic on the same words as ring.ts (the tests compare them), without BigInt.
   */
  floodedProduct(ciphertext: CanonicalCiphertext, secret: PlainText, flooding: FloodingSample, transform?: PolyTransform): BigUint64Array {
    const info = this.levels[ciphertext.level]!;
    const { seal } = this;
    let product: CipherText | undefined;
    let flood: CipherText | undefined;
    let opened: PlainText | undefined;
    let evaluator: ReturnType<SEALLibrary['Evaluator']> | undefined;
    try {
      evaluator = seal.Evaluator(this.context);
      product = seal.CipherText();
      product.loadArray(this.context, ciphertext.bytes);
      evaluator.multiplyPlain(product, secret, product);
      const { polys } = readCiphertext(product.saveArray(seal.ComprModeType.none), 'a product');
      // c0·s_i lies in the same buffer as the share returned: wiped, so no later view of that buffer can reveal s_i.
      polys[0]!.fill(0n);
      const share = polys[1]!;
      transform?.(info.ring, share);
      flood = seal.CipherText();
      flood.loadArray(
        this.context,
        writeCiphertext({ parmsId: info.parmsId, degree: this.degree, primeCount: info.ring.primes.length, scale: 1, isNttForm: false, polys: [flooding.low, flooding.high] }),
      );
      evaluator.cipherTransformToNtt(flood, flood);
      opened = this.radixDecryptor(flooding.cellBits).decrypt(flood) as PlainText;
      return addPoly(info.ring, share, readPlaintext(opened.saveArray(seal.ComprModeType.none), 'a flooding').coefficients);
    } finally {
      evaluator?.delete();
      opened?.delete();
      flood?.delete();
      product?.delete();
    }
  }

  /** A polynomial in NTT form at data level `level` (the level's primes' words) as a SEAL Plaintext; the caller deletes it. */
  nttPlaintext(level: number, words: BigUint64Array): PlainText {
    const plain = this.seal.PlainText();
    try {
      plain.loadArray(this.context, writePlaintext({ parmsId: this.levels[level]!.parmsId, scale: 1, coefficients: words }));
      return plain;
    } catch (err) {
      plain.delete();
      throw err;
    }
  }

  /**
   * The slots of Σ polys (NTT form, at data level `level`) decoded at `scale`. SEAL adds them: the ciphertext (p_0,
   * p_1, …, p_k) decrypts under a key of ones to Σ p_i (radixDecryptor(0)), a plaintext CKKSEncoder decodes. Up to
   * 16 polynomials (SEAL's largest ciphertext); more are added here first.
   */
  decodeSum(level: number, scale: number, polys: readonly BigUint64Array[]): Float64Array {
    const info = this.levels[level]!;
    const { seal } = this;
    const parts = polys.length > 16 ? [...polys.slice(0, 15), polys.slice(15).reduce((sum, p) => addPoly(info.ring, sum, p), zeroPoly(info.ring))] : [...polys];
    let sum: CipherText | undefined;
    let plain: PlainText | undefined;
    const encoder = seal.CKKSEncoder(this.context);
    try {
      sum = seal.CipherText();
      sum.loadArray(this.context, writeCiphertext({ parmsId: info.parmsId, degree: this.degree, primeCount: info.ring.primes.length, scale, isNttForm: true, polys: parts }));
      plain = this.radixDecryptor(0).decrypt(sum) as PlainText;
      return encoder.decode(plain) as Float64Array;
    } finally {
      plain?.delete();
      sum?.delete();
      encoder.delete();
    }
  }

  private readonly radixDecryptors = new Map<number, { key: SecretKey; decryptor: Decryptor }>();

  /** A Decryptor whose key has 2^k mod q_j in every NTT slot of every prime: it decrypts (c0, c1) to c0 + 2^k·c1. */
  private radixDecryptor(cellBits: number): Decryptor {
    let made = this.radixDecryptors.get(cellBits);
    if (!made) {
      const coefficients = zeroPoly(this.keyRing);
      this.keyRing.primes.forEach((q, j) => coefficients.fill(modPow(2n, BigInt(cellBits), q), j * this.degree, (j + 1) * this.degree));
      const key = this.seal.SecretKey();
      try {
        key.loadArray(this.context, writePlaintext({ parmsId: this.keyParmsId, scale: 1, coefficients }));
        made = { key, decryptor: this.seal.Decryptor(this.context, key) };
      } catch (err) {
        key.delete();
        throw err;
      }
      this.radixDecryptors.set(cellBits, made);
    }
    return made.decryptor;
  }

  /**
   * Load ciphertext bytes (any compression, seeded or not) into SEAL, which validates them against the context,
   * and save them uncompressed: the canonical form, its digest and its polynomials.
   */
  canonicalCiphertext(bytes: Uint8Array, what = 'ciphertext'): CanonicalCiphertext {
    let cipher: CipherText | undefined;
    let canonical: Uint8Array;
    try {
      cipher = this.seal.CipherText();
      cipher.loadArray(this.context, bytes);
      canonical = cipher.saveArray(this.seal.ComprModeType.none);
    } catch (err) {
      throw new FedcreditError(
        ErrorCode.CIPHERTEXT_INVALID,
        `${what} does not load under the job's CKKS parameters: ${err instanceof Error ? err.message : String(err)}`,
        'the sender uses other CKKS parameters or sent damaged bytes',
      );
    } finally {
      cipher?.delete();
    }
    const data = readCiphertext(canonical, what);
    const info = this.levelOf(data.parmsId);
    if (!info) throw new FedcreditError(ErrorCode.CIPHERTEXT_INVALID, `${what} is not at a data level of the job's modulus chain`, 'only ciphertexts of the job can be decrypted');
    if (!data.isNttForm) throw new FedcreditError(ErrorCode.CIPHERTEXT_INVALID, `${what} is not in NTT form (every CKKS ciphertext SEAL makes is)`, 'the sender built the ciphertext by hand');
    return { digest: sha256Hex(canonical), bytes: canonical, data, level: info.level, scale: data.scale };
  }
}
