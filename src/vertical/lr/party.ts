/**
 * One party of a vertical LR job after its rows are aligned: the step switch. It holds the party's model, its
 * training state and what binning taught it, runs each step's guest or host side over a PeerPort, and hands what
 * the party keeps (model part, scorecard, held-out scores, reports) to its LrKeeper. It writes no file and knows no
 * transport: the participant composes it with a gRPC port and a job folder, the in-memory harness with memory ones.
 *
 * A step re-run with a higher attempt (after a party came back) restarts from the snapshot taken when the step
 * began (beginStep), so a retried step computes exactly what the first attempt would have.
 */
import type { VerticalJobSpec } from '../../config/schemas.js';
import type { BinCounts } from '../../credit/binning.js';
import type { Scorecard, ScorecardPart } from '../../credit/scorecard.js';
import { binningWarnings } from '../../credit/settle.js';
import type { LoadedDataset } from '../../data/csv.js';
import { ErrorCode, FedcreditError } from '../../errors.js';
import type { CkksEngine } from '../../he/engine.js';
import type { Logger } from '../../log.js';
import { modelInputs, type BinnedFeature, type IvRow } from '../binning.js';
import type { VerticalCipher } from '../cipher.js';
import { PartyModel, type Alignment, type ModelPart } from '../party-model.js';
import { BatchTrainer, guestBatch, hostBatch } from './batch.js';
import { guestBinning, hostBinning, type BinnedStatistics } from './binning.js';
import { guestEvaluate, hostEvaluate, type GuestEvaluation } from './evaluate.js';
import { epochChoiceWarning, guestFinalize, hostFinalize } from './finalize.js';
import type { PeerPort } from './port.js';
import { guestScorecard, hostScorecard } from './scorecard.js';
import { freshTrainingState, fromProgress, progressOf, restore, snapshot, type Progress, type StepStart, type TrainingState } from './state.js';
import { guestValidate, hostValidate } from './validate.js';
import { trainingPlan } from './schedule.js';

/** What a party keeps of binning, to rejoin after a restart. */
export interface KeptBinning {
  features: BinnedFeature[];
  iv: IvRow[] | null;
  hostCounts?: Record<string, BinCounts>;
  warnings?: string[];
}

/** The guest's material for `fedcredit report` (aggregates; the held-out scores are kept beside it). */
export interface ModelReport {
  job: { id: string; name: string; purpose: string; guest: string; hosts: readonly string[]; finishedAt: string };
  evaluation: NonNullable<GuestEvaluation['evaluation']>;
  validationAuc: { epoch: number; auc: number }[];
  iv?: IvRow[];
  binningWarnings?: string[];
  ivThresholds?: { caution: number; leakage: number };
  fairness?: GuestEvaluation['fairness'];
  calibrationWarning?: string;
}

/** What a party keeps of its steps: the participant writes each to its job folder; the in-memory harness holds them. */
export interface LrKeeper {
  statistics(statistics: BinnedStatistics[]): void;
  binning(kept: KeptBinning): void;
  validationScores(epoch: number, scores: Float64Array): void;
  /** The guest's validation scores of `epoch`, as validationScores kept them. */
  keptValidationScores(epoch: number): Float64Array;
  modelPart(part: ModelPart): void;
  scorecardPart(part: ScorecardPart): void;
  /** The assembled scorecard (guest) and its JSON as the report's digest covers it. */
  scorecard(card: Scorecard, json: string, hosts: readonly string[]): void;
  testScores(csv: string): void;
  modelReport(report: ModelReport): void;
}

export interface LrPartyOptions {
  jobId: string;
  org: string;
  spec: VerticalJobSpec;
  /** The columns this party brings to the job. */
  features: string[];
  /** The party's rows (loaded when first needed). */
  data: () => LoadedDataset;
  /** The CKKS engine binning uses (made when first needed). */
  engine: () => Promise<CkksEngine>;
  keeper: LrKeeper;
  log: Logger;
}

/** A step as the coordinator asks for it. */
export interface LrStep {
  step: string;
  epoch: number;
  batch: number;
  argsJson: string;
}

