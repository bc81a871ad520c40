/**
 * SEAL 4.1's serialised forms (compression mode none), read and written byte for byte, so that polynomials computed
 * in TypeScript become SEAL objects (a PublicKey, GaloisKeys) through loadArray, and SEAL's objects (a SecretKey, a
 * Ciphertext) give up their polynomials through saveArray (threshold CKKS, src/he/threshold/). The header is shared
 * with the engine's check of every serialised object before it reaches SEAL (seal.ts). Layouts, all integers
 * little-endian:
 *
 *   header (16 bytes)  magic 0xA15E (u16), header size 16 (u8), version 4.1 (two u8), compression (u8), 0 (u16),
 *                      total size in bytes including the header (u64)
 *   DynArray<u64>      header, element count (u64), the elements
 *   Plaintext          header, parms_id (4 × u64), coeff_count (u64), scale (f64), DynArray
 *   SecretKey          exactly its Plaintext (key-level parms_id, N·(L+1) words in NTT form, scale 1)
 *   Ciphertext         header, parms_id, is_ntt_form (u8), size (u64), N (u64), coeff_modulus_size (u64),
 *                      scale (f64), correction_factor (u64, 1 for CKKS), DynArray of size·coeff_modulus_size·N
 *                      words, polynomial-major then prime-major
 *   PublicKey          exactly its Ciphertext (key-level parms_id, size 2, scale 1)
 *   GaloisKeys         header, key-level parms_id, count of slots (u64, N: slot (g − 1)/2 holds element g), then
 *                      per slot the number of its keys (u64; 0 or the number of data primes) followed by that many
 *                      PublicKeys, the j-th being SEAL's key-switching ciphertext for data prime j
 */
import { ErrorCode, FedcreditError } from '../errors.js';

export const SEAL_MAGIC = 0xa15e;
export const SEAL_HEADER_BYTES = 16;
const VERSION_MAJOR = 4;
const VERSION_MINOR = 1;

/** SEAL's serialisation header at `offset` (SEAL_HEADER_BYTES must be there), its fields as they are, unchecked. */
export function sealHeaderAt(view: DataView, offset: number): { magic: number; headerBytes: number; compression: number; size: bigint } {
  return { magic: view.getUint16(offset, true), headerBytes: view.getUint8(offset + 2), compression: view.getUint8(offset + 5), size: view.getBigUint64(offset + 8, true) };
}

function malformed(what: string, detail: string): FedcreditError {
  return new FedcreditError(
    ErrorCode.CIPHERTEXT_INVALID,
    `${what} is not a SEAL 4.1 object saved without compression: ${detail}`,
    'load it into SEAL and save it with compression mode none before handing it to the threshold protocols',
  );
}

class Reader {
  private offset = 0;
  private readonly view: DataView;
  constructor(
    private readonly bytes: Uint8Array,
    private readonly what: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  private need(n: number): void {
    if (this.offset + n > this.bytes.length) throw malformed(this.what, `truncated at byte ${this.offset} (needs ${n} more, has ${this.bytes.length - this.offset})`);
  }
  header(): number {
    this.need(SEAL_HEADER_BYTES);
    const start = this.offset;
    const header = sealHeaderAt(this.view, start);
    if (header.magic !== SEAL_MAGIC) throw malformed(this.what, `no SEAL magic number at byte ${start}`);
    if (header.headerBytes !== SEAL_HEADER_BYTES) throw malformed(this.what, 'unexpected header size');
    if (header.compression !== 0) throw malformed(this.what, `compression mode ${header.compression}`);
    const size = Number(header.size);
    this.offset += SEAL_HEADER_BYTES;
    if (start + size > this.bytes.length) throw malformed(this.what, `header declares ${size} bytes, ${this.bytes.length - start} present`);
    return size;
  }
  u8(): number {
    this.need(1);
    return this.view.getUint8(this.offset++);
  }
  u64(): number {
    this.need(8);
    const v = this.view.getBigUint64(this.offset, true);
    this.offset += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw malformed(this.what, `count ${v} is too large`);
    return Number(v);
  }
  f64(): number {
    this.need(8);
    const v = this.view.getFloat64(this.offset, true);
    this.offset += 8;
    return v;
  }
  words(count: number): BigUint64Array {
    this.need(8 * count);
    // Copy: the source may be unaligned and is not ours.
    const out = new BigUint64Array(count);
    new Uint8Array(out.buffer).set(this.bytes.subarray(this.offset, this.offset + 8 * count));
    this.offset += 8 * count;
    return out;
  }
  dynArray(): BigUint64Array {
    this.header();
    return this.words(this.u64());
  }
  get position(): number {
    return this.offset;
  }
  end(): void {
    if (this.offset !== this.bytes.length) throw malformed(this.what, `${this.bytes.length - this.offset} trailing bytes`);
  }
}

class Writer {
  private readonly chunks: Uint8Array[] = [];
  private length = 0;
  private push(bytes: Uint8Array): void {
    this.chunks.push(bytes);
    this.length += bytes.length;
  }
  /** A header whose size field is patched by close(start). */
  header(): number {
    const start = this.length;
    const h = new Uint8Array(SEAL_HEADER_BYTES);
    const view = new DataView(h.buffer);
    view.setUint16(0, SEAL_MAGIC, true);
    view.setUint8(2, SEAL_HEADER_BYTES);
    view.setUint8(3, VERSION_MAJOR);
    view.setUint8(4, VERSION_MINOR);
    this.push(h);
    return start;
  }
  u8(v: number): void {
    this.push(Uint8Array.of(v));
  }
  u64(v: number | bigint): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt(v), true);
    this.push(b);
  }
  f64(v: number): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v, true);
    this.push(b);
  }
  words(w: BigUint64Array): void {
    this.push(new Uint8Array(w.buffer, w.byteOffset, w.byteLength));
  }
  /** One DynArray of the words of every part, in order (each part is copied once, by bytes()). */
  dynArray(...parts: BigUint64Array[]): void {
    const start = this.header();
    this.u64(parts.reduce((n, w) => n + w.length, 0));
    for (const w of parts) this.words(w);
    this.sizeFrom(start);
  }
  private readonly patches: { at: number; size: number }[] = [];
  sizeFrom(start: number): void {
    this.patches.push({ at: start, size: this.length - start });
  }
  bytes(): Uint8Array {
    const out = new Uint8Array(this.length);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    const view = new DataView(out.buffer);
    for (const p of this.patches) view.setBigUint64(p.at + 8, BigInt(p.size), true);
    return out;
  }
}

