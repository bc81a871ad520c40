/**
 * The participant's own record, kept in its state folder so the data owner can see what left its domain without
 * trusting the coordinator:
 *   egress.jsonl         one line per message sent or received: time, job, round, kind, bytes, and what it carried
 *   receipts/<job>.receipts  the coordinator's signed tree heads (hex TreeHead, one per line), for
 *                        `fedcredit audit verify --receipts`
 *   receipts/newest.sth  the largest of them (a binary TreeHead): shown to the coordinator at every connection
 */
import { appendFileSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeTreeHead } from '../src/ledger/ledger.js';
import { verifyConsistency } from '../src/ledger/merkle.js';
import { ErrorCode, FedcreditError, errorMessage } from '../src/errors.js';
import { hex } from '../src/bytes.js';

export const NEWEST_RECEIPT_FILE = 'newest.sth';

/** What each message kind carries, in a data owner's words. Never raw values: only these leave the node. */
export const EGRESS_CONTENT: Record<string, string> = {
  hello: "organisation name, declared column names, and the newest receipt (the coordinator's own signed tree head)",
  jobAccepted: 'row counts, schema hash, id-set fingerprint, per-job public key',
  jobRefused: 'refusal reason',
  keysPublished: 'CKKS public key and secret keys sealed to each participant',
  contribution: 'encrypted vector (CKKS ciphertexts) of a secure sum',
  aggregateOpened: 'digest of the decrypted aggregate (with its values when reporter) and validation metrics (rows, AUC, loss)',
  error: "an error report: its code and text, which egress.jsonl keeps as sent (it may give counts and masked examples of this party's invalid ids)",
  relay: 'a payload sealed to another party of a vertical job (see its kind)',
  decryptRequest: 'a masked, encrypted gradient for the arbiter to decrypt',
  stepDone: "a step report: counts or metrics (the PSI step's also shows up to 3 of this party's invalid ids, masked to their first characters), and a SHA-256 commitment to this party's model part",
};

export class OwnRecord {
  private readonly egressFile: string;
  private readonly receiptsDir: string;

  constructor(readonly dir: string) {
    // The owner's record (what left its node, in which job, when) is its own: 0600 files in 0700 folders.
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.receiptsDir = join(dir, 'receipts');
    mkdirSync(this.receiptsDir, { recursive: true, mode: 0o700 });
    this.egressFile = join(dir, 'egress.jsonl');
  }

  /** One message: `bytes` is its encoded size when sent (what left the domain); null for received messages. */
  message(direction: 'sent' | 'received', jobId: string, round: number, kind: string, bytes: number | null, detail?: string): void {
    const what = direction === 'sent' ? (EGRESS_CONTENT[kind] ?? kind) + (detail ? ` (${detail})` : '') : detail;
    appendFileSync(this.egressFile, JSON.stringify({ time: new Date().toISOString(), direction, job: jobId, round, kind, bytes, what }) + '\n', { mode: 0o600 });
  }

  receipt(jobId: string, treeHead: Uint8Array): void {
    appendFileSync(join(this.receiptsDir, `${jobId || 'connection'}.receipts`), hex(treeHead) + '\n', { mode: 0o600 });
    let size: number;
    try {
      size = decodeTreeHead(treeHead).size;
    } catch {
      return; // kept in the job's file for the auditor, who reports it as unreadable
    }
    const newest = this.newestReceipt();
    if (newest && decodeTreeHead(newest).size > size) return;
    const file = join(this.receiptsDir, NEWEST_RECEIPT_FILE);
    writeFileSync(`${file}.tmp`, treeHead, { mode: 0o600 });
    renameSync(`${file}.tmp`, file);
  }

  /** The receipt covering the most entries, if any (encoded TreeHead). */
  newestReceipt(): Uint8Array | undefined {
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(join(this.receiptsDir, NEWEST_RECEIPT_FILE));
      decodeTreeHead(bytes);
    } catch {
      return undefined;
    }
    return bytes;
  }
}

/**
 * Does the coordinator's ledger (the tree head in its Welcome) extend the newest receipt this node holds? Checked
 * with the RFC 6962 consistency proof the Welcome carries, without any key; an error if it does not (the ledger was
 * cut short or rewritten), undefined if it does or there is nothing to compare.
 */
export function ledgerRollback(org: string, held: Uint8Array | undefined, treeHead: Uint8Array, proof: Uint8Array[]): FedcreditError | undefined {
  if (!held || treeHead.length === 0) return undefined;
  const mine = decodeTreeHead(held);
  let theirs: ReturnType<typeof decodeTreeHead>;
  try {
    theirs = decodeTreeHead(treeHead);
  } catch (err) {
    return new FedcreditError(ErrorCode.PROTOCOL, `the coordinator's Welcome carries a tree head that does not decode (${errorMessage(err)})`, 'upgrade the coordinator');
  }
  if (verifyConsistency(mine.size, theirs.size, mine.root, theirs.root, proof)) return undefined;
  return new FedcreditError(
    ErrorCode.LEDGER_ROLLED_BACK,
    `the coordinator's ledger (${theirs.size} entries) is not an extension of the receipt ${org} holds (${mine.size} entries, issued ${new Date(mine.unixMs).toISOString()})${theirs.size < mine.size ? ': it is shorter' : ''}; ${org} does not take part in its jobs`,
    `the coordinator's ledger was cut short or rewritten: its operator restores it from a copy that verifies against ${org}'s receipts (\`fedcredit audit verify <ledger> --receipts <this node's state folder>/receipts\`)`,
  );
}
