/**
 * X25519 (RFC 7748) on runs of points, for the PSI's blinding: libsodium's `crypto_scalarmult` through the optional
 * package `sodium-native` when it loads, else OpenSSL through node:crypto. Both clamp the scalar, ignore the top bit
 * of u and refuse the all-zero result of a low-order point, so both give the same bytes for the same inputs.
 * libsodium is the faster (~1.4x per point on our machines) and needs no key object per point, where OpenSSL builds
 * one for every point.
 *
 * `FEDCREDIT_X25519=openssl` forces OpenSSL (to compare the two, or to bypass a broken native build);
 * `FEDCREDIT_X25519=libsodium` demands libsodium and fails when it does not load.
 */
import { diffieHellman } from 'node:crypto';
import { createRequire } from 'node:module';
import { asBuffer } from '../bytes.js';
import { privateKeyFromRaw, X25519PublicKeyReader } from '../crypto/raw-keys.js';
import { ErrorCode, FedcreditError } from '../errors.js';

export type X25519Backend = 'libsodium' | 'openssl';

export const SCALAR_BYTES = 32;
export const POINT_BYTES = 32;

/** The one function of sodium-native used here: q = X25519(n, p); throws when q would be all zero. */
interface Sodium {
  crypto_scalarmult(q: Uint8Array, n: Uint8Array, p: Uint8Array): void;
}

let sodium: Sodium | null | undefined;
let sodiumLoadError = '';

function loadSodium(): Sodium | null {
  if (sodium === undefined) {
    try {
      sodium = createRequire(import.meta.url)('sodium-native') as Sodium;
    } catch (err) {
      sodium = null;
      sodiumLoadError = err instanceof Error ? err.message.split('\n')[0]! : String(err);
    }
  }
  return sodium;
}

/** The backend blinding uses in this process: libsodium when it loads, unless FEDCREDIT_X25519 says otherwise. */
export function x25519Backend(): X25519Backend {
  const wanted = process.env.FEDCREDIT_X25519;
  if (wanted === 'openssl') return 'openssl';
  if (wanted !== undefined && wanted !== '' && wanted !== 'libsodium') {
    throw new FedcreditError(ErrorCode.CONFIG_INVALID, `the environment variable FEDCREDIT_X25519 is "${wanted}"`, 'set it to libsodium or openssl, or unset it to use libsodium when it loads');
  }
  if (loadSodium()) return 'libsodium';
  if (wanted === 'libsodium') {
    throw new FedcreditError(
      ErrorCode.CONFIG_INVALID,
      `FEDCREDIT_X25519=libsodium, but the optional package sodium-native does not load (${sodiumLoadError})`,
      'reinstall with npm ci (sodium-native ships prebuilt binaries for Linux, macOS and Windows on x64 and arm64), or unset FEDCREDIT_X25519 to use OpenSSL',
    );
  }
  return 'openssl';
}

/** The number of 32-byte points in `bytes`; a RangeError naming `what` when it is not a whole number. */
export function pointCount(bytes: Uint8Array, what: string): number {
  if (bytes.length % POINT_BYTES !== 0) {
    throw new RangeError(`${what} must hold whole ${POINT_BYTES}-byte points, got a length of ${bytes.length} bytes`);
  }
  return bytes.length / POINT_BYTES;
}

/** OpenSSL refuses to return the all-zero shared secret, which X25519 gives exactly for low-order points. */
function isLowOrderFailure(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === 'ERR_OSSL_FAILED_DURING_DERIVATION';
}

function blindWithOpenssl(scalar: Uint8Array, buf: Buffer, n: number): number {
  const privateKey = privateKeyFromRaw('x25519', scalar);
  const points = new X25519PublicKeyReader();
  for (let i = 0; i < n; i++) {
    const offset = i * POINT_BYTES;
    const publicKey = points.read(buf, offset);
    let shared: Buffer;
    try {
      shared = diffieHellman({ privateKey, publicKey });
    } catch (err) {
      if (isLowOrderFailure(err)) return i;
      throw err;
    }
    shared.copy(buf, offset);
  }
  return -1;
}

function blindWithSodium(lib: Sodium, scalar: Uint8Array, buf: Buffer, n: number): number {
  // A separate output: libsodium's implementations are not documented to allow q and p to overlap.
  const out = Buffer.allocUnsafe(POINT_BYTES);
  for (let i = 0; i < n; i++) {
    const point = buf.subarray(i * POINT_BYTES, (i + 1) * POINT_BYTES);
    try {
      lib.crypto_scalarmult(out, scalar, point);
    } catch {
      // The only failure with well-sized arguments: an all-zero result, i.e. a low-order point.
      return i;
    }
    out.copy(point);
  }
  return -1;
}

/**
 * Replaces each 32-byte point of `points` by X25519(scalar, point). Returns -1, or the index of the first low-order
 * point (the points before it are blinded, the rest untouched).
 */
export function blindInPlace(scalar: Uint8Array, points: Uint8Array, backend: X25519Backend = x25519Backend()): number {
  if (scalar.length !== SCALAR_BYTES) throw new RangeError(`an X25519 scalar is ${SCALAR_BYTES} bytes, got ${scalar.length}`);
  const buf = asBuffer(points);
  const n = pointCount(buf, 'points');
  if (backend === 'openssl') return blindWithOpenssl(scalar, buf, n);
  const lib = loadSodium();
  if (!lib) throw new Error(`X25519 from libsodium was asked for, but sodium-native does not load (${sodiumLoadError})`);
  return blindWithSodium(lib, scalar, buf, n);
}
