import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

/** The folder holding fedcredit's package.json, whether running from src/ (tests) or dist/ (the CLI). */
export function packageRoot(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'package.json');
    if (existsSync(candidate) && JSON.parse(readFileSync(candidate, 'utf8')).name === 'fedcredit') return (root = dir);
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find the fedcredit package root above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
}

export function softwareVersion(): string {
  return JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')).version as string;
}

/** A node's state folder: its row store, and the guest's rows without a label, kept for scoring only. */
export const ROWS_DIR = 'rows';
export const UNLABELLED_ROWS_DIR = 'rows-unlabelled';

/** Files a vertical job's guest keeps in its job folder for `fedcredit report`: aggregates, and its held-out scores. */
export const MODEL_REPORT_FILE = 'model-report.json';
export const TEST_SCORES_FILE = 'test-scores.csv';
export const SCORECARD_FILE = 'scorecard.json';
/** Guest, in a scoring job's folder: the batch's stability against the training job. */
export const BATCH_REPORT_FILE = 'batch-report.json';

export interface BatchReport {
  modelJob: string;
  scored: number;
  /** PSI of the batch's scores against the training job's held-out scores (null with too few). */
  scorePsi: number | null;
  /** Per party, the PSI of each of its binned features: the batch's bin shares against its training rows'. */
  featurePsi: Record<string, Record<string, number> | null>;
  /** Per host, the scored enterprises it holds no record of (scored neutral on its features; scores.csv
   * hosts_missing names the hosts per enterprise). */
  notHeld?: Record<string, number>;
}

/** Write a file whole: under a temporary name with `mode` (0600: only this user), then renamed into place, so a crash never leaves half a file. */
export function writeFileAtomic(path: string, data: Uint8Array | string, mode = 0o600): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data, { mode });
  renameSync(tmp, path);
}
