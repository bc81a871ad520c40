/**
 * The ledger's bytes on disk, shared by the writer (ledger.ts), the reader (read.ts) and the verifier (verify.ts):
 * file names, record framing with CRC-32, decoding of SignedEntry / LedgerEntry, and the tree-head signature input.
 * docs/audit-ledger.md is the specification; keep the two in step.
 *
 * entries.log is a sequence of records  [u32 BE length L][L bytes: SignedEntry][u32 BE CRC-32 of those L bytes].
 */
import { readFile } from 'node:fs/promises';
import * as zlib from 'node:zlib';
import { asBuffer, hex, sha256 } from '../bytes.js';
import { decodeMessage, encodeMessage } from '../wire/proto.js';

export const LOG_FILE = 'entries.log';
export const SIGNERS_FILE = 'signers.json';
export const BLOBS_DIR = 'blobs';
export const LOCK_FILE = 'writer.lock';
export const TORN_PREFIX = 'torn-';

/** Bytes of framing around each SignedEntry: the length before it and the CRC after it. */
export const FRAME_OVERHEAD = 8;
/** The smallest SignedEntry a writer produces (a 64-byte signature alone takes 66 bytes); used to resynchronise. */
const MIN_SIGNED_ENTRY = 66;

export const ZERO_HASH: Uint8Array = new Uint8Array(32);

