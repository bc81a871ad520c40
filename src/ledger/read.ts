/**
 * Read a ledger folder without judging it: every record that decodes, with its parsed body, plus what could not be
 * read. `fedcredit audit show` and `replay` use this; `verifyLedger` is what decides whether the ledger is intact.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LedgerError } from './errors.js';
import { LOG_FILE, SIGNERS_FILE, decodeSignedEntry, parseSigners, scanRecords, type DecodedEntry } from './records.js';

export type { BlobRef, DecodedEntry } from './records.js';

export interface LedgerReadEntry {
  /** The entry's own sequence number (equal to its position in an intact ledger). */
  seq: number;
  /** Position of the record in entries.log. */
  position: number;
  /** The SignedEntry bytes: the Merkle leaf data. */
  signed: Uint8Array;
  /** The encoded LedgerEntry, exactly as signed. */
  entryBytes: Uint8Array;
  signature: Uint8Array;
  entry: DecodedEntry;
  /** body_json parsed; {} if it is not a JSON object. */
  body: Record<string, unknown>;
}

export interface LedgerRead {
  entries: LedgerReadEntry[];
  /** signers.json: author → raw Ed25519 public key. Empty if the file is absent or malformed (see signersError). */
  signers: Record<string, Uint8Array>;
  signersError?: string;
  /** An incomplete final record (a write cut short by a crash). */
  torn?: { seq: number; offset: number; bytes: number };
  /** Records left out of `entries`: failing their CRC, not decoding, or framing that breaks off. */
  damaged: { position: number; offset: number; reason: string }[];
}

/** Read <dir>/entries.log and <dir>/signers.json. Throws a LedgerError ('missing') if there is no entries.log. */
export function readLedger(dir: string): LedgerRead {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(join(dir, LOG_FILE));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new LedgerError('missing', `no ledger in ${dir}: ${LOG_FILE} not found`, { seq: 0, cause: err });
    throw err;
  }
  const out: LedgerRead = { entries: [], signers: Object.create(null) as Record<string, Uint8Array>, damaged: [] };
  try {
    out.signers = parseSigners(readFileSync(join(dir, SIGNERS_FILE), 'utf8'));
  } catch (err) {
    out.signersError = `${SIGNERS_FILE}: ${(err as Error).message}`;
  }
  const scan = scanRecords(bytes);
  for (const rec of scan.records) {
    if (!rec.crcOk) {
      out.damaged.push({ position: rec.index, offset: rec.offset, reason: 'CRC-32 mismatch' });
      continue;
    }
    try {
      const d = decodeSignedEntry(rec.payload);
      out.entries.push({ seq: d.entry.seq, position: rec.index, signed: rec.payload, entryBytes: d.entryBytes, signature: d.signature, entry: d.entry, body: parseBody(d.entry.bodyJson) });
    } catch (err) {
      out.damaged.push({ position: rec.index, offset: rec.offset, reason: `not a SignedEntry: ${(err as Error).message}` });
    }
  }
  if (scan.broken) out.damaged.push({ position: scan.broken.index, offset: scan.broken.offset, reason: scan.broken.reason });
  if (scan.torn) out.torn = { seq: scan.torn.index, offset: scan.torn.offset, bytes: scan.torn.bytes };
  return out;
}

export function parseBody(json: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(json);
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
