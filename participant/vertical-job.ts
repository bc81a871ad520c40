/**
 * A participant's side of a vertical job (docs/protocol-vertical.md): PSI alignment, then per mini-batch the
 * host's encrypted partial scores or the guest's encrypted fore-gradient, and every party's masked gradient sent
 * to the arbiter; partial scores for validation and evaluation travel as pairwise-masked shares. Party-to-party
 * payloads are sealed to the recipient's per-job X25519 key, so the coordinator relays bytes it cannot open.
 *
 * Steps run one at a time. A step re-issued with a higher attempt (after a party came back) supersedes the running
 * one, whose waits are cancelled; the model is rolled back to where the step began, so a retried step computes
 * exactly what the first attempt would have.
 */
import { createHash, randomFillSync } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { VerticalJobSpec } from '../src/config/schemas.js';
import type { LoadedDataset } from '../src/data/csv.js';
import { ErrorCode, FedcreditError, errorMessage } from '../src/errors.js';
import type { Logger } from '../src/log.js';
import { CkksEngine, VERTICAL_CKKS_PARAMS, type BatchColumns } from '../src/he/ckks.js';
import { toFloat64 } from '../src/fl/vector-codec.js';
import { idReport } from '../src/psi/ids.js';
import { GuestPsi } from '../src/psi/stream.js';
import { FileAppender, readRecordPieces } from '../src/data/row-store.js';
import { auc, ks } from '../src/metrics.js';
import { evaluateCredit } from '../src/evaluation.js';
import { Rng, seededShuffle } from '../src/random.js';
import { ckksCipher, plaintextCipher, type PreparedGradient, type VerticalCipher } from '../src/vertical/cipher.js';
import { fitCalibration, modelPartDigest, PartyModel, type Alignment, type ModelPart } from '../src/vertical/party-model.js';
import { holdoutOfDigest } from '../src/data/split.js';
import type { StepRequest, VerticalSetup } from '../src/wire/messages.js';
import { PartyChannel, PSI_DIR, Superseded, type PartyIo } from './vertical-channel.js';
import { BOX_KEY_FILE, PROGRESS_FILE, SETUP_FILE, validationScoresFile } from './job-store.js';
import { exportPrivateKey, importPrivateKey, rawX25519PublicKey, type BoxKeyPair } from '../src/crypto/sealed-box.js';
import { decodeMessage, encodeMessage } from '../src/wire/proto.js';
import { MODEL_REPORT_FILE, SCORECARD_FILE, TEST_SCORES_FILE } from '../src/paths.js';
import { binAssignments, binCount, binCounts, binTotals, quantileEdges, applyMerge, mergeCounts, type BinCounts, type ImposedTrend } from '../src/credit/binning.js';
import { featureStatistics } from '../src/credit/statistics.js';
import { assembleScorecard, basePoints, featurePoints, scoreRange, type Scorecard, type ScorecardFeature, type ScorecardPart } from '../src/credit/scorecard.js';
import { scorecardToPmml } from '../src/credit/pmml.js';
import { fairnessByGroup } from '../src/evaluation.js';
import { columnGroups, encryptLabels, hostLabelSums, openLabelSums } from '../src/vertical/label-sums.js';
import { featureColumn, frame, json, layoutOf, modelInputs, parseJson, unframe, type BinnedFeature, type IvRow } from '../src/vertical/binning.js';
import { binningConflict, binningWarnings, featureBinning, settleBins, settleCategoryBins } from '../src/credit/settle.js';

const ALIGNED_PARTS = ['train', 'validation', 'test'] as const;
const ALIGNED_BUFFER = 64 * 1024;

/** Where a vertical party's rows come from: its ids, streamed for the PSI, and all its rows once aligned. */
export interface PartyData {
  ids(): Iterable<readonly [string, number]>;
  load(): LoadedDataset;
  /** Changes whenever a row would hold another id: aligned rows kept across a restart are valid only if it matches. */
  rowsDigest(): string;
}

/** What the PSI step leaves beside its aligned rows, so that a node restarted before the next step can rejoin. */
const ALIGNED_DONE = 'done.json';
interface AlignedDone {
  step: number;
  attempt: number;
  rowsDigest: string;
}

/** Files a vertical job keeps in its folder so that it can rejoin after a restart (all mode 0600; JobStore.end deletes them). */
const BOX_KEY = BOX_KEY_FILE;
const SETUP = SETUP_FILE;
const PROGRESS = PROGRESS_FILE;
const BINNING = 'binning.json';

/**
 * What a party keeps of its batches' encoded columns across epochs (16 diagonals of 128 KiB for up to 16 columns:
 * 2 MiB per batch, so 64 batches of 4,096 rows); batches past it are encoded again every epoch.
 */
const KEPT_COLUMNS_BYTES = 128 * 2 ** 20;

interface SavedSnapshot {
  weights: number[];
  m: number[];
  v: number[];
  t: number;
}

/** The best epoch so far by validation AUC, and the epochs since it. */
interface Best {
  epoch: number;
  auc: number;
  stale: number;
}


interface Progress {
  step: number;
  attempt: number;
  before: SavedSnapshot | null;
  bestBefore: Best;
  after: SavedSnapshot | null;
  bestAfter: Best | null;
  epochWeights: Record<string, number[]>;
  calibration: { a: number; b: number } | null;
  validationCurve?: { epoch: number; auc: number }[];
}

/** Edges k + 0.5 between `numericBins` positions: stand-ins for a host's fine bins (the guest merges bins by
 * position, never seeing the host's cut points), and the fine bins of a categorical column (a level's code k falls
 * in bin k). */
const ordinalEdges = (numericBins: number): number[] => Array.from({ length: Math.max(0, numericBins - 1) }, (_, i) => i + 0.5);

/** What the guest tells a host about each of its features after binning. */
interface HostBinResult {
  feature: string;
  /** Fine bins of each final bin: contiguous runs for a number (null: fine bins kept), sets of levels for a category. */
  groups: number[][] | null;
  woe: number[];
  iv: number;
  fineIv: number;
  trend?: ImposedTrend;
  selected: boolean;
}

/**
 * Encode a gradient's plaintexts one per turn of the event loop until done, so that a message arriving meanwhile
 * waits for one encoding (~0.6 ms) at most; maskedGradient encodes whatever is left when [[d]] comes first.
 */
function encodeAhead(input: PreparedGradient): void {
  if (encoding.has(input)) return;
  encoding.add(input);
  const next = () => {
    try {
      if (input.encodeNext()) setImmediate(next);
    } catch {
      // Only a head start: the job ended (engine gone) or the input is spent. maskedGradient encodes what is missing
      // and reports any real error in its step.
    }
  };
  setImmediate(next);
}
const encoding = new WeakSet<PreparedGradient>();

/**
 * Run a computation in steps with a turn of the event loop between them (see CkksEngine.maskedGradientSteps),
 * stopping (and freeing what the steps hold) as soon as a newer attempt of the step has begun.
 */
async function stepsWithPauses<T>(steps: Generator<void, T, void>, stillCurrent: () => boolean): Promise<T> {
  try {
    for (;;) {
      const next = steps.next();
      if (next.done) return next.value;
      await new Promise((resolve) => setImmediate(resolve));
      if (!stillCurrent()) throw new Superseded('superseded by a newer attempt');
    }
  } finally {
    steps.return(undefined as never);
  }
}

