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
import { randomFillSync } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { VerticalJobSpec } from '../src/config/schemas.js';
import type { LoadedDataset } from '../src/data/csv.js';
import { ErrorCode, FedcreditError } from '../src/errors.js';
import type { Logger } from '../src/log.js';
import { CkksEngine, VERTICAL_CKKS_PARAMS } from '../src/he/ckks.js';
import { toFloat64 } from '../src/fl/vector-codec.js';
import type { PreparedIds } from '../src/psi/ids.js';
import { auc, ks } from '../src/metrics.js';
import { evaluateCredit } from '../src/evaluation.js';
import { Rng, seededShuffle } from '../src/random.js';
import { ckksCipher, plaintextCipher, type VerticalCipher } from '../src/vertical/cipher.js';
import { fitCalibration, modelPartDigest, PartyModel, type Alignment, type ModelPart } from '../src/vertical/party-model.js';
import { holdoutOf } from '../src/data/split.js';
import type { StepRequest, VerticalSetup } from '../src/wire/messages.js';
import { PartyChannel, type PartyIo } from './vertical-channel.js';
import { exportPrivateKey, importPrivateKey, rawX25519PublicKey, type BoxKeyPair } from '../src/crypto/sealed-box.js';
import { decodeMessage, encodeMessage } from '../src/wire/proto.js';

/** Files a vertical job keeps in its folder so that it can rejoin after a restart (all mode 0600). */
const BOX_KEY = 'box-x25519.pem';
const SETUP = 'vertical-setup.bin';
const PROGRESS = 'progress.json';

interface SavedSnapshot {
  weights: number[];
  m: number[];
  v: number[];
  t: number;
}

interface Progress {
  step: number;
  attempt: number;
  before: SavedSnapshot | null;
  bestBefore: { epoch: number; auc: number; stale: number; z: number[] };
  after: SavedSnapshot | null;
  bestAfter: { epoch: number; auc: number; stale: number; z: number[] } | null;
  epochWeights: Record<string, number[]>;
  calibration: { a: number; b: number } | null;
}

export class VerticalParty extends PartyChannel {
  private cipher?: VerticalCipher;
  private engine?: CkksEngine;
  private alignment?: Alignment;
  private model?: PartyModel;
  private labels?: { train: Float64Array; validation: Float64Array; test: Float64Array };
  private classWeights = { negative: 1, positive: 1 };
  private stepStart?: { state?: ReturnType<PartyModel['snapshot']>; best: VerticalParty['best'] };
  private readonly epochWeights = new Map<number, Float64Array>();
  private best: { epoch: number; auc: number; stale: number; z: Float64Array } = { epoch: 0, auc: -1, stale: 0, z: new Float64Array() };
  private calibration?: { a: number; b: number };
  /** Valid ids and their dataset rows, after normalisation and the check-digit test. */
  private readonly prepared: PreparedIds;

  constructor(
    id: string,
    readonly spec: VerticalJobSpec,
    org: string,
    private readonly data: LoadedDataset,
    readonly features: string[],
    io: PartyIo,
    log: Logger,
    private readonly jobDir: string,
    box?: BoxKeyPair,
  ) {
    super(id, org, spec.guest, io, log, spec.training.step_timeout_s * 1000, box);
    this.prepared = this.prepare(data.ids, spec.alignment.id_format);
    if (!box) writeFileSync(join(jobDir, BOX_KEY), exportPrivateKey(this.box.privateKey), { mode: 0o600 });
  }

