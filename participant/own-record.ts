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
  error: 'error report',
  relay: 'a payload sealed to another party of a vertical job (see its kind)',
  decryptRequest: 'a masked, encrypted gradient for the arbiter to decrypt',
  stepDone: "a step report: counts or metrics, and a SHA-256 commitment to this party's model part",
};

/** What each kind of vertical-job payload is, in a data owner's words. */
export const RELAY_CONTENT: Record<string, string> = {
  'psi.host_blinded': "this party's ids, hashed with the job's salt (scoring: the model's) and blinded with its secret key (X25519), in the order of the blinded values",
  'psi.guest_blinded': "the guest's ids, hashed with the job's salt and blinded with its secret key (X25519)",
  'psi.guest_double': "the guest's blinded ids, blinded again with this party's key",
  'psi.alignment': "positions (in the host's blinded list) of the enterprises every party holds, per part of the job",
  'psi.host_set': "scoring: the count of this party's ids blinded for the model, and the SHA-256 of those blinded values",
  'psi.host_set_wanted': "scoring: whether the guest asks for the host's blinded ids (one byte: it has not kept that set)",
  'train.partial': "CKKS ciphertext of 0.25 x this party's partial scores for one mini-batch",
  'train.fore_gradient': 'CKKS ciphertext of the fore-gradient of one mini-batch',
  'score.share': 'partial scores masked pairwise with the other hosts (only their sum opens)',
  'bin.labels': "the guest's training labels, CKKS-encrypted under its own key, and its rotation keys",
  'bin.sums': "CKKS ciphertexts of the number of defaults in each bin of this party's features (each slot masked), and the number of training rows in each bin, in the clear",
  'bin.result': "for each of the host's features: which fine bins merge, the WOE of each bin, the IV, and whether it is kept",
  'scorecard.slope': "the calibration slope of the guest's model (one number)",
  'scorecard.part': "this party's scorecard: the bounds, WOE and points of the bins of each of its features (no data)",
  'fairness.groups': 'the group (data.group_columns) of each held-out enterprise, in the shared order',
  'score.points_share': 'scorecard points masked pairwise with the other hosts (only their sum opens)',
  'score.reasons': "for each scored enterprise, this party's features that cost it the most points, with the points",
  'score.feature_psi': "the stability index of each of this party's binned features on the batch (one number per feature)",
};

/** What a relayed payload kind carries; a stream's acknowledgements (`<kind>.ack`) carry nothing. */
export function relayContent(kind: string): string {
  const acked = /^(.+)\.ack$/.exec(kind);
  if (acked) return `acknowledgements that chunks of ${acked[1]} arrived (empty)`;
  return RELAY_CONTENT[kind] ?? kind;
}

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