export class LrParty {
  readonly role: 'guest' | 'host';
  /** The data owner's consent.share_statistics: its feature statistics go into the job's record when the job asks. */
  shareStatistics = false;
  /** The job's cipher (the arbiter's CKKS keys, or the plaintext comparison scheme): set before the first batch. */
  cipher?: VerticalCipher;
  private alignment?: Alignment;
  private model?: PartyModel;
  private labels?: { train: Float64Array; validation: Float64Array; test: Float64Array };
  private classWeights = { negative: 1, positive: 1 };
  /** What the running step began from: a retry of it restores this. */
  private stepStart?: StepStart;
  private readonly state: TrainingState = freshTrainingState();
  /** After the binning step: this party's features with their bins, WOE and IV (the model uses the selected ones). */
  private binned?: BinnedFeature[];
  /** Guest: the IV of every party's features. */
  private ivTable?: IvRow[];
  /** Guest: rows and defaults per final bin of every host feature (what the binning step taught it). */
  private hostCounts: Record<string, BinCounts> = {};
  private modelFeatures: string[];
  private scorecard?: Scorecard;
  /** The training of the model as it stands: made when the first batch needs it, dropped with the model. */
  private batchTrainer?: BatchTrainer;

  constructor(private readonly opts: LrPartyOptions) {
    this.role = opts.spec.guest === opts.org ? 'guest' : 'host';
    this.modelFeatures = opts.features;
  }

  private get spec(): VerticalJobSpec {
    return this.opts.spec;
  }

  private get data(): LoadedDataset {
    return this.opts.data();
  }

  /** The rows the PSI aligned, in the order all parties share: the model is built on the training rows. */
  setAlignment(a: Alignment): void {
    this.alignment = a;
    this.buildModel();
    if (this.role === 'guest') {
      const y = this.data.y!;
      const pick = (rows: Uint32Array) => Float64Array.from(rows, (r) => y[r]!);
      this.labels = { train: pick(a.train), validation: pick(a.validation), test: pick(a.test) };
      const positives = this.labels.train.reduce((s, v) => s + v, 0);
      const n = this.labels.train.length;
      if (positives === 0 || positives === n) {
        throw new FedcreditError(
          ErrorCode.JOB_FAILED,
          `the aligned training rows hold only one class (${positives} defaults of ${n})`,
          'a credit model needs both defaults and non-defaults among the shared enterprises',
        );
      }
      this.classWeights = this.spec.training.class_weight === 'balanced' ? { negative: n / (2 * (n - positives)), positive: n / (2 * positives) } : { negative: 1, positive: 1 };
    }
  }

  /** Binning as the party kept it (a restart after the binning step). */
  restoreBinning(kept: KeptBinning): void {
    this.binned = kept.features;
    this.ivTable = kept.iv ?? undefined;
    this.hostCounts = kept.hostCounts ?? {};
    this.buildModel();
  }

  restoreScorecard(card: Scorecard): void {
    this.scorecard = card;
  }

  /** The party's model on its features as they stand: all of them standardised, or after binning the selected ones (as WOE when the job says so). */
  private buildModel(): void {
    this.batchTrainer?.dispose();
    this.batchTrainer = undefined;
    const input = modelInputs(this.data, this.opts.features, this.binned, this.spec.binning?.woe_transform ?? false);
    this.modelFeatures = input.features;
    this.model = new PartyModel(
      input.data,
      input.featureIdx,
      this.alignment!.train,
      input.standardise ? this.spec.training.clip : 0,
      this.role === 'guest',
      input.standardise,
      this.spec.training.winsorize,
    );
  }

  /** Before a step: a retry of the step that ran last restores where it began; any other step snapshots it. */
  beginStep(retry: boolean): void {
    if (retry && this.stepStart) restore(this.stepStart, this.model, this.state);
    else this.stepStart = snapshot(this.model, this.state);
  }

  /** Commitment to the party's model state after a step (empty before it has a model). */
  digest(): Uint8Array {
    return this.model ? this.model.digest() : new Uint8Array();
  }

  /** The state around step `at` (undefined before the party has a model), for the participant to save. */
  progress(at: { step: number; attempt: number }, done: boolean): Progress | undefined {
    return this.model ? progressOf(at, this.stepStart, this.model, this.state, done) : undefined;
  }

