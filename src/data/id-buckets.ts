/**
 * Duplicate ids in a file of any size, in memory that does not grow with it: every id is hashed (16 bytes of
 * SHA-256) and spilled with its line to one of 256 buckets on disk chosen by the hash's first byte; afterwards
 * each bucket is sorted on its own. Sorting the buckets in order also yields the sorted hashes of the whole id set, whose
 * digest stands for the set in the audit ledger.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { RecordSpill, sortedOrder, SPILL_BUCKETS } from './spill.js';
import { sha256 } from '../bytes.js';

export const ID_HASH_BYTES = 16;
const HASH_BYTES = ID_HASH_BYTES;
/** hash, line, kept row index (-1 when the row was dropped), drop reason code (0 = none). */
const ENTRY_BYTES = HASH_BYTES + 12;

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
  return sha256(id).subarray(0, ID_HASH_BYTES);
}

/** SHA-256 of a normalised id: what the PSI and the held-out split use in place of the id. */
export function idDigest(normalisedId: string): Buffer {
  return sha256(normalisedId);
}

export class IdBuckets {
  private readonly spill: RecordSpill;
  private readonly entry = Buffer.alloc(ENTRY_BYTES);

  constructor(parent: string) {
    this.spill = new RecordSpill(join(parent, 'id-buckets'), ENTRY_BYTES);
  }

  /** Record an id's row, by the id's hash (idHash). */
  add(hash: Buffer, line: number, keptIndex: number, reason: number): void {
    const e = this.entry;
    hash.copy(e, 0, 0, HASH_BYTES);
    e.writeUInt32LE(line, HASH_BYTES);
    e.writeInt32LE(keptIndex, HASH_BYTES + 4);
    e.writeUInt32LE(reason, HASH_BYTES + 8);
    this.spill.add(hash[0]!, e);
  }

  /**
   * Every later occurrence of an id, in bucket order, and the SHA-256 over the sorted hashes of the ids whose first
   * row was kept. Removes the bucket files.
   */
  resolve(): { duplicates: Duplicate[]; idSetSha256: string } {
    const duplicates: Duplicate[] = [];
    const digest = createHash('sha256');
    try {
      for (let b = 0; b < SPILL_BUCKETS; b++) resolveBucket(this.spill.read(b), duplicates, digest);
    } finally {
      this.spill.remove();
    }
    return { duplicates, idSetSha256: digest.digest('hex') };
  }

  discard(): void {
    this.spill.remove();
  }
}

function resolveBucket(bytes: Buffer, duplicates: Duplicate[], digest: ReturnType<typeof createHash>): void {
  const n = bytes.length / ENTRY_BYTES;
  if (n === 0) return;
  const line = (i: number) => bytes.readUInt32LE(i * ENTRY_BYTES + HASH_BYTES);
  // Entries were appended in line order, so ties keep the first row first.
  const order = sortedOrder(bytes, ENTRY_BYTES, HASH_BYTES);
  const sameHash = (a: number, b: number) => bytes.compare(bytes, b * ENTRY_BYTES, b * ENTRY_BYTES + HASH_BYTES, a * ENTRY_BYTES, a * ENTRY_BYTES + HASH_BYTES) === 0;
  let first = -1;
  for (const i of order) {
    if (first >= 0 && sameHash(first, i)) {
      duplicates.push({
        line: line(i),
        firstLine: line(first),
        firstKeptIndex: bytes.readInt32LE(first * ENTRY_BYTES + HASH_BYTES + 4),
        keptIndex: bytes.readInt32LE(i * ENTRY_BYTES + HASH_BYTES + 4),
        reason: bytes.readUInt32LE(i * ENTRY_BYTES + HASH_BYTES + 8),
      });
      continue;
    }
    first = i;
    if (bytes.readInt32LE(i * ENTRY_BYTES + HASH_BYTES + 4) >= 0) digest.update(bytes.subarray(i * ENTRY_BYTES, i * ENTRY_BYTES + HASH_BYTES));
  }
}
