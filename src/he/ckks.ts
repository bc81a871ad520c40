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
 */
import { createHash } from 'node:crypto';
import * as sealModule from 'node-seal';
import type { SEALLibrary } from 'node-seal/implementation/seal.js';
import type { CipherText } from 'node-seal/implementation/cipher-text.js';
import type { Context } from 'node-seal/implementation/context.js';
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

export function paramsFingerprint(params: CkksParams): Uint8Array {
  const canonical = `ckks;N=${params.polyModulusDegree};q=${params.coeffModulusBits.join(',')};scale=${params.scaleBits}`;
  return createHash('sha256').update(canonical).digest();
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
function checkSerializedHeader(bytes: Uint8Array): void {
  if (bytes.length < SEAL_HEADER_BYTES) throw invalidCiphertext(`ciphertext of ${bytes.length} bytes is shorter than SEAL's 16-byte header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint16(0, true) !== SEAL_MAGIC) throw invalidCiphertext('ciphertext does not start with SEAL\'s magic number');
  if (view.getUint8(2) !== SEAL_HEADER_BYTES) throw invalidCiphertext('ciphertext header has an unexpected size');
  if (view.getUint8(6) > 2) throw invalidCiphertext(`ciphertext header names unknown compression mode ${view.getUint8(6)}`);
  const declared = view.getBigUint64(8, true);
  if (declared !== BigInt(bytes.length)) throw invalidCiphertext(`ciphertext header declares ${declared} bytes but ${bytes.length} arrived (truncated or padded)`);
}

/** How a ciphertext on the wire was produced: see CkksEngine.checkCiphertext. */
export type CiphertextForm = 'seeded' | 'canonical';

export interface CkksKeyPair {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

export class CkksEngine {
  readonly slotCount: number;
  readonly fingerprint: Uint8Array;
  private readonly scale: number;

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
  }

  /** Build a context for the parameters; refuses parameters that SEAL does not rate 128-bit secure. */
  static async create(params: CkksParams = DEFAULT_CKKS_PARAMS): Promise<CkksEngine> {
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
      return new CkksEngine(seal, context, params);
    } finally {
      modulus?.delete();
      parms.delete();
    }
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
    const pub = this.seal.PublicKey();
    const secret = secretKey ? this.seal.SecretKey() : undefined;
    const encoder = this.seal.CKKSEncoder(this.context);
    let encryptor: ReturnType<SEALLibrary['Encryptor']> | undefined;
    try {
      pub.loadArray(this.context, publicKey);
      if (secret) secret.loadArray(this.context, secretKey!);
      encryptor = this.seal.Encryptor(this.context, pub, secret);
      const blocks: Uint8Array[] = [];
      const slot = new Float64Array(this.slotCount);
      for (let b = 0; b < this.blocksFor(values.length); b++) {
        slot.fill(0);
        slot.set(values.subarray(b * this.slotCount, Math.min(values.length, (b + 1) * this.slotCount)));
        const plain = encoder.encode(slot, this.scale) as ReturnType<SEALLibrary['PlainText']>;
        try {
          const serializable = secret ? encryptor.encryptSymmetricSerializable(plain) : encryptor.encryptSerializable(plain);
          try {
            blocks.push(serializable.saveArray(this.seal.ComprModeType.zstd));
          } finally {
            serializable.delete();
          }
        } finally {
          plain.delete();
        }
      }
      return blocks;
    } finally {
      encryptor?.delete();
      encoder.delete();
      secret?.delete();
      pub.delete();
    }
  }

  /** Decrypt ciphertexts made by encryptVector/sumVectors back into the first `length` values. */
  decryptVector(blocks: Uint8Array[], length: number, secretKey: Uint8Array): Float64Array {
    if (blocks.length !== this.blocksFor(length)) {
      throw invalidCiphertext(`${blocks.length} ciphertexts cannot hold a vector of ${length} values (${this.blocksFor(length)} expected)`);
    }
    const secret = this.seal.SecretKey();
    const encoder = this.seal.CKKSEncoder(this.context);
    let decryptor: ReturnType<SEALLibrary['Decryptor']> | undefined;
    try {
      secret.loadArray(this.context, secretKey);
      decryptor = this.seal.Decryptor(this.context, secret);
      const out = new Float64Array(length);
      blocks.forEach((bytes, b) => {
        const cipher = this.loadCiphertext(bytes);
        try {
          const plain = decryptor!.decrypt(cipher) as ReturnType<SEALLibrary['PlainText']>;
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
    } finally {
      decryptor?.delete();
      encoder.delete();
      secret.delete();
    }
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
        if (!Buffer.from(cipher.saveArray(this.seal.ComprModeType.zstd)).equals(Buffer.from(bytes))) {
          throw invalidCiphertext('ciphertext does not re-serialise to the bytes received (truncated or altered)');
        }
        return;
      }
      // Uncompressed size is enough to tell a seeded ciphertext (about 2.3x smaller compressed) and costs no zstd.
      if (cipher.saveArray(this.seal.ComprModeType.none).length < bytes.length * 1.5) {
        throw invalidCiphertext('ciphertext is not a seeded symmetric encryption as contributions must be (truncated, altered, or public-key encrypted)');
      }
    } finally {
      cipher.delete();
    }
  }

  private loadCiphertext(bytes: Uint8Array): CipherText {
    checkSerializedHeader(bytes);
    const cipher = this.seal.CipherText();
    try {
      cipher.loadArray(this.context, bytes);
    } catch (err) {
      cipher.delete();
      throw invalidCiphertext(`ciphertext does not deserialise under the job's CKKS parameters: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (cipher.size !== 2 || Math.abs(Math.log2(cipher.scale) - this.params.scaleBits) > 1e-9) {
      const detail = `size ${cipher.size}, scale 2^${Math.log2(cipher.scale).toFixed(2)}`;
      cipher.delete();
      throw invalidCiphertext(`ciphertext is not a fresh CKKS encryption at scale 2^${this.params.scaleBits} (${detail})`);
    }
    return cipher;
  }

  dispose(): void {
    this.context.delete();
  }
}
