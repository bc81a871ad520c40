/**
 * A participant's rows on disk, so memory does not grow with the data: the CSV is parsed once into fixed-width
 * float32 files, and every pass of a job (moments, histogram, each epoch, validation) reads them back a block at a
 * time. Layout of the store's folder:
 *   x.f32       kept rows × features, row-major, float32 in the machine's byte order (NaN = to be imputed)
 *   y.f32       kept rows' labels (0/1) when the data has a label column
 *   ids.jsonl   one JSON array per kept row: [id, group column values...]
 *   idhash.bin  16 bytes per kept row: the first half of the SHA-256 of its id (src/data/id-buckets.ts)
 *   meta.json   features, row count, group columns, categorical levels, the load report and the id-set digest
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import type { LoadReport } from './load-report.js';

export interface RowStoreMeta {
  features: string[];
  rows: number;
  labels: boolean;
  groupColumns: string[];
  /** Categorical features: their levels; x holds each cell's index in the list. */
  levels?: Record<string, string[]>;
  report: LoadReport;
  /**
   * A few of each feature's invalid cells (text in a number column), for the owner's own log: what to add to
   * data.missing_values or clean. Unlike the load report, never sent anywhere.
   */
  invalidExamples?: Record<string, string[]>;
  /** SHA-256 over the sorted 16-byte SHA-256 prefixes of the kept ids (hex): the id set, without the ids. */
  idSetSha256: string;
  /** Rows read at a time by every pass over the store. */
  blockRows: number;
}

/** The rows of one block: x is row-major over every stored feature. Buffers are reused by the next read. */
export interface StoredBlock {
  start: number;
  rows: number;
  x: Float32Array;
  y?: Float32Array;
}

/** Bytes of feature cells one block holds: large enough to amortise reads, small enough to keep memory flat. */
const BLOCK_BYTES = 4 * 1024 * 1024;

/** Rows per block for a row of `features` float32 cells. */
export function blockRowsFor(features: number, blockBytes = BLOCK_BYTES): number {
  return Math.max(1, Math.floor(blockBytes / (4 * Math.max(1, features))));
}

export const X_FILE = 'x.f32';
export const Y_FILE = 'y.f32';
export const IDS_FILE = 'ids.jsonl';
export const ID_HASH_FILE = 'idhash.bin';
const META_FILE = 'meta.json';

export class RowStore {
  private constructor(
    readonly dir: string,
    readonly meta: RowStoreMeta,
  ) {}

  static open(dir: string): RowStore {
    return new RowStore(dir, JSON.parse(readFileSync(join(dir, META_FILE), 'utf8')) as RowStoreMeta);
  }

  static writeMeta(dir: string, meta: RowStoreMeta): RowStore {
    writeFileSync(join(dir, META_FILE), JSON.stringify(meta), { mode: 0o600 });
    return new RowStore(dir, meta);
  }

  get rows(): number {
    return this.meta.rows;
  }

  get features(): string[] {
    return this.meta.features;
  }

  get blockRows(): number {
    return this.meta.blockRows;
  }

  get blockCount(): number {
    return Math.ceil(this.rows / this.blockRows);
  }

  /** Open the store's files for block reads; close the reader when done. */
  reader(): BlockReader {
    return new BlockReader(this);
  }

  /** Every kept row's id and group values, in row order, read a megabyte at a time. */
  *idRows(): Generator<string[]> {
    for (const line of readLines(join(this.dir, IDS_FILE))) yield JSON.parse(line) as string[];
  }

  /** Every kept row's id with its row index, in row order. */
  *ids(): Generator<readonly [string, number]> {
    let row = 0;
    for (const [id] of this.idRows()) yield [id!, row++];
  }

  /** The kept rows' id hashes in row order, a megabyte at a time (each piece a whole number of 16-byte hashes). */
  *idHashes(): Generator<Uint8Array> {
    yield* readRecordPieces(join(this.dir, ID_HASH_FILE), 16);
  }

  /** SHA-256 over the rows' id hashes in row order: the same exactly when the store holds the same ids in the same rows. */
  rowOrderDigest(): string {
    const digest = createHash('sha256');
    for (const piece of this.idHashes()) digest.update(piece);
    return digest.digest('hex');
  }

  /** Everything in memory (vertical jobs align and index rows at random). */
  materialise(): { ids: string[]; x: Float32Array; y?: Float32Array; groups: Record<string, string[]> } {
    // Read straight into the arrays: no second copy, and files past 2 GiB (readFileSync's limit) load too.
    const floats = (file: string, count: number) => {
      const out = new Float32Array(count);
      const fd = openSync(join(this.dir, file), 'r');
      try {
        readFully(fd, out, 0);
      } finally {
        closeSync(fd);
      }
      return out;
    };
    const ids: string[] = [];
    const groups = this.meta.groupColumns.map((): string[] => []);
    for (const [id, ...values] of this.idRows()) {
      ids.push(id!);
      values.forEach((v, g) => groups[g]!.push(v));
    }
    return {
      ids,
      x: floats(X_FILE, this.rows * this.features.length),
      y: this.meta.labels ? floats(Y_FILE, this.rows) : undefined,
      groups: Object.fromEntries(this.meta.groupColumns.map((c, g) => [c, groups[g]!])),
    };
  }
}