  /**
   * Rebuild a job this node was running when it stopped (crash or restart), from what it kept in the job folder:
   * its per-job key, the job's keys, the aligned ids and the model state around the last step. Undefined when the
   * job had not got that far (it then cannot rejoin).
   */
  static async restore(id: string, spec: VerticalJobSpec, org: string, data: LoadedDataset, features: string[], io: PartyIo, log: Logger, jobDir: string): Promise<VerticalParty | undefined> {
    const files = [BOX_KEY, SETUP, 'aligned-ids.csv', PROGRESS].map((f) => join(jobDir, f));
    if (!files.every((f) => existsSync(f))) return undefined;
    const privateKey = importPrivateKey(readFileSync(files[0]!, 'utf8'));
    const box = { privateKey, publicKey: rawX25519PublicKey(privateKey) };
    const job = new VerticalParty(id, spec, org, data, features, io, log, jobDir, box);
    await job.install(decodeMessage<VerticalSetup>('VerticalSetup', readFileSync(files[1]!)));
    const rowOf = new Map(data.ids.map((v, r) => [v, r]));
    const parts: Record<string, number[]> = { train: [], validation: [], test: [] };
    for (const line of readFileSync(files[2]!, 'utf8').trim().split('\n').slice(1)) {
      const comma = line.lastIndexOf(',');
      parts[line.slice(comma + 1)]!.push(rowOf.get(line.slice(0, comma))!);
    }
    job.setAlignment({ train: Uint32Array.from(parts.train!), validation: Uint32Array.from(parts.validation!), test: Uint32Array.from(parts.test!) }, false);
    job.loadProgress(JSON.parse(readFileSync(files[3]!, 'utf8')) as Progress);
    return job;
  }

  get validIds(): number {
    return this.prepared.ids.length;
  }

