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
import { ckksCipher, plaintextCipher, type VerticalCipher } from '../src/vertical/cipher.js';
import { PartyModel, type Alignment } from '../src/vertical/party-model.js';
import { holdoutOfDigest } from '../src/data/split.js';
import type { StepRequest, VerticalSetup } from '../src/wire/messages.js';
import { PartyChannel, type PartyIo } from './vertical-channel.js';
import { BatchTrainer, guestBatch, hostBatch } from '../src/vertical/lr/batch.js';
import { guestBinning, hostBinning } from '../src/vertical/lr/binning.js';
import { guestValidate, hostValidate } from '../src/vertical/lr/validate.js';
import { guestFinalize, hostFinalize } from '../src/vertical/lr/finalize.js';
import { guestScorecard, hostScorecard } from '../src/vertical/lr/scorecard.js';
import { guestEvaluate, hostEvaluate, type GuestEvaluation } from '../src/vertical/lr/evaluate.js';
import { freshTrainingState, fromProgress, progressOf, restore, snapshot, type Progress, type StepStart, type TrainingState } from '../src/vertical/lr/state.js';
import { JOB_FILES, JobFolder, validationScoresFile } from './job-store.js';
import { exportPrivateKey, importPrivateKey, rawX25519PublicKey, type BoxKeyPair } from '../src/crypto/sealed-box.js';
import { decodeMessage, encodeMessage } from '../src/wire/proto.js';
import type { BinCounts } from '../src/credit/binning.js';
import type { Scorecard } from '../src/credit/scorecard.js';
import { scorecardToPmml } from '../src/credit/pmml.js';
import { modelInputs, type BinnedFeature, type IvRow } from '../src/vertical/binning.js';
import { binningWarnings } from '../src/credit/settle.js';

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

export class VerticalParty extends PartyChannel {
  /** The data owner's consent.share_statistics: its feature statistics go into the job's record when the job asks. */
  shareStatistics = false;
  private cipher?: VerticalCipher;
  private engine?: CkksEngine;
  private alignment?: Alignment;
  private model?: PartyModel;
  private labels?: { train: Float64Array; validation: Float64Array; test: Float64Array };
  private classWeights = { negative: 1, positive: 1 };
  /** What the running step began from: a retry of it restores this. */
  private stepStart?: StepStart;
  /** Whether the last thing saved is the end of the last step (endStep), with no step begun since. */
  private savedStepEnd = false;
  private readonly state: TrainingState = freshTrainingState();
  /** After the binning step: this party's features with their bins, WOE and IV (the model uses the selected ones). */
  private binned?: BinnedFeature[];
  /** Guest: the IV of every party's features. */
  private ivTable?: IvRow[];
  /** Guest: rows and defaults per final bin of every host feature (what the binning step taught it). */
  private hostCounts: Record<string, BinCounts> = {};
  private modelFeatures: string[];
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
    if (retry && this.stepStart) restore(this.stepStart, this.model, this.state);
    else this.stepStart = snapshot(this.model, this.state);
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

  /** The state around the current step (src/vertical/lr/state.ts), saved for a restart. */
  private saveProgress(done: boolean): void {
    if (!this.model) return;
    this.folder.write(JOB_FILES.progress, JSON.stringify(progressOf(this.current, this.stepStart, this.model, this.state, done)));
  }

  private loadProgress(p: Progress): void {
    this.current = { step: p.step, attempt: p.attempt };
    this.stepStart = fromProgress(p, this.model!, this.state);
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
  // Validation, the chosen epoch, the scorecard and evaluation (src/vertical/lr/)

  private async validate(step: number, attempt: number, epoch: number): Promise<Record<string, unknown>> {
    const inputs = { model: this.model!, rows: this.alignment!.validation, epoch };
    const port = this.port(step, attempt);
    if (this.role === 'host') return hostValidate(this.state, port, inputs);
    const { report, scores } = await guestValidate(this.state, port, { ...inputs, labels: this.labels!.validation, patience: this.spec.training.patience });
    this.folder.write(validationScoresFile(epoch), new Uint8Array(scores.buffer, scores.byteOffset, scores.byteLength));
    return report;
  }

  private finalize(epoch: number): Record<string, unknown> {
    // Training is over: free the batches' encoded columns (and a next batch made ahead, if training stopped early).
    this.batchTrainer?.release();
    const inputs = { jobId: this.id, org: this.org, role: this.role, features: this.modelFeatures, model: this.model!, binned: this.binned, binning: this.spec.binning };
    const validation = () => {
      const bytes = this.folder.read(validationScoresFile(epoch));
      return { scores: new Float64Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)), labels: this.labels!.validation };
    };
    const done = this.role === 'guest' ? guestFinalize(this.state, inputs, epoch, validation) : hostFinalize(this.state, inputs, epoch);
    this.folder.write(JOB_FILES.modelPart, JSON.stringify(done.part, null, 2));
    this.log.info({ job: this.id, epoch, file: this.folder.path(JOB_FILES.modelPart) }, 'model part kept (it never leaves this node)');
    return done.report;
  }

  /** Each party keeps its points; the guest writes the assembled scorecard as JSON and PMML. */
  private async makeScorecard(step: number, attempt: number): Promise<Record<string, unknown>> {
    const card = this.spec.scorecard!;
    const inputs = { card, binning: this.spec.binning!, model: this.model!, binned: this.binned! };
    const port = this.port(step, attempt);
    if (this.role === 'host') {
      const { kept, report } = await hostScorecard(port, inputs);
      this.folder.write(JOB_FILES.scorecardPart, JSON.stringify(kept, null, 2));
      return report;
    }
    const made = await guestScorecard(this.state, port, { ...inputs, hostCounts: this.hostCounts });
    this.folder.write(JOB_FILES.scorecardPart, JSON.stringify(made.kept, null, 2));
    this.scorecard = made.scorecard;
    this.folder.write(JOB_FILES.scorecard, made.json);
    this.folder.write(JOB_FILES.scorecardPmml, scorecardToPmml(made.scorecard, { modelName: this.spec.name, reasonCodes: card.reason_codes, notHeldParties: this.hosts }));
    this.log.info({ job: this.id, file: this.folder.path(JOB_FILES.scorecardPmml) }, 'scorecard written (JSON and PMML)');
    return made.report;
  }

  private async evaluate(step: number, attempt: number): Promise<Record<string, unknown>> {
    const inputs = { model: this.model!, rows: this.alignment!.test, fairness: this.spec.fairness, groups: this.data.groups };
    const port = this.port(step, attempt);
    if (this.role === 'host') return hostEvaluate(port, inputs);
    const done = await guestEvaluate(this.state, port, { ...inputs, labels: this.labels!.test, ids: this.data.ids, cutoff: this.spec.evaluation.decline_cutoff, scorecard: this.scorecard });
    this.folder.write(JOB_FILES.testScores, done.testScores);
    if (done.evaluation) this.writeModelReport(done.evaluation, done.fairness);
    return done.report;
  }

  /** The guest's material for `fedcredit report` (aggregates; the held-out scores are in test-scores.csv beside it). */
  private writeModelReport(evaluation: NonNullable<GuestEvaluation['evaluation']>, fairness?: GuestEvaluation['fairness']): void {
    const report = {
      job: { id: this.id, name: this.spec.name, purpose: this.spec.purpose, guest: this.org, hosts: this.hosts, finishedAt: new Date().toISOString() },
      evaluation,
      validationAuc: this.state.validationCurve,
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