/** What a party needs for one batch of training besides [[d]]. */
interface BatchWork {
  epoch: number;
  batch: number;
  rows: Uint32Array;
  /** One mask value per slot, drawn for this batch only. */
  mask: Float64Array;
  input: PreparedGradient;
  /** A host's encrypted partial scores and the weights they were computed with. */
  partial?: { weights: Float64Array; bytes: Uint8Array };
}

export class VerticalParty extends PartyChannel {
  /** The data owner's consent.share_statistics: its feature statistics go into the job's record when the job asks. */
  shareStatistics = false;
  private cipher?: VerticalCipher;
  private engine?: CkksEngine;
  private alignment?: Alignment;
  private model?: PartyModel;
  private labels?: { train: Float64Array; validation: Float64Array; test: Float64Array };
  private classWeights = { negative: 1, positive: 1 };
  private stepStart?: { state?: ReturnType<PartyModel['snapshot']>; best: Best };
  /** Whether the last thing saved is the end of the last step (endStep), with no step begun since. */
  private savedStepEnd = false;
  private readonly epochWeights = new Map<number, Float64Array>();
  private best: Best = { epoch: 0, auc: -1, stale: 0 };
  private calibration?: { a: number; b: number };
  /** After the binning step: this party's features with their bins, WOE and IV (the model uses the selected ones). */
  private binned?: BinnedFeature[];
  /** Guest: the IV of every party's features. */
  private ivTable?: IvRow[];
  /** Guest: rows and defaults per final bin of every host feature (what the binning step taught it). */
  private hostCounts: Record<string, BinCounts> = {};
  private modelFeatures: string[];
  private validationCurve: { epoch: number; auc: number }[] = [];
  private scorecard?: Scorecard;
  /** The PSI step's folder of aligned rows, read when the next step begins (so the PSI itself never loads the rows). */
  private alignedDir?: string;
  /** The next batch's work, begun at the end of the batch before. */
  private nextBatch?: BatchWork;
  /** The training rows in the order the fixed batch partition cuts them (batchRows). */
  private partition?: Uint32Array;
  private epochOrder?: { epoch: number; order: Uint32Array };
  /** Columns of batches (by id in the partition) kept with their encoded diagonals for later epochs. */
  private readonly keptColumns = new Map<number, BatchColumns>();
  private keptColumnsBytes = 0;
  /** The batch being trained, whose gradient input dispose() must free if the job ends in the middle. */
  private inFlight?: BatchWork;
  private disposed = false;

  constructor(
    id: string,
    readonly spec: VerticalJobSpec,
    org: string,
    private readonly source: PartyData,
    readonly features: string[],
    io: PartyIo,
    log: Logger,
    jobDir: string,
    box?: BoxKeyPair,
  ) {
    super(id, org, spec.guest, io, log, jobDir, spec.training.step_timeout_s * 1000, box);
    this.modelFeatures = features;
    if (!box) writeFileSync(join(jobDir, BOX_KEY), exportPrivateKey(this.box.privateKey), { mode: 0o600 });
  }

  /** The party's rows in memory: loaded when the first step after the PSI needs them. */
  private get data(): LoadedDataset {
    return this.source.load();
  }

  /**
   * Rebuild a job this node was running when it stopped (crash or restart), from what it kept in the job folder:
   * its per-job key, the job's keys, the aligned ids and the model state around the last step. Undefined when the
   * job had not got that far (it then cannot rejoin).
   */
  static async restore(id: string, spec: VerticalJobSpec, org: string, source: PartyData, features: string[], io: PartyIo, log: Logger, jobDir: string): Promise<VerticalParty | undefined> {
    const files = [BOX_KEY, SETUP, 'aligned-ids.csv', PROGRESS].map((f) => join(jobDir, f));
    const aligned = join(jobDir, PSI_DIR, 'aligned');
    const alignedDone = join(aligned, ALIGNED_DONE);
    const afterPsi = !files.slice(2).every((f) => existsSync(f)) && existsSync(alignedDone);
    if (!files.slice(0, 2).every((f) => existsSync(f)) || (!afterPsi && !files.every((f) => existsSync(f)))) return undefined;
    const privateKey = importPrivateKey(readFileSync(files[0]!, 'utf8'));
    const box = { privateKey, publicKey: rawX25519PublicKey(privateKey) };
    const job = new VerticalParty(id, spec, org, source, features, io, log, jobDir, box);
    await job.install(decodeMessage<VerticalSetup>('VerticalSetup', readFileSync(files[1]!)));
    if (afterPsi) {
      // Stopped between the PSI step and the next: the aligned rows are on disk, valid if the rows are the same.
      const done = JSON.parse(readFileSync(alignedDone, 'utf8')) as AlignedDone;
      if (done.rowsDigest !== source.rowsDigest()) {
        log.warn({ job: id }, 'the data changed since the job aligned its rows; it cannot rejoin');
        return undefined;
      }
      job.alignedDir = aligned;
      job.current = { step: done.step, attempt: done.attempt };
      log.info({ job: id, step: done.step }, 'vertical job restored after its PSI; rejoining');
      return job;
    }
    const rowOf = new Map(job.data.ids.map((v, r) => [v, r]));
    const parts: Record<string, number[]> = { train: [], validation: [], test: [] };
    for (const line of readFileSync(files[2]!, 'utf8').trim().split('\n').slice(1)) {
      const comma = line.lastIndexOf(',');
      parts[line.slice(comma + 1)]!.push(rowOf.get(line.slice(0, comma))!);
    }
    job.setAlignment({ train: Uint32Array.from(parts.train!), validation: Uint32Array.from(parts.validation!), test: Uint32Array.from(parts.test!) }, false);
    const binning = join(jobDir, BINNING);
    if (existsSync(binning)) {
      const saved = JSON.parse(readFileSync(binning, 'utf8')) as { features: BinnedFeature[]; iv: IvRow[] | null; hostCounts?: Record<string, BinCounts> };
      job.binned = saved.features;
      job.ivTable = saved.iv ?? undefined;
      job.hostCounts = saved.hostCounts ?? {};
      job.buildModel();
    }
    const card = join(jobDir, SCORECARD_FILE);
    if (existsSync(card)) job.scorecard = JSON.parse(readFileSync(card, 'utf8')) as Scorecard;
    job.loadProgress(JSON.parse(readFileSync(files[3]!, 'utf8')) as Progress);
    return job;
  }

  override async install(setup: VerticalSetup): Promise<void> {
    await super.install(setup);
    writeFileSync(join(this.jobDir, SETUP), encodeMessage('VerticalSetup', setup), { mode: 0o600 });
    if (this.spec.encryption.scheme === 'ckks') {
      this.engine ??= await CkksEngine.create(VERTICAL_CKKS_PARAMS);
      this.engine.requireFingerprint(setup.paramsFingerprint, 'the arbiter');
      this.cipher = ckksCipher(this.engine, setup.ckksPublicKey, setup.galoisKeys);
    } else {
      this.cipher = plaintextCipher;
    }
  }

