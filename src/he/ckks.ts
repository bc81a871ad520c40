/**
 * CKKS homomorphic encryption: the one module that talks to node-seal (Microsoft SEAL compiled to WASM).
 * Everything else in fedcredit sees bytes and Float64Arrays, so moving to node-seal 7.x is a change to this
 * file alone.
 *
 * SEAL objects live on the WASM heap, which the JS garbage collector does not reclaim: every object created
 * here is deleted in a `finally` before the function returns. `wasmHeapBytes()` exposes the heap size so a test
 * can show it stays flat over many rounds.
 *
 * Vectors longer than the slot count (N/2) are packed into ceil(length / slots) ciphertexts, slot-full each.
 *
 * Besides the horizontal secure sum, the engine implements the encrypted steps of vertical (hetero) logistic
 * regression with an arbiter that holds the secret key (see "Vertical logistic regression" below).
 */
import { sha256, sha256Hex } from '../bytes.js';
import * as sealModule from 'node-seal';
import type { SEALLibrary } from 'node-seal/implementation/seal.js';
import type { CipherText } from 'node-seal/implementation/cipher-text.js';
import type { Context } from 'node-seal/implementation/context.js';
import type { GaloisKeys } from 'node-seal/implementation/galois-keys.js';
import type { PlainText } from 'node-seal/implementation/plain-text.js';
import type { Serializable } from 'node-seal/implementation/serializable.js';
import { ErrorCode, FedcreditError } from '../errors.js';

export interface CkksParams {
  polyModulusDegree: number;
  coeffModulusBits: number[];
  scaleBits: number;
}

/**
 * N = 8192 with a 160-bit modulus chain {60, 40, 60}: within SEAL's 218-bit bound for 128-bit security at
 * N = 8192 (HomomorphicEncryption.org standard). 4096 slots per ciphertext; the 40-bit scale leaves 20 bits
 * above the scale in the 60-bit data prime and 40 more in the second prime for sums of sample-weighted updates.
 */
export const DEFAULT_CKKS_PARAMS: CkksParams = { polyModulusDegree: 8192, coeffModulusBits: [60, 40, 60], scaleBits: 40 };

/**
 * Parameters for vertical logistic regression: N = 8192 with a 210-bit chain {60, 50, 40, 60} (≤ 218, 128-bit
 * secure). The guest forms the fore-gradient at scale 2^90 on the top level (150 bits) and rescales it once by the
 * last 40-bit prime: [[d]] travels at level 1 (60 + 50 = 110 bits) and scale ≈ 2^50, so every rotation and product
 * of maskedGradient runs on two primes instead of three (a rotation costs 2.1 ms instead of 3.5) and needs no
 * rescale. A feature diagonal at scale 2^27 makes products at ≈ 2^77, which leaves 33 bits (values below 2^32).
 */
export const VERTICAL_CKKS_PARAMS: CkksParams = { polyModulusDegree: 8192, coeffModulusBits: [60, 50, 40, 60], scaleBits: 40 };

/**
 * Scale (bits) of the fore-gradient [[d]] after the guest's rescale. The rescale adds about 2^11 in absolute
 * terms at that scale to every slot: 2^-39 at 2^50, far below the diagonals' own rounding (see
 * VERTICAL_DIAGONAL_SCALE_BITS); at 2^40 it would be 1.3e-9 per record, ~4e-6 of a typical gradient.
 */
export const VERTICAL_FORE_SCALE_BITS = 50;

/**
 * Scale (bits) at which a party encodes its feature diagonals in maskedGradient. Encoding rounds the plaintext
 * polynomial to integers, which perturbs every slot by about sqrt(N/24)/2^bits ≈ 18.5/2^bits: at 2^20 that is
 * 1.8e-5 per feature value and the gradient is off by ~1.6e-5 relative; at 2^27 the error is ~1.4e-7 relative,
 * and 2^27 is the largest scale that, times the fore-gradient's 2^50, still leaves room for a 2^30 mask
 * (|z + m| < 2^32) in the 110 bits of level 1.
 */
export const VERTICAL_DIAGONAL_SCALE_BITS = 27;

/** Values of a masked gradient must stay below 2^32 in magnitude: what the modulus leaves above its scale. */
const VERTICAL_VALUE_BITS = 32;

/**
 * Largest per-slot mask magnitude maskedGradient accepts (|z + m| < 2^32 then holds for any |z| < 2^30). Every
 * slot's mask is decrypted and summed with S/P − 1 others, so the party's g carries an absolute error that grows
 * with the mask (up to ~1e-14·max|m|, see VERTICAL_MASK): use VERTICAL_MASK, not this bound.
 */
export const VERTICAL_MAX_MASK = 2 ** 30;

/**
 * Magnitude of the per-slot masks parties use: m_i uniform in ±2^20, independent for each of the S = 4096 slots.
 *
 * Hiding: a slot holds z_i, a partial sum of X·d over P records, |z_i| < 2^-4 for features clipped at 5 (d
 * carries the guest's 1/Σweights; 1.2e-2 and 2.5e-2 at most in the tests for P = 16 and 64). The statistical
 * distance between z_i + m_i and m_i alone is |z_i|/2^21: below 2^-25 per slot. Over a whole ciphertext it is at
 * most Σ_i |z_i|/2^21 ≤ Σ_{j<p} Σ_r |X[r][j]·d[r]| / 2^21 ≤ 5p·Σ_r|d_r| / 2^21: with Σ|d| ≤ 1 (Σ weights = 1,
 * |0.25·u + 0.5 − y| of order 1) that is 2^-14.9 for p = 14, and 2^-19 to 2^-18 on the tests' batches. The class
 * sums g_j + Σ_i m_i the arbiter forms hide g_j better still (a sum of S/P uniforms).
 *
 * Precision: encoding and decoding values of 2^20 at scale 2^77 in double precision leave ~1e-16·|m| per slot,
 * and a class sum adds S/P of them: measured rms 6e-9 absolute for P = 1 (4096 slots per class), 2e-9 for
 * P = 16, 1e-9 for P = 64, largest of many draws 9e-9 (the test bounds it by 3e-14·|m|); the float64 sums
 * themselves are compensated (residueClassSums) and add an ulp of |g_j + Σ m| (≤ 2^-27 ≈ 7e-9). A larger mask
 * hides better and costs precision in proportion (2^30: ~1e-5).
 */
export const VERTICAL_MASK = 2 ** 20;

/** The next power of two ≥ n (n ≥ 1). */
export function nextPowerOfTwo(n: number): number {
  let P = 1;
  while (P < n) P *= 2;
  return P;
}

/**
 * The sums of `values` over residue classes modulo P = nextPowerOfTwo(count): out[j] = Σ_{i ≡ j (mod P)} values[i]
 * for j < count, each summed with Neumaier's compensation (error ~1 ulp of the result, independent of how many
 * values there are). This is what the arbiter returns for a masked gradient (the values are its S decrypted slots)
 * and what a party subtracts (the values are its S slot masks).
 */
export function residueClassSums(values: Float64Array, count: number): Float64Array {
  if (!Number.isInteger(count) || count < 1 || count > values.length) throw new RangeError(`count must be an integer from 1 to ${values.length}, got ${count}`);
  const P = nextPowerOfTwo(count);
  if (values.length % P !== 0) throw new RangeError(`${values.length} values do not split into residue classes modulo ${P}`);
  const out = new Float64Array(count);
  for (let j = 0; j < count; j++) {
    let sum = 0;
    let compensation = 0;
    for (let i = j; i < values.length; i += P) {
      const v = values[i]!;
      const t = sum + v;
      compensation += Math.abs(sum) >= Math.abs(v) ? sum - t + v : v - t + sum;
      sum = t;
    }
    out[j] = sum + compensation;
  }
  return out;
}