// CRC-32 (ISO-HDLC, the one of zlib, gzip and PNG). zlib.crc32 exists from Node 20.15; a table fallback otherwise.
let table: Uint32Array | undefined;
function crc32Table(data: Uint8Array): number {
  if (!table) {
    table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      table[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = 0; i < data.length; i++) crc = table[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
const zlibCrc32 = (zlib as unknown as { crc32?: (data: Uint8Array) => number }).crc32;
export const crc32: (data: Uint8Array) => number = typeof zlibCrc32 === 'function' ? (d) => zlibCrc32(d) >>> 0 : crc32Table;
/** The fallback, exported so tests can check it against zlib's. */
export const crc32Reference = crc32Table;

/** Frame a SignedEntry as one record of entries.log. */
export function frameRecord(signedEntry: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(signedEntry.length + FRAME_OVERHEAD);
  out.writeUInt32BE(signedEntry.length, 0);
  out.set(signedEntry, 4);
  out.writeUInt32BE(crc32(signedEntry), 4 + signedEntry.length);
  return out;
}

export interface RawRecord {
  /** Position in the file: 0 for the first record. */
  index: number;
  /** Byte offset of the record's length field. */
  offset: number;
  /** The SignedEntry bytes (a view into the file's bytes). */
  payload: Uint8Array;
  crcOk: boolean;
}

export interface RecordScan {
  records: RawRecord[];
  /** Offset just past the last whole record. */
  end: number;
  /** An incomplete final record (a write cut short): where it starts and how many bytes of it there are. */
  torn?: { index: number; offset: number; bytes: number };
  /** Framing that is neither whole records nor a torn tail (a damaged length field): the records stop here. */
  broken?: { index: number; offset: number; reason: string };
}

const u32 = (buf: Uint8Array, at: number) => asBuffer(buf).readUInt32BE(at);

/** Does a whole record with a matching CRC start at `at`? (Used to tell a damaged length from a torn tail.) */
function recordAt(buf: Uint8Array, at: number): boolean {
  if (buf.length - at < FRAME_OVERHEAD + MIN_SIGNED_ENTRY) return false;
  const len = u32(buf, at);
  if (len < MIN_SIGNED_ENTRY || at + FRAME_OVERHEAD + len > buf.length) return false;
  return crc32(buf.subarray(at + 4, at + 4 + len)) === u32(buf, at + 4 + len);
}

/**
 * Split entries.log into records. A record whose length runs past the end of the file, a final record shorter than
 * 8 bytes, or a tail of zero bytes (what some file systems leave after a crash) is torn: the tail of an interrupted
 * append. But when a whole, CRC-valid record can be found after such a "torn" record, the length field was damaged
 * instead, and the scan reports the framing as broken there.
 */
export function scanRecords(buf: Uint8Array): RecordScan {
  const records: RawRecord[] = [];
  let at = 0;
  while (at < buf.length) {
    const index = records.length;
    const left = buf.length - at;
    const len = left >= 4 ? u32(buf, at) : 0;
    const zeroTail = left >= 4 && len === 0 && buf.subarray(at).every((b) => b === 0);
    if (left < FRAME_OVERHEAD || at + FRAME_OVERHEAD + len > buf.length || zeroTail) {
      for (let next = at + 1; next + FRAME_OVERHEAD <= buf.length; next++) {
        if (recordAt(buf, next)) {
          return { records, end: at, broken: { index, offset: at, reason: `the length field at byte ${at} (${len}) does not frame a record, yet whole records follow at byte ${next}` } };
        }
      }
      return { records, end: at, torn: { index, offset: at, bytes: left } };
    }
    const payload = buf.subarray(at + 4, at + 4 + len);
    records.push({ index, offset: at, payload, crcOk: crc32(payload) === u32(buf, at + 4 + len) });
    at += FRAME_OVERHEAD + len;
  }
  return { records, end: at };
}

export interface BlobRef {
  name: string;
  sha256: Uint8Array;
  size: number;
}

/** A decoded LedgerEntry (camelCase, 64-bit integers as numbers). */
export interface DecodedEntry {
  seq: number;
  unixMs: number;
  author: string;
  prevHash: Uint8Array;
  jobId: string;
  kind: string;
  bodyJson: string;
  blobs: BlobRef[];
}

export interface DecodedSigned {
  /** The encoded LedgerEntry, exactly as signed. */
  entryBytes: Uint8Array;
  signature: Uint8Array;
  entry: DecodedEntry;
}

/** Decode a SignedEntry and the LedgerEntry inside it. Throws on malformed bytes. */
export function decodeSignedEntry(payload: Uint8Array): DecodedSigned {
  const signed = decodeMessage<{ entry: Uint8Array; signature: Uint8Array }>('SignedEntry', payload);
  if (signed.signature.length !== 64) throw new TypeError(`not a SignedEntry: its signature has ${signed.signature.length} bytes, not 64`);
  const entry = decodeMessage<DecodedEntry>('LedgerEntry', signed.entry);
  for (const n of [entry.seq, entry.unixMs, ...entry.blobs.map((b) => b.size)]) {
    if (!Number.isSafeInteger(n)) throw new RangeError(`an integer field (${n}) is beyond 2^53`);
  }
  return { entryBytes: signed.entry, signature: signed.signature, entry };
}

export function encodeLedgerEntry(e: DecodedEntry): Uint8Array {
  return encodeMessage('LedgerEntry', e);
}

export function encodeSignedEntry(entryBytes: Uint8Array, signature: Uint8Array): Uint8Array {
  return encodeMessage('SignedEntry', { entry: entryBytes, signature });
}

export const STH_CONTEXT = 'fedcredit-sth-v1';

/** What a tree head's signature covers: "fedcredit-sth-v1" || size (u64 BE) || root (32 bytes) || unix_ms (u64 BE). */
export function treeHeadSignatureInput(size: number, root: Uint8Array, unixMs: number): Uint8Array {
  const context = Buffer.from(STH_CONTEXT, 'ascii');
  const out = Buffer.alloc(context.length + 8 + root.length + 8);
  context.copy(out, 0);
  out.writeBigUInt64BE(BigInt(size), context.length);
  out.set(root, context.length + 8);
  out.writeBigUInt64BE(BigInt(unixMs), context.length + 8 + root.length);
  return out;
}

/** Parse signers.json ({author: raw Ed25519 public key in hex}); entries that are not 32-byte hex keys are left out. */
export function parseSigners(text: string): Record<string, Uint8Array> {
  const parsed: unknown = JSON.parse(text);
  const out: Record<string, Uint8Array> = {};
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new TypeError('signers.json is not a JSON object');
  for (const [author, key] of Object.entries(parsed as Record<string, unknown>)) {
    if (typeof key === 'string' && /^[0-9a-fA-F]{64}$/.test(key)) out[author] = new Uint8Array(Buffer.from(key, 'hex'));
  }
  return out;
}

/** null if the file holds exactly the bytes with this hash and size; 'absent'; or what is wrong with it. */
export async function checkBlob(path: string, digest: Uint8Array, size: number): Promise<string | null> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return 'absent';
    return `cannot be read (${(err as Error).message})`;
  }
  const actual = sha256(bytes);
  if (bytes.length === size && Buffer.from(actual).equals(Buffer.from(digest))) return null;
  return `holds ${bytes.length} bytes with SHA-256 ${hex(actual).slice(0, 16)}…`;
}
