/**
 * node-seal (Microsoft SEAL compiled to WASM), loaded once per process, and the checks that guard it: parameters
 * SEAL rates 128-bit secure, and serialised objects whose header is sound before their bytes reach the WASM module.
 * The engine (engine.ts) and threshold CKKS (threshold/) both build their contexts here, so moving to node-seal 7.x
 * starts in this file.
 *
 * SEAL objects live on the WASM heap, which the JS garbage collector does not reclaim: `wasmHeapBytes()` exposes the
 * heap size so a test can show it stays flat over many rounds.
 */
import * as sealModule from 'node-seal';
import type { SEALLibrary } from 'node-seal/implementation/seal.js';
import type { Context } from 'node-seal/implementation/context.js';
import { ErrorCode, FedcreditError } from '../errors.js';
import type { CkksParams } from './params.js';
import { SEAL_HEADER_BYTES, SEAL_MAGIC, sealHeaderAt } from './seal-format.js';

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
 * SEAL's CKKS context for a parameter set, made once per process (thread) and shared by every engine and threshold
 * context built on those parameters: SEAL makes a context's NTT tables and checks its primes at creation, 0.25 s at
 * N = 8192 and 0.5 s at N = 16384 in WASM, which every job, key ceremony and step would otherwise pay again. The
 * context holds only public parameters; it lives as long as the process, so callers must not delete it. Refuses
 * parameters that SEAL does not rate 128-bit secure.
 */
export function createSealContext(params: CkksParams): Promise<{ seal: SEALLibrary; context: Context }> {
  const key = `${params.polyModulusDegree}/${params.coeffModulusBits.join(',')}`;
  let made = sharedContexts.get(key);
  if (!made) {
    made = newSealContext(params);
    sharedContexts.set(key, made);
    made.catch(() => sharedContexts.delete(key));
  }
  return made;
}

const sharedContexts = new Map<string, Promise<{ seal: SEALLibrary; context: Context }>>();

async function newSealContext(params: CkksParams): Promise<{ seal: SEALLibrary; context: Context }> {
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
      throw new FedcreditError(
        ErrorCode.CKKS_PARAMS,
        `SEAL cannot build the modulus chain ${params.coeffModulusBits.join(',')} for N=${params.polyModulusDegree}: ${err instanceof Error ? err.message : String(err)}`,
        'use primes of at most 60 bits, or the default parameters',
      );
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

export function invalidCiphertext(message: string): FedcreditError {
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
export function checkSerializedHeader(bytes: Uint8Array, what = 'ciphertext'): void {
  if (bytes.length < SEAL_HEADER_BYTES) throw invalidCiphertext(`${what} of ${bytes.length} bytes is shorter than SEAL's 16-byte header`);
  const header = sealHeaderAt(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength), 0);
  if (header.magic !== SEAL_MAGIC) throw invalidCiphertext(`${what} does not start with SEAL's magic number`);
  if (header.headerBytes !== SEAL_HEADER_BYTES) throw invalidCiphertext(`${what} header has an unexpected size`);
  if (header.compression > 2) throw invalidCiphertext(`${what} header names unknown compression mode ${header.compression}`);
  const declared = header.size;
  if (declared !== BigInt(bytes.length)) throw invalidCiphertext(`${what} header declares ${declared} bytes but ${bytes.length} arrived (truncated or padded)`);
}

export type ComprMode = SEALLibrary['ComprModeType']['none'];

/** The compression mode a serialisation declares in its header (checked by checkSerializedHeader). */
export function comprModeOf(seal: SEALLibrary, bytes: Uint8Array): ComprMode {
  const modes = [seal.ComprModeType.none, seal.ComprModeType.zlib, seal.ComprModeType.zstd];
  return modes[bytes[5]!]!;
}

/** Byte-wise equality without copying either array (Buffer.from of a typed array would copy it). */
export const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
