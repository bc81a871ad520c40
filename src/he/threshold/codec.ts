/**
 * The wire form of every threshold share: one self-describing byte string per share.
 *
 *   "FCTH" (4 bytes) | format version 1 (u8) | kind (u8) | metadata length (u32 LE) | metadata (UTF-8 JSON)
 *   | polynomial count (u32 LE) | per polynomial: prime count (u32 LE), the primes (u64 LE each), N (u32 LE),
 *     then N·primes words (u64 LE), prime-major
 *
 * Decoding checks the magic, the kind, that every polynomial's primes are those the receiver expects (a share
 * made under other parameters is refused, not misread) and that every word is reduced modulo its prime.
 */
import { ErrorCode, FedcreditError } from '../../errors.js';
import { isReduced, type RingModulus } from './ring.js';

const MAGIC = Buffer.from('FCTH', 'ascii');
const VERSION = 1;

export const ShareKind = {
  secretKey: 1,
  publicKey: 2,
  galoisKey: 3,
  decryption: 4,
  shamir: 5,
} as const;
export type ShareKind = (typeof ShareKind)[keyof typeof ShareKind];

const kindName = (kind: number): string => Object.entries(ShareKind).find(([, v]) => v === kind)?.[0] ?? `unknown kind ${kind}`;

function badShare(message: string): FedcreditError {
  return new FedcreditError(ErrorCode.PROTOCOL, message, 'the sender runs another fedcredit version or other CKKS parameters, or the bytes were damaged; the share is refused');
}

export interface EncodedPoly {
  ring: RingModulus;
  words: BigUint64Array;
}

export function encodeShare(kind: ShareKind, metadata: Record<string, unknown>, polys: EncodedPoly[]): Uint8Array {
  const meta = Buffer.from(JSON.stringify(metadata), 'utf8');
  let size = 4 + 1 + 1 + 4 + meta.length + 4;
  for (const p of polys) size += 4 + 8 * p.ring.primes.length + 4 + 8 * p.words.length;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  out.set(MAGIC, 0);
  let o = 4;
  view.setUint8(o++, VERSION);
  view.setUint8(o++, kind);
  view.setUint32(o, meta.length, true);
  o += 4;
  out.set(meta, o);
  o += meta.length;
  view.setUint32(o, polys.length, true);
  o += 4;
  for (const p of polys) {
    if (p.words.length !== p.ring.degree * p.ring.primes.length) throw new RangeError('polynomial length does not match its ring');
    view.setUint32(o, p.ring.primes.length, true);
    o += 4;
    for (const q of p.ring.primes) {
      view.setBigUint64(o, q, true);
      o += 8;
    }
    view.setUint32(o, p.ring.degree, true);
    o += 4;
    out.set(new Uint8Array(p.words.buffer, p.words.byteOffset, p.words.byteLength), o);
    o += p.words.byteLength;
  }
  return out;
}

export interface DecodedShare {
  metadata: Record<string, unknown>;
  polys: EncodedPoly[];
}

/**
 * Decode a share of `kind`. `expectRing(i)` names the ring polynomial i must be in (by its prime count, which the
 * metadata may set); a share whose primes differ is refused.
 */
export function decodeShare(bytes: Uint8Array, kind: ShareKind, expectRing: (index: number, metadata: Record<string, unknown>) => RingModulus): DecodedShare {
  const what = `a ${kindName(kind)} share`;
  if (bytes.length < 14 || !Buffer.from(bytes.subarray(0, 4)).equals(MAGIC)) throw badShare(`${what} does not start with the threshold share magic "FCTH"`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let o = 4;
  const version = view.getUint8(o++);
  if (version !== VERSION) throw badShare(`${what} has format version ${version}; this fedcredit reads version ${VERSION}`);
  const got = view.getUint8(o++);
  if (got !== kind) throw badShare(`expected ${what}, got a ${kindName(got)} share`);
  const need = (n: number) => {
    if (o + n > bytes.length) throw badShare(`${what} is truncated at byte ${o}`);
  };
  need(4);
  const metaLength = view.getUint32(o, true);
  o += 4;
  need(metaLength);
  let metadata: Record<string, unknown>;
  try {
    metadata = JSON.parse(Buffer.from(bytes.subarray(o, o + metaLength)).toString('utf8')) as Record<string, unknown>;
  } catch {
    throw badShare(`${what} has unreadable metadata`);
  }
  if (typeof metadata !== 'object' || metadata === null) throw badShare(`${what} has unreadable metadata`);
  o += metaLength;
  need(4);
  const count = view.getUint32(o, true);
  o += 4;
  const polys: EncodedPoly[] = [];
  for (let i = 0; i < count; i++) {
    const ring = expectRing(i, metadata);
    need(4);
    const primeCount = view.getUint32(o, true);
    o += 4;
    if (primeCount !== ring.primes.length) throw badShare(`${what}: polynomial ${i} has ${primeCount} primes, ${ring.primes.length} expected`);
    need(8 * primeCount + 4);
    for (const q of ring.primes) {
      if (view.getBigUint64(o, true) !== q) throw badShare(`${what}: polynomial ${i} is over other primes than the job's`);
      o += 8;
    }
    if (view.getUint32(o, true) !== ring.degree) throw badShare(`${what}: polynomial ${i} has another degree than the job's N = ${ring.degree}`);
    o += 4;
    const n = ring.degree * primeCount;
    need(8 * n);
    const words = new BigUint64Array(n);
    new Uint8Array(words.buffer).set(bytes.subarray(o, o + 8 * n));
    o += 8 * n;
    if (!isReduced(ring, words)) throw badShare(`${what}: polynomial ${i} holds a value not reduced modulo its prime`);
    polys.push({ ring, words });
  }
  if (o !== bytes.length) throw badShare(`${what} has ${bytes.length - o} trailing bytes`);
  return { metadata, polys };
}
