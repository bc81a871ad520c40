/**
 * The CKKS engine: one SEAL context for a parameter set, the keys loaded into it, and the discipline that frees
 * every SEAL object. Horizontal vectors (horizontal.ts), the vertical gradient (vertical-gradient.ts) and the key
 * ceremony (key-ceremony.ts) run on it; everything else in fedcredit sees bytes and Float64Arrays.
 *
 * SEAL objects live on the WASM heap, which the JS garbage collector does not reclaim: every object created here
 * is deleted in a `finally` before the function returns, or held by the engine (the keys it loaded, its encoder
 * and evaluator, what a part registered with onDispose) until dispose().
 */
import type { SEALLibrary } from 'node-seal/implementation/seal.js';
import type { CipherText } from 'node-seal/implementation/cipher-text.js';
import type { Context } from 'node-seal/implementation/context.js';
import type { GaloisKeys } from 'node-seal/implementation/galois-keys.js';
import type { PlainText } from 'node-seal/implementation/plain-text.js';
import { ErrorCode, FedcreditError } from '../errors.js';
import { blockCount } from './packing.js';
import { DEFAULT_CKKS_PARAMS, paramsFingerprint, type CkksParams } from './params.js';
import { checkSerializedHeader, createSealContext, invalidCiphertext, type ComprMode } from './seal.js';
import { sha256Hex } from '../bytes.js';
import { readPlaintext, writePlaintext } from './seal-format.js';
import { ntt, zeroPoly } from './threshold/ring.js';

/** Something that adds a mask to the residues of a block's plaintext before it is encrypted (src/fl/pairwise-mask.ts). */
export interface PlaintextMask {
  apply(block: number, words: BigUint64Array, primes: BigUint64Array): void;
}

/** What a ciphertext must look like to be used: scale, and (when given) its level in the modulus chain. */
export interface CiphertextExpectation {
  scale: number;
  /** 0 = the top data level (fresh ciphertexts), 1 = after one rescale, …; undefined = any level. */
  level?: number;
  /** How the ciphertext is described in the error, e.g. 'a fresh CKKS encryption'. */
  what: string;
  /** Appended to the error message. */
  why?: string;
}

/** One data level of the modulus chain: its parms_id and its primes. */
export interface ChainLevel {
  parmsId: BigUint64Array;
  primes: BigUint64Array;
}

/** Galois keys kept loaded per engine (by SHA-256 of their bytes): a job has one arbiter, so two is plenty. */
const GALOIS_CACHE_ENTRIES = 2;

/** 2^40 for an exact power of two, else 2^77.00 (a scale after rescaling by a prime, or a foreign one). */
const scaleText = (scale: number): string => (Number.isInteger(Math.log2(scale)) ? `2^${Math.log2(scale)}` : `2^${Math.log2(scale).toFixed(2)}`);

const sameIds = (a: BigUint64Array, b: BigUint64Array): boolean => a.length === b.length && a.every((v, i) => v === b[i]);

export class CkksEngine {
  readonly slotCount: number;
  readonly fingerprint: Uint8Array;
  /** 2^scaleBits: the scale of fresh encryptions. */
  readonly scale: number;
  /** The data levels, top (fresh ciphertexts) first. */
  readonly chain: ChainLevel[];
  private readonly galoisCache = new Map<string, GaloisKeys>();
  /** SHA-256 (hex) of key byte arrays already seen (Galois, public, secret), so one array is hashed once. */
  private readonly keyDigests = new WeakMap<Uint8Array, string>();
  private encoder?: ReturnType<SEALLibrary['CKKSEncoder']>;
  private evaluator?: ReturnType<SEALLibrary['Evaluator']>;
  /** The loaded public key and its Encryptor (a host's, for its partial scores): loading the key costs ~1 ms. */
  private readonly encryptors = new KeyedSealObject<ReturnType<SEALLibrary['Encryptor']>>();
  /** A horizontal participant's loaded key pair and its symmetric Encryptor, kept for the job's every contribution. */
  private readonly symmetricEncryptors = new KeyedSealObject<ReturnType<SEALLibrary['Encryptor']>>();
  /** The loaded secret key and its Decryptor (a participant's, the arbiter's). */
  private readonly decryptors = new KeyedSealObject<ReturnType<SEALLibrary['Decryptor']>>();
  /** What parts made on this engine hold on the WASM heap (VerticalGradient.of), freed by dispose(). */
  private readonly disposers: (() => void)[] = [];
  /** imaginaryUnit's plaintexts, by level. */
  private readonly imaginaryUnits = new Map<number, PlainText>();

