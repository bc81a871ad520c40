/**
 * What a participant must keep to rejoin a running job after a crash: the job file it accepted, the features it
 * uses, and the job's CKKS keys. Kept under <state_dir>/jobs/<job id>/, the secret key with mode 0600 and never
 * logged; the secret key is deleted when the job ends.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Keys } from '../src/fl/vector-codec.js';
import type { ShareholderMemory } from '../src/he/threshold/decrypt.js';
import { sharesGivenFile } from '../src/he/threshold/shares-given-file.js';
import { MODEL_REPORT_FILE, SCORECARD_FILE, TEST_SCORES_FILE, writeFileAtomic } from '../src/paths.js';
import { FileAppender, readRecordPieces } from '../src/data/row-store.js';
import type { AlignedPart, AlignStore } from '../src/vertical/lr/align.js';

export interface StoredJob {
  id: string;
  specJson: string;
  features: string[];
  keys?: Keys;
  /** The job's per-job box key (PEM), kept from its acceptance on: a job stopped in its key ceremony rejoins with it. */
  boxKey?: string;
}

/** A job folder's job.json as JobStore.save wrote it (the spec as offered, unvalidated here). */
export interface AcceptedJob {
  id: string;
  spec: Record<string, unknown> & { kind?: string };
  features: string[];
  state: string;
}

/** The job.json of the job folder `jobDir`, or undefined when the node never accepted the job. */
export function readJobFile(jobDir: string): AcceptedJob | undefined {
  const file = join(jobDir, 'job.json');
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as AcceptedJob) : undefined;
}

const SECRET = 'ckks-secret.key';
const PUBLIC = 'ckks-public.key';
/** A vertical job's files that serve only to rejoin it after a restart (participant/vertical-job.ts). */
export const BOX_KEY_FILE = 'box-x25519.pem';
export const SETUP_FILE = 'vertical-setup.bin';
export const PROGRESS_FILE = 'progress.json';
/**
 * A vertical job under a collective gradient key (ckks-threshold): this party's secret share, the sums that rebuild
 * the collective keys (verticalKeysFromSums), and its record of every decryption share it gave (one per ciphertext
 * and per label, across a restart too). Kept to rejoin only.
 */
export const COLLECTIVE_FILES = { keyShare: 'collective-key-share.fcth', keySums: 'collective-keys.fcth', sharesGiven: 'collective-shares-given.json' } as const;
/** The guest's validation scores of an epoch, kept for the calibration of the epoch finally chosen. */
export const validationScoresFile = (epoch: number) => `validation-scores-${epoch}.f64`;
const VALIDATION_SCORES = /^validation-scores-\d+\.f64$/;
/** What writeFileAtomic leaves when the process dies between its write and its rename (a key share, say). */
const HALF_WRITTEN = /\.tmp-\d+$/;

/**
 * A vertical job's PSI files in its folder: the prepared ids, the PSI's working files and (training) the aligned rows
 * until the next step reads them. Removed when the job ends.
 */
export const PSI_DIR = 'psi';
/** The align step's rows of each part (`<part>.rows`), the guest's positions for each host, and ALIGNED_DONE. */
const ALIGNED_DIR = 'aligned';
/** What the align step leaves beside its aligned rows, so that a node restarted before the next step can rejoin. */
const ALIGNED_DONE = 'done.json';
const ALIGNED_BUFFER = 64 * 1024;

export interface AlignedDone {
  step: number;
  attempt: number;
  /** The party's PartyData.rowsDigest() when it aligned: the rows are valid only while it matches. */
  rowsDigest: string;
}

