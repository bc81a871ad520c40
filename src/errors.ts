/**
 * Stable error codes. Every error a user can cause is a FedcreditError carrying one of these codes, a message
 * that names the cause, and a hint that says how to fix it. Codes are documented in docs/errors.md and asserted in
 * tests; never reuse a code for a different meaning.
 */
export const ErrorCode = {
  /** A YAML config (coordinator, participant or job) is missing, unreadable or invalid. */
  CONFIG_INVALID: 'FC_CONFIG_INVALID',
  /** A CSV file does not match the schema its config declares (missing column, delimiter, empty file). */
  DATA_SCHEMA: 'FC_DATA_SCHEMA',
  /** A cell the schema says to reject (missing or non-numeric) was found, or duplicate ids were found. */
  DATA_REJECTED: 'FC_DATA_REJECTED',
  /** A database data source cannot be reached or read: refused or lost connection, bad password, no permission. */
  DATA_SOURCE: 'FC_DATA_SOURCE',
  /** A participant declined a job (consent, columns, kinds). */
  JOB_REFUSED: 'FC_JOB_REFUSED',
  /** The job specification is inconsistent with the federation (unknown participant, schema mismatch). */
  JOB_INVALID: 'FC_JOB_INVALID',
  /** The job failed while running (too few participants, participant error). */
  JOB_FAILED: 'FC_JOB_FAILED',
  /** Ciphertext bytes are malformed, truncated, or made under other CKKS parameters. */
  CIPHERTEXT_INVALID: 'FC_CIPHERTEXT_INVALID',
  /** CKKS parameters differ between parties, or are not 128-bit secure. */
  CKKS_PARAMS: 'FC_CKKS_PARAMS',
  /** A sealed key could not be opened (wrong recipient key or tampered box). */
  KEY_UNSEAL: 'FC_KEY_UNSEAL',
  /** A key relayed by the coordinator is not signed by its owner's certificate (swapped, altered or unsigned). */
  KEY_BINDING: 'FC_KEY_BINDING',
  /** A wire message is malformed: chunks out of order or missing, bad digest, unexpected message. */
  PROTOCOL: 'FC_PROTOCOL',
  /** A peer could not be reached or went away. */
  UNAVAILABLE: 'FC_UNAVAILABLE',
  /** A job, round or artifact that does not exist was asked for. */
  NOT_FOUND: 'FC_NOT_FOUND',
  /** The caller's certificate does not carry the role the call needs. */
  PERMISSION_DENIED: 'FC_PERMISSION_DENIED',
  /** A party refused a threshold decryption share (a second share for one ciphertext or purpose, or a ciphertext of a class it does not decrypt). */
  DECRYPTION_REFUSED: 'FC_DECRYPTION_REFUSED',
  /** A party refused to restart a collective key ceremony: the key is already in use, the attempt is stale, or the job's bound on restarts is reached. */
  CEREMONY_RESTART_REFUSED: 'FC_CEREMONY_RESTART_REFUSED',
  /** The audit ledger is shorter than, or inconsistent with, a signed tree head a participant holds: it was rolled back. */
  LEDGER_ROLLED_BACK: 'FC_LEDGER_ROLLED_BACK',
  /** The audit ledger is damaged: an entry or a blob it references is missing or altered. */
  LEDGER_DAMAGED: 'FC_LEDGER_DAMAGED',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class FedcreditError extends Error {
  readonly code: ErrorCode;
  readonly hint: string;

  constructor(code: ErrorCode, message: string, hint = '', options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FedcreditError';
    this.code = code;
    this.hint = hint;
  }

  /** One line for a terminal: code, cause, and the fix. */
  describe(): string {
    return `${this.code}: ${this.message}${this.hint ? `\n  fix: ${this.hint}` : ''}`;
  }
}

export function isFedcreditError(err: unknown): err is FedcreditError {
  return err instanceof FedcreditError;
}

/** Message of any thrown value, for logs. */
export function errorMessage(err: unknown): string {
  if (err instanceof FedcreditError) return err.describe();
  if (err instanceof Error) return err.message;
  return String(err);
}

/** What to do about each file-system failure a path given on the command line can cause. */
const FILE_SYSTEM_FIXES: Record<string, string> = {
  ENOTDIR: 'a part of that path is a file, not a folder: give a path inside a folder',
  EISDIR: 'that path is a folder where a file is needed: give a file name',
  EACCES: 'the user running fedcredit may not write or read there: give a path it can use, or give it that folder',
  EPERM: 'the user running fedcredit may not write or read there: give a path it can use, or give it that folder',
  EROFS: 'that disk is read-only: give a path on a writable disk',
  ENOSPC: 'the disk is full: free space, or give a path on a disk with room',
  EDQUOT: "the user's disk quota is used up: free space, or give a path on another disk",
  ENOENT: 'that file, or a folder above it, does not exist: check the path',
};

/**
 * A file-system failure on a path the user gave (`--out`, `--data`, a folder of a command), as a FedcreditError-like
 * pair of message and fix for the command line; undefined for any other error, which stays a bug to report.
 */
export function fileSystemProblem(err: unknown): { message: string; fix: string } | undefined {
  const io = err as NodeJS.ErrnoException | undefined;
  if (!(io instanceof Error) || typeof io.code !== 'string' || typeof io.path !== 'string') return undefined;
  const fix = FILE_SYSTEM_FIXES[io.code];
  if (!fix) return undefined;
  return { message: `cannot ${io.syscall ?? 'use'} ${io.path}: ${io.code} (${io.message})`, fix };
}