  get idReport(): string {
    const p = this.prepared;
    const parts = [`${p.ids.length} valid ids`];
    if (p.invalid.count > 0) parts.push(`${p.invalid.count} invalid (${this.spec.alignment.id_format} format; e.g. ${p.invalid.examples.join(', ')})`);
    if (p.duplicates.count > 0) parts.push(`${p.duplicates.count} duplicates after normalisation`);
    return parts.join(', ');
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

  protected beginStep(_step: number, retry: boolean): void {
    if (retry && this.stepStart) {
      if (this.stepStart.state) this.model?.restore(this.stepStart.state);
      this.best = { ...this.stepStart.best };
    } else {
      this.stepStart = { state: this.model?.snapshot(), best: { ...this.best } };
    }
    this.saveProgress(false);
  }

  protected override endStep(): void {
    this.saveProgress(true);
  }

  /**
   * The model state at the start of the current step and, once it has run, after it: a node restarted mid-job
   * re-runs the step from the first, or goes on from the second if the federation moved on.
   */
  private saveProgress(done: boolean): void {
    if (!this.model) return;
    const snap = (s: ReturnType<PartyModel['snapshot']>) => ({ weights: Array.from(s.weights), m: Array.from(s.m), v: Array.from(s.v), t: s.t });
    const best = (b: VerticalParty['best']) => ({ ...b, z: Array.from(b.z) });
    const progress: Progress = {
      step: this.current.step,
      attempt: this.current.attempt,
      before: this.stepStart?.state ? snap(this.stepStart.state) : null,
      bestBefore: best(this.stepStart?.best ?? this.best),
      after: done ? snap(this.model.snapshot()) : null,
      bestAfter: done ? best(this.best) : null,
      epochWeights: Object.fromEntries([...this.epochWeights].map(([e, w]) => [e, Array.from(w)])),
      calibration: this.calibration ?? null,
    };
    const file = join(this.jobDir, PROGRESS);
    writeFileSync(`${file}.tmp`, JSON.stringify(progress), { mode: 0o600 });
    renameSync(`${file}.tmp`, file);
  }

  private loadProgress(p: Progress): void {
    const snap = (s: SavedSnapshot) => ({ weights: Float64Array.from(s.weights), m: Float64Array.from(s.m), v: Float64Array.from(s.v), t: s.t });
    const best = (b: Progress['bestBefore']) => ({ ...b, z: Float64Array.from(b.z) });
    this.current = { step: p.step, attempt: p.attempt };
    this.stepStart = { state: p.before ? snap(p.before) : undefined, best: best(p.bestBefore) };
    const now = p.after ?? p.before;
    if (now) this.model!.restore(snap(now));
    this.best = best(p.bestAfter ?? p.bestBefore);
    for (const [e, w] of Object.entries(p.epochWeights)) this.epochWeights.set(Number(e), Float64Array.from(w));
    if (p.calibration) this.calibration = p.calibration;
    this.log.info({ job: this.id, step: p.step, attempt: p.attempt, stepDone: p.after !== null }, 'vertical job restored from its job folder; rejoining');
  }

  protected stateDigest(): Uint8Array {
    return this.model ? this.model.digest() : new Uint8Array();
  }

  protected async execute(step: number, req: StepRequest): Promise<Record<string, unknown>> {
    switch (req.step) {
      case 'psi':
        return this.psi(step, req.attempt);
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
    if (this.role === 'host') {
      const [train, validation, test] = (await this.hostAlign(this.prepared, step, attempt)).map((rows) => Uint32Array.from(rows));
      this.setAlignment({ train: train!, validation: validation!, test: test! });
      return { ids: this.prepared.ids.length, invalid_ids: this.prepared.invalid.count, intersection: train!.length + validation!.length + test!.length };
    }
    // Guest: the enterprises every host holds, split into train / validation / test by a keyed hash of the id.
    const matches = await this.guestMatch(this.prepared.ids, step, attempt);
    const t = this.spec.training;
    const sets: Record<'train' | 'validation' | 'test', number[]> = { train: [], validation: [], test: [] };
    for (let i = 0; i < this.prepared.ids.length; i++) {
      if (matches.some((m) => m.match[i]! < 0)) continue;
      sets[holdoutOf(this.prepared.ids[i]!, t.seed, t.test_fraction, t.validation_fraction)].push(i);
    }
    const total = sets.train.length + sets.validation.length + sets.test.length;
    const min = this.spec.alignment.min_intersection;
    if (total < min) {
      const perHost = matches.map((m) => `${m.host}: ${m.match.filter((j) => j >= 0).length}`).join(', ');
      throw new FedcreditError(
        ErrorCode.JOB_FAILED,
        `the parties share ${total} enterprises, below the job's alignment.min_intersection of ${min} (shared with the guest: ${perHost})`,
        'check that every party uses the same id column and id_format, or lower alignment.min_intersection',
      );
    }
    const parts = [sets.train, sets.validation, sets.test];
    for (const m of matches) await this.sendAlignment(m.host, parts.map((p) => p.map((i) => m.match[i]!)), step, attempt);
    const rows = (list: number[]) => Uint32Array.from(list, (i) => this.prepared.rows[i]!);
    this.setAlignment({ train: rows(sets.train), validation: rows(sets.validation), test: rows(sets.test) });
    return {
      ids: this.prepared.ids.length,
      invalid_ids: this.prepared.invalid.count,
      shared_with_guest: Object.fromEntries(matches.map((m) => [m.host, m.match.filter((j) => j >= 0).length])),
      host_ids: Object.fromEntries(matches.map((m) => [m.host, m.hostIds])),
      intersection: total,
      train: sets.train.length,
      validation: sets.validation.length,
      test: sets.test.length,
    };
  }

  private setAlignment(a: Alignment, record = true): void {
    this.alignment = a;
    // The data owner's own record of which of its enterprises the job uses (it stays on this node).
    if (record) this.writeAlignedIds(a);
    const featureIdx = this.features.map((f) => this.data.features.indexOf(f));
    this.model = new PartyModel(this.data, featureIdx, a.train, this.spec.training.clip, this.role === 'guest');
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

  private writeAlignedIds(a: Alignment): void {
    const lines = (['train', 'validation', 'test'] as const).flatMap((part) => Array.from(a[part], (r) => `${this.data.ids[r]},${part}`));
    writeFileSync(join(this.jobDir, 'aligned-ids.csv'), `id,part\n${lines.join('\n')}\n`, { mode: 0o600 });
  }

  // ---------------------------------------------------------------------------------------------------------
  // Training

  private batchRows(epoch: number, batch: number): Uint32Array {
    const train = this.alignment!.train;
    const order = seededShuffle(train.length, new Rng(this.spec.training.seed, 1000 + epoch));
    const size = this.spec.training.batch_size;
    return order.subarray(batch * size, Math.min(train.length, (batch + 1) * size)).map((i) => train[i]!);
  }

  private async batch(step: number, attempt: number, epoch: number, batch: number): Promise<void> {
    const model = this.model!;
    const cipher = this.cipher!;
    const rows = this.batchRows(epoch, batch);
    const { guest, hosts } = this;
    let fore: Uint8Array;
    if (this.role === 'host') {
      const u = model.scores(rows).map((s) => 0.25 * s);
      await this.send(guest, 'train.partial', step, attempt, cipher.encryptPartial(u));
      fore = await this.receive(guest, 'train.fore_gradient', step, attempt);
    } else {
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
    const gradient = await this.maskedGradient(step, attempt, fore, model.columns(rows));
    model.step(gradient, epoch - 1, {
      optimizer: this.spec.training.optimizer,
      learningRate: this.spec.training.learning_rate,
      lrDecay: this.spec.training.lr_decay,
      l2: this.spec.training.l2,
    });
  }

  /**
   * Xᵀd for this party's columns: masked slot by slot, decrypted and summed over residue classes by the arbiter,
   * unmasked here.
   */
  private async maskedGradient(step: number, attempt: number, fore: Uint8Array, columns: Float64Array[]): Promise<Float64Array> {
    const cipher = this.cipher!;
    // One independent mask per slot, uniform in ±2^20 (53 random bits each): the arbiter decrypts every slot, each
    // a partial sum of X·d below 2^-4, hidden up to 2^-25 (docs/protocol-vertical.md, "What the arbiter decrypts").
    const random = new Uint32Array(2 * cipher.slots);
    randomFillSync(random);
    const mask = new Float64Array(cipher.slots);
    for (let i = 0; i < mask.length; i++) {
      const uniform = (random[2 * i]! * 2 ** 21 + (random[2 * i + 1]! >>> 11)) / 2 ** 53; // [0, 1)
      mask[i] = (2 * uniform - 1) * cipher.maskMagnitude;
    }
    const masked = cipher.maskedGradient(fore, columns, mask);
    await this.io.decrypt(step, attempt, masked, columns.length);
    const values = toFloat64(await this.receiveDecrypted(step, attempt));
    if (values.length !== columns.length) throw new FedcreditError(ErrorCode.PROTOCOL, `the arbiter returned ${values.length} values for ${columns.length} columns`, 'restart the job');
    // The arbiter's class sums of z + m, less the same sums of m.
    return cipher.unmask(values, mask);
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
    if (a > this.best.auc + 1e-6) this.best = { epoch, auc: a, stale: 0, z };
    else this.best.stale++;
    const patience = this.spec.training.patience;
    return { epoch, validation_auc: a, validation_ks: k, best_epoch: this.best.epoch, stop: patience > 0 && this.best.stale >= patience };
  }

  private finalize(epoch: number): Record<string, unknown> {
    const weights = this.epochWeights.get(epoch);
    if (!weights) throw new FedcreditError(ErrorCode.JOB_FAILED, `no weights of epoch ${epoch} on ${this.org}`, 'the participant restarted during the job; resubmit it');
    this.model!.weights = weights.slice();
    if (this.role === 'guest') this.calibration = fitCalibration(this.best.z, this.labels!.validation);
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
      features: this.features,
      mean: Array.from(m.mean),
      scale: Array.from(m.scale),
      clip: m.clip,
      weights: Array.from(m.weights.subarray(0, m.dim)),
      ...(this.role === 'guest' ? { intercept: m.weights[m.dim]!, calibration: this.calibration! } : {}),
      epoch,
    };
  }

  private async evaluate(step: number, attempt: number): Promise<Record<string, unknown>> {
    const rows = this.alignment!.test;
    const z = await this.jointScores(step, attempt, rows, 'evaluate');
    if (!z) return { rows: rows.length };
    const y = this.labels!.test;
    const { a, b } = this.calibration!;
    const pd = z.map((s) => 1 / (1 + Math.exp(-(a * s + b))));
    // The guest's own record of the held-out scores, for its modellers (never sent).
    const lines = ['enterprise_id,default_12m,score,pd'];
    rows.forEach((r, i) => lines.push(`${this.data.ids[r]},${y[i]},${z[i]!.toFixed(8)},${pd[i]!.toFixed(8)}`));
    writeFileSync(join(this.jobDir, 'test-scores.csv'), lines.join('\n') + '\n', { mode: 0o600 });
    if (rows.length === 0) return { rows: 0, test_auc: null, test_ks: null };
    // Aggregates only (deciles, confusion at the cut-off, calibration bins): the bank's report, published with the model.
    const evaluation = evaluateCredit(y, pd, this.spec.evaluation.decline_cutoff);
    return { rows: rows.length, test_auc: evaluation.auc, test_ks: evaluation.ks, evaluation };
  }

  override dispose(): void {
    super.dispose();
    this.engine?.dispose();
  }
}
