/**
 * Duplicate ids in a file of any size, in memory that does not grow with it: every id is hashed (16 bytes of
 * SHA-256) and appended with its line to one of 256 bucket files chosen by the hash's first byte; afterwards each
 * bucket is sorted on its own. Sorting the buckets in order also yields the sorted hashes of the whole id set, whose
 * digest stands for the set in the audit ledger.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { FileAppender } from './row-store.js';

const BUCKETS = 256;
export const ID_HASH_BYTES = 16;
const HASH_BYTES = ID_HASH_BYTES;
/** hash, line, kept row index (-1 when the row was dropped), drop reason code (0 = none). */
const ENTRY_BYTES = HASH_BYTES + 12;
/** Sort keys pack (first hash word, entry index) into a float64's 53 bits. */
const MAX_BUCKET_ENTRIES = 2 ** 21;

export interface Duplicate {
  line: number;
  firstLine: number;
  /** Kept row index of the id's first row, or -1 if that row was dropped. */
  firstKeptIndex: number;
  /** Kept row index of the duplicate, or -1 if it was already dropped for `reason`. */
  keptIndex: number;
  reason: number;
}

/** The first 16 bytes of the SHA-256 of an id: what the duplicate check, the id-set digest and the split use. */
export function idHash(id: string): Buffer {
  return createHash('sha256').update(id).digest().subarray(0, ID_HASH_BYTES);
}

export class IdBuckets {
  private readonly dir: string;
  private readonly files: FileAppender[] = [];
  private readonly entry = Buffer.alloc(ENTRY_BYTES);

  constructor(parent: string) {
    this.dir = join(parent, 'id-buckets');
    rmSync(this.dir, { recursive: true, force: true });
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    for (let b = 0; b < BUCKETS; b++) this.files.push(new FileAppender(join(this.dir, `${b}.bin`), 32 * 1024));
  }

  /** Record an id's row; returns the id's hash. */
  add(id: string, line: number, keptIndex: number, reason: number): Buffer {
    const hash = idHash(id);
    const e = this.entry;
    hash.copy(e, 0, 0, HASH_BYTES);
    e.writeUInt32LE(line, HASH_BYTES);
    e.writeInt32LE(keptIndex, HASH_BYTES + 4);
    e.writeUInt32LE(reason, HASH_BYTES + 8);
    this.files[hash[0]!]!.write(e);
    return hash;
  }

  /**
   * Every later occurrence of an id, in bucket order, and the SHA-256 over the sorted hashes of the ids whose first
   * row was kept. Removes the bucket files.
   */
  resolve(): { duplicates: Duplicate[]; idSetSha256: string } {
    const duplicates: Duplicate[] = [];
    const digest = createHash('sha256');
    try {
      for (let b = 0; b < BUCKETS; b++) {
        this.files[b]!.close();
        const bytes = readFileSync(join(this.dir, `${b}.bin`));
        resolveBucket(bytes, duplicates, digest);
      }
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
    return { duplicates, idSetSha256: digest.digest('hex') };
  }

  discard(): void {
    for (const f of this.files) f.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function resolveBucket(bytes: Buffer, duplicates: Duplicate[], digest: ReturnType<typeof createHash>): void {
  const n = bytes.length / ENTRY_BYTES;
  if (n === 0) return;
  if (n > MAX_BUCKET_ENTRIES) throw new Error(`more than ${MAX_BUCKET_ENTRIES * BUCKETS} ids: the duplicate check's buckets are full`);
  const word = (i: number, w: number) => bytes.readUInt32BE(i * ENTRY_BYTES + 4 * w);
  const line = (i: number) => bytes.readUInt32LE(i * ENTRY_BYTES + HASH_BYTES);
  // Entries were appended in line order, so the entry index breaks ties in favour of the first row.
  const keys = new Float64Array(n);
  for (let i = 0; i < n; i++) keys[i] = word(i, 0) * MAX_BUCKET_ENTRIES + i;
  keys.sort();
  const order = Array.from(keys, (k) => k % MAX_BUCKET_ENTRIES);
  // Runs that share the first word (a few per bucket) are ordered by the rest of the hash, then by line.
  for (let s = 0; s < n; ) {
    let e = s + 1;
    while (e < n && word(order[e]!, 0) === word(order[s]!, 0)) e++;
    if (e - s > 1) {
      // A run can be one id repeated on a million rows: copied back, never spread as arguments.
      const run = order.slice(s, e).sort((a, b) => word(a, 1) - word(b, 1) || word(a, 2) - word(b, 2) || word(a, 3) - word(b, 3) || a - b);
      for (let i = 0; i < run.length; i++) order[s + i] = run[i]!;
    }
    s = e;
  }
  const sameHash = (a: number, b: number) => bytes.compare(bytes, b * ENTRY_BYTES, b * ENTRY_BYTES + HASH_BYTES, a * ENTRY_BYTES, a * ENTRY_BYTES + HASH_BYTES) === 0;
  let first = -1;
  for (const i of order) {
    if (first >= 0 && sameHash(first, i)) {
      duplicates.push({ line: line(i), firstLine: line(first), firstKeptIndex: bytes.readInt32LE(first * ENTRY_BYTES + HASH_BYTES + 4), keptIndex: bytes.readInt32LE(i * ENTRY_BYTES + HASH_BYTES + 4), reason: bytes.readUInt32LE(i * ENTRY_BYTES + HASH_BYTES + 8) });
      continue;
    }
    first = i;
    if (bytes.readInt32LE(i * ENTRY_BYTES + HASH_BYTES + 4) >= 0) digest.update(bytes.subarray(i * ENTRY_BYTES, i * ENTRY_BYTES + HASH_BYTES));
  }
}