/** Every file a vertical training job keeps in its folder (JobFolder writes only these). */
export const JOB_FILES = {
  boxKey: BOX_KEY_FILE,
  setup: SETUP_FILE,
  progress: PROGRESS_FILE,
  ...COLLECTIVE_FILES,
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
 * file written whole (temporary name, then rename) with mode 0600, so a crash never leaves half a file; and what
 * the align step streams through, under PSI_DIR.
 */
export class JobFolder implements AlignStore {
  constructor(readonly dir: string) {}

  path(name: JobFile): string {
    return join(this.dir, name);
  }

  has(name: JobFile): boolean {
    return existsSync(this.path(name));
  }

  write(name: JobFile, data: Uint8Array | string): void {
    writeFileAtomic(this.path(name), data);
  }

  /** Delete a file of the job, if it is there. */
  remove(name: JobFile): void {
    rmSync(this.path(name), { force: true });
  }

  read(name: JobFile): Buffer {
    return readFileSync(this.path(name));
  }

  readJson<T>(name: JobFile): T {
    return JSON.parse(readFileSync(this.path(name), 'utf8')) as T;
  }

  private psiPath(...parts: string[]): string {
    return join(this.dir, PSI_DIR, ...parts);
  }

  idsFolder(): string {
    return this.psiPath('ids');
  }

  /**
   * Earlier attempts' folders go: work of a superseded attempt that is still winding down then fails on its missing
   * folder instead of writing into this attempt's files.
   */
  psiWorkFolder(attempt: number): string {
    const work = this.psiPath('work');
    rmSync(work, { recursive: true, force: true });
    return join(work, String(attempt));
  }

  clearAligned(): void {
    const dir = this.psiPath(ALIGNED_DIR);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  alignedRows(part: AlignedPart): FileAppender {
    return new FileAppender(this.psiPath(ALIGNED_DIR, `${part}.rows`), ALIGNED_BUFFER);
  }

  private positionsFile(host: number, part: AlignedPart): string {
    return this.psiPath(ALIGNED_DIR, `host-${host}.${part}.positions`);
  }

  positions(host: number, part: AlignedPart): FileAppender {
    return new FileAppender(this.positionsFile(host, part), ALIGNED_BUFFER);
  }

  readPositions(host: number, part: AlignedPart): Iterable<Uint8Array> {
    return readRecordPieces(this.positionsFile(host, part), 4);
  }

  removePositions(): void {
    const dir = this.psiPath(ALIGNED_DIR);
    for (const name of readdirSync(dir)) if (name.endsWith('.positions')) rmSync(join(dir, name), { force: true });
  }

  /** The align step's rows are complete: the next step loads them, and a restarted node finds them there. */
  writeAlignedDone(done: AlignedDone): void {
    writeFileAtomic(this.psiPath(ALIGNED_DIR, ALIGNED_DONE), JSON.stringify(done));
  }

  /** What the align step left, when it completed and no later step has begun. */
  alignedDone(): AlignedDone | undefined {
    const file = this.psiPath(ALIGNED_DIR, ALIGNED_DONE);
    return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as AlignedDone) : undefined;
  }

  /** The aligned rows of `part` the align step left. */
  readAlignedRows(part: AlignedPart): Uint32Array {
    const bytes = readFileSync(this.psiPath(ALIGNED_DIR, `${part}.rows`));
    return new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4).slice();
  }

  /** The PSI's files are no longer needed. */
  removePsi(): void {
    rmSync(join(this.dir, PSI_DIR), { recursive: true, force: true });
  }
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
    writeFileAtomic(join(this.jobDir(job.id), 'job.json'), JSON.stringify({ id: job.id, spec: JSON.parse(job.specJson), features: job.features, state: 'running' }, null, 2));
  }

  saveKeys(id: string, keys: Keys): void {
    writeFileAtomic(join(this.jobDir(id), PUBLIC), keys.publicKey);
    if (keys.secretKey) writeFileAtomic(join(this.jobDir(id), SECRET), keys.secretKey);
    if (keys.boxPrivateKey) writeFileAtomic(join(this.jobDir(id), BOX_KEY_FILE), keys.boxPrivateKey);
  }

  /** A horizontal job's per-job box key, kept when it is accepted (its peers know it), so it can rejoin its key ceremony. */
  saveBoxKey(id: string, privateKeyPem: string): void {
    writeFileAtomic(join(this.jobDir(id), BOX_KEY_FILE), privateKeyPem);
  }

  /**
   * A horizontal job's key ceremony was restarted: the CKKS keys, key share and record of shares given of the
   * abandoned attempt go (nothing was encrypted or decrypted under them).
   */
  forgetCeremony(id: string): void {
    for (const name of [SECRET, PUBLIC, COLLECTIVE_FILES.sharesGiven]) rmSync(join(this.jobDir(id), name), { force: true });
  }

  /**
   * A collective key's record of decryption shares given in a horizontal job (COLLECTIVE_FILES.sharesGiven, beside
   * the key share): what the folder holds (none before the ceremony's key step), and where each new record is
   * written whole (mode 0600) before its shares are sent. Deleted when the job ends.
   */
  sharesGiven(id: string): ShareholderMemory {
    return sharesGivenFile(join(this.jobDir(id), COLLECTIVE_FILES.sharesGiven));
  }

  /** The kind of a job this node accepted (its job file's `kind`), or undefined if it never accepted it. */
  kindOf(id: string): string | undefined {
    if (!/^[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(id)) return undefined;
    const job = readJobFile(this.jobDir(id));
    return job ? String(job.spec?.kind) : undefined;
  }

  /** The state this node recorded for a job (`running` until it ended), or undefined if it never accepted it. */
  stateOf(id: string): string | undefined {
    const job = readJobFile(this.jobDir(id));
    return job ? String(job.state) : undefined;
  }

  /**
   * The job is over: forget what served only to rejoin it (the secret CKKS key, a vertical job's per-job X25519 key,
   * its keys from the arbiter or its share of a collective key with the record of shares given, progress and PSI
   * files, and any file a crash left half written) and keep the record that it ran. A job that did not succeed keeps
   * nothing else either: its partial results (a model part of a job that failed after finalising, aligned ids) are
   * no one's to use.
   */
  end(id: string, state: string): void {
    const dir = this.jobDir(id);
    const file = join(dir, 'job.json');
    const job = readJobFile(dir);
    if (!job) return;
    // A job this node saw succeed stays succeeded: no later word (a coordinator's mistake or lie) deletes its model.
    const ended = job.state === 'succeeded' ? 'succeeded' : state;
    for (const name of readdirSync(dir)) {
      const rejoinOnly = [SECRET, BOX_KEY_FILE, SETUP_FILE, PROGRESS_FILE, PSI_DIR, ...Object.values(COLLECTIVE_FILES)].includes(name) || VALIDATION_SCORES.test(name) || HALF_WRITTEN.test(name);
      if (rejoinOnly || (ended !== 'succeeded' && name !== 'job.json')) rmSync(join(dir, name), { recursive: true, force: true });
    }
    if (job.state !== ended) writeFileAtomic(file, JSON.stringify({ ...job, state: ended }, null, 2));
  }

  /** Jobs this node accepted and that had not ended when it stopped. */
  unfinished(): StoredJob[] {
    if (!existsSync(this.dir)) return [];
    const out: StoredJob[] = [];
    for (const id of readdirSync(this.dir)) {
      const job = readJobFile(this.jobDir(id));
      if (job?.state !== 'running') continue;
      const pub = join(this.jobDir(id), PUBLIC);
      const secret = join(this.jobDir(id), SECRET);
      const box = join(this.jobDir(id), BOX_KEY_FILE);
      const keys = existsSync(pub)
        ? { publicKey: readFileSync(pub), secretKey: existsSync(secret) ? readFileSync(secret) : undefined, boxPrivateKey: existsSync(box) ? readFileSync(box, 'utf8') : undefined }
        : undefined;
      out.push({ id, specJson: JSON.stringify(job.spec), features: job.features, keys, ...(existsSync(box) ? { boxKey: readFileSync(box, 'utf8') } : {}) });
    }
    return out;
  }
}
