/**
 * Errors of the audit ledger. Deliberately not FedcreditError codes: the ledger is a library an auditor may run
 * alone, and its failures are described by a `problem` (what is wrong) and, when it concerns an entry, its `seq`.
 */

/** What the verifier can find wrong with a ledger folder (docs/audit-ledger.md, "Verification"). */
export type Problem = 'changed' | 'missing' | 'reordered' | 'bad_signature' | 'blob_missing' | 'blob_mismatch' | 'receipt_mismatch' | 'torn' | 'unknown_signer';

/** Problems of the writer, in addition to the verifier's problems (which `Ledger.open` reports for a damaged log). */
export type LedgerProblem =
  | Problem
  /** The signing key file is readable by group or others. */
  | 'key_insecure'
  /** The signing key file is not an Ed25519 private key in PKCS#8 PEM. */
  | 'key_invalid'
  /** signers.json already names this author with a different public key. */
  | 'signer_conflict'
  /** Another live process holds the ledger folder's writer.lock. */
  | 'locked'
  /** append() after close(). */
  | 'closed'
  /** Writing or syncing the log failed; the ledger refuses further appends until it is reopened. */
  | 'write_failed'
  /** The event cannot be recorded as given (empty kind, non-JSON body value, bad blob). */
  | 'invalid_event';

export class LedgerError extends Error {
  readonly problem: LedgerProblem;
  /** The entry concerned, when there is one. */
  readonly seq?: number;

  constructor(problem: LedgerProblem, message: string, opts: { seq?: number; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'LedgerError';
    this.problem = problem;
    if (opts.seq !== undefined) this.seq = opts.seq;
  }
}
