/**
 * Preparing a party's join keys for private set intersection: both sides must turn the same enterprise into the
 * same string, or the intersection silently misses it.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { FileAppender, readRecordPieces } from '../data/row-store.js';
import { RecordSpill, sortedOrder, SPILL_BUCKETS } from '../data/spill.js';
import { isValidUscc } from '../data/uscc.js';
import { idDigest } from '../data/id-buckets.js';

/** 'uscc': unified social credit codes, checked (shape and check character); 'any': any non-empty string. */
export type IdFormat = 'uscc' | 'any';

export interface IdIssues {
  count: number;
  /** At most `MAX_EXAMPLES` examples, for messages and logs. */
  examples: string[];
}

export interface PreparedIds {
  /** Normalised, valid ids, first occurrence only, in input order. */
  ids: string[];
  /** `rows[i]` is the index in the raw ids of `ids[i]`. */
  rows: Int32Array;
  /** Ids that fail the format; examples are masked. */
  invalid: IdIssues;
  /** Later occurrences of an id already seen (after normalisation); examples are distinct ids. */
  duplicates: IdIssues;
}

const MAX_EXAMPLES = 3;

/** NFKC (full-width letters and digits become ASCII), no whitespace anywhere, upper case. */
export function normaliseId(raw: string): string {
  return raw.normalize('NFKC').replace(/\s+/gu, '').toUpperCase();
}

function isValidId(id: string, format: IdFormat): boolean {
  return format === 'uscc' ? isValidUscc(id) : id.length > 0;
}

/**
 * Shows the start of an id that failed validation: it may still be a real identifier, and examples go to logs.
 * Short ids show at most half of their characters.
 */
function maskId(id: string): string {
  const chars = Array.from(id);
  if (chars.length === 0) return '(empty)';
  return chars.slice(0, Math.min(4, Math.floor(chars.length / 2))).join('') + '…';
}

function noteIssue(issues: IdIssues, example: string): void {
  issues.count++;
  if (issues.examples.length < MAX_EXAMPLES && !issues.examples.includes(example)) issues.examples.push(example);
}

/** Normalise, validate and de-duplicate a column of raw ids, keeping track of the row each id came from. */
export function prepareIds(rawIds: readonly string[], format: IdFormat): PreparedIds {
  const ids: string[] = [];
  const rows = new Int32Array(rawIds.length);
  const seen = new Set<string>();
  const invalid: IdIssues = { count: 0, examples: [] };
  const duplicates: IdIssues = { count: 0, examples: [] };
  for (let row = 0; row < rawIds.length; row++) {
    const id = normaliseId(rawIds[row]!);
    if (!isValidId(id, format)) {
      noteIssue(invalid, maskId(id));
    } else if (seen.has(id)) {
      noteIssue(duplicates, id);
    } else {
      seen.add(id);
      rows[ids.length] = row;
      ids.push(id);
    }
  }
  return { ids, rows: rows.slice(0, ids.length), invalid, duplicates };
}

/** How many ids a party reads at the offer to check the job's id format (sampleIds). */
export const ID_FORMAT_SAMPLE = 1_000;

/**
 * The first `sample` ids of a party's rows checked against `format`: how many were read, how many are valid, and
 * masked examples of the others. A party refuses an offer when none is valid (the job's id_format does not fit its
 * ids), before any key is made, instead of failing the job at the PSI.
 */
export function sampleIds(ids: Iterable<readonly [string, number]>, format: IdFormat, sample = ID_FORMAT_SAMPLE): { checked: number; valid: number; invalid: IdIssues } {
  const invalid: IdIssues = { count: 0, examples: [] };
  let checked = 0;
  for (const [raw] of ids) {
    if (checked === sample) break;
    checked++;
    const id = normaliseId(raw);
    if (!isValidId(id, format)) noteIssue(invalid, maskId(id));
  }
  return { checked, valid: checked - invalid.count, invalid };
}

/** What a party's PSI step reports of its ids: counts, and the description with masked examples. */
export function idReport(ids: PreparedIdSet, format: IdFormat): { ids: number; invalid_ids: number; duplicate_ids: number; id_report: string } {
  return { ids: ids.count, invalid_ids: ids.invalid.count, duplicate_ids: ids.duplicates.count, id_report: describeIds(ids, format) };
}