  private constructor(
    readonly seal: SEALLibrary,
    readonly context: Context,
    readonly params: CkksParams,
  ) {
    const encoder = seal.CKKSEncoder(context);
    this.slotCount = encoder.slotCount;
    encoder.delete();
    this.scale = 2 ** params.scaleBits;
    this.fingerprint = paramsFingerprint(params);
    this.chain = [];
    let data = context.firstContextData;
    try {
      for (let level = 0; level < params.coeffModulusBits.length - 1; level++) {
        const parms = data.parms;
        const id = data.parmsId;
        try {
          this.chain.push({ parmsId: id.values, primes: BigUint64Array.from(parms.coeffModulus) });
        } finally {
          id.delete();
          parms.delete();
        }
        if (level + 1 < params.coeffModulusBits.length - 1) {
          const next = data.nextContextData;
          data.delete();
          data = next;
        }
      }
    } finally {
      data.delete();
    }
  }

  /** Build a context for the parameters; refuses parameters that SEAL does not rate 128-bit secure. */
  static async create(params: CkksParams = DEFAULT_CKKS_PARAMS): Promise<CkksEngine> {
    const { seal, context } = await createSealContext(params);
    return new CkksEngine(seal, context, params);
  }

  /** Check that a party's declared parameters are the ones this engine runs. */
  requireFingerprint(fingerprint: Uint8Array, who: string): void {
    if (!Buffer.from(fingerprint).equals(Buffer.from(this.fingerprint))) {
      throw new FedcreditError(
        ErrorCode.CKKS_PARAMS,
        `${who} uses CKKS parameters that differ from the job's`,
        'all parties must run the job with the same `encryption` section; restart that participant with the current fedcredit version',
      );
    }
  }

  /**
   * Encrypt values into slot-full ciphertexts serialised with `compression`: symmetric and seeded with the secret
   * key, public-key encryption without it. At `level` > 0 the plaintext is switched down that many primes first, so
   * SEAL encrypts on the smaller modulus (for public-key encryption it encrypts one level up and divides by the
   * dropped prime, so the noise is the same rounding as a fresh encryption at level 0).
   */
  encryptBlocks(values: Float64Array, publicKey: Uint8Array, secretKey: Uint8Array | undefined, compression: ComprMode, level = 0, mask?: PlaintextMask): Uint8Array[] {
    const { encoder, evaluator } = this.tools();
    const encryptor = secretKey
      ? this.symmetricEncryptors.get(`${this.keyDigest(publicKey)}|${this.keyDigest(secretKey)}`, () => this.symmetricEncryptor(publicKey, secretKey))
      : this.publicKeyEncryptor(publicKey);
    const blocks: Uint8Array[] = [];
    const slot = new Float64Array(this.slotCount);
    for (let b = 0; b < blockCount(values.length, this.slotCount); b++) {
      slot.fill(0);
      slot.set(values.subarray(b * this.slotCount, Math.min(values.length, (b + 1) * this.slotCount)));
      const plain = encoder.encode(slot, this.scale) as ReturnType<SEALLibrary['PlainText']>;
      try {
        for (let l = 0; l < level; l++) evaluator.plainModSwitchToNext(plain, plain);
        if (mask) this.maskPlaintext(plain, b, mask, level);
        const serializable = secretKey ? encryptor.encryptSymmetricSerializable(plain) : encryptor.encryptSerializable(plain);
        try {
          blocks.push(serializable.saveArray(compression));
        } finally {
          serializable.delete();
        }
      } finally {
        plain.delete();
      }
    }
    return blocks;
  }

  /** Add `mask`'s residues of block `block` to an encoded NTT-form plaintext at `level`, through its serialised form. */
  private maskPlaintext(plain: PlainText, block: number, mask: PlaintextMask, level: number): void {
    const data = readPlaintext(plain.saveArray(this.seal.ComprModeType.none));
    mask.apply(block, data.coefficients, this.chain[level]!.primes);
    plain.loadArray(this.context, writePlaintext(data));
  }

  /** The Encryptor for this public key, loaded once and kept while the same key is asked for. */
  publicKeyEncryptor(publicKey: Uint8Array): ReturnType<SEALLibrary['Encryptor']> {
    return this.encryptors.get(this.keyDigest(publicKey), () => this.loaded(this.seal.PublicKey(), publicKey, (pub) => this.seal.Encryptor(this.context, pub)));
  }

