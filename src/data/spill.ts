/**
 * Fixed-size records spilled to bucket files on disk, so that a set of any size can be sorted or joined one bucket
 * at a time in memory that does not grow with it. A bucket's buffer is appended to its file when it fills; no file
 * stays open between appends, so many spills can be live at once without running out of file descriptors.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

export const SPILL_BUCKETS = 256;
const BUFFER_BYTES = 16 * 1024;
/** Sort keys pack (first key word, record index) into a float64's 53 bits. */
const MAX_SORT_RECORDS = 2 ** 21;

export class RecordSpill {
  private readonly buffers: (Buffer | undefined)[] = [];
  private readonly used: number[] = [];
  /** Whether a bucket's file holds records (its buffer filled at least once). */
  private readonly onDisk: boolean[] = [];

  constructor(
    readonly dir: string,
    readonly recordBytes: number,
    readonly buckets = SPILL_BUCKETS,
  ) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (let b = 0; b < buckets; b++) {
      this.used.push(0);
      this.onDisk.push(false);
    }
  }

  /** Append one record (its first `recordBytes` bytes) to bucket `bucket`. */
  add(bucket: number, record: Uint8Array): void {
    const buf = (this.buffers[bucket] ??= Buffer.allocUnsafe(BUFFER_BYTES - (BUFFER_BYTES % this.recordBytes)));
    if (this.used[bucket]! + this.recordBytes > buf.length) this.flush(bucket);
    buf.set(record.subarray(0, this.recordBytes), this.used[bucket]!);
    this.used[bucket]! += this.recordBytes;
  }

  /** Every record of a bucket, in the order added (a bucket is read once). */
  read(bucket: number): Buffer {
    if (!this.onDisk[bucket]) {
      // A bucket whose buffer never filled is read from memory: no file written and read back (a small set's PSI
      // otherwise opens two files per bucket, 256 buckets per spill).
      const records = this.buffers[bucket]?.subarray(0, this.used[bucket]) ?? Buffer.alloc(0);
      this.buffers[bucket] = undefined;
      this.used[bucket] = 0;
      return records;
    }
    this.flush(bucket);
    this.buffers[bucket] = undefined;
    return readFileSync(this.file(bucket));
  }

  /** Write every bucket's buffered records to its file, for a spill kept on disk and read later with readBucket. */
  close(): void {
    for (let b = 0; b < this.buckets; b++) this.flush(b);
    this.buffers.length = 0;
  }

  /** The records of bucket `bucket` of a spill kept (closed) in `dir`; empty if it has none. */
  static readBucket(dir: string, bucket: number): Buffer {
    const file = join(dir, `${bucket}.bin`);
    return existsSync(file) ? readFileSync(file) : Buffer.alloc(0);
  }

  remove(): void {
    this.buffers.length = 0;
    rmSync(this.dir, { recursive: true, force: true });
  }

  private file(bucket: number): string {
    return join(this.dir, `${bucket}.bin`);
  }

  private flush(bucket: number): void {
    const used = this.used[bucket]!;
    if (used === 0) return;
    // The records are derived from the owner's ids: readable by the node's user only.
    appendFileSync(this.file(bucket), this.buffers[bucket]!.subarray(0, used), { mode: 0o600 });
    this.used[bucket] = 0;
    this.onDisk[bucket] = true;
  }
}

/**
 * The order that sorts `bytes`' records by their first `keyBytes` bytes (a multiple of 4), ties kept in record
 * order. Keys that hash well (ids' digests, blinded points) are mostly told apart by their first word.
 */
export function sortedOrder(bytes: Uint8Array, recordBytes: number, keyBytes: number): Uint32Array {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = buf.length / recordBytes;
  if (n > MAX_SORT_RECORDS) throw new RangeError(`a bucket holds ${n} records, more than ${MAX_SORT_RECORDS}: too many ids for ${SPILL_BUCKETS} buckets`);
  const word = (i: number, w: number) => buf.readUInt32BE(i * recordBytes + 4 * w);
  const keys = new Float64Array(n);
  for (let i = 0; i < n; i++) keys[i] = word(i, 0) * MAX_SORT_RECORDS + i;
  keys.sort();
  const order = Uint32Array.from(keys, (k) => k % MAX_SORT_RECORDS);
  const words = keyBytes / 4;
  // Runs that share the first word (a few per bucket) are ordered by the rest of the key, then by record index.
  for (let s = 0; s < n; ) {
    let e = s + 1;
    while (e < n && word(order[e]!, 0) === word(order[s]!, 0)) e++;
    if (e - s > 1) {
      // A run can be one key repeated a million times: sorted in place, never spread as arguments.
      order.subarray(s, e).sort((a, b) => {
        for (let w = 1; w < words; w++) {
          const d = word(a, w) - word(b, w);
          if (d !== 0) return d;
        }
        return a - b;
      });
    }
    s = e;
  }
  return order;
}
