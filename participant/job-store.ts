/**
 * What a participant must keep to rejoin a running job after a crash: the job file it accepted, the features it
 * uses, and the job's CKKS keys. Kept under <state_dir>/jobs/<job id>/, the secret key with mode 0600 and never
 * logged; the secret key is deleted when the job ends.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Keys } from '../src/fl/vector-codec.js';
import { MODEL_REPORT_FILE, SCORECARD_FILE, TEST_SCORES_FILE } from '../src/paths.js';
import { PSI_DIR } from './vertical-channel.js';

export interface StoredJob {
  id: string;
  specJson: string;
  features: string[];
  keys?: Keys;
}

const SECRET = 'ckks-secret.key';
const PUBLIC = 'ckks-public.key';
/** A vertical job's files that serve only to rejoin it after a restart (participant/vertical-job.ts). */
export const BOX_KEY_FILE = 'box-x25519.pem';
export const SETUP_FILE = 'vertical-setup.bin';
export const PROGRESS_FILE = 'progress.json';
/** The guest's validation scores of an epoch, kept for the calibration of the epoch finally chosen. */
export const validationScoresFile = (epoch: number) => `validation-scores-${epoch}.f64`;
const VALIDATION_SCORES = /^validation-scores-\d+\.f64$/;

/** Every file a vertical training job keeps in its folder (JobFolder writes only these). */
export const JOB_FILES = {
  boxKey: BOX_KEY_FILE,
  setup: SETUP_FILE,
  progress: PROGRESS_FILE,
  /** The party's rows of the job by id and part: the data owner's record of which enterprises the job used. */
  alignedIds: 'aligned-ids.csv',
  /** The owner's statistics of its features on the training rows. */
  statistics: 'statistics.json',
  binning: 'binning.json',
  modelPart: 'model-part.json',
  scorecardPart: 'scorecard-part.json',
  scorecard: SCORECARD_FILE,
  scorecardPmml: 'scorecard.pmml',
  testScores: TEST_SCORES_FILE,
  modelReport: MODEL_REPORT_FILE,
} as const;
export type JobFile = (typeof JOB_FILES)[keyof typeof JOB_FILES] | ReturnType<typeof validationScoresFile>;

/**
 * A vertical job's folder on this node (mode 0700): what it reads and writes there, by the names in JOB_FILES, each
 * file written whole (temporary name, then rename) with mode 0600, so a crash never leaves half a file.
 */
export class JobFolder {
  constructor(readonly dir: string) {}

  path(name: JobFile): string {
    return join(this.dir, name);
  }

  has(name: JobFile): boolean {
    return existsSync(this.path(name));
  }

  write(name: JobFile, data: Uint8Array | string): void {
    writeAtomic(this.path(name), data, 0o600);
  }

  read(name: JobFile): Buffer {
    return readFileSync(this.path(name));
  }

  readJson<T>(name: JobFile): T {
    return JSON.parse(readFileSync(this.path(name), 'utf8')) as T;
  }

  /** The PSI's folder (PSI_DIR) or a folder inside it. */
  psiPath(...parts: string[]): string {
    return join(this.dir, PSI_DIR, ...parts);
  }

  /** The PSI's files are no longer needed. */
  removePsi(): void {
    rmSync(join(this.dir, PSI_DIR), { recursive: true, force: true });
  }
}

/** Write a file atomically (temporary name, then rename) with the given mode. */
function writeAtomic(path: string, data: Uint8Array | string, mode: number): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data, { mode });
  renameSync(tmp, path);
}

export class JobStore {
  constructor(private readonly dir: string) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  private jobDir(id: string): string {
    return join(this.dir, id);
  }

  /** The job's folder (created by save): where a vertical job keeps its model part. */
  dirOf(id: string): string {
    return this.jobDir(id);
  }

  save(job: { id: string; specJson: string; features: string[] }): void {
    mkdirSync(this.jobDir(job.id), { recursive: true, mode: 0o700 });
    writeAtomic(join(this.jobDir(job.id), 'job.json'), JSON.stringify({ id: job.id, spec: JSON.parse(job.specJson), features: job.features, state: 'running' }, null, 2), 0o600);
  }

  saveKeys(id: string, keys: Keys): void {
    writeAtomic(join(this.jobDir(id), PUBLIC), keys.publicKey, 0o600);
    if (keys.secretKey) writeAtomic(join(this.jobDir(id), SECRET), keys.secretKey, 0o600);
    if (keys.boxPrivateKey) writeAtomic(join(this.jobDir(id), BOX_KEY_FILE), keys.boxPrivateKey, 0o600);
  }

  /** The state this node recorded for a job (`running` until it ended), or undefined if it never accepted it. */
  stateOf(id: string): string | undefined {
    const file = join(this.jobDir(id), 'job.json');
    return existsSync(file) ? String(JSON.parse(readFileSync(file, 'utf8')).state) : undefined;
  }

  /**
   * The job is over: forget what served only to rejoin it (the secret CKKS key, a vertical job's per-job X25519 key,
   * its keys from the arbiter, progress and PSI files) and keep the record that it ran. A job that did not succeed
   * keeps nothing else either: its partial results (a model part of a job that failed after finalising, aligned
   * ids) are no one's to use.
   */
  end(id: string, state: string): void {
    const dir = this.jobDir(id);
    const file = join(dir, 'job.json');
    if (!existsSync(file)) return;
    const job = JSON.parse(readFileSync(file, 'utf8'));
    // A job this node saw succeed stays succeeded: no later word (a coordinator's mistake or lie) deletes its model.
    const ended = job.state === 'succeeded' ? 'succeeded' : state;
    for (const name of readdirSync(dir)) {
      const rejoinOnly = [SECRET, BOX_KEY_FILE, SETUP_FILE, PROGRESS_FILE, PSI_DIR].includes(name) || VALIDATION_SCORES.test(name);
      if (rejoinOnly || (ended !== 'succeeded' && name !== 'job.json')) rmSync(join(dir, name), { recursive: true, force: true });
    }
    if (job.state !== ended) writeAtomic(file, JSON.stringify({ ...job, state: ended }, null, 2), 0o600);
  }

  /** Jobs this node accepted and that had not ended when it stopped. */
  unfinished(): StoredJob[] {
    if (!existsSync(this.dir)) return [];
    const out: StoredJob[] = [];
    for (const id of readdirSync(this.dir)) {
      const file = join(this.jobDir(id), 'job.json');
      if (!existsSync(file)) continue;
      const job = JSON.parse(readFileSync(file, 'utf8'));
      if (job.state !== 'running') continue;
      const pub = join(this.jobDir(id), PUBLIC);
      const secret = join(this.jobDir(id), SECRET);
      const box = join(this.jobDir(id), BOX_KEY_FILE);
      const keys = existsSync(pub)
        ? { publicKey: readFileSync(pub), secretKey: existsSync(secret) ? readFileSync(secret) : undefined, boxPrivateKey: existsSync(box) ? readFileSync(box, 'utf8') : undefined }
        : undefined;
      out.push({ id, specJson: JSON.stringify(job.spec), features: job.features, keys });
    }
    return out;
  }
}