  /** Both keys loaded and the Encryptor made from them (SEAL's symmetric Encryptor takes the public key too). */
  private symmetricEncryptor(publicKey: Uint8Array, secretKey: Uint8Array): { parts: { delete(): void }[]; value: ReturnType<SEALLibrary['Encryptor']> } {
    const pub = this.seal.PublicKey();
    const secret = this.seal.SecretKey();
    try {
      pub.loadArray(this.context, publicKey);
      secret.loadArray(this.context, secretKey);
      return { parts: [pub, secret], value: this.seal.Encryptor(this.context, pub, secret) };
    } catch (err) {
      secret.delete();
      pub.delete();
      throw err;
    }
  }

  /** A key loaded from its bytes and the SEAL object made from it (both freed together by KeyedSealObject). */
  private loaded<K extends { loadArray(context: Context, bytes: Uint8Array): void; delete(): void }, T>(key: K, bytes: Uint8Array, make: (key: K) => T): { parts: { delete(): void }[]; value: T } {
    try {
      key.loadArray(this.context, bytes);
      return { parts: [key], value: make(key) };
    } catch (err) {
      key.delete();
      throw err;
    }
  }

  /** The Decryptor for this secret key, loaded once and kept until forgetSecretKey or dispose. */
  decryptor(secretKey: Uint8Array): ReturnType<SEALLibrary['Decryptor']> {
    return this.decryptors.get(this.keyDigest(secretKey), () => this.loaded(this.seal.SecretKey(), secretKey, (secret) => this.seal.Decryptor(this.context, secret)));
  }

  /** Free the cached secret key and Decryptor now (a key used once, e.g. the binning step's, must not linger in WASM memory). */
  forgetSecretKey(): void {
    this.decryptors.drop();
  }

  /** SHA-256 (hex) of key bytes, remembered per array: keys are treated as immutable once passed. */
  keyDigest(bytes: Uint8Array): string {
    let key = this.keyDigests.get(bytes);
    if (key === undefined) {
      key = sha256Hex(bytes);
      this.keyDigests.set(bytes, key);
    }
    return key;
  }

  /** The loaded Galois keys for these bytes, deserialised once per engine (cached by SHA-256). */
  galoisKeys(bytes: Uint8Array): GaloisKeys {
    const key = this.keyDigest(bytes);
    let keys = this.galoisCache.get(key);
    if (keys) {
      this.galoisCache.delete(key); // re-inserted below: most recently used last
    } else {
      checkSerializedHeader(bytes, 'Galois keys');
      const loaded = this.seal.GaloisKeys();
      try {
        loaded.loadArray(this.context, bytes);
      } catch (err) {
        loaded.delete();
        throw invalidCiphertext(`Galois keys do not deserialise under the job's CKKS parameters: ${err instanceof Error ? err.message : String(err)}`);
      }
      keys = loaded;
      while (this.galoisCache.size >= GALOIS_CACHE_ENTRIES) {
        const [oldest, old] = this.galoisCache.entries().next().value as [string, GaloisKeys];
        old.delete();
        this.galoisCache.delete(oldest);
      }
    }
    this.galoisCache.set(key, keys);
    return keys;
  }

  /** The engine's encoder and evaluator, made once (deleted by dispose). */
  tools(): { encoder: ReturnType<SEALLibrary['CKKSEncoder']>; evaluator: ReturnType<SEALLibrary['Evaluator']> } {
    this.encoder ??= this.seal.CKKSEncoder(this.context);
    this.evaluator ??= this.seal.Evaluator(this.context);
    return { encoder: this.encoder, evaluator: this.evaluator };
  }

  /**
   * Deserialise and check one ciphertext: size 2 (never relinearised), the expected scale and, when given, the
   * expected level. Without `expected` it must be a fresh encryption at the job's scale 2^scaleBits (any level),
   * which is what the horizontal secure sum exchanges.
   */
  loadCiphertext(bytes: Uint8Array, expected: CiphertextExpectation = { scale: this.scale, what: 'a fresh CKKS encryption' }): CipherText {
    checkSerializedHeader(bytes);
    const cipher = this.seal.CipherText();
    try {
      cipher.loadArray(this.context, bytes);
    } catch (err) {
      cipher.delete();
      throw invalidCiphertext(`ciphertext does not deserialise under the job's CKKS parameters: ${err instanceof Error ? err.message : String(err)}`);
    }
    const level = expected.level === undefined ? undefined : this.levelOf(cipher);
    if (cipher.size !== 2 || Math.abs(Math.log2(cipher.scale) - Math.log2(expected.scale)) > 1e-9 || (expected.level !== undefined && level !== expected.level)) {
      const detail = `size ${cipher.size}, scale ${scaleText(cipher.scale)}${level === undefined ? '' : `, level ${level < 0 ? 'unknown' : level}`}`;
      const where = expected.level === undefined ? '' : ` at level ${expected.level}`;
      cipher.delete();
      throw invalidCiphertext(`ciphertext is not ${expected.what} at scale ${scaleText(expected.scale)}${where} (${detail})${expected.why ?? ''}`);
    }
    return cipher;
  }