  loadProgress(p: Progress): void {
    this.stepStart = fromProgress(p, this.model!, this.state);
  }

  /** Run one step at this party; the result is the step's report (counts and metrics only). */
  async run(req: LrStep, port: PeerPort): Promise<Record<string, unknown>> {
    this.refuseOffSchedule(req);
    switch (req.step) {
      case 'bin':
        return this.bin(port);
      case 'scorecard':
        return this.makeScorecard(port);
      case 'batch':
        await (this.role === 'guest' ? guestBatch : hostBatch)(this.trainer, port, req.epoch, req.batch);
        return {};
      case 'validate':
        return this.validate(port, req.epoch);
      case 'finalize':
        return this.finalize(JSON.parse(req.argsJson).epoch as number);
      case 'evaluate':
        return this.evaluate(port);
      default:
        throw new FedcreditError(ErrorCode.PROTOCOL, `a training job has no ${req.step} step`, 'upgrade the coordinator and participants to the same version');
    }
  }

  /**
   * A training step outside the job's schedule (an epoch beyond training.epochs, a mini-batch beyond the epoch's)
   * is a coordinator deviating from the job: each extra validation would hand the guest more sums of the hosts'
   * scores. The party refuses it, naming the step.
   */
  private refuseOffSchedule(req: LrStep): void {
    if (req.step !== 'batch' && req.step !== 'validate' && req.step !== 'finalize') return;
    const epoch = req.step === 'finalize' ? Number(JSON.parse(req.argsJson).epoch) : req.epoch;
    const plan = trainingPlan(this.spec.training, this.alignment?.train.length ?? 0);
    const off =
      !Number.isInteger(epoch) || epoch < 1 || epoch > plan.epochs
        ? `epoch ${epoch}; the job has epochs 1 to ${plan.epochs}`
        : req.step === 'batch' && (!Number.isInteger(req.batch) || req.batch < 0 || req.batch >= plan.batches)
          ? `mini-batch ${req.batch} of epoch ${epoch}; an epoch has mini-batches 0 to ${plan.batches - 1}`
          : undefined;
    if (off) {
      throw new FedcreditError(
        ErrorCode.PROTOCOL,
        `the coordinator asked ${this.opts.org} for a ${req.step} step of ${off} (training.epochs, training.batch_size)`,
        "the coordinator deviates from the job's schedule: stop the job and report it to the coordinator's operator",
      );
    }
  }

  /** The binning step: this party keeps what it learned and the owner's records of it. */
  private async bin(port: PeerPort): Promise<Record<string, unknown>> {
    const spec = this.spec.binning!;
    const inputs = { spec, features: this.opts.features, data: this.data, train: this.alignment!.train, labels: this.labels?.train, engine: await this.opts.engine() };
    const facts = this.role === 'guest' ? await guestBinning(inputs, port) : await hostBinning(inputs, port);
    // The owner's own record of its features on the job's training rows; shared only if its policy allows.
    this.opts.keeper.statistics(facts.statistics);
    this.binned = facts.binned;
    if (facts.ivTable) this.ivTable = facts.ivTable;
    if (this.role === 'guest') this.hostCounts = facts.hostCounts;
    const warnings = facts.warnings;
    for (const warning of warnings) this.opts.log.warn({ job: this.opts.jobId, warning }, 'binning lost the information of a feature');
    this.opts.keeper.binning({ features: this.binned, iv: this.ivTable ?? null, hostCounts: this.hostCounts, warnings });
    this.buildModel();
    const share = this.spec.statistics && this.shareStatistics;
    return {
      features: this.opts.features.length,
      model_features: this.modelFeatures.length,
      ...(this.ivTable ? { iv: this.ivTable, warnings } : {}),
      statistics: share ? facts.statistics : 'kept by the data owner',
    };
  }

  /** This party's trainer for the model as it stands (made again whenever the model is). */
  private get trainer(): BatchTrainer {
    this.batchTrainer ??= new BatchTrainer({
      role: this.role,
      cipher: this.cipher!,
      model: this.model!,
      training: this.spec.training,
      train: this.alignment!.train,
      ...(this.role === 'guest' ? { labels: { y: this.data.y!, classWeights: this.classWeights } } : {}),
      log: this.opts.log.child({ job: this.opts.jobId }),
    });
    return this.batchTrainer;
  }