/**
 * How maskedGradient computes z = Σ_{k<P} diag_k ⊙ rot([[d]], k) for p columns, by baby-step giant-step with k =
 * baby·a + b: `baby` − 1 rotations of [[d]] by 1, then `giant` − 1 rotations by `baby` of the accumulator
 * (Horner's rule), all at level 1. Both use only the Galois keys for steps 1 and `baby`.
 */
export interface GradientPlan {
  /** P: the next power of two ≥ p; the arbiter sums slots over residue classes modulo P. */
  period: number;
  /** g: baby steps (rotations of [[d]] by 0, 1, …, g − 1). */
  baby: number;
  /** P/g: giant steps (the accumulator is rotated by g between them). */
  giant: number;
  /** (g − 1) + (P/g − 1). */
  rotations: number;
}

/**
 * The baby-step giant-step split of maskedGradient for `columns` feature columns (1 ≤ columns ≤ slotCount): the
 * fewest rotations (all on the same level, so all cost the same), and of equal counts the fewer baby steps (fewer
 * rotated copies of [[d]] held at once).
 */
export function verticalGradientPlan(columns: number, slotCount = 4096): GradientPlan {
  if (!Number.isInteger(columns) || columns < 1 || columns > slotCount) throw new RangeError(`a party has 1 to ${slotCount} feature columns, got ${columns}`);
  const period = nextPowerOfTwo(columns);
  let best: GradientPlan | undefined;
  for (let baby = 1; baby <= period; baby *= 2) {
    const giant = period / baby;
    const rotations = baby - 1 + giant - 1;
    if (!best || rotations < best.rotations) best = { period, baby, giant, rotations };
  }
  return best!;
}

/**
 * Every rotation step maskedGradient uses for 1 to slotCount columns: 1 (baby steps) and each plan's g (giant
 * steps), all powers of two; for 4096 slots {1, 2, 4, 8, 16, 32, 64}. generateArbiterKeys makes exactly these.
 */
export function verticalRotationSteps(slotCount = 4096): number[] {
  const steps = new Set<number>();
  for (let P = 1; P <= slotCount; P *= 2) {
    const plan = verticalGradientPlan(P, slotCount);
    if (plan.baby > 1) steps.add(1);
    if (plan.giant > 1) steps.add(plan.baby);
  }
  return [...steps].sort((a, b) => a - b);
}

export function paramsFingerprint(params: CkksParams): Uint8Array {
  const canonical = `ckks;N=${params.polyModulusDegree};q=${params.coeffModulusBits.join(',')};scale=${params.scaleBits}`;
  return sha256(canonical);
}

// node-seal is a CommonJS bundle whose typings describe its ES build; under Node's ESM loader the factory is the
// CommonJS export, reached as `default` of the namespace.
const SEAL = ((sealModule as unknown as { default?: unknown }).default ?? sealModule) as () => Promise<SEALLibrary>;

/** The slice of the WebAssembly API used here (TypeScript's ES lib does not declare it). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
}
interface WasmApi {
  instantiate: (...args: unknown[]) => Promise<unknown>;
  Memory: new (...args: never[]) => WasmMemory;
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

let sealPromise: Promise<SEALLibrary> | undefined;
let wasmMemory: WasmMemory | undefined;

/** Load the SEAL WASM module once per process, capturing its memory so the heap size can be observed. */
function loadSeal(): Promise<SEALLibrary> {
  if (!sealPromise) {
    const original = wasm.instantiate;
    wasm.instantiate = async (...args: unknown[]) => {
      const result = (await original.apply(wasm, args)) as { instance?: { exports: object }; exports?: object };
      const exports = result.instance?.exports ?? result.exports ?? {};
      for (const value of Object.values(exports)) if (value instanceof wasm.Memory) wasmMemory = value;
      return result;
    };
    sealPromise = SEAL().finally(() => {
      wasm.instantiate = original;
    });
  }
  return sealPromise!;
}

/** Current size of SEAL's WASM heap in bytes (it only grows; a leak shows as growth). */
export function wasmHeapBytes(): number {
  return wasmMemory?.buffer.byteLength ?? 0;
}

/**
 * SEAL and a CKKS context for the parameters (the caller deletes the context); refuses parameters that SEAL does
 * not rate 128-bit secure.
 */
export async function createSealContext(params: CkksParams): Promise<{ seal: SEALLibrary; context: Context }> {
  const seal = await loadSeal();
  const maxBits = seal.CoeffModulus.MaxBitCount(params.polyModulusDegree, seal.SecurityLevel.tc128);
  const totalBits = params.coeffModulusBits.reduce((a, b) => a + b, 0);
  if (totalBits > maxBits || params.coeffModulusBits.length < 2) {
    throw new FedcreditError(
      ErrorCode.CKKS_PARAMS,
      `CKKS parameters N=${params.polyModulusDegree}, modulus bits ${params.coeffModulusBits.join('+')}=${totalBits} are not 128-bit secure (at most ${maxBits} bits for this N, and at least two primes)`,
      'use the defaults (N=8192, [60,40,60], scale 2^40) or a larger poly_modulus_degree',
    );
  }
  const parms = seal.EncryptionParameters(seal.SchemeType.ckks);
  let modulus: ReturnType<SEALLibrary['CoeffModulus']['Create']> | undefined;
  try {
    try {
      modulus = seal.CoeffModulus.Create(params.polyModulusDegree, Int32Array.from(params.coeffModulusBits));
    } catch (err) {
      throw new FedcreditError(ErrorCode.CKKS_PARAMS, `SEAL cannot build the modulus chain ${params.coeffModulusBits.join(',')} for N=${params.polyModulusDegree}: ${err instanceof Error ? err.message : String(err)}`, 'use primes of at most 60 bits, or the default parameters');
    }
    parms.setPolyModulusDegree(params.polyModulusDegree);
    parms.setCoeffModulus(modulus);
    const context = seal.Context(parms, true, seal.SecurityLevel.tc128);
    if (!context.parametersSet()) {
      context.delete();
      throw new FedcreditError(ErrorCode.CKKS_PARAMS, 'SEAL rejected the CKKS parameters', 'use the default CKKS parameters');
    }
    return { seal, context };
  } finally {
    modulus?.delete();
    parms.delete();
  }
}

const SEAL_MAGIC = 0xa15e;
const SEAL_HEADER_BYTES = 16;

function invalidCiphertext(message: string): FedcreditError {
  return new FedcreditError(
    ErrorCode.CIPHERTEXT_INVALID,
    message,
    'the sender produced a malformed ciphertext or uses other CKKS parameters; check that every party runs the same fedcredit version and job',
  );
}

/**
 * Check SEAL's serialisation header before handing bytes to the WASM module: a truncated buffer otherwise makes
 * SEAL abort instead of throwing a clean error.
 */
