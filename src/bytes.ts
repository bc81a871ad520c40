/** Byte and hash helpers: the one home for SHA-256, hex and byte comparison. */
import { createHash, hash } from 'node:crypto';

/** The same bytes as a Buffer, without a copy (a Buffer is returned as it is). */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** SHA-256 of the bytes (a string as UTF-8). */
export function sha256(data: Uint8Array | string): Buffer {
  return hash('sha256', data, 'buffer');
}

/** SHA-256 of the parts hashed in order as one message: the hash of their concatenation, without building it. */
export function sha256Concat(parts: readonly (Uint8Array | string)[]): Buffer {
  const h = createHash('sha256');
  for (const part of parts) h.update(part);
  return h.digest();
}

/** SHA-256 of the bytes, as lower-case hex. */
export function sha256Hex(data: Uint8Array | string): string {
  return hash('sha256', data, 'hex');
}

/** Lower-case hex of the bytes. */
export function hex(bytes: Uint8Array): string {
  return asBuffer(bytes).toString('hex');
}

/** Do the two byte strings hold the same bytes? (Time independent of where they differ.) */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}