  private async validate(port: PeerPort, epoch: number): Promise<Record<string, unknown>> {
    const inputs = { model: this.model!, rows: this.alignment!.validation, epoch };
    if (this.role === 'host') return hostValidate(this.state, port, inputs);
    const { report, scores } = await guestValidate(this.state, port, { ...inputs, labels: this.labels!.validation, patience: this.spec.training.patience });
    this.opts.keeper.validationScores(epoch, scores);
    return report;
  }

  private finalize(epoch: number): Record<string, unknown> {
    // Training is over: free the batches' encoded columns (and a next batch made ahead, if training stopped early).
    this.batchTrainer?.release();
    const inputs = { jobId: this.opts.jobId, org: this.opts.org, role: this.role, features: this.modelFeatures, model: this.model!, binned: this.binned, binning: this.spec.binning };
    const validation = () => ({ scores: this.opts.keeper.keptValidationScores(epoch), labels: this.labels!.validation });
    const done = this.role === 'guest' ? guestFinalize(this.state, inputs, epoch, validation, this.spec.training.validation_fraction) : hostFinalize(this.state, inputs, epoch);
    this.opts.keeper.modelPart(done.part);
    const warning = done.report.validation_warning;
    if (typeof warning === 'string') this.opts.log.warn({ job: this.opts.jobId, warning }, 'the validation rows are too few to choose the epoch');
    return done.report;
  }

  /** Each party keeps its points; the guest keeps the assembled scorecard. */
  private async makeScorecard(port: PeerPort): Promise<Record<string, unknown>> {
    const inputs = { card: this.spec.scorecard!, binning: this.spec.binning!, model: this.model!, binned: this.binned! };
    if (this.role === 'host') {
      const { kept, report } = await hostScorecard(port, inputs);
      this.opts.keeper.scorecardPart(kept);
      return report;
    }
    const made = await guestScorecard(this.state, port, { ...inputs, hostCounts: this.hostCounts });
    this.opts.keeper.scorecardPart(made.kept);
    this.scorecard = made.scorecard;
    this.opts.keeper.scorecard(made.scorecard, made.json, port.hosts);
    return made.report;
  }

  private async evaluate(port: PeerPort): Promise<Record<string, unknown>> {
    const inputs = { model: this.model!, rows: this.alignment!.test, fairness: this.spec.fairness, groups: this.data.groups };
    if (this.role === 'host') return hostEvaluate(port, inputs);
    const done = await guestEvaluate(this.state, port, { ...inputs, labels: this.labels!.test, ids: this.data.ids, cutoff: this.spec.evaluation.decline_cutoff, scorecard: this.scorecard });
    this.opts.keeper.testScores(done.testScores);
    if (done.evaluation) {
      const binning = this.spec.binning;
      this.opts.keeper.modelReport({
        job: { id: this.opts.jobId, name: this.spec.name, purpose: this.spec.purpose, guest: this.opts.org, hosts: port.hosts, finishedAt: new Date().toISOString() },
        evaluation: done.evaluation,
        validationAuc: this.state.validationCurve,
        ...(this.ivTable ? { iv: this.ivTable, binningWarnings: binningWarnings(this.ivTable, binning!.iv_threshold) } : {}),
        ...(binning ? { ivThresholds: { caution: binning.caution_iv, leakage: binning.leakage_iv } } : {}),
        ...(done.fairness ? { fairness: done.fairness } : {}),
        ...(this.state.calibrationWarning ? { calibrationWarning: this.state.calibrationWarning } : {}),
        ...this.validationWarning(),
      });
    }
    return done.report;
  }

  /** The kept epoch's validation warning for the report, as the finalize step gave it (epochChoiceWarning). */
  private validationWarning(): { validationWarning?: string } {
    const warning = epochChoiceWarning(this.state, this.labels!.validation, this.state.best.epoch, this.spec.training.validation_fraction);
    return warning ? { validationWarning: warning } : {};
  }

  dispose(): void {
    this.batchTrainer?.dispose();
  }
}