export interface SealCiphertextData {
  parmsId: BigUint64Array;
  isNttForm: boolean;
  degree: number;
  /** Number of primes of its level. */
  primeCount: number;
  scale: number;
  /** size polynomials, each N·primeCount words. */
  polys: BigUint64Array[];
}

function readCiphertextBody(r: Reader, what: string): SealCiphertextData {
  const parmsId = r.words(4);
  const isNttForm = r.u8() === 1;
  const size = r.u64();
  const degree = r.u64();
  const primeCount = r.u64();
  const scale = r.f64();
  r.u64(); // correction factor (BGV only)
  const data = r.dynArray();
  if (data.length !== size * degree * primeCount) throw malformed(what, `${data.length} words for ${size} polynomials of ${primeCount} primes × ${degree}`);
  // Views of the one copy dynArray made: a ciphertext's polynomials are read, never resized.
  const polys: BigUint64Array[] = [];
  for (let i = 0; i < size; i++) polys.push(data.subarray(i * degree * primeCount, (i + 1) * degree * primeCount));
  return { parmsId, isNttForm, degree, primeCount, scale, polys };
}

/** A Ciphertext or PublicKey saved with compression none. */
export function readCiphertext(bytes: Uint8Array, what = 'ciphertext'): SealCiphertextData {
  const r = new Reader(bytes, what);
  r.header();
  const out = readCiphertextBody(r, what);
  r.end();
  return out;
}

function writeCiphertextTo(w: Writer, c: SealCiphertextData): void {
  if (c.polys.some((p) => p.length !== c.degree * c.primeCount)) throw new RangeError(`a ciphertext's polynomials must each have ${c.primeCount} primes × ${c.degree} words`);
  const start = w.header();
  w.words(c.parmsId);
  w.u8(c.isNttForm ? 1 : 0);
  w.u64(c.polys.length);
  w.u64(c.degree);
  w.u64(c.primeCount);
  w.f64(c.scale);
  w.u64(1);
  w.dynArray(...c.polys);
  w.sizeFrom(start);
}

/** Bytes SEAL's Ciphertext.loadArray (and PublicKey.loadArray, for a key-level pair) accepts. */
export function writeCiphertext(c: SealCiphertextData): Uint8Array {
  const w = new Writer();
  writeCiphertextTo(w, c);
  return w.bytes();
}

export interface SealPlaintextData {
  parmsId: BigUint64Array;
  scale: number;
  coefficients: BigUint64Array;
}

/** A Plaintext or SecretKey saved with compression none. */
export function readPlaintext(bytes: Uint8Array, what = 'plaintext'): SealPlaintextData {
  const r = new Reader(bytes, what);
  r.header();
  const parmsId = r.words(4);
  const count = r.u64();
  const scale = r.f64();
  const coefficients = r.dynArray();
  if (coefficients.length !== count) throw malformed(what, `coeff_count ${count} but ${coefficients.length} words`);
  r.end();
  return { parmsId, scale, coefficients };
}

export function writePlaintext(p: SealPlaintextData): Uint8Array {
  const w = new Writer();
  const start = w.header();
  w.words(p.parmsId);
  w.u64(p.coefficients.length);
  w.f64(p.scale);
  w.dynArray(p.coefficients);
  w.sizeFrom(start);
  return w.bytes();
}

export interface SealGaloisKeysData {
  parmsId: BigUint64Array;
  /** Galois element → its key-switching ciphertexts, one per data prime (each a key-level (c0, c1)). */
  keys: Map<number, SealCiphertextData[]>;
  /** Number of slots SEAL wrote (N). */
  slots: number;
}

export function readGaloisKeys(bytes: Uint8Array, what = 'Galois keys'): SealGaloisKeysData {
  const r = new Reader(bytes, what);
  r.header();
  const parmsId = r.words(4);
  const slots = r.u64();
  const keys = new Map<number, SealCiphertextData[]>();
  for (let i = 0; i < slots; i++) {
    const count = r.u64();
    if (count === 0) continue;
    const list: SealCiphertextData[] = [];
    for (let j = 0; j < count; j++) {
      r.header();
      list.push(readCiphertextBody(r, what));
    }
    keys.set(2 * i + 1, list);
  }
  r.end();
  return { parmsId, keys, slots };
}

export function writeGaloisKeys(g: SealGaloisKeysData): Uint8Array {
  const w = new Writer();
  const start = w.header();
  w.words(g.parmsId);
  w.u64(g.slots);
  for (let i = 0; i < g.slots; i++) {
    const list = g.keys.get(2 * i + 1) ?? [];
    w.u64(list.length);
    for (const key of list) writeCiphertextTo(w, key);
  }
  w.sizeFrom(start);
  return w.bytes();
}