  /** Position of the ciphertext's parms_id in the data chain (0 = top), or -1 if it is not a data level. */
  private levelOf(cipher: CipherText): number {
    const id = cipher.parmsId;
    try {
      const values = id.values;
      return this.chain.findIndex((level) => sameIds(level.parmsId, values));
    } finally {
      id.delete();
    }
  }

  /** Encode up to slotCount values (zero padded) at `scale` on the top level. */
  encode(encoder: ReturnType<SEALLibrary['CKKSEncoder']>, values: Float64Array, scale: number): PlainText {
    let slots = values;
    if (values.length !== this.slotCount) {
      slots = new Float64Array(this.slotCount);
      slots.set(values);
    }
    return encoder.encode(slots, scale) as PlainText;
  }

  /**
   * The plaintext that multiplies slot j by (−1)^j·i: the monomial X^(N/2), in SEAL's NTT form at data level
   * `level`, scale 1. SEAL's slot j is the polynomial's value at ζ^(3^j) (ζ = e^(iπ/N); 3 generates its rotations),
   * where X^(N/2) takes the value i^(3^j): i for even j, −i for odd j. Callers undo the sign on odd slots
   * (alternateSigns in vertical-gradient.ts); multiplying twice by it multiplies every slot by −1. node-seal's
   * CKKSEncoder binding encodes real vectors only and checks a non-NTT plaintext against a plain modulus CKKS does
   * not have, so the NTT form is computed here (ring.ts, SEAL's own transform) and loaded through the serialised
   * form. A multiplication by it is a signed permutation of the coefficients: no noise is added and the scale is
   * kept. Made once per level and kept until dispose().
   */
  imaginaryUnit(level: number): PlainText {
    const kept = this.imaginaryUnits.get(level);
    if (kept) return kept;
    const chainLevel = this.chain[level];
    if (!chainLevel) throw new RangeError(`level ${level} is not a data level (0 to ${this.chain.length - 1})`);
    const degree = 2 * this.slotCount;
    const ring = { degree, primes: Array.from(chainLevel.primes) };
    const monomial = zeroPoly(ring);
    ring.primes.forEach((_, j) => (monomial[j * degree + degree / 2] = 1n));
    const plain = this.seal.PlainText();
    try {
      plain.loadArray(this.context, writePlaintext({ parmsId: chainLevel.parmsId, scale: 1, coefficients: ntt(ring, monomial) }));
    } catch (err) {
      plain.delete();
      throw err;
    }
    this.imaginaryUnits.set(level, plain);
    return plain;
  }

  /** Run `dispose` when the engine is disposed, before the engine frees its own objects. */
  onDispose(dispose: () => void): void {
    this.disposers.push(dispose);
  }

  dispose(): void {
    for (const dispose of this.disposers.splice(0)) dispose();
    for (const plain of this.imaginaryUnits.values()) plain.delete();
    this.imaginaryUnits.clear();
    for (const keys of this.galoisCache.values()) keys.delete();
    this.galoisCache.clear();
    this.encoder?.delete();
    this.encoder = undefined;
    this.evaluator?.delete();
    this.evaluator = undefined;
    this.decryptors.drop();
    this.encryptors.drop();
    this.symmetricEncryptors.drop();
  }
}

/** A SEAL object made from a key (an Encryptor, a Decryptor), kept while the same key (by digest) is asked for again. */
class KeyedSealObject<T extends { delete(): void }> {
  private held?: { digest: string; parts: { delete(): void }[]; value: T };

  get(digest: string, make: () => { parts: { delete(): void }[]; value: T }): T {
    if (this.held?.digest === digest) return this.held.value;
    this.drop();
    this.held = { digest, ...make() };
    return this.held.value;
  }

  drop(): void {
    this.held?.value.delete();
    this.held?.parts.forEach((p) => p.delete());
    this.held = undefined;
  }
}
