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
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { VerticalJobSpec } from '../src/config/schemas.js';
import type { LoadedDataset } from '../src/data/csv.js';
import { ErrorCode, FedcreditError } from '../src/errors.js';
import type { Logger } from '../src/log.js';
import { CkksEngine, VERTICAL_CKKS_PARAMS } from '../src/he/ckks.js';
import { idReport } from '../src/psi/ids.js';
import { GuestPsi } from '../src/psi/stream.js';
import { FileAppender, readRecordPieces } from '../src/data/row-store.js';
import { auc, ks } from '../src/metrics.js';
import { evaluateCredit } from '../src/evaluation.js';
import { ckksCipher, plaintextCipher, type VerticalCipher } from '../src/vertical/cipher.js';
import { fitCalibration, modelPartDigest, PartyModel, type Alignment, type ModelPart } from '../src/vertical/party-model.js';
import { holdoutOfDigest } from '../src/data/split.js';
import type { StepRequest, VerticalSetup } from '../src/wire/messages.js';
import { PartyChannel, type PartyIo } from './vertical-channel.js';
import { BatchTrainer, guestBatch, hostBatch } from '../src/vertical/lr/batch.js';
import { guestBinning, hostBinning } from '../src/vertical/lr/binning.js';
import { JOB_FILES, JobFolder, validationScoresFile } from './job-store.js';
import { exportPrivateKey, importPrivateKey, rawX25519PublicKey, type BoxKeyPair } from '../src/crypto/sealed-box.js';
import { decodeMessage, encodeMessage } from '../src/wire/proto.js';
import type { BinCounts } from '../src/credit/binning.js';
import { assembleScorecard, basePoints, featurePoints, scoreRange, type Scorecard, type ScorecardFeature, type ScorecardPart } from '../src/credit/scorecard.js';
import { scorecardToPmml } from '../src/credit/pmml.js';
import { fairnessByGroup } from '../src/evaluation.js';
import { json, layoutOf, modelInputs, parseJson, type BinnedFeature, type IvRow } from '../src/vertical/binning.js';
import { binningWarnings, featureBinning } from '../src/credit/settle.js';

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
  /** The job's folder on this node: every file the job keeps. */
  private readonly folder: JobFolder;
  /** The training of the model as it stands: made when the first batch needs it, dropped with the model. */
  private batchTrainer?: BatchTrainer;

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
    this.folder = new JobFolder(jobDir);
    this.modelFeatures = features;
    if (!box) this.folder.write(JOB_FILES.boxKey, exportPrivateKey(this.box.privateKey));
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
    const folder = new JobFolder(jobDir);
    const aligned = folder.psiPath('aligned');
    const alignedDone = join(aligned, ALIGNED_DONE);
    const afterPsi = !(folder.has(JOB_FILES.alignedIds) && folder.has(JOB_FILES.progress)) && existsSync(alignedDone);
    if (!folder.has(JOB_FILES.boxKey) || !folder.has(JOB_FILES.setup) || (!afterPsi && !(folder.has(JOB_FILES.alignedIds) && folder.has(JOB_FILES.progress)))) return undefined;
    const privateKey = importPrivateKey(folder.read(JOB_FILES.boxKey).toString('utf8'));
    const box = { privateKey, publicKey: rawX25519PublicKey(privateKey) };
    const job = new VerticalParty(id, spec, org, source, features, io, log, jobDir, box);
    await job.install(decodeMessage<VerticalSetup>('VerticalSetup', folder.read(JOB_FILES.setup)));
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
    for (const line of folder.read(JOB_FILES.alignedIds).toString('utf8').trim().split('\n').slice(1)) {
      const comma = line.lastIndexOf(',');
      parts[line.slice(comma + 1)]!.push(rowOf.get(line.slice(0, comma))!);
    }
    job.setAlignment({ train: Uint32Array.from(parts.train!), validation: Uint32Array.from(parts.validation!), test: Uint32Array.from(parts.test!) }, false);
    if (folder.has(JOB_FILES.binning)) {
      const saved = folder.readJson<{ features: BinnedFeature[]; iv: IvRow[] | null; hostCounts?: Record<string, BinCounts> }>(JOB_FILES.binning);
      job.binned = saved.features;
      job.ivTable = saved.iv ?? undefined;
      job.hostCounts = saved.hostCounts ?? {};
      job.buildModel();
    }
    if (folder.has(JOB_FILES.scorecard)) job.scorecard = folder.readJson<Scorecard>(JOB_FILES.scorecard);
    job.loadProgress(folder.readJson<Progress>(JOB_FILES.progress));
    return job;
  }

  override async install(setup: VerticalSetup): Promise<void> {
    await super.install(setup);
    this.folder.write(JOB_FILES.setup, encodeMessage('VerticalSetup', setup));
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
    if (aligned) this.folder.removePsi();
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
    this.folder.write(JOB_FILES.progress, JSON.stringify(progress));
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
        await (this.role === 'guest' ? guestBatch : hostBatch)(this.trainer, this.port(step, req.attempt), req.epoch, req.batch);
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
    const dir = this.folder.psiPath('aligned');
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
    this.batchTrainer?.dispose();
    this.batchTrainer = undefined;
    const input = modelInputs(this.data, this.features, this.binned, this.spec.binning?.woe_transform ?? false);
    this.modelFeatures = input.features;
    this.model = new PartyModel(input.data, input.featureIdx, this.alignment!.train, input.standardise ? this.spec.training.clip : 0, this.role === 'guest', input.standardise, this.spec.training.winsorize);
  }

  private writeAlignedIds(a: Alignment): void {
    const lines = (['train', 'validation', 'test'] as const).flatMap((part) => Array.from(a[part], (r) => `${this.data.ids[r]},${part}`));
    this.folder.write(JOB_FILES.alignedIds, `id,part\n${lines.join('\n')}\n`);
  }

  // ---------------------------------------------------------------------------------------------------------
  // Binning, WOE and IV (docs/protocol-vertical.md, "Binning, WOE and IV")

  /** The binning step (src/vertical/lr/binning.ts); this party keeps what it learned and the owner's records of it. */
  private async bin(step: number, attempt: number): Promise<Record<string, unknown>> {
    const spec = this.spec.binning!;
    const engine = (this.engine ??= await CkksEngine.create(VERTICAL_CKKS_PARAMS));
    const inputs = { spec, features: this.features, data: this.data, train: this.alignment!.train, labels: this.labels?.train, engine };
    const port = this.port(step, attempt);
    const facts = this.role === 'guest' ? await guestBinning(inputs, port) : await hostBinning(inputs, port);
    // The owner's own record of its features on the job's training rows; shared only if its policy allows.
    this.folder.write(JOB_FILES.statistics, JSON.stringify(facts.statistics, null, 2));
    this.binned = facts.binned;
    if (facts.ivTable) this.ivTable = facts.ivTable;
    if (this.role === 'guest') this.hostCounts = facts.hostCounts;
    const warnings = facts.warnings;
    for (const warning of warnings) this.log.warn({ job: this.id, warning }, 'binning lost a strong feature');
    this.folder.write(JOB_FILES.binning, JSON.stringify({ features: this.binned, iv: this.ivTable ?? null, hostCounts: this.hostCounts, warnings }, null, 2));
    this.buildModel();
    const share = this.spec.statistics && this.shareStatistics;
    return {
      features: this.features.length,
      model_features: this.modelFeatures.length,
      ...(this.ivTable ? { iv: this.ivTable, warnings } : {}),
      statistics: share ? facts.statistics : 'kept by the data owner',
    };
  }

  // ---------------------------------------------------------------------------------------------------------
  // Training (src/vertical/lr/batch.ts)

  /** This party's trainer for the model as it stands (made again whenever the model is). */
  private get trainer(): BatchTrainer {
    this.batchTrainer ??= new BatchTrainer({
      role: this.role,
      cipher: this.cipher!,
      model: this.model!,
      training: this.spec.training,
      train: this.alignment!.train,
      ...(this.role === 'guest' ? { labels: { y: this.data.y!, classWeights: this.classWeights } } : {}),
      log: this.log.child({ job: this.id }),
    });
    return this.batchTrainer;
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
    this.folder.write(validationScoresFile(epoch), new Uint8Array(z.buffer, z.byteOffset, z.byteLength));
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
    this.batchTrainer?.release();
    if (this.role === 'guest') {
      const bytes = this.folder.read(validationScoresFile(epoch));
      const z = new Float64Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
      this.calibration = fitCalibration(z, this.labels!.validation);
    }
    const part = this.modelPart(epoch);
    this.folder.write(JOB_FILES.modelPart, JSON.stringify(part, null, 2));
    this.log.info({ job: this.id, epoch, file: this.folder.path(JOB_FILES.modelPart) }, 'model part kept (it never leaves this node)');
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
    this.folder.write(JOB_FILES.scorecardPart, JSON.stringify(kept, null, 2));
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
    this.folder.write(JOB_FILES.scorecard, bytes);
    this.folder.write(JOB_FILES.scorecardPmml, scorecardToPmml(this.scorecard, { modelName: this.spec.name, reasonCodes: card.reason_codes, notHeldParties: this.hosts }));
    this.log.info({ job: this.id, file: this.folder.path(JOB_FILES.scorecardPmml) }, 'scorecard written (JSON and PMML)');
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
    this.folder.write(JOB_FILES.testScores, lines.join('\n') + '\n');
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
    this.folder.write(JOB_FILES.modelReport, JSON.stringify(report, null, 2));
  }

  override dispose(): void {
    this.batchTrainer?.dispose();
    super.dispose();
    this.engine?.dispose();
  }
}
