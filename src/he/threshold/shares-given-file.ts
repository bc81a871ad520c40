import { existsSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../../paths.js';
import type { SharesGiven, ShareholderMemory } from './decrypt.js';

/** A record of shares given as its file holds it: the record, and the fields kept beside it (a key's digest, say). */
export type SharesGivenRecord = SharesGiven & Record<string, unknown>;

/**
 * A shareholder's memory kept in one JSON file (a participant's job folder, the coordinator's state folder): what
 * the file holds (`given`, none if there is no file yet), and `keep`, which rewrites the file whole, atomically and
 * mode 0600, before each new share leaves. `beside` is written with every record; by default the fields other than
 * the record that the file already holds stay as they were. The one writer of collective-shares-given.json.
 */
export function sharesGivenFile(file: string, beside?: Record<string, unknown>): ShareholderMemory & { given?: SharesGivenRecord } {
  let given: SharesGivenRecord | undefined;
  if (existsSync(file)) {
    try {
      given = JSON.parse(readFileSync(file, 'utf8')) as SharesGivenRecord;
    } catch (err) {
      throw new Error(`${file} does not read: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (!Array.isArray(given?.issued)) throw new Error(`${file} is not a record of decryption shares given (no "issued" list)`);
  }
  const { issued: _issued, contributorSets: _sets, contributed: _contributed, ...kept } = given ?? { issued: [] };
  const fields = beside ?? kept;
  return {
    ...(given ? { given } : {}),
    keep: (record) => writeFileAtomic(file, JSON.stringify({ ...fields, ...record })),
  };
}