/** Reads blocks of a store by index into reused buffers. */
export class BlockReader {
  private readonly xFd: number;
  private readonly yFd?: number;
  private readonly xBuf: Float32Array;
  private readonly yBuf?: Float32Array;

  constructor(private readonly store: RowStore) {
    this.xFd = openSync(join(store.dir, X_FILE), 'r');
    if (store.meta.labels) this.yFd = openSync(join(store.dir, Y_FILE), 'r');
    this.xBuf = new Float32Array(store.blockRows * store.features.length);
    if (store.meta.labels) this.yBuf = new Float32Array(store.blockRows);
  }

  read(index: number): StoredBlock {
    const { blockRows, features, rows } = this.store;
    const start = index * blockRows;
    const n = Math.min(blockRows, rows - start);
    if (n <= 0) throw new RangeError(`block ${index} is past the end of the row store (${rows} rows)`);
    const width = features.length;
    const x = this.xBuf.subarray(0, n * width);
    readFully(this.xFd, x, start * width * 4);
    let y: Float32Array | undefined;
    if (this.yFd !== undefined) {
      y = this.yBuf!.subarray(0, n);
      readFully(this.yFd, y, start * 4);
    }
    return { start, rows: n, x, y };
  }

  close(): void {
    closeSync(this.xFd);
    if (this.yFd !== undefined) closeSync(this.yFd);
  }
}

function readFully(fd: number, into: Float32Array, position: number): void {
  const bytes = new Uint8Array(into.buffer, into.byteOffset, into.byteLength);
  let done = 0;
  while (done < bytes.length) {
    // One read is at most 2 GiB - 1 bytes.
    const n = readSync(fd, bytes, done, Math.min(bytes.length - done, 2 ** 30), position + done);
    if (n === 0) throw new Error(`row store file ended early at byte ${position + done}`);
    done += n;
  }
}

/** A file of fixed-size records, read about a megabyte at a time into one reused buffer (a whole number of records each). */
export function* readRecordPieces(file: string, recordBytes: number): Generator<Uint8Array> {
  const fd = openSync(file, 'r');
  const buf = new Uint8Array(Math.max(1, Math.floor((1024 * 1024) / recordBytes)) * recordBytes);
  try {
    for (;;) {
      let n = 0;
      for (let got = -1; got !== 0 && n < buf.length; n += got) got = readSync(fd, buf, n, buf.length - n, null);
      const whole = n - (n % recordBytes);
      if (whole > 0) yield buf.subarray(0, whole);
      if (n < buf.length) return;
    }
  } finally {
    closeSync(fd);
  }
}

/** Lines of a UTF-8 file, read in 1 MiB pieces (bytes after the last newline wait for the next piece). */
export function* readLines(file: string): Generator<string> {
  const fd = openSync(file, 'r');
  const piece = Buffer.alloc(1024 * 1024);
  let carry = Buffer.alloc(0);
  try {
    for (;;) {
      const n = readSync(fd, piece, 0, piece.length, null);
      if (n === 0) break;
      const bytes = carry.length > 0 ? Buffer.concat([carry, piece.subarray(0, n)]) : piece.subarray(0, n);
      const lastNewline = bytes.lastIndexOf(0x0a);
      if (lastNewline < 0) {
        carry = Buffer.from(bytes);
        continue;
      }
      for (const line of bytes.toString('utf8', 0, lastNewline).split('\n')) if (line !== '') yield line;
      carry = Buffer.from(bytes.subarray(lastNewline + 1));
    }
    if (carry.length > 0) yield carry.toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/** Appends bytes to a file through a buffer, so many small rows cost few system calls. */
export class FileAppender {
  /** -1 once closed: closing twice must not close a descriptor number the process has since reused. */
  private fd: number;
  private readonly buf: Buffer;
  private used = 0;

  constructor(file: string, bufferBytes = 1024 * 1024) {
    // Row-store files copy the owner's data: readable by the node's user only.
    this.fd = openSync(file, 'w', 0o600);
    this.buf = Buffer.alloc(bufferBytes);
  }

  write(bytes: Uint8Array): void {
    if (this.used + bytes.length > this.buf.length) this.flush();
    if (bytes.length > this.buf.length) {
      for (let done = 0; done < bytes.length; ) done += writeSync(this.fd, bytes, done, bytes.length - done);
      return;
    }
    this.buf.set(bytes, this.used);
    this.used += bytes.length;
  }

  writeText(text: string): void {
    this.write(Buffer.from(text, 'utf8'));
  }

  flush(): void {
    let done = 0;
    while (done < this.used) done += writeSync(this.fd, this.buf, done, this.used - done);
    this.used = 0;
  }

  close(): void {
    if (this.fd < 0) return;
    try {
      this.flush();
    } finally {
      closeSync(this.fd);
      this.fd = -1;
    }
  }
}