/** "8000 valid ids, 30 invalid (uscc format; e.g. 9135…), 50 duplicates after normalisation": examples are masked. */
export function describeIds(ids: PreparedIdSet, format: IdFormat): string {
  const parts = [`${ids.count} valid ids`];
  if (ids.invalid.count > 0) parts.push(`${ids.invalid.count} invalid (${format} format; e.g. ${ids.invalid.examples.join(', ')})`);
  if (ids.duplicates.count > 0) parts.push(`${ids.duplicates.count} duplicates after normalisation`);
  return parts.join(', ');
}

export const DIGEST_BYTES = 32;
/** A prepared id on disk: its digest, then the row it came from (uint32 little-endian). */
export const ID_RECORD_BYTES = DIGEST_BYTES + 4;
const IDS_FILE = 'ids.bin';
/** Ids read between turns of the event loop, so a node preparing millions of ids still answers keepalives. */
const YIELD_EVERY = 65_536;

/**
 * A party's ids prepared for PSI on disk, in memory that does not grow with them: normalised, validated, and
 * de-duplicated (first row kept), stored as (digest, row) records sorted by digest in `dir`/ids.bin.
 */
export class PreparedIdSet {
  private constructor(
    readonly dir: string,
    readonly count: number,
    readonly invalid: IdIssues,
    readonly duplicates: IdIssues,
  ) {}

  /**
   * `source()` yields each raw id with its row. Digests are spilled to buckets by their first byte, and each bucket
   * is sorted on its own. `checkpoint` is called now and then, and may throw to stop the work.
   */
  static async prepare(source: () => Iterable<readonly [string, number]>, format: IdFormat, dir: string, checkpoint: () => void = () => undefined): Promise<PreparedIdSet> {
    const invalid: IdIssues = { count: 0, examples: [] };
    const spill = new RecordSpill(join(dir, 'prepare'), ID_RECORD_BYTES);
    const record = Buffer.alloc(ID_RECORD_BYTES);
    let read = 0;
    for (const [raw, row] of source()) {
      const id = normaliseId(raw);
      if (!isValidId(id, format)) {
        noteIssue(invalid, maskId(id));
      } else {
        idDigest(id).copy(record);
        record.writeUInt32LE(row, DIGEST_BYTES);
        spill.add(record[0]!, record);
      }
      if (++read % YIELD_EVERY === 0) {
        await new Promise((resolve) => setImmediate(resolve));
        checkpoint();
      }
    }
    const out = new FileAppender(join(dir, IDS_FILE));
    let duplicateCount = 0;
    let count = 0;
    try {
      for (let b = 0; b < SPILL_BUCKETS; b++) {
        const bytes = spill.read(b);
        let kept = -1;
        for (const i of sortedOrder(bytes, ID_RECORD_BYTES, DIGEST_BYTES)) {
          const at = i * ID_RECORD_BYTES;
          // Records went in row order, so the first of equal digests is the id's first row.
          if (kept >= 0 && bytes.compare(bytes, kept, kept + DIGEST_BYTES, at, at + DIGEST_BYTES) === 0) {
            duplicateCount++;
            continue;
          }
          kept = at;
          out.write(bytes.subarray(at, at + ID_RECORD_BYTES));
          count++;
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
    } finally {
      out.close();
      spill.remove();
    }
    // Duplicates are counted, not shown: an example would be a real id in the clear.
    const duplicates: IdIssues = { count: duplicateCount, examples: [] };
    return new PreparedIdSet(dir, count, invalid, duplicates);
  }

  /** The records in digest order, about a megabyte at a time in one reused buffer (a whole number of records each). */
  pieces(): Generator<Uint8Array> {
    return readRecordPieces(join(this.dir, IDS_FILE), ID_RECORD_BYTES);
  }

  /** Every record in digest order; the digest is a view into a reused buffer. */
  *records(): Generator<{ index: number; digest: Uint8Array; row: number }> {
    let index = 0;
    for (const piece of this.pieces()) {
      const view = Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
      for (let at = 0; at < view.length; at += ID_RECORD_BYTES) {
        yield { index: index++, digest: view.subarray(at, at + DIGEST_BYTES), row: view.readUInt32LE(at + DIGEST_BYTES) };
      }
    }
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
