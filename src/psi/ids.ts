/**
 * Preparing a party's join keys for private set intersection: both sides must turn the same enterprise into the
 * same string, or the intersection silently misses it.
 */
import { isValidUscc } from '../data/uscc.js';

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
    const id = normaliseId(rawIds[row]);
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