  protected beginStep(_step: number, retry: boolean, kind: string): void {
    const aligned = kind !== 'psi' ? this.alignedDir : undefined;
    if (aligned) this.loadAlignment(aligned);
    if (retry && this.stepStart) {
      if (this.stepStart.state) this.model?.restore(this.stepStart.state);
      this.best = { ...this.stepStart.best };
    } else {
      this.stepStart = { state: this.model?.snapshot(), best: { ...this.best } };
    }
    // The file already holds the state a new step starts from when the step before saved its end and nothing
    // happened since: a node restarted now rejoins from there, as it would from a save made here.
    if (retry || aligned || !this.savedStepEnd) this.saveProgress(false);
    this.savedStepEnd = false;
    // Only now that the job can rejoin from its own record are the PSI's files no longer needed.
    if (aligned) rmSync(join(this.jobDir, PSI_DIR), { recursive: true, force: true });
  }

  protected override endStep(): void {
    this.saveProgress(true);
    this.savedStepEnd = true;
  }

  /**
   * The model state at the start of the current step and, once it has run, after it: a node restarted mid-job
   * re-runs the step from the first, or goes on from the second if the federation moved on.
   */
  private saveProgress(done: boolean): void {
    if (!this.model) return;
    const snap = (s: ReturnType<PartyModel['snapshot']>) => ({ weights: Array.from(s.weights), m: Array.from(s.m), v: Array.from(s.v), t: s.t });
    const progress: Progress = {
      step: this.current.step,
      attempt: this.current.attempt,
      before: this.stepStart?.state ? snap(this.stepStart.state) : null,
      bestBefore: { ...(this.stepStart?.best ?? this.best) },
      after: done ? snap(this.model.snapshot()) : null,
      bestAfter: done ? { ...this.best } : null,
      epochWeights: Object.fromEntries([...this.epochWeights].map(([e, w]) => [e, Array.from(w)])),
      calibration: this.calibration ?? null,
      validationCurve: this.validationCurve,
    };
    const file = join(this.jobDir, PROGRESS);
    writeFileSync(`${file}.tmp`, JSON.stringify(progress), { mode: 0o600 });
    renameSync(`${file}.tmp`, file);
  }

  private loadProgress(p: Progress): void {
    const snap = (s: SavedSnapshot) => ({ weights: Float64Array.from(s.weights), m: Float64Array.from(s.m), v: Float64Array.from(s.v), t: s.t });
    this.current = { step: p.step, attempt: p.attempt };
    this.stepStart = { state: p.before ? snap(p.before) : undefined, best: { ...p.bestBefore } };
    const now = p.after ?? p.before;
    if (now) this.model!.restore(snap(now));
    this.best = { ...(p.bestAfter ?? p.bestBefore) };
    for (const [e, w] of Object.entries(p.epochWeights)) this.epochWeights.set(Number(e), Float64Array.from(w));
    if (p.calibration) this.calibration = p.calibration;
    this.validationCurve = p.validationCurve ?? [];
    this.log.info({ job: this.id, step: p.step, attempt: p.attempt, stepDone: p.after !== null }, 'vertical job restored from its job folder; rejoining');
  }

  protected stateDigest(): Uint8Array {
    return this.model ? this.model.digest() : new Uint8Array();
  }

  protected async execute(step: number, req: StepRequest): Promise<Record<string, unknown>> {
    switch (req.step) {
      case 'psi':
        return this.psi(step, req.attempt);
      case 'bin':
        return this.bin(step, req.attempt);
      case 'scorecard':
        return this.makeScorecard(step, req.attempt);
      case 'batch':
        await this.batch(step, req.attempt, req.epoch, req.batch);
        return {};
      case 'validate':
        return this.validate(step, req.attempt, req.epoch);
      case 'finalize':
        return this.finalize(JSON.parse(req.argsJson).epoch as number);
      case 'evaluate':
        return this.evaluate(step, req.attempt);
      default:
        throw new FedcreditError(ErrorCode.PROTOCOL, `a training job has no ${req.step} step`, 'upgrade the coordinator and participants to the same version');
    }
  }

  // ---------------------------------------------------------------------------------------------------------
  // Alignment

  private async psi(step: number, attempt: number): Promise<Record<string, unknown>> {
    const ids = await this.prepareIds(this.source.ids, this.spec.alignment.id_format, step, attempt);
    const dir = join(this.jobDir, PSI_DIR, 'aligned');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (this.role === 'host') {
      const psi = await this.hostPsi(ids, step, attempt);
      const files = ALIGNED_PARTS.map((part) => new FileAppender(join(dir, `${part}.rows`), ALIGNED_BUFFER));
      let counts: number[];
      try {
        counts = await psi.receiveAlignment(this.psiLink(this.guest, step, attempt), (part, rows) => {
          if (part >= files.length || rows.some((r) => r < 0)) throw new FedcreditError(ErrorCode.PROTOCOL, 'the guest sent an alignment that does not fit a training job', 'restart the job');
          files[part]!.write(new Uint8Array(rows.buffer, rows.byteOffset, rows.byteLength));
        });
      } finally {
        for (const f of files) f.close();
        psi.remove();
      }
      if (counts.length !== files.length) throw new FedcreditError(ErrorCode.PROTOCOL, `the guest's alignment has ${counts.length} parts; a training job has ${files.length}`, 'restart the job');
      this.alignmentDone(dir, step, attempt);
      return { ...idReport(ids, this.spec.alignment.id_format), intersection: counts.reduce((a, b) => a + b, 0) };
    }
    // Guest: the enterprises every host holds, split into train / validation / test by a keyed hash of the id.
    const psi = await this.guestPsi(ids, step, attempt);
    const t = this.spec.training;
    const rowFiles = ALIGNED_PARTS.map((part) => new FileAppender(join(dir, `${part}.rows`), ALIGNED_BUFFER));
    const positionFiles = this.hosts.map((_, h) => ALIGNED_PARTS.map((part) => join(dir, `host-${h}.${part}.positions`)));
    const positionOut = positionFiles.map((files) => files.map((f) => new FileAppender(f, ALIGNED_BUFFER)));
    const counts = ALIGNED_PARTS.map(() => 0);
    const cell = Buffer.alloc(4);
    try {
      for (const m of psi.matches()) {
        if (m.positions.some((p) => p < 0)) continue;
        const part = ALIGNED_PARTS.indexOf(holdoutOfDigest(m.digest, t.seed, t.test_fraction, t.validation_fraction));
        counts[part]!++;
        cell.writeUInt32LE(m.row);
        rowFiles[part]!.write(cell);
        m.positions.forEach((p, h) => {
          cell.writeUInt32LE(p);
          positionOut[h]![part]!.write(cell);
        });
      }
    } finally {
      for (const f of [...rowFiles, ...positionOut.flat()]) f.close();
      psi.remove();
    }
    const [train, validation, test] = counts as [number, number, number];
    const total = train + validation + test;
    const min = this.spec.alignment.min_intersection;
    if (total < min) {
      const perHost = this.hosts.map((h, i) => `${h}: ${psi.sharedWithGuest[i]}`).join(', ');
      throw new FedcreditError(
        ErrorCode.JOB_FAILED,
        `the parties share ${total} enterprises, below the job's alignment.min_intersection of ${min} (shared with the guest: ${perHost})`,
        'check that every party uses the same id column and id_format, or lower alignment.min_intersection',
      );
    }
    for (const [h, host] of this.hosts.entries()) {
      await GuestPsi.sendAlignment(this.psiLink(host, step, attempt), counts, (function* () {
        for (const file of positionFiles[h]!) yield* readRecordPieces(file, 4);
      })());
    }
    for (const f of positionFiles.flat()) rmSync(f, { force: true });
    this.alignmentDone(dir, step, attempt);
    return {
      ...idReport(ids, this.spec.alignment.id_format),
      shared_with_guest: Object.fromEntries(this.hosts.map((h, i) => [h, psi.sharedWithGuest[i]])),
      host_ids: Object.fromEntries(this.hosts.map((h, i) => [h, psi.hostIds[i]])),
      intersection: total,
      train,
      validation,
      test,
    };
  }