function checkSerializedHeader(bytes: Uint8Array, what = 'ciphertext'): void {
  if (bytes.length < SEAL_HEADER_BYTES) throw invalidCiphertext(`${what} of ${bytes.length} bytes is shorter than SEAL's 16-byte header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint16(0, true) !== SEAL_MAGIC) throw invalidCiphertext(`${what} does not start with SEAL's magic number`);
  if (view.getUint8(2) !== SEAL_HEADER_BYTES) throw invalidCiphertext(`${what} header has an unexpected size`);
  // SEAL's header: magic (2 bytes), header size, version major, version minor, compression mode, reserved (2), size (8).
  if (view.getUint8(5) > 2) throw invalidCiphertext(`${what} header names unknown compression mode ${view.getUint8(5)}`);
  const declared = view.getBigUint64(8, true);
  if (declared !== BigInt(bytes.length)) throw invalidCiphertext(`${what} header declares ${declared} bytes but ${bytes.length} arrived (truncated or padded)`);
}

type ComprMode = SEALLibrary['ComprModeType']['none'];

/** How a ciphertext on the wire was produced: see CkksEngine.checkCiphertext. */
export type CiphertextForm = 'seeded' | 'canonical';

export interface CkksKeyPair {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

/** The arbiter's keys for vertical logistic regression: the public and Galois keys go to every party. */
export interface ArbiterKeys extends CkksKeyPair {
  /** Rotation keys for the steps maskedGradient uses, verticalRotationSteps(): 1, 2, 4, …, 64 (seeded serialisation). */
  galoisKeys: Uint8Array;
}

/** What a ciphertext must look like to be used: scale, and (when given) its level in the modulus chain. */
interface CiphertextExpectation {
  scale: number;
  /** 0 = the top data level (fresh ciphertexts), 1 = after one rescale, …; undefined = any level. */
  level?: number;
  /** How the ciphertext is described in the error, e.g. 'a fresh CKKS encryption'. */
  what: string;
  /** Appended to the error message. */
  why?: string;
}

/** One data level of the modulus chain: its parms_id and its primes. */
interface ChainLevel {
  parmsId: BigUint64Array;
  primes: BigUint64Array;
}

/** Galois keys kept loaded per engine (by SHA-256 of their bytes): a job has one arbiter, so two is plenty. */
const GALOIS_CACHE_ENTRIES = 2;

/** 2^40 for an exact power of two, else 2^77.00 (a scale after rescaling by a prime, or a foreign one). */
const scaleText = (scale: number): string => (Number.isInteger(Math.log2(scale)) ? `2^${Math.log2(scale)}` : `2^${Math.log2(scale).toFixed(2)}`);

/** Byte-wise equality without copying either array (Buffer.from of a typed array would copy it). */
const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

const sameIds = (a: BigUint64Array, b: BigUint64Array): boolean => a.length === b.length && a.every((v, i) => v === b[i]);

function requireFinite(values: Float64Array, what: string): void {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i]!)) throw new RangeError(`${what} holds a non-finite value (${values[i]}) at position ${i}`);
  }
}

export class CkksEngine {
  readonly slotCount: number;
  readonly fingerprint: Uint8Array;
  private readonly scale: number;
  /** The data levels, top (fresh ciphertexts) first. */
  private readonly chain: ChainLevel[];
  private readonly galoisCache = new Map<string, GaloisKeys>();
  /** SHA-256 (hex) of key byte arrays already seen (Galois, public, secret), so one array is hashed once. */
  private readonly keyDigests = new WeakMap<Uint8Array, string>();
  /** The last fore-gradient loaded or produced, by SHA-256 of its bytes (see foreGradientCipher). */
  private foreCache?: { digest: string; cipher: CipherText };
  private vEncoder?: ReturnType<SEALLibrary['CKKSEncoder']>;
  private vEvaluator?: ReturnType<SEALLibrary['Evaluator']>;
  /** The loaded public key and its Encryptor (a host's, for its partial scores): loading the key costs ~1 ms. */
  private readonly encryptors = new KeyedSealObject<ReturnType<SEALLibrary['Encryptor']>>();
  /** A public-key encryption of zero made ahead by prepareEncryption, for the key with this digest; used once. */
  private preparedZero?: { digest: string; cipher: CipherText };
  /** All-zero slots encoded at the top level and scale 2^scaleBits: what prepareEncryption encrypts. */
  private zeroPlain?: PlainText;
  /** A horizontal participant's loaded key pair and its symmetric Encryptor, kept for the job's every contribution. */
  private readonly symmetricEncryptors = new KeyedSealObject<ReturnType<SEALLibrary['Encryptor']>>();
  /** The arbiter's loaded secret key and Decryptor. */
  private readonly decryptors = new KeyedSealObject<ReturnType<SEALLibrary['Decryptor']>>();