  /** The PSI step's rows are complete in `dir`: the next step loads them, and a restarted node finds them there. */
  private alignmentDone(dir: string, step: number, attempt: number): void {
    const done: AlignedDone = { step, attempt, rowsDigest: this.source.rowsDigest() };
    writeFileSync(join(dir, ALIGNED_DONE), JSON.stringify(done), { mode: 0o600 });
    this.alignedDir = dir;
  }

  /** The aligned rows the PSI step left in `dir`. */
  private loadAlignment(dir: string): void {
    const rows = (part: string) => {
      const bytes = readFileSync(join(dir, `${part}.rows`));
      return new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4).slice();
    };
    const [train, validation, test] = ALIGNED_PARTS.map(rows) as [Uint32Array, Uint32Array, Uint32Array];
    this.alignedDir = undefined;
    this.setAlignment({ train, validation, test });
  }

  private setAlignment(a: Alignment, record = true): void {
    this.alignment = a;
    // The data owner's own record of which of its enterprises the job uses (it stays on this node).
    if (record) this.writeAlignedIds(a);
    this.buildModel();
    if (this.role === 'guest') {
      const y = this.data.y!;
      const pick = (rows: Uint32Array) => Float64Array.from(rows, (r) => y[r]!);
      this.labels = { train: pick(a.train), validation: pick(a.validation), test: pick(a.test) };
      const positives = this.labels.train.reduce((s, v) => s + v, 0);
      const n = this.labels.train.length;
      if (positives === 0 || positives === n) {
        throw new FedcreditError(ErrorCode.JOB_FAILED, `the aligned training rows hold only one class (${positives} defaults of ${n})`, 'a credit model needs both defaults and non-defaults among the shared enterprises');
      }
      this.classWeights =
        this.spec.training.class_weight === 'balanced' ? { negative: n / (2 * (n - positives)), positive: n / (2 * positives) } : { negative: 1, positive: 1 };
    }
  }

  /** The party's model on its features as they stand: all of them standardised, or after binning the selected ones (as WOE when the job says so). */
  private buildModel(): void {
    this.dropKeptColumns();
    const input = modelInputs(this.data, this.features, this.binned, this.spec.binning?.woe_transform ?? false);
    this.modelFeatures = input.features;
    this.model = new PartyModel(input.data, input.featureIdx, this.alignment!.train, input.standardise ? this.spec.training.clip : 0, this.role === 'guest', input.standardise, this.spec.training.winsorize);
  }

  private writeAlignedIds(a: Alignment): void {
    const lines = (['train', 'validation', 'test'] as const).flatMap((part) => Array.from(a[part], (r) => `${this.data.ids[r]},${part}`));
    writeFileSync(join(this.jobDir, 'aligned-ids.csv'), `id,part\n${lines.join('\n')}\n`, { mode: 0o600 });
  }

  // ---------------------------------------------------------------------------------------------------------
  // Binning, WOE and IV (docs/protocol-vertical.md, "Binning, WOE and IV")

  /**
   * Every party bins its own features on the training rows. The guest counts defaults per bin of its own features,
   * and of each host's through per-bin label sums under its own CKKS key; it settles every feature's bins (merging
   * fine bins when the job asks for optimal binning), computes WOE and IV, and tells each host the merge plan and
   * the WOE of its bins. Features below the IV threshold leave the model.
   */
  private async bin(step: number, attempt: number): Promise<Record<string, unknown>> {
    const spec = this.spec.binning!;
    const train = this.alignment!.train;
    const fineMax = spec.method === 'optimal' ? spec.fine_bins : spec.max_bins;
    const levels = this.features.map((f) => this.data.levels?.[f]);
    const conflict = binningConflict(spec, this.features.map((name, j) => ({ name, category: !!levels[j] })));
    if (conflict) throw new FedcreditError(ErrorCode.JOB_INVALID, `${conflict[0]}: ${conflict[1]}`, "correct the job's binning section and submit the job again");
    const specials = this.features.map((f, j) => (levels[j] ? [] : featureBinning(spec, f).specials));
    const columns = this.features.map((f) => featureColumn(this.data, f, train));
    // A category's fine bins are its levels (code k in bin k); a number's come from its own exact quantiles.
    const fineEdges = columns.map((v, j) => (levels[j] ? ordinalEdges(Math.max(1, levels[j]!.length)) : quantileEdges(v, fineMax, specials[j])));
    const statistics = this.features.map((f, j) => {
      const s = featureStatistics(f, columns[j]!);
      return levels[j] ? { ...s, mean: null, sd: null, min: null, max: null, levels: new Set(Array.from(columns[j]!).filter((x) => !Number.isNaN(x))).size } : s;
    });
    // The owner's own record of its features on the job's training rows; shared only if its policy allows.
    writeFileSync(join(this.jobDir, 'statistics.json'), JSON.stringify(statistics, null, 2), { mode: 0o600 });
    const engine = (this.engine ??= await CkksEngine.create(VERTICAL_CKKS_PARAMS));
    this.binned = this.role === 'guest' ? await this.guestBins(step, attempt, engine, columns, fineEdges, specials) : await this.hostBins(step, attempt, engine, columns, fineEdges, specials);
    const warnings = this.ivTable ? binningWarnings(this.ivTable, spec.iv_threshold) : [];
    for (const warning of warnings) this.log.warn({ job: this.id, warning }, 'binning lost a strong feature');
    writeFileSync(join(this.jobDir, BINNING), JSON.stringify({ features: this.binned, iv: this.ivTable ?? null, hostCounts: this.hostCounts, warnings }, null, 2), { mode: 0o600 });
    this.buildModel();
    const share = this.spec.statistics && this.shareStatistics;
    return {
      features: this.features.length,
      model_features: this.modelFeatures.length,
      ...(this.ivTable ? { iv: this.ivTable, warnings } : {}),
      statistics: share ? statistics : 'kept by the data owner',
    };
  }

  /** A categorical feature as its owner keeps it: the levels of each final bin (from the fine bins' groups). */
  private categoryBins(feature: string, levels: string[], groups: number[][], woe: number[], totals: number[], events?: number[]): Pick<BinnedFeature, 'edges' | 'categories' | 'unseen' | 'trainCounts' | 'trainEvents'> {
    const seen = groups.flat();
    if (seen.some((l) => !Number.isInteger(l) || l < 0 || l >= Math.max(1, levels.length)) || new Set(seen).size !== seen.length || woe.length !== groups.length + 1) {
      throw new FedcreditError(ErrorCode.PROTOCOL, `the guest sent a grouping of ${feature}'s levels that does not fit them`, 'restart the job');
    }
    const categories = groups.map((g) => g.map((l) => levels[l]!));
    const unseen = featureBinning(this.spec.binning!, feature).unseen;
    if (unseen !== 'neutral' && unseen !== 'reject' && !categories.some((c) => c.includes(unseen))) {
      throw new FedcreditError(
        ErrorCode.JOB_INVALID,
        `binning.features.${feature}.unseen names the level ${JSON.stringify(unseen)}, which no training row of ${feature} holds (levels: ${categories.flat().slice(0, 20).join(', ')})`,
        `name a level seen in training, or set binning.features.${feature}.unseen to neutral or reject`,
      );
    }
    const sum = (xs: number[], g: number[]) => g.reduce((n, l) => n + xs[l]!, 0);
    const missing = totals.length - 1;
    return {
      edges: [],
      categories,
      unseen,
      trainCounts: [...groups.map((g) => sum(totals, g)), totals[missing]!],
      ...(events ? { trainEvents: [...groups.map((g) => sum(events, g)), events[missing]!] } : {}),
    };
  }

  /** The guest settles one feature's final bins from its fine counts: by position, so it need not see the values. */
  private settle(feature: string, category: boolean, fine: BinCounts, specials: number): HostBinResult & { counts: BinCounts } {
    const spec = this.spec.binning!;
    if (category) {
      const s = settleCategoryBins(fine, spec, feature);
      return { feature, groups: s.groups, woe: s.woe, iv: s.iv, fineIv: s.fineIv, selected: s.iv >= spec.iv_threshold, counts: s.counts };
    }
    const numeric = fine.totals.length - 1 - specials;
    if (numeric < 1) throw new FedcreditError(ErrorCode.PROTOCOL, `${feature} came with ${fine.totals.length} fine bins, too few for its ${specials} special values`, 'run the same job spec on every party and restart the job');
    const s = settleBins(ordinalEdges(numeric), fine, spec, feature);
    return { feature, groups: s.groups, woe: s.woe, iv: s.iv, fineIv: s.fineIv, ...(s.trend ? { trend: s.trend } : {}), selected: s.iv >= spec.iv_threshold, counts: s.counts };
  }

  /** The guest settles its own features' bins from its labels, and each host's from per-bin label sums. */
  private async guestBins(step: number, attempt: number, engine: CkksEngine, columns: Float64Array[], fineEdges: number[][], specials: number[][]): Promise<BinnedFeature[]> {
    const spec = this.spec.binning!;
    const y = this.labels!.train;
    const binned: BinnedFeature[] = this.features.map((feature, j) => {
      const levels = this.data.levels?.[feature];
      const fine = binCounts(columns[j]!, y, fineEdges[j]!, specials[j]);
      const s = this.settle(feature, !!levels, fine, specials[j]!.length);
      const common = { feature, woe: s.woe, iv: s.iv, fineIv: s.fineIv, selected: s.selected };
      if (levels) return { ...common, ...this.categoryBins(feature, levels, s.groups!, s.woe, fine.totals, fine.events) };
      const edges = s.groups ? applyMerge(fineEdges[j]!, s.groups) : fineEdges[j]!;
      return { ...common, edges, ...(specials[j]!.length > 0 ? { specials: specials[j] } : {}), ...(s.trend ? { trend: s.trend } : {}), trainCounts: s.counts.totals, trainEvents: s.counts.events };
    });
    const ivRow = (party: string, b: { feature: string; iv: number; fineIv: number; trend?: ImposedTrend; selected: boolean }, bins: number, category: boolean): IvRow => ({ feature: b.feature, party, type: category ? 'category' : 'number', iv: b.iv, fineIv: b.fineIv, bins, ...(b.trend ? { trend: b.trend } : {}), selected: b.selected });
    const keys = engine.generateArbiterKeys();
    try {
      // Hosts need only the rotation keys: they multiply and rotate, never encrypt or decrypt.
      const labels = frame([keys.galoisKeys, ...encryptLabels(engine, y, keys.publicKey)]);
      await Promise.all(this.hosts.map((h) => this.send(h, 'bin.labels', step, attempt, labels)));
      const hostRows = await Promise.all(
        this.hosts.map(async (h) => {
          const [head, ...ciphers] = unframe(await this.receive(h, 'bin.sums', step, attempt));
          const sums = parseJson<{ features: string[]; totals: number[][]; groups: number[][]; categories?: boolean[] }>(head!);
          const events: number[][] = sums.features.map(() => []);
          sums.groups.forEach((group, g) => {
            const counts = openLabelSums(engine, ciphers[g]!, group.reduce((n, f) => n + sums.totals[f]!.length, 0), keys.secretKey);
            let o = 0;
            for (const f of group) {
              events[f] = counts.slice(o, o + sums.totals[f]!.length);
              o += sums.totals[f]!.length;
            }
          });
          const settled = sums.features.map((feature, f) => {
            const category = sums.categories?.[f] ?? false;
            return this.settle(feature, category, { events: events[f]!, totals: sums.totals[f]! }, category ? 0 : featureBinning(spec, feature).specials.length);
          });
          const result: HostBinResult[] = settled.map(({ counts: _, ...r }) => r);
          if (!result.some((r) => r.selected)) {
            throw new FedcreditError(
              ErrorCode.JOB_FAILED,
              `none of ${h}'s features reaches the information value threshold of ${spec.iv_threshold} (${result.map((r) => `${r.feature} ${r.iv.toFixed(4)}`).join(', ')})`,
              `lower binning.iv_threshold, or leave ${h} out of the job`,
            );
          }
          await this.send(h, 'bin.result', step, attempt, json(result));
          sums.features.forEach((feature, f) => (this.hostCounts[feature] = settled[f]!.counts));
          return result.map((r, f): IvRow => ivRow(h, r, settled[f]!.woe.length, sums.categories?.[f] ?? false));
        }),
      );
      this.ivTable = [...binned.map((b) => ivRow(this.org, { ...b, fineIv: b.fineIv ?? b.iv }, b.woe.length, !!b.categories)), ...hostRows.flat()];
    } finally {
      keys.secretKey.fill(0);
      engine.forgetSecretKey();
    }
    return binned;
  }

  /** A host sends per-bin label sums of its fine bins and applies the guest's merge plan and WOE. */
  private async hostBins(step: number, attempt: number, engine: CkksEngine, columns: Float64Array[], fineEdges: number[][], specials: number[][]): Promise<BinnedFeature[]> {
    const [galoisKeys, ...chunks] = unframe(await this.receive(this.guest, 'bin.labels', step, attempt));
    const assigned = columns.map((v, j) => binAssignments(v, fineEdges[j]!, specials[j]));
    const sizes = fineEdges.map((e, j) => binCount(e, specials[j]));
    const groups = columnGroups(sizes);
    const ciphers = groups.map((g) => hostLabelSums(engine, chunks, galoisKeys!, g.map((f) => assigned[f]!), g.map((f) => sizes[f]!)));
    const totals = fineEdges.map((edges, j) => binTotals(columns[j]!, edges, specials[j]));
    const categories = this.features.map((f) => !!this.data.levels?.[f]);
    await this.send(this.guest, 'bin.sums', step, attempt, frame([json({ features: this.features, totals, groups, categories }), ...ciphers]));
    const result = parseJson<HostBinResult[]>(await this.receive(this.guest, 'bin.result', step, attempt));
    if (result.length !== this.features.length || result.some((r, j) => r.feature !== this.features[j])) {
      throw new FedcreditError(ErrorCode.PROTOCOL, 'the guest returned bins for other features than this party sent', 'restart the job');
    }
    return result.map((r, j): BinnedFeature => {
      const common = { feature: r.feature, woe: r.woe, iv: r.iv, fineIv: r.fineIv, selected: r.selected };
      const levels = this.data.levels?.[r.feature];
      if (levels) return { ...common, ...this.categoryBins(r.feature, levels, r.groups ?? [], r.woe, totals[j]!) };
      const edges = r.groups ? applyMerge(fineEdges[j]!, r.groups) : fineEdges[j]!;
      const trainCounts = r.groups ? mergeCounts({ events: totals[j]!.map(() => 0), totals: totals[j]! }, r.groups, specials[j]!.length).totals : totals[j]!;
      if (r.woe.length !== binCount(edges, specials[j])) throw new FedcreditError(ErrorCode.PROTOCOL, `the guest sent ${r.woe.length} WOE values for ${binCount(edges, specials[j])} bins of ${r.feature}`, 'restart the job');
      return { ...common, edges, ...(specials[j]!.length > 0 ? { specials: specials[j] } : {}), ...(r.trend ? { trend: r.trend } : {}), trainCounts };
    });
  }

  // ---------------------------------------------------------------------------------------------------------
  // Training

  /**
   * The training rows of batch `id` of the job's fixed partition: the training rows shuffled once by the seed and
   * cut into batches. Every epoch visits the same batches in an order of its own (batchId), so that a party can
   * keep a batch's encoded columns from one epoch to the next.
   */
  private batchRows(id: number): Uint32Array {
    const train = this.alignment!.train;
    this.partition ??= seededShuffle(train.length, new Rng(this.spec.training.seed, 999));
    const size = this.spec.training.batch_size;
    return this.partition.subarray(id * size, Math.min(train.length, (id + 1) * size)).map((i) => train[i]!);
  }

  /** Which batch of the partition is the `position`-th of `epoch`. */
  private batchId(epoch: number, position: number): number {
    const batches = Math.ceil(this.alignment!.train.length / this.spec.training.batch_size);
    const order = this.epochOrder?.epoch === epoch ? this.epochOrder.order : seededShuffle(batches, new Rng(this.spec.training.seed, 1000 + epoch));
    this.epochOrder = { epoch, order };
    return order[position]!;
  }

  /** A batch's columns for the cipher: kept from an earlier epoch, or made now and kept while KEPT_COLUMNS_BYTES allows. */
  private batchColumns(id: number, rows: Uint32Array): BatchColumns {
    const kept = this.keptColumns.get(id);
    if (kept) return kept;
    const columns = this.cipher!.batchColumns(this.model!.columns(rows));
    if (this.keptColumnsBytes + columns.keptBytes <= KEPT_COLUMNS_BYTES) {
      columns.keep();
      this.keptColumns.set(id, columns);
      this.keptColumnsBytes += columns.keptBytes;
    }
    return columns;
  }

  private dropKeptColumns(): void {
    for (const columns of this.keptColumns.values()) columns.dispose();
    this.keptColumns.clear();
    this.keptColumnsBytes = 0;
  }

  private async batch(step: number, attempt: number, epoch: number, batch: number): Promise<void> {
    const model = this.model!;
    const cipher = this.cipher!;
    const work = this.batchWork(epoch, batch);
    const { rows, input } = work;
    const { guest, hosts } = this;
    let gradient: Float64Array;
    this.inFlight = work;
    try {
      let fore: Uint8Array;
      if (this.role === 'host') {
        await this.send(guest, 'train.partial', step, attempt, this.partialOf(work));
        // The gradient's plaintexts depend only on this party's columns: encoded while the guest forms [[d]]. So does
        // the costly part of the next batch's encryption, which needs no weights yet.
        encodeAhead(input);
        if (this.batchAfter(epoch, batch)) {
          setImmediate(() => {
            try {
              if (!this.disposed) cipher.prepareEncryption();
            } catch (err) {
              // A head start only: the next batch's encryption does all of it and reports any error in its step.
              this.log.debug({ job: this.id, err: errorMessage(err) }, 'could not prepare the next encryption ahead');
            }
          });
        }
        fore = await this.receive(guest, 'train.fore_gradient', step, attempt);
      } else {
        encodeAhead(input);
        const partials = await Promise.all(hosts.map((h) => this.receive(h, 'train.partial', step, attempt)));
        const y = this.data.y!;
        const c = Float64Array.from(rows, (r) => (y[r] === 1 ? this.classWeights.positive : this.classWeights.negative));
        const total = c.reduce((s, v) => s + v, 0);
        const ug = model.scores(rows);
        const weights = c.map((v) => v / total);
        const offset = weights.map((w, i) => w * (0.25 * ug[i]! + 0.5 - y[rows[i]!]!));
        fore = cipher.foreGradient(partials, weights, offset);
        await Promise.all(hosts.map((h) => this.send(h, 'train.fore_gradient', step, attempt, fore)));
      }
      const masked = await stepsWithPauses(cipher.maskedGradient(fore, input), () => this.current.step === step && this.current.attempt === attempt);
      input.dispose();
      gradient = await this.openGradient(step, attempt, masked, work.mask, model.weights.length);
    } finally {
      input.dispose();
      this.inFlight = undefined;
    }
    model.step(gradient, epoch - 1, {
      optimizer: this.spec.training.optimizer,
      learningRate: this.spec.training.learning_rate,
      lrDecay: this.spec.training.lr_decay,
      l2: this.spec.training.l2,
    });
    this.prepareNextBatch(step, epoch, batch);
  }

  /** The work for a batch: made ahead at the end of the batch before (prepareNextBatch), or now. */
  private batchWork(epoch: number, batch: number): BatchWork {
    const ready = this.nextBatch;
    this.nextBatch = undefined;
    if (ready && ready.epoch === epoch && ready.batch === batch) return ready;
    ready?.input.dispose();
    const id = this.batchId(epoch, batch);
    const rows = this.batchRows(id);
    const mask = this.drawMask();
    return { epoch, batch, rows, mask, input: this.cipher!.gradientInput(this.batchColumns(id, rows), mask) };
  }

  /** A host's [[0.25·u]] for the batch: the one made ahead if the weights are still those it was made with. */
  private partialOf(work: BatchWork): Uint8Array {
    const weights = this.model!.weights;
    const made = work.partial;
    if (made && made.weights.length === weights.length && made.weights.every((w, j) => w === weights[j])) return made.bytes;
    return this.cipher!.encryptPartial(this.model!.scores(work.rows).map((s) => 0.25 * s));
  }

  /**
   * Once this batch's step is reported, start on the next batch while the other parties finish theirs: its rows,
   * mask and feature diagonals depend only on this party's data and the seed, and a host's partial scores only on
   * its weights, which are final for the batch now. If the job does something else next (a step is re-run, or
   * training stops), the work is dropped.
   */
  private prepareNextBatch(step: number, epoch: number, batch: number): void {
    const next = this.batchAfter(epoch, batch);
    if (!next) return;
    const [nextEpoch, nextBatch] = next;
    const { attempt } = this.current;
    setImmediate(() => {
      if (this.current.step !== step || this.current.attempt !== attempt || this.nextBatch || this.disposed) return;
      const work = this.batchWork(nextEpoch, nextBatch);
      try {
        if (this.role === 'host') work.partial = { weights: this.model!.weights.slice(), bytes: this.partialOf(work) };
      } catch (err) {
        // A head start only: the batch itself redoes this and reports the error in its step.
        work.input.dispose();
        this.log.debug({ job: this.id, err: errorMessage(err) }, 'could not prepare the next batch ahead');
        return;
      }
      this.nextBatch = work;
      encodeAhead(work.input);
    });
  }

  /** The (epoch, batch) that training visits after this one, if any. */
  private batchAfter(epoch: number, batch: number): [number, number] | undefined {
    const batches = Math.ceil(this.alignment!.train.length / this.spec.training.batch_size);
    const next: [number, number] = batch + 1 < batches ? [epoch, batch + 1] : [epoch + 1, 0];
    return next[0] > this.spec.training.epochs ? undefined : next;
  }

  /**
   * One independent mask per slot, uniform in ±2^20 (53 random bits each): the arbiter decrypts every slot, each a
   * partial sum of X·d below 2^-4, hidden up to 2^-25 (docs/protocol-vertical.md, "What the arbiter decrypts").
   */
  private drawMask(): Float64Array {
    const cipher = this.cipher!;
    const random = new Uint32Array(2 * cipher.slots);
    randomFillSync(random);
    const mask = new Float64Array(cipher.slots);
    for (let i = 0; i < mask.length; i++) {
      const uniform = (random[2 * i]! * 2 ** 21 + (random[2 * i + 1]! >>> 11)) / 2 ** 53; // [0, 1)
      mask[i] = (2 * uniform - 1) * cipher.maskMagnitude;
    }
    return mask;
  }

  /** Xᵀd for this party's `count` columns: decrypted and summed over residue classes by the arbiter, unmasked here. */
  private async openGradient(step: number, attempt: number, masked: Uint8Array, mask: Float64Array, count: number): Promise<Float64Array> {
    await this.io.decrypt(step, attempt, masked, count);
    const values = toFloat64(await this.receiveDecrypted(step, attempt));
    if (values.length !== count) throw new FedcreditError(ErrorCode.PROTOCOL, `the arbiter returned ${values.length} values for ${count} columns`, 'restart the job');
    // The arbiter's class sums of z + m, less the same sums of m.
    return this.cipher!.unmask(values, mask);
  }

  // ---------------------------------------------------------------------------------------------------------
  // Scores: validation, evaluation

  /** The guest's full scores of `rows` (its own part plus the secure sum of the hosts'); hosts send their share. */
  private async jointScores(step: number, attempt: number, rows: Uint32Array, purpose: string): Promise<Float64Array | undefined> {
    const own = this.model!.scores(rows);
    if (this.role === 'host') {
      await this.sendScoreShare(own, step, attempt, purpose);
      return undefined;
    }
    const hostSum = await this.receiveScoreSum(own.length, step, attempt);
    return own.map((s, i) => s + hostSum[i]!);
  }

  private async validate(step: number, attempt: number, epoch: number): Promise<Record<string, unknown>> {
    this.epochWeights.set(epoch, this.model!.weights.slice());
    const z = await this.jointScores(step, attempt, this.alignment!.validation, 'validate');
    if (!z) return { epoch };
    const y = this.labels!.validation;
    const a = auc(y, z);
    const k = ks(y, z);
    this.validationCurve = [...this.validationCurve.filter((p) => p.epoch !== epoch), { epoch, auc: a }];
    writeFileSync(join(this.jobDir, validationScoresFile(epoch)), new Uint8Array(z.buffer, z.byteOffset, z.byteLength), { mode: 0o600 });
    if (a > this.best.auc + 1e-6) this.best = { epoch, auc: a, stale: 0 };
    else this.best.stale++;
    const patience = this.spec.training.patience;
    return { epoch, validation_auc: a, validation_ks: k, best_epoch: this.best.epoch, stop: patience > 0 && this.best.stale >= patience };
  }

  private finalize(epoch: number): Record<string, unknown> {
    const weights = this.epochWeights.get(epoch);
    if (!weights) throw new FedcreditError(ErrorCode.JOB_FAILED, `no weights of epoch ${epoch} on ${this.org}`, 'the participant restarted during the job; resubmit it');
    this.model!.weights = weights.slice();
    // Training is over: free the batches' encoded columns (and a next batch made ahead, if training stopped early).
    this.nextBatch?.input.dispose();
    this.nextBatch = undefined;
    this.dropKeptColumns();
    if (this.role === 'guest') {
      const bytes = readFileSync(join(this.jobDir, validationScoresFile(epoch)));
      const z = new Float64Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
      this.calibration = fitCalibration(z, this.labels!.validation);
    }
    const part = this.modelPart(epoch);
    writeFileSync(join(this.jobDir, 'model-part.json'), JSON.stringify(part, null, 2), { mode: 0o600 });
    this.log.info({ job: this.id, epoch, file: join(this.jobDir, 'model-part.json') }, 'model part kept (it never leaves this node)');
    return { epoch, part_sha256: Buffer.from(modelPartDigest(part)).toString('hex') };
  }

  modelPart(epoch: number): ModelPart {
    const m = this.model!;
    return {
      format: 'fedcredit-vertical-part/1',
      jobId: this.id,
      organisation: this.org,
      role: this.role,
      features: this.modelFeatures,
      mean: Array.from(m.mean),
      scale: Array.from(m.scale),
      clip: m.clip,
      ...(m.clipLow ? { clipLow: Array.from(m.clipLow), clipHigh: Array.from(m.clipHigh!) } : {}),
      weights: Array.from(m.weights.subarray(0, m.dim)),
      ...(this.role === 'guest' ? { intercept: m.weights[m.dim]!, calibration: this.calibration! } : {}),
      epoch,
      ...(this.binned
        ? {
            transform: this.spec.binning!.woe_transform ? ('woe' as const) : ('standardise' as const),
            bins: this.binned.filter((b) => b.selected).map((b) => ({ ...layoutOf(b), woe: b.woe, trainCounts: b.trainCounts, notHeldWoe: this.notHeldWoe(b) })),
          }
        : {}),
    };
  }

  /** WOE of an enterprise this party does not hold, at scoring (binning.not_held): neutral 0 by default. */
  private notHeldWoe(b: BinnedFeature): number {
    const notHeld = featureBinning(this.spec.binning!, b.feature).notHeld;
    return notHeld === 'neutral' ? 0 : notHeld === 'missing' ? b.woe[b.woe.length - 1]! : notHeld;
  }

  // ---------------------------------------------------------------------------------------------------------
  // Scorecard

  /**
   * Points per bin: each party turns its own coefficients and WOE into points (it needs the calibration slope,
   * which the guest sends) and keeps them; hosts send their table (bins and points, no data) to the guest, which
   * assembles the scorecard with the base points and exports it as JSON and PMML.
   */
  private async makeScorecard(step: number, attempt: number): Promise<Record<string, unknown>> {
    const card = this.spec.scorecard!;
    const scaling = { baseScore: card.base_score, baseOdds: card.base_odds, pdo: card.pdo, decimals: card.decimals };
    const weights = this.model!.weights;
    let slope: number;
    if (this.role === 'guest') {
      slope = this.calibration!.a;
      await Promise.all(this.hosts.map((h) => this.send(h, 'scorecard.slope', step, attempt, json({ a: slope }))));
    } else {
      slope = parseJson<{ a: number }>(await this.receive(this.guest, 'scorecard.slope', step, attempt)).a;
    }
    const own: ScorecardFeature[] = this.binned!.filter((b) => b.selected).map((b, j) =>
      featurePoints(b.feature, this.org, b.edges, b.woe, weights[j]!, slope, scaling, b.trainEvents ? { events: b.trainEvents, totals: b.trainCounts } : undefined, { ...layoutOf(b), notHeldWoe: this.notHeldWoe(b) }),
    );
    const kept: ScorecardPart = { reasonCodes: card.reason_codes, features: own };
    writeFileSync(join(this.jobDir, 'scorecard-part.json'), JSON.stringify(kept, null, 2), { mode: 0o600 });
    if (this.role === 'host') {
      await this.send(this.guest, 'scorecard.part', step, attempt, json(own));
      return { features: own.length };
    }
    const hostParts = await Promise.all(this.hosts.map(async (h) => parseJson<ScorecardFeature[]>(await this.receive(h, 'scorecard.part', step, attempt))));
    // The rows and default rate of each host bin, which the guest learned when binning, for the bank's own table.
    const annotated = hostParts.flat().map((f) => {
      const counts = this.hostCounts[f.feature];
      if (!counts) return f;
      return { ...f, bins: f.bins.map((b) => ({ ...b, count: counts.totals[b.bin]!, ...(counts.totals[b.bin]! > 0 ? { eventRate: counts.events[b.bin]! / counts.totals[b.bin]! } : {}) })) };
    });
    const base = basePoints(weights[this.model!.dim]!, this.calibration!, scaling);
    this.scorecard = assembleScorecard(scaling, base, [...own, ...annotated]);
    const bytes = JSON.stringify(this.scorecard, null, 2);
    writeFileSync(join(this.jobDir, SCORECARD_FILE), bytes, { mode: 0o600 });
    writeFileSync(join(this.jobDir, 'scorecard.pmml'), scorecardToPmml(this.scorecard, { modelName: this.spec.name, reasonCodes: card.reason_codes, notHeldParties: this.hosts }), { mode: 0o600 });
    this.log.info({ job: this.id, file: join(this.jobDir, 'scorecard.pmml') }, 'scorecard written (JSON and PMML)');
    return { features: this.scorecard.features.length, base_points: base, score_range: scoreRange(this.scorecard), scorecard_sha256: createHash('sha256').update(bytes).digest('hex') };
  }

  private async evaluate(step: number, attempt: number): Promise<Record<string, unknown>> {
    const rows = this.alignment!.test;
    const fair = this.spec.fairness;
    if (fair && fair.party === this.org && this.role === 'host') {
      // The group of each held-out enterprise, for the guest's per-group figures (the job's fairness section, consented to).
      const groups = this.data.groups[fair.column]!;
      await this.send(this.guest, 'fairness.groups', step, attempt, json(Array.from(rows, (r) => groups[r]!)));
    }
    const z = await this.jointScores(step, attempt, rows, 'evaluate');
    if (!z) return { rows: rows.length };
    const y = this.labels!.test;
    const { a, b } = this.calibration!;
    const pd = z.map((s) => 1 / (1 + Math.exp(-(a * s + b))));
    // The guest's own record of the held-out scores, for its modellers (never sent).
    // With a scorecard, also the points: offset − factor·logit(pd) (the scorecard's sum, before its rounding).
    const card = this.scorecard;
    const points = card ? (i: number) => `,${(card.offset - card.factor * (a * z[i]! + b)).toFixed(card.scaling.decimals)}` : () => '';
    const lines = [`enterprise_id,default_12m,score,pd${card ? ',points' : ''}`];
    rows.forEach((r, i) => lines.push(`${this.data.ids[r]},${y[i]},${z[i]!.toFixed(8)},${pd[i]!.toFixed(8)}${points(i)}`));
    writeFileSync(join(this.jobDir, TEST_SCORES_FILE), lines.join('\n') + '\n', { mode: 0o600 });
    if (rows.length === 0) return { rows: 0, test_auc: null, test_ks: null };
    // Aggregates only (deciles, confusion at the cut-off, calibration bins): the bank's report, published with the model.
    const evaluation = evaluateCredit(y, pd, this.spec.evaluation.decline_cutoff);
    let fairness: ReturnType<typeof fairnessByGroup> | undefined;
    if (fair) {
      const groups = fair.party === this.org ? Array.from(rows, (r) => this.data.groups[fair.column]![r]!) : parseJson<string[]>(await this.receive(fair.party, 'fairness.groups', step, attempt));
      if (groups.length !== rows.length) throw new FedcreditError(ErrorCode.PROTOCOL, `${fair.party} sent ${groups.length} groups for ${rows.length} held-out enterprises`, 'restart the job');
      fairness = fairnessByGroup(fair.column, y, pd, groups, this.spec.evaluation.decline_cutoff, fair.max_gap);
    }
    this.writeModelReport(evaluation, fairness);
    return { rows: rows.length, test_auc: evaluation.auc, test_ks: evaluation.ks, evaluation, ...(fairness ? { fairness } : {}) };
  }

  /** The guest's material for `fedcredit report` (aggregates; the held-out scores are in test-scores.csv beside it). */
  private writeModelReport(evaluation: ReturnType<typeof evaluateCredit>, fairness?: ReturnType<typeof fairnessByGroup>): void {
    const report = {
      job: { id: this.id, name: this.spec.name, purpose: this.spec.purpose, guest: this.org, hosts: this.hosts, finishedAt: new Date().toISOString() },
      evaluation,
      validationAuc: this.validationCurve,
      ...(this.ivTable ? { iv: this.ivTable, binningWarnings: binningWarnings(this.ivTable, this.spec.binning!.iv_threshold) } : {}),
      ...(this.spec.binning ? { ivThresholds: { caution: this.spec.binning.caution_iv, leakage: this.spec.binning.leakage_iv } } : {}),
      ...(fairness ? { fairness } : {}),
    };
    writeFileSync(join(this.jobDir, MODEL_REPORT_FILE), JSON.stringify(report, null, 2), { mode: 0o600 });
  }

  override dispose(): void {
    this.disposed = true;
    this.nextBatch?.input.dispose();
    this.nextBatch = undefined;
    this.inFlight?.input.dispose();
    this.dropKeptColumns();
    super.dispose();
    this.engine?.dispose();
  }
}