  private constructor(
    private readonly seal: SEALLibrary,
    private readonly context: Context,
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

  blocksFor(length: number): number {
    return Math.max(1, Math.ceil(length / this.slotCount));
  }

  generateKeys(): CkksKeyPair {
    const keygen = this.seal.KeyGenerator(this.context);
    const secret = keygen.secretKey();
    const pub = keygen.createPublicKey();
    try {
      return { publicKey: pub.saveArray(this.seal.ComprModeType.zstd), secretKey: secret.saveArray(this.seal.ComprModeType.zstd) };
    } finally {
      pub.delete();
      secret.delete();
      keygen.delete();
    }
  }

  /**
   * Encrypt a vector into slot-full ciphertexts. With the secret key (every participant holds it) encryption is
   * symmetric and seeded, which halves the bytes on the wire; with only the public key it is public-key
   * encryption.
   */
  encryptVector(values: Float64Array, publicKey: Uint8Array, secretKey?: Uint8Array): Uint8Array[] {
    return this.encryptBlocks(values, publicKey, secretKey, this.seal.ComprModeType.zstd);
  }

  private encryptBlocks(values: Float64Array, publicKey: Uint8Array, secretKey: Uint8Array | undefined, compression: ComprMode): Uint8Array[] {
    const { encoder } = this.tools();
    const encryptor = secretKey
      ? this.symmetricEncryptors.get(`${this.keyDigest(publicKey)}|${this.keyDigest(secretKey)}`, () => this.symmetricEncryptor(publicKey, secretKey))
      : this.publicKeyEncryptor(publicKey);
    const blocks: Uint8Array[] = [];
    const slot = new Float64Array(this.slotCount);
    for (let b = 0; b < this.blocksFor(values.length); b++) {
      slot.fill(0);
      slot.set(values.subarray(b * this.slotCount, Math.min(values.length, (b + 1) * this.slotCount)));
      const plain = encoder.encode(slot, this.scale) as ReturnType<SEALLibrary['PlainText']>;
      try {
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

  private publicKeyEncryptor(publicKey: Uint8Array): ReturnType<SEALLibrary['Encryptor']> {
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

  /**
   * Decrypt ciphertexts made by encryptVector/sumVectors back into the first `length` values. With `form`
   * 'canonical' each block must first pass checkCiphertext's canonical test (on the same load).
   */
  decryptVector(blocks: Uint8Array[], length: number, secretKey: Uint8Array, form?: 'canonical'): Float64Array {
    if (blocks.length !== this.blocksFor(length)) {
      throw invalidCiphertext(`${blocks.length} ciphertexts cannot hold a vector of ${length} values (${this.blocksFor(length)} expected)`);
    }
    const { encoder } = this.tools();
    const decryptor = this.decryptors.get(this.keyDigest(secretKey), () => this.loaded(this.seal.SecretKey(), secretKey, (secret) => this.seal.Decryptor(this.context, secret)));
    const out = new Float64Array(length);
    blocks.forEach((bytes, b) => {
      const cipher = this.loadCiphertext(bytes);
      try {
        if (form === 'canonical') this.requireCanonical(cipher, bytes);
        const plain = decryptor.decrypt(cipher) as ReturnType<SEALLibrary['PlainText']>;
        try {
          const decoded = encoder.decode(plain);
          out.set(decoded.subarray(0, Math.min(this.slotCount, length - b * this.slotCount)), b * this.slotCount);
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
   * Homomorphic sum of several encrypted vectors of equal shape: what the coordinator computes without any key.
   * Each input is validated (header, parameters, scale) before use.
   */
  sumVectors(vectors: Uint8Array[][]): Uint8Array[] {
    if (vectors.length === 0) throw new RangeError('sumVectors needs at least one vector');
    const blocks = vectors[0]!.length;
    if (vectors.some((v) => v.length !== blocks)) throw invalidCiphertext('encrypted vectors to add have different numbers of ciphertexts');
    const evaluator = this.seal.Evaluator(this.context);
    try {
      const out: Uint8Array[] = [];
      for (let b = 0; b < blocks; b++) {
        const acc = this.loadCiphertext(vectors[0]![b]!);
        try {
          for (let v = 1; v < vectors.length; v++) {
            const next = this.loadCiphertext(vectors[v]![b]!);
            try {
              evaluator.add(acc, next, acc);
            } finally {
              next.delete();
            }
          }
          out.push(acc.saveArray(this.seal.ComprModeType.zstd));
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
    const cipher = this.loadCiphertext(bytes);
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
    if (cipher.saveArray(this.seal.ComprModeType.none).length < bytes.length * 1.5) {
      throw invalidCiphertext('ciphertext is not a seeded symmetric encryption as contributions must be (truncated, altered, or public-key encrypted)');
    }
  }

  /**
   * A homomorphic sum that takes contributions as they arrive (the coordinator's side of a secure sum): `add` loads
   * each block once, checks it as checkCiphertext 'seeded' does and, since everything is added at the top level,
   * that it is at level 0, then adds it. Adding ciphertexts is exact modular arithmetic, so `result` is the same
   * bytes as sumVectors of the same vectors in any order. The running sum lives on the WASM heap until dispose().
   */
  runningSum(blockCount: number): RunningSum {
    const { evaluator } = this.tools();
    const fresh: CiphertextExpectation = { scale: this.scale, level: 0, what: 'a fresh CKKS encryption' };
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
        const cipher = this.loadCiphertext(blocks[b]!, fresh);
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
            const cipher = this.loadCiphertext(bytes, fresh);
            try {
              this.requireSeeded(cipher, bytes);
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
          return sum.saveArray(this.seal.ComprModeType.zstd);
        }),
      dispose: () => {
        for (const sum of acc) sum?.delete();
        acc.fill(undefined);
        vectors = 0;
      },
    };
  }

  /** The 'canonical' test of checkCiphertext on a loaded ciphertext: SEAL's zstd serialisation of it is `bytes`. */
  private requireCanonical(cipher: CipherText, bytes: Uint8Array): void {
    if (!sameBytes(cipher.saveArray(this.seal.ComprModeType.zstd), bytes)) {
      throw invalidCiphertext('ciphertext does not re-serialise to the bytes received (truncated or altered)');
    }
  }

  /**
   * Deserialise and check one ciphertext: size 2 (never relinearised), the expected scale and, when given, the
   * expected level. Without `expected` it must be a fresh encryption at the job's scale 2^scaleBits (any level),
   * which is what the horizontal secure sum exchanges.
   */
  private loadCiphertext(
    bytes: Uint8Array,
    expected: CiphertextExpectation = { scale: this.scale, what: 'a fresh CKKS encryption' },
  ): CipherText {
    checkSerializedHeader(bytes);
    const cipher = this.seal.CipherText();
    try {
      cipher.loadArray(this.context, bytes);
    } catch (err) {
      cipher.delete();
      throw invalidCiphertext(`ciphertext does not deserialise under the job's CKKS parameters: ${err instanceof Error ? err.message : String(err)}`);
    }
    const level = expected.level === undefined ? undefined : this.levelOf(cipher);
    if (
      cipher.size !== 2 ||
      Math.abs(Math.log2(cipher.scale) - Math.log2(expected.scale)) > 1e-9 ||
      (expected.level !== undefined && level !== expected.level)
    ) {
      const detail = `size ${cipher.size}, scale ${scaleText(cipher.scale)}${level === undefined ? '' : `, level ${level < 0 ? 'unknown' : level}`}`;
      const where = expected.level === undefined ? '' : ` at level ${expected.level}`;
      cipher.delete();
      throw invalidCiphertext(`ciphertext is not ${expected.what} at scale ${scaleText(expected.scale)}${where} (${detail})${expected.why ?? ''}`);
    }
    return cipher;
  }

  /**
   * loadCiphertext, and also require SEAL's own serialisation of it (see checkCiphertext 'canonical'): catches a
   * truncated ciphertext whose header was rewritten to match.
   */
  private loadCanonical(bytes: Uint8Array, expected: CiphertextExpectation): CipherText {
    const cipher = this.loadCiphertext(bytes, expected);
    if (!sameBytes(cipher.saveArray(this.comprModeOf(bytes)), bytes)) {
      cipher.delete();
      throw invalidCiphertext(`ciphertext (${expected.what}) does not re-serialise to the bytes received (truncated, altered, or seeded)`);
    }
    return cipher;
  }

  /** The compression mode a serialisation declares in its header (checked by checkSerializedHeader). */
  private comprModeOf(bytes: Uint8Array): ComprMode {
    const modes = [this.seal.ComprModeType.none, this.seal.ComprModeType.zlib, this.seal.ComprModeType.zstd];
    return modes[bytes[5]!]!;
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

  dispose(): void {
    for (const keys of this.galoisCache.values()) keys.delete();
    this.galoisCache.clear();
    this.foreCache?.cipher.delete();
    this.foreCache = undefined;
    this.vEncoder?.delete();
    this.vEncoder = undefined;
    this.vEvaluator?.delete();
    this.vEvaluator = undefined;
    this.decryptors.drop();
    this.encryptors.drop();
    this.symmetricEncryptors.drop();
    this.preparedZero?.cipher.delete();
    this.preparedZero = undefined;
    this.zeroPlain?.delete();
    this.zeroPlain = undefined;
    this.context.delete();
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Vertical logistic regression
  //
  // The arbiter (the coordinator) holds the secret key; hosts and the guest hold its public and Galois keys. Per
  // mini-batch of B ≤ slotCount records (record i in slot i, slots ≥ B zero):
  //   host k:   [[0.25·u_k]]                                   encryptSlots                 scale 2^40, level 0
  //   guest:    [[d]] = w ⊙ Σ_k [[0.25·u_k]] + o, rescaled      foreGradient                 scale ≈ 2^50, level 1
  //   party:    [[z + m]], slot classes mod P sum to g_j         maskedGradient               scale ≈ 2^77, level 1
  //   arbiter:  Σ_{i≡j (mod P)} (z_i + m_i) for j < count        decryptGradient
  // with w the per-record weights and o = w ⊙ (0.25·u_g + 0.5 − y) the guest's plaintext offset. The ciphertexts
  // of these steps are serialised uncompressed: zstd saves 10 to 16% of the bytes of random residues and costs
  // 1 to 2 ms per ciphertext on each side, several times per batch.
  // ---------------------------------------------------------------------------------------------------------------

  /**
   * The exact scales of the vertical pipeline under this engine's parameters, or FC_CKKS_PARAMS if they leave too
   * little room: at least two data levels, 33 bits above the fore-gradient's scale 2^90 on the top level, and 33
   * bits above the products' scale (2^50 · 2^27) on level 1.
   */
  private verticalScales(): { partial: number; weight: number; fore: number; diagonal: number; gradient: number } {
    const bits = this.params.coeffModulusBits;
    const dataBits = bits.slice(0, -1);
    const topBits = dataBits.reduce((a, b) => a + b, 0);
    const lastBits = dataBits[dataBits.length - 1]!;
    // w is encoded so that the product w · [[0.25·u]], rescaled by the last data prime, lands at 2^50.
    const weightBits = VERTICAL_FORE_SCALE_BITS + lastBits - this.params.scaleBits;
    const foreTopBits = this.params.scaleBits + weightBits;
    const productBits = VERTICAL_FORE_SCALE_BITS + VERTICAL_DIAGONAL_SCALE_BITS;
    if (dataBits.length < 2 || topBits - foreTopBits < VERTICAL_VALUE_BITS + 1 || topBits - lastBits - productBits < VERTICAL_VALUE_BITS + 1) {
      throw new FedcreditError(
        ErrorCode.CKKS_PARAMS,
        `CKKS parameters ${bits.join(',')} with scale 2^${this.params.scaleBits} cannot run vertical logistic regression (the fore-gradient at 2^${foreTopBits} needs ${foreTopBits}+${VERTICAL_VALUE_BITS + 1} bits at the top level; rescaled to 2^${VERTICAL_FORE_SCALE_BITS}, times diagonals at 2^${VERTICAL_DIAGONAL_SCALE_BITS}, ${productBits}+${VERTICAL_VALUE_BITS + 1} bits at the second level)`,
        'use VERTICAL_CKKS_PARAMS (N=8192, [60,50,40,60], scale 2^40)',
      );
    }
    const last = Number(this.chain[0]!.primes[this.chain[0]!.primes.length - 1]!);
    // What SEAL's rescale computes: the product scale divided by the dropped prime (≈ 2^50, not exactly).
    const fore = 2 ** foreTopBits / last;
    return { partial: this.scale, weight: 2 ** weightBits, fore, diagonal: 2 ** VERTICAL_DIAGONAL_SCALE_BITS, gradient: fore * 2 ** VERTICAL_DIAGONAL_SCALE_BITS };
  }

  /**
   * The arbiter's keys: a key pair and Galois keys for exactly the rotations maskedGradient uses for any number of
   * columns (verticalRotationSteps(): 1, 2, 4, …, 64 for 4096 slots). Public and Galois keys are in SEAL's seeded
   * form.
   */
  generateArbiterKeys(): ArbiterKeys {
    this.verticalScales();
    const keygen = this.seal.KeyGenerator(this.context);
    const secret = keygen.secretKey();
    const pub = keygen.createPublicKeySerializable();
    let galois: Serializable | undefined;
    try {
      galois = keygen.createGaloisKeysSerializable(Int32Array.from(verticalRotationSteps(this.slotCount)));
      return {
        publicKey: pub.saveArray(this.seal.ComprModeType.zstd),
        secretKey: secret.saveArray(this.seal.ComprModeType.zstd),
        galoisKeys: galois.saveArray(this.seal.ComprModeType.zstd),
      };
    } finally {
      galois?.delete();
      pub.delete();
      secret.delete();
      keygen.delete();
    }
  }

  /** SEAL's Galois element for a left rotation by `step` slots: 3^step mod 2N. */
  private galoisElement(step: number): number {
    const m = 2 * this.params.polyModulusDegree;
    let elt = 1;
    for (let i = 0; i < step; i++) elt = (elt * 3) % m;
    return elt;
  }

  /** SHA-256 (hex) of key bytes, remembered per array: keys are treated as immutable once passed. */
  private keyDigest(bytes: Uint8Array): string {
    let key = this.keyDigests.get(bytes);
    if (key === undefined) {
      key = sha256Hex(bytes);
      this.keyDigests.set(bytes, key);
    }
    return key;
  }

  /**
   * The loaded Galois keys for these bytes, deserialised once per engine (cached by SHA-256), and checked to hold
   * the rotations `plan` uses (1 for its baby steps, g for its giant steps).
   */
  private galoisKeysFor(bytes: Uint8Array, plan: GradientPlan): GaloisKeys {
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
    const needed = new Set<number>();
    if (plan.baby > 1) needed.add(1);
    if (plan.giant > 1) needed.add(plan.baby);
    const missing = [...needed].filter((step) => !keys.hasKey(this.galoisElement(step)));
    if (missing.length > 0) throw invalidCiphertext(`Galois keys lack the rotation keys for steps ${missing.join(', ')}`);
    return keys;
  }

  /** The engine's encoder and evaluator, made once (deleted by dispose). */
  private tools(): { encoder: ReturnType<SEALLibrary['CKKSEncoder']>; evaluator: ReturnType<SEALLibrary['Evaluator']> } {
    this.vEncoder ??= this.seal.CKKSEncoder(this.context);
    this.vEvaluator ??= this.seal.Evaluator(this.context);
    return { encoder: this.vEncoder, evaluator: this.vEvaluator };
  }

  /**
   * The fore-gradient behind these bytes, loaded and checked (scale ≈ 2^50, level 1, canonical serialisation), or
   * the one kept from the last call with the same bytes: the guest's own foreGradient result, or [[d]] used for
   * several gradients. The engine owns it; callers must not delete or modify it.
   */
  private foreGradientCipher(bytes: Uint8Array, scale: number): CipherText {
    const digest = sha256Hex(bytes);
    if (this.foreCache?.digest === digest) return this.foreCache.cipher;
    const cipher = this.loadCanonical(bytes, { scale, level: 1, what: 'an encrypted fore-gradient' });
    this.keepForeGradient(digest, cipher);
    return cipher;
  }

  private keepForeGradient(digest: string, cipher: CipherText): void {
    this.foreCache?.cipher.delete();
    this.foreCache = { digest, cipher };
  }

  /**
   * Public-key encryption of up to slotCount values (zero padded) at scale 2^scaleBits, top level: a host's
   * partial score vector 0.25·u_k.
   */
  encryptSlots(values: Float64Array, publicKey: Uint8Array): Uint8Array {
    if (values.length > this.slotCount) throw new RangeError(`encryptSlots takes at most ${this.slotCount} values, got ${values.length}`);
    requireFinite(values, 'the vector to encrypt');
    const digest = this.keyDigest(publicKey);
    const zero = this.preparedZero?.digest === digest ? this.preparedZero.cipher : undefined;
    if (!zero) return this.encryptBlocks(values, publicKey, undefined, this.seal.ComprModeType.none)[0]!;
    this.preparedZero = undefined;
    const { encoder, evaluator } = this.tools();
    let plain: PlainText | undefined;
    try {
      plain = this.encode(encoder, values, this.scale);
      evaluator.addPlain(zero, plain, zero);
      return zero.saveArray(this.seal.ComprModeType.none);
    } finally {
      plain?.delete();
      zero.delete();
    }
  }

  /**
   * Do now the costly part of the next encryptSlots under `publicKey` (~6 of its ~7 ms at N = 8192): a public-key
   * encryption of zero, to which encryptSlots then adds the encoded values. That is what SEAL's encrypt does in one
   * call (encrypt zero, add the plaintext), so the ciphertext is the same fresh encryption. A host runs this while
   * it waits for [[d]], which takes the encryption off the critical path of the next batch. The encryption of zero
   * serves one encryptSlots and is deleted by it: two ciphertexts sharing one would give away the difference of
   * their values.
   */
  prepareEncryption(publicKey: Uint8Array): void {
    const digest = this.keyDigest(publicKey);
    if (this.preparedZero?.digest === digest) return;
    this.preparedZero?.cipher.delete();
    this.preparedZero = undefined;
    const encryptor = this.publicKeyEncryptor(publicKey);
    this.zeroPlain ??= this.encode(this.tools().encoder, new Float64Array(this.slotCount), this.scale);
    const cipher = this.seal.CipherText();
    try {
      encryptor.encrypt(this.zeroPlain, cipher);
    } catch (err) {
      cipher.delete();
      throw err;
    }
    this.preparedZero = { digest, cipher };
  }

  /**
   * The guest's encrypted fore-gradient [[d]] = w ⊙ Σ_k [[0.25·u_k]] + o, formed at scale 2^90 on the top level and
   * rescaled once: ≈ 2^50 at level 1. Each partial must be a public-key encryption (SEAL's canonical
   * serialisation) at scale 2^40 on the top level. `weights` (w, encoded at 2^50) and `offset` (o = w ⊙ (0.25·u_g +
   * 0.5 − y), encoded at 2^90) have one value per record of the batch. The result stays loaded, so the guest's own
   * maskedGradient on these bytes does not deserialise them again.
   */
  foreGradient(partials: Uint8Array[], weights: Float64Array, offset: Float64Array): Uint8Array {
    const scales = this.verticalScales();
    if (partials.length === 0) throw new RangeError('foreGradient needs at least one host partial');
    if (weights.length > this.slotCount || weights.length === 0) throw new RangeError(`foreGradient takes 1 to ${this.slotCount} weights, got ${weights.length}`);
    if (offset.length !== weights.length) throw new RangeError(`offset has ${offset.length} values but weights have ${weights.length}`);
    requireFinite(weights, 'weights');
    requireFinite(offset, 'offset');
    if (weights.every((w) => w === 0)) throw new RangeError('every weight is zero');
    const expected: CiphertextExpectation = { scale: scales.partial, level: 0, what: 'a fresh public-key encryption of a partial score' };
    const { encoder, evaluator } = this.tools();
    const acc: CipherText | undefined = this.loadCanonical(partials[0]!, expected);
    let weightPlain: PlainText | undefined;
    let offsetPlain: PlainText | undefined;
    let rescaled: CipherText | undefined = this.seal.CipherText();
    try {
      for (let k = 1; k < partials.length; k++) {
        const next = this.loadCanonical(partials[k]!, expected);
        try {
          evaluator.add(acc, next, acc);
        } finally {
          next.delete();
        }
      }
      weightPlain = this.encode(encoder, weights, scales.weight);
      evaluator.multiplyPlain(acc, weightPlain, acc);
      offsetPlain = this.encode(encoder, offset, acc.scale);
      evaluator.addPlain(acc, offsetPlain, acc);
      evaluator.rescaleToNext(acc, rescaled);
      const bytes = rescaled.saveArray(this.seal.ComprModeType.none);
      this.keepForeGradient(sha256Hex(bytes), rescaled);
      rescaled = undefined;
      return bytes;
    } finally {
      offsetPlain?.delete();
      weightPlain?.delete();
      rescaled?.delete();
      acc.delete();
    }
  }

  /**
   * A batch's feature columns (p columns of B values each), checked, ready to have their diagonals encoded ahead
   * of [[d]] (they depend only on the columns) and, once keep() is called, kept for later gradients of the same
   * batch. See maskedGradient for the layout.
   */
  batchColumns(columns: Float64Array[]): BatchColumns {
    const scales = this.verticalScales();
    const S = this.slotCount;
    const p = columns.length;
    if (p === 0 || p > S) throw new RangeError(`maskedGradient takes 1 to ${S} feature columns, got ${p}`);
    const B = columns[0]!.length;
    if (B === 0 || B > S) throw new RangeError(`a batch holds 1 to ${S} records, got ${B}`);
    columns.forEach((column, j) => {
      if (column.length !== B) throw new RangeError(`feature column ${j} has ${column.length} values, column 0 has ${B}`);
      requireFinite(column, `feature column ${j}`);
    });
    // A plaintext at level 1 holds N = 2·slots coefficients for each of that level's primes, 8 bytes each.
    const plainBytes = 2 * S * this.chain[1]!.primes.length * 8;
    return new DiagonalColumns(columns, verticalGradientPlan(p, S), scales.diagonal, this.levelOneEncoder(), S, plainBytes);
  }

  /**
   * A party's plaintext side of one masked gradient: its batch's columns (batchColumns) and its per-slot mask,
   * checked; the mask and the diagonals not yet encoded can be encoded ahead of [[d]] (GradientInput.encodeNext).
   * Takes plain columns for a one-off gradient. See maskedGradient for the arguments.
   */
  gradientInput(columns: BatchColumns | Float64Array[], mask: Float64Array): GradientInput {
    const batch = Array.isArray(columns) ? this.batchColumns(columns) : columns;
    if (!(batch instanceof DiagonalColumns)) throw new RangeError('gradientInput takes what batchColumns returned');
    const S = this.slotCount;
    try {
      if (mask.length !== S) throw new RangeError(`the mask needs one value per slot (${S}), got ${mask.length}`);
      requireFinite(mask, 'the mask');
      let maskMax = 0;
      for (const m of mask) maskMax = Math.max(maskMax, Math.abs(m));
      if (maskMax > VERTICAL_MAX_MASK) throw new RangeError(`mask values must be at most 2^30 in magnitude, got ${maskMax}`);
    } catch (err) {
      if (batch !== columns) batch.dispose();
      throw err;
    }
    return new DiagonalInput(batch, mask, this.verticalScales().gradient, this.levelOneEncoder());
  }

  /** Encodes at the top level, then reduces to level 1 where [[d]] and the products live. */
  private levelOneEncoder(): (values: Float64Array, scale: number) => PlainText {
    const { encoder, evaluator } = this.tools();
    return (values, scale) => {
      const plain = this.encode(encoder, values, scale);
      evaluator.plainModSwitchToNext(plain, plain);
      return plain;
    };
  }

  /**
   * A party's encrypted, masked gradient slots [[z + m]] for its p feature columns (each of length B, the batch
   * size), with P the next power of two ≥ p:
   *   z = Σ_{k<P} diag_k ⊙ rot([[d]], k),   diag_k[i] = X[(i+k) mod S][i mod P]   (0 for rows ≥ B, columns ≥ p),
   * so that the slots of each residue class modulo P sum to the gradient: Σ_{i ≡ j (mod P)} z_i = g_j =
   * Σ_r X[r][j]·d[r] (record r meets column j in exactly one slot i ≡ j, i = r − k). Nothing sums the classes
   * here: the arbiter does it in the clear after decrypting (decryptGradient), which saves the log2(S/P)
   * rotate-and-add steps and leaves no copies of g_j in the ciphertext.
   *
   * The sum runs baby-step giant-step (verticalGradientPlan): with k = g·a + b,
   *   z = Σ_{a<P/g} rot(inner_a, g·a),   inner_a = Σ_{b<g} rot(diag_{g·a+b}, −g·a) ⊙ rot([[d]], b),
   * the plaintext diagonals rotated for free before encoding. rot([[d]], b) for b < g costs g − 1 rotations by 1,
   * and the sum over a runs by Horner's rule, acc ← rot(acc, g) + inner_a: P/g − 1 rotations by g, all at level 1
   * (products at ≈ 2^50 · 2^27 = 2^77, no rescale). For p = 14 (P = 16, g = 4) that is 6 rotations.
   *
   * Then `mask` is added: exactly slotCount values, one independent mask per slot (VERTICAL_MASK: uniform in
   * ±2^20; at most VERTICAL_MAX_MASK), for the arbiter decrypts every slot. The party subtracts the class sums of
   * its mask (residueClassSums) from what the arbiter returns.
   *
   * The result is at level 1, scale ≈ 2^77: the only kind of ciphertext decryptGradient accepts. Values must
   * satisfy |z_i| < 2^30, which holds for any realistic features and weights; the party's error is about 1e-7
   * relative to max|g| plus the mask's rounding (see VERTICAL_MASK).
   */
  maskedGradient(foreGradient: Uint8Array, columns: Float64Array[], mask: Float64Array, galoisKeys: Uint8Array): Uint8Array {
    const input = this.gradientInput(columns, mask);
    try {
      return this.maskedGradientOf(foreGradient, input, galoisKeys);
    } finally {
      input.dispose();
    }
  }

  /** maskedGradient from a gradientInput (encoded ahead or not); the input can be disposed afterwards. */
  maskedGradientOf(foreGradient: Uint8Array, gradientInput: GradientInput, galoisKeys: Uint8Array): Uint8Array {
    return runSteps(this.maskedGradientSteps(foreGradient, gradientInput, galoisKeys));
  }

  /**
   * maskedGradientOf in steps of one rotation or one product (at most ~2 ms each), so that a party can let its
   * event loop run between them: a party that has just sent a ciphertext must answer the HTTP/2 flow-control
   * updates for it while it computes. Run it to the end (its `finally` frees the SEAL objects it holds).
   */
  *maskedGradientSteps(foreGradient: Uint8Array, gradientInput: GradientInput, galoisKeys: Uint8Array): Generator<void, Uint8Array, void> {
    const scales = this.verticalScales();
    if (!(gradientInput instanceof DiagonalInput)) throw new RangeError('maskedGradientOf takes what gradientInput returned');
    const input = gradientInput;
    input.start();
    const { baby: g, giant: A } = input.plan;
    const gk = this.galoisKeysFor(galoisKeys, input.plan);
    const { evaluator } = this.tools();
    // babies[b] = rot([[d]], b). babies[0] is a copy of the cached fore-gradient: another call between two steps
    // may replace (and delete) the cached one.
    const babies: CipherText[] = [this.foreGradientCipher(foreGradient, scales.fore).clone()];
    let inner = this.seal.CipherText();
    const product = this.seal.CipherText();
    let acc = this.seal.CipherText();
    let spare = this.seal.CipherText();
    let plain: PlainText | undefined;
    try {
      for (let b = 1; b < g; b++) {
        yield;
        const rotated = this.seal.CipherText();
        babies.push(rotated);
        evaluator.rotateVector(babies[b - 1]!, 1, gk, rotated);
      }
      let accSet = false;
      for (let a = A - 1; a >= 0; a--) {
        let innerSet = false;
        for (let b = 0; b < g; b++) {
          yield;
          const k = g * a + b;
          const diagonal = input.columns.get(k);
          // A zero diagonal contributes nothing; SEAL refuses a product with a zero plaintext (transparent result).
          if (!diagonal) continue;
          if (!innerSet) {
            evaluator.multiplyPlain(babies[b]!, diagonal, inner);
            innerSet = true;
          } else {
            evaluator.multiplyPlain(babies[b]!, diagonal, product);
            evaluator.add(inner, product, inner);
          }
          input.columns.release(k);
        }
        // Horner: acc ← rot(acc, g) + inner_a.
        if (accSet) {
          yield;
          evaluator.rotateVector(acc, g, gk, spare);
          [acc, spare] = [spare, acc];
        }
        if (innerSet) {
          if (accSet) {
            evaluator.add(acc, inner, acc);
          } else {
            [acc, inner] = [inner, acc];
            accSet = true;
          }
        }
      }
      if (!accSet) {
        // Every feature value of the batch is zero, so g = 0; there is no nonzero diagonal to multiply by. The
        // constant polynomial 1 (the value 2^-27 in every slot) gives a valid product, off by 2^-27·Σ_i d_i.
        plain = this.levelOneEncoder()(new Float64Array(this.slotCount).fill(1 / scales.diagonal), scales.diagonal);
        evaluator.multiplyPlain(babies[0]!, plain, acc);
        plain.delete();
        plain = undefined;
      }
      evaluator.addPlain(acc, input.maskPlain(), acc);
      return acc.saveArray(this.seal.ComprModeType.none);
    } finally {
      plain?.delete();
      for (const cipher of babies) cipher.delete();
      spare.delete();
      acc.delete();
      product.delete();
      inner.delete();
    }
  }

  /** Free the cached secret key and Decryptor now (a key used once, e.g. the binning step's, must not linger in WASM memory). */
  forgetSecretKey(): void {
    this.decryptors.drop();
  }

  /**
   * The arbiter's view of a masked gradient: all slotCount decrypted slots z_i + m_i. Refuses, with
   * FC_CIPHERTEXT_INVALID, every ciphertext that is not at level 1 and scale ≈ 2^77 (what maskedGradient
   * produces), so a fresh per-record ciphertext such as [[0.25·u_k]] or [[d]] is never decrypted.
   */
  decryptGradientSlots(masked: Uint8Array, secretKey: Uint8Array): Float64Array {
    const scales = this.verticalScales();
    const cipher = this.loadCanonical(masked, {
      scale: scales.gradient,
      level: 1,
      what: 'a masked gradient',
      why: '; the arbiter decrypts only masked gradients, never a per-record ciphertext such as [[u]] or [[d]]',
    });
    const { encoder } = this.tools();
    let plain: PlainText | undefined;
    try {
      plain = this.decryptors.get(this.keyDigest(secretKey), () => this.loaded(this.seal.SecretKey(), secretKey, (secret) => this.seal.Decryptor(this.context, secret))).decrypt(cipher) as PlainText;
      return encoder.decode(plain);
    } finally {
      plain?.delete();
      cipher.delete();
    }
  }

  /**
   * The arbiter's side: decrypt a masked gradient of `count` columns (1 ≤ count ≤ slotCount) and return, for each
   * column j < count, the sum of the decrypted slots i ≡ j modulo P = the next power of two ≥ count: g_j plus the
   * sum of the party's masks on those slots. Only ciphertexts decryptGradientSlots accepts are decrypted.
   *
   * `count` must be the party's own number of columns: class sums modulo a larger P would be finer sums of z, up
   * to every z_i itself for count = slotCount (see docs/protocol-vertical.md, "What the arbiter decrypts").
   */
  decryptGradient(masked: Uint8Array, count: number, secretKey: Uint8Array): Float64Array {
    this.verticalScales();
    if (!Number.isInteger(count) || count < 1 || count > this.slotCount) throw new RangeError(`count must be an integer from 1 to ${this.slotCount}, got ${count}`);
    return residueClassSums(this.decryptGradientSlots(masked, secretKey), count);
  }

  /**
   * The homomorphic sum of masked gradients (maskedGradient results, level 1): a host's per-bin label sums over
   * several 4,096-record chunks of the training rows, added before anyone decrypts, so no per-chunk sum is seen.
   */
  sumMaskedGradients(list: Uint8Array[]): Uint8Array {
    const scales = this.verticalScales();
    if (list.length === 0) throw new RangeError('sumMaskedGradients needs at least one ciphertext');
    const expected: CiphertextExpectation = { scale: scales.gradient, level: 1, what: 'a masked gradient' };
    const { evaluator } = this.tools();
    const acc = this.loadCanonical(list[0]!, expected);
    try {
      for (const bytes of list.slice(1)) {
        const next = this.loadCanonical(bytes, expected);
        try {
          evaluator.add(acc, next, acc);
        } finally {
          next.delete();
        }
      }
      return acc.saveArray(this.seal.ComprModeType.none);
    } finally {
      acc.delete();
    }
  }

  /** Encode up to slotCount values (zero padded) at `scale` on the top level. */
  private encode(encoder: ReturnType<SEALLibrary['CKKSEncoder']>, values: Float64Array, scale: number): PlainText {
    let slots = values;
    if (values.length !== this.slotCount) {
      slots = new Float64Array(this.slotCount);
      slots.set(values);
    }
    return encoder.encode(slots, scale) as PlainText;
  }
}

/** Run a computation in steps (such as CkksEngine.maskedGradientSteps) to its end, without pausing. */
export function runSteps<T>(steps: Generator<void, T, void>): T {
  for (;;) {
    const next = steps.next();
    if (next.done) return next.value;
  }
}

/**
 * Bytes of encoded diagonals a GradientInput keeps ahead of [[d]]: a plaintext at level 1 is N × 2 primes × 8
 * bytes (128 KiB at N = 8192), so 8 MiB holds 64 of them, every diagonal for up to 63 columns (P = 64) plus the
 * mask. Past that, maskedGradient encodes the rest when it needs them, one at a time.
 */
export const GRADIENT_INPUT_BUDGET_BYTES = 8 * 2 ** 20;

/**
 * A batch's feature columns, checked, with their generalized diagonals (CkksEngine.batchColumns), encoded ahead
 * through a GradientInput: all of them once keep() was called, else within GRADIENT_INPUT_BUDGET_BYTES. Kept
 * columns hold every diagonal they encoded until dispose(), so that the same batch in a later epoch encodes
 * nothing; columns not kept free each diagonal once a product has used it. They own SEAL objects on the WASM heap
 * until dispose().
 */
export interface BatchColumns {
  /** Bytes on the WASM heap that keeping every diagonal takes (an upper bound: all-zero diagonals take none). */
  readonly keptBytes: number;
  readonly kept: boolean;
  keep(): void;
  dispose(): void;
}

/**
 * One masked gradient's plaintext side (CkksEngine.gradientInput): a batch's columns and a mask. encodeNext encodes
 * the mask, then the columns' diagonals ahead of [[d]]. dispose() frees the mask, and the columns unless they
 * are kept.
 */
export interface GradientInput {
  readonly plan: GradientPlan;
  encodeNext(): boolean;
  dispose(): void;
}

class DiagonalColumns implements BatchColumns {
  /** Encoded diagonals by k = g·a + b; null for a diagonal that is all zero. */
  private readonly plains = new Map<number, PlainText | null>();
  /** The next diagonal encodeNext looks at, in maskedGradient's order (a from P/g − 1 down, b up). */
  private cursor = 0;
  private readonly maxAhead: number;
  private disposed = false;
  kept = false;
  readonly keptBytes: number;

  constructor(
    private readonly columns: Float64Array[],
    readonly plan: GradientPlan,
    private readonly scale: number,
    private readonly encodeAtLevelOne: (values: Float64Array, scale: number) => PlainText,
    readonly slots: number,
    plainBytes: number,
  ) {
    // One plaintext of the budget is the mask's.
    this.maxAhead = Math.max(0, Math.floor(GRADIENT_INPUT_BUDGET_BYTES / plainBytes) - 1);
    this.keptBytes = plan.period * plainBytes;
  }

  keep(): void {
    this.kept = true;
  }

  private orderAt(i: number): number {
    const { baby: g, giant: A } = this.plan;
    return g * (A - 1 - Math.floor(i / g)) + (i % g);
  }

  encodeNext(): boolean {
    if (this.disposed) return false;
    const limit = this.kept ? this.plan.period : Math.min(this.plan.period, this.maxAhead);
    while (this.cursor < limit) {
      const k = this.orderAt(this.cursor++);
      if (this.plains.has(k)) continue;
      this.plains.set(k, this.encodeDiagonal(k));
      break;
    }
    return this.cursor < limit;
  }

  /** Diagonal k, encoded ahead or now; undefined when it is all zero. Hand it back with release(k). */
  get(k: number): PlainText | undefined {
    if (this.disposed) throw new RangeError('these batch columns were disposed');
    let plain = this.plains.get(k);
    if (plain === undefined) {
      plain = this.encodeDiagonal(k);
      this.plains.set(k, plain);
    }
    return plain ?? undefined;
  }

  /** A product is done with diagonal k: freed now unless the columns are kept. */
  release(k: number): void {
    if (this.kept) return;
    this.plains.get(k)?.delete();
    this.plains.delete(k);
  }

  /** rot(diag_k, −g·a) for k = g·a + b: slot i holds X[(i + b) mod S][(i − g·a) mod P], i.e. row r sits in slot (r − b) mod S with column (r − k) mod P. */
  private encodeDiagonal(k: number): PlainText | null {
    const S = this.slots;
    const P = this.plan.period;
    const b = k % this.plan.baby;
    const p = this.columns.length;
    const B = this.columns[0]!.length;
    const diagonal = new Float64Array(S);
    let nonzero = false;
    for (let r = 0; r < B; r++) {
      const column = (r - k) & (P - 1);
      if (column < p) {
        const x = this.columns[column]![r]!;
        if (x !== 0) {
          diagonal[r >= b ? r - b : r - b + S] = x;
          nonzero = true;
        }
      }
    }
    return nonzero ? this.encodeAtLevelOne(diagonal, this.scale) : null;
  }

  dispose(): void {
    this.disposed = true;
    for (const plain of this.plains.values()) plain?.delete();
    this.plains.clear();
  }
}

class DiagonalInput implements GradientInput {
  private mask?: PlainText;
  private started = false;
  private disposed = false;

  constructor(
    readonly columns: DiagonalColumns,
    private readonly maskValues: Float64Array,
    private readonly scale: number,
    private readonly encodeAtLevelOne: (values: Float64Array, scale: number) => PlainText,
  ) {}

  get plan(): GradientPlan {
    return this.columns.plan;
  }

  encodeNext(): boolean {
    if (this.disposed || this.started) return false;
    if (!this.mask) {
      this.maskPlain();
      return true;
    }
    return this.columns.encodeNext();
  }

  /** maskedGradientOf begins: an input serves one gradient, and nothing more is encoded ahead. */
  start(): void {
    if (this.disposed || this.started) throw new RangeError('a gradient input serves one maskedGradientOf call, before dispose()');
    this.started = true;
  }

  /** The mask encoded at the products' scale on level 1 (kept until dispose). */
  maskPlain(): PlainText {
    if (this.disposed) throw new RangeError('this gradient input was disposed');
    this.mask ??= this.encodeAtLevelOne(this.maskValues, this.scale);
    return this.mask;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.mask?.delete();
    this.mask = undefined;
    if (!this.columns.kept) this.columns.dispose();
  }
}

/** See CkksEngine.runningSum. */
export interface RunningSum {
  /** Check a contribution's blocks and add them; a vector that fails a check leaves the sum as it was. */
  add(blocks: Uint8Array[]): void;
  /** Take back a vector added before (e.g. its sender was dropped after all). */
  subtract(blocks: Uint8Array[]): void;
  /** The sum's blocks, serialised as sumVectors serialises them. */
  result(): Uint8Array[];
  dispose(): void;
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
