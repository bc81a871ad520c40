/**
 * A participant's side of one horizontal job: its rows split into training and validation, its per-job box key,
 * the CKKS keys, and the model it trains. Pure computation, no I/O, so it can be tested without gRPC.
 */
import type * as TF from '@tensorflow/tfjs';
import { ckksParamsOf, decryptionThreshold, roundMinimum, type HorizontalJobSpec as JobSpec } from '../src/config/schemas.js';
import type { Split, StoredSplit } from '../src/data/split.js';
import { exportPrivateKey, generateBoxKeyPair, importPrivateKey, open, rawX25519PublicKey, seal, type BoxKeyPair } from '../src/crypto/sealed-box.js';
import { PairwiseMask } from '../src/fl/pairwise-mask.js';
import { contributorsNeeded } from '../src/fl/secure-sum-round.js';
import { signBinding, verifyBinding, type JobBinding, type KeyBinding } from '../src/crypto/key-binding.js';
import { CkksEngine } from '../src/he/engine.js';
import { HorizontalVectors } from '../src/he/horizontal.js';
import { generateKeys } from '../src/he/key-ceremony.js';
import { ThresholdContext } from '../src/he/threshold/context.js';
import { ThresholdParty } from './threshold-party.js';
import type { ShareholderMemory } from '../src/he/threshold/decrypt.js';
import { VectorCodec, type Keys } from '../src/fl/vector-codec.js';
import { ScoreCells } from '../src/metrics.js';
import { applyPreprocessing, localMoments, momentsLength, selectColumns, type Preprocessing } from '../src/model/preprocess.js';
import { declaredLevels, fineGridsOf, histogramLength, localHistogram, searchLayouts, toDeclaredLevels, type FineGrid } from '../src/fl/histogram.js';
import { QuantileSearch } from '../src/fl/quantile-search.js';
import { EVALUATION_LENGTH, localPdHistogram } from '../src/fl/pd-histogram.js';
import { ErrorCode, FedcreditError } from '../src/errors.js';
import { buildModel, getFlatWeights, logLoss, predict, setFlatWeights, trainOnBlocks, type RowBlocks } from '../src/model/network.js';
import type { Tf } from '../src/model/tf.js';
import { seedFrom } from '../src/random.js';
import { formatLoadReport } from '../src/data/csv.js';
import type { RowStoreMeta } from '../src/data/row-store.js';
import type { ContributionRequest, EncryptedVector, JobAccepted, KeyDelivery, KeysPublished, Recipient, SumPurpose, ValidationMetrics } from '../src/wire/messages.js';
import { sha256 } from '../src/bytes.js';

/**
 * Fingerprint of the id set a job uses: SHA-256 of the job id and the row store's id-set digest (itself over the
 * sorted SHA-256 prefixes of the ids, src/data/id-buckets.ts). The ids never leave.
 */
export function idSetDigest(jobId: string, idSetSha256: string): Uint8Array {
  return sha256(`${jobId}\n${idSetSha256}`);
}

export function schemaHash(features: string[], types: string[]): Uint8Array {
  return sha256(JSON.stringify(features.map((f, i) => [f, types[i]])));
}

/** What a jobAccepted reply says of the data behind a job: its schema digest, its load report and its id-set digest. */
export type DataDescription = Pick<JobAccepted, 'schemaHash' | 'loadReport' | 'idSetSha256'>;

export function dataDescription(jobId: string, organisation: string, features: string[], types: string[], meta: RowStoreMeta): DataDescription {
  return {
    schemaHash: schemaHash(features, types),
    // Counts only: the local file path stays home.
    loadReport: formatLoadReport({ ...meta.report, file: organisation }),
    idSetSha256: idSetDigest(jobId, meta.idSetSha256),
  };
}

/** What the lead's signature on the CKKS public key covers: the key and the parameters it was made under. */
const publicKeyStatement = (publicKey: Uint8Array, fingerprint: Uint8Array) => Buffer.concat([Buffer.from(fingerprint), Buffer.from(publicKey)]);

export class ParticipantJob {
  /** Its per-job box key: the lead seals the CKKS secret key with it, and every contribution's pairwise masks derive from it. */
  box: BoxKeyPair = generateBoxKeyPair();
  /** Set by the node before the job is accepted (src/crypto/key-binding.ts); absent with --insecure. */
  binding?: JobBinding;
  codec?: VectorCodec;
  keys?: Keys;
  private engine?: CkksEngine;
  /** Under a collective key (encryption.scheme ckks-threshold): this party's part of the ceremony and decryptions. */
  threshold?: ThresholdParty;
  private model?: { net: TF.Sequential; dim: number };
  /** The preprocessed rows of a split that fits in one block, kept between rounds. */
  private prepared?: { key: string; train: Split; validation: Split };
  /** The quantile search, started from the opened moments aggregate and advanced by every opened `quantiles` sum. */
  private search?: QuantileSearch;

  constructor(
    readonly id: string,
    readonly spec: JobSpec,
    readonly organisation: string,
    readonly features: string[],
    private readonly split: StoredSplit,
    private readonly tf: Tf,
    /** The data's level lists of its categorical columns (stored cells are positions in them). */
    private readonly levels?: Readonly<Record<string, readonly string[]>>,
    /** Under a collective key: where this node keeps its record of decryption shares given (in memory if none). */
    private readonly sharesGiven: ShareholderMemory = {},
  ) {}

  /** A block of the split with each categorical cell as the position of its level among the job's declared ones. */
  private block(part: 'train' | 'validation', b: number): Split {
    const raw = this.split.block(part, b);
    return { x: toDeclaredLevels(raw.x, this.features, this.levels, this.spec.binning), y: raw.y };
  }

  get trainRows(): number {
    return this.split.trainRows;
  }

  get validationRows(): number {
    return this.split.validationRows;
  }

  private async ensureCodec(): Promise<VectorCodec> {
    if (this.codec) return this.codec;
    if (this.spec.encryption.scheme === 'plaintext') return (this.codec = VectorCodec.plaintext());
    this.engine = await CkksEngine.create(ckksParamsOf(this.spec));
    if (this.spec.encryption.scheme === 'ckks-threshold') {
      this.threshold = this.thresholdPartyFor(await ThresholdContext.create(ckksParamsOf(this.spec)), this.sharesGiven, 0);
      return (this.codec = VectorCodec.ckksCollective(new HorizontalVectors(this.engine)));
    }
    return (this.codec = VectorCodec.ckks(new HorizontalVectors(this.engine)));
  }

  private thresholdPartyFor(context: ThresholdContext, memory: ShareholderMemory, attempt: number): ThresholdParty {
    return new ThresholdParty(
      this.id,
      this.organisation,
      this.spec.participants,
      context,
      this.engine!.fingerprint,
      () => this.binding,
      decryptionThreshold(this.spec),
      () => this.box,
      undefined,
      memory,
      attempt,
    );
  }

  /**
   * The coordinator restarted the key ceremony at `attempt` (a participant was lost before the key was in use): the
   * share of the abandoned attempt and any key made from it are wiped, and a fresh party takes part in the new
   * attempt with `memory`, the job's record of shares given once the old one is deleted. The caller checked that the
   * restart is allowed (HorizontalJob: nothing is encrypted or decrypted under the key yet).
   */
  restartCeremony(attempt: number, memory: ShareholderMemory): ThresholdParty {
    const old = this.threshold!;
    old.forget();
    this.keys = undefined;
    this.threshold = this.thresholdPartyFor(old.context, memory, attempt);
    return this.threshold;
  }

  /** The threshold side of this job, its codec ready (encryption.scheme ckks-threshold only). */
  async thresholdParty(): Promise<ThresholdParty> {
    await this.ensureCodec();
    if (!this.threshold)
      throw new FedcreditError(
        ErrorCode.PROTOCOL,
        `job ${this.id} runs under scheme ${this.spec.encryption.scheme}, not ckks-threshold`,
        'the coordinator sent a message of another protocol; restart it',
      );
    return this.threshold;
  }

  /** Check an aggregate from the coordinator (shape, digests, canonical ciphertexts) without decrypting it. */
  async checkAggregate(vector: EncryptedVector, expectedLength: number): Promise<void> {
    (await this.ensureCodec()).check(vector, expectedLength, 'the coordinator', 'canonical');
  }

  /** This participant's signed statement that its per-job box key is its own, for its JobAccepted. */
  boxKeyBinding(): KeyBinding | null {
    const b = this.binding;
    return b ? signBinding(b.signer, { purpose: 'box-key', jobId: this.id, specSha256: b.specSha256, organisation: this.organisation, key: this.box.publicKey }) : null;
  }

  /**
   * Lead only: make the job's CKKS keys and seal the secret key to each recipient's box key, authenticated with the
   * lead's own. First every recipient must be exactly the job's other participants, each key signed by its owner:
   * a coordinator that put a key of its own in the list gets nothing sealed to it.
   */
  async generateKeys(recipients: Recipient[]): Promise<KeysPublished> {
    const b = this.binding;
    if (b) {
      const others = b.parties.filter((p) => p !== this.organisation).sort();
      const named = recipients.map((r) => r.organisation).sort();
      if (named.join() !== others.join()) {
        throw new FedcreditError(
          ErrorCode.KEY_BINDING,
          `the coordinator asked to seal the job's secret key to ${named.join(', ') || 'nobody'}; the job's other participants are ${others.join(', ')}`,
          "the coordinator changed the job's recipients; stop using it for this job and tell the federation operator",
        );
      }
      for (const r of recipients) verifyBinding(r.binding, { purpose: 'box-key', jobId: this.id, specSha256: b.specSha256, organisation: r.organisation, key: r.boxPublicKey }, b.trust);
    }
    await this.ensureCodec();
    const pair = generateKeys(this.engine!, 'lead');
    this.keys = { publicKey: pair.publicKey, secretKey: pair.secretKey };
    const fingerprint = this.engine!.fingerprint;
    return {
      ckksPublicKey: pair.publicKey,
      paramsFingerprint: fingerprint,
      sealedSecretKeys: recipients.map((r) => ({ recipient: r.organisation, sealed: seal(pair.secretKey, r.boxPublicKey, `${this.id}|${r.organisation}`, this.box) })),
      publicKeyBinding: b
        ? signBinding(b.signer, { purpose: 'ckks-public-key', jobId: this.id, specSha256: b.specSha256, organisation: this.organisation, key: publicKeyStatement(pair.publicKey, fingerprint) })
        : null,
    };
  }

  /** After a restart: the keys this node stored for the job. */
  async restoreKeys(keys: Keys): Promise<void> {
    await this.ensureCodec();
    this.keys = keys;
    if (keys.boxPrivateKey) this.restoreBox(keys.boxPrivateKey);
    this.threshold?.restore(keys);
  }

  /** After a restart: the per-job box key this node kept when it accepted the job (the one its peers know). */
  restoreBox(privateKeyPem: string): void {
    const privateKey = importPrivateKey(privateKeyPem);
    this.box = { privateKey, publicKey: rawX25519PublicKey(privateKey) };
  }

  /** The per-job box key as the node keeps it from the job's acceptance on, to rejoin even before any key arrives. */
  boxKeyToStore(): string {
    return exportPrivateKey(this.box.privateKey);
  }

  /**
   * Everyone else: open the secret key sealed to this job's box key, after checking that the lead is the job's
   * first participant, that its box key and the CKKS public key carry its signature, and that the box was sealed
   * with that box key (so neither a key nor the box can have come from the coordinator).
   */
  async installKeys(delivery: KeyDelivery): Promise<void> {
    const { ckksPublicKey: publicKey, sealedSecretKey, paramsFingerprint: fingerprint, lead } = delivery;
    if (!lead) throw new FedcreditError(ErrorCode.KEY_BINDING, `the job's keys came without the lead's box key in job ${this.id}`, 'the coordinator runs an older fedcredit; upgrade it');
    const b = this.binding;
    if (b) {
      if (lead.organisation !== b.parties[0]) {
        throw new FedcreditError(
          ErrorCode.KEY_BINDING,
          `the job's keys say they come from ${lead.organisation}; the job's lead is ${b.parties[0]}`,
          "the coordinator changed the job's lead; stop using it for this job and tell the federation operator",
        );
      }
      verifyBinding(lead.binding, { purpose: 'box-key', jobId: this.id, specSha256: b.specSha256, organisation: lead.organisation, key: lead.boxPublicKey }, b.trust);
      verifyBinding(
        delivery.publicKeyBinding,
        { purpose: 'ckks-public-key', jobId: this.id, specSha256: b.specSha256, organisation: lead.organisation, key: publicKeyStatement(publicKey, fingerprint) },
        b.trust,
      );
    }
    await this.ensureCodec();
    this.engine!.requireFingerprint(fingerprint, 'the lead participant');
    this.keys = { publicKey, secretKey: open(sealedSecretKey, this.box, `${this.id}|${this.organisation}`, lead.boxPublicKey) };
  }

  /** The job's keys as the node stores them to rejoin after a restart: the CKKS keys and this job's box key. */
  keysToStore(): Keys {
    return { ...this.keys!, boxPrivateKey: this.boxKeyToStore() };
  }

  async encode(values: Float64Array, purpose: SumPurpose, mask?: PairwiseMask): Promise<EncryptedVector> {
    const codec = await this.ensureCodec();
    return codec.encode(values, this.keys, purpose, mask);
  }

  /**
   * The pairwise masks of this node's contribution to the sum `req` asks for (none in plaintext): the request must
   * name this node among a contributor set of distinct parties of the job, as many as the sum needs (every
   * participant for the moments, quantile and histogram sums; else roundMinimum: training.min_participants, all under
   * an N-of-N collective key, encryption.threshold under t-of-n), each other one's box key bound to its certificate, this node's own unchanged.
   */
  sumMask(round: number, req: ContributionRequest): PairwiseMask | undefined {
    if (this.spec.encryption.scheme === 'plaintext') return undefined;
    const names = req.contributors.map((r) => r.organisation);
    const parties = this.spec.participants;
    const needAll = req.purpose !== 'update' && req.purpose !== 'evaluation';
    const needed = contributorsNeeded(parties.length, { needAll, minParticipants: roundMinimum(this.spec) });
    const refuse = (why: string) =>
      new FedcreditError(
        ErrorCode.PROTOCOL,
        `the coordinator asked for a ${req.purpose} contribution in round ${round} over the contributors [${names.join(', ')}]: ${why}`,
        'the coordinator deviates from the protocol; tell the federation operator',
      );
    const own = req.contributors.find((r) => r.organisation === this.organisation);
    if (!own) throw refuse(`${this.organisation} is not among them`);
    if (new Set(names).size !== names.length || names.some((o) => !parties.includes(o))) throw refuse(`they are not distinct participants of the job [${parties.join(', ')}]`);
    if (names.length < needed) throw refuse(`the sum needs at least ${needed} of the ${parties.length} participants`);
    if (!Buffer.from(own.boxPublicKey).equals(Buffer.from(this.box.publicKey))) throw refuse(`the box key named for ${this.organisation} is not its own`);
    const peers = req.contributors.filter((r) => r !== own);
    const b = this.binding;
    if (b) for (const r of peers) verifyBinding(r.binding, { purpose: 'box-key', jobId: this.id, specSha256: b.specSha256, organisation: r.organisation, key: r.boxPublicKey }, b.trust);
    return new PairwiseMask(this.organisation, this.box.privateKey, this.box.publicKey, peers, { jobId: this.id, purpose: req.purpose, round, attempt: req.attempt, contributors: names });
  }

  /** Decrypt an aggregate from the coordinator, after checking it has the length this node expects. */
  async decode(vector: EncryptedVector, expectedLength: number): Promise<Float64Array> {
    const codec = await this.ensureCodec();
    return codec.open(vector, expectedLength, 'the coordinator', this.keys);
  }

  localMoments(): Promise<Float64Array> {
    return this.sumOverTraining((b) => localMoments(b.x, this.features.length));
  }

  /** A vector summed over the training blocks (moments and histograms are sums over rows). */
  private async sumOverTraining(f: (block: Split) => Float64Array): Promise<Float64Array> {
    let sum: Float64Array | undefined;
    for (let b = 0; b < this.split.blockCount; b++) {
      const v = f(this.block('train', b));
      if (!sum) sum = v;
      else for (let i = 0; i < v.length; i++) sum[i]! += v[i]!;
      await nextTurn();
    }
    return sum!;
  }

  /** Start the quantile search from the opened moments aggregate (every contributor decrypted the same values). */
  setMoments(values: Float64Array): void {
    this.search = new QuantileSearch(values, this.features.length, searchLayouts(this.spec.binning, this.features));
  }

  private quantileSearch(): QuantileSearch {
    if (!this.search) {
      throw new FedcreditError(
        ErrorCode.JOB_FAILED,
        'quantile counts or a histogram were requested before this node opened the federation-wide moments (it restarted in between?)',
        'resubmit the job: the binning step needs every participant from the moments step on',
      );
    }
    return this.search;
  }

  /** Per feature, the training rows at or below each point of the quantile search's current round. */
  async localQuantileCounts(): Promise<Float64Array> {
    const search = this.quantileSearch();
    // A coordinator asking for more rounds than the search needs would get ever finer counts: refused.
    if (search.done)
      throw new FedcreditError(
        ErrorCode.PROTOCOL,
        `quantile counts were requested after the search finished (${search.rounds} rounds)`,
        'run the same fedcredit version on the coordinator and every participant',
      );
    return this.sumOverTraining((b) => search.localCounts(b.x, this.features.length));
  }

  /** The opened aggregate of a `quantiles` sum: the search moves to its next round. */
  advanceQuantiles(values: Float64Array): void {
    this.quantileSearch().advance(values);
  }

  private grids(): FineGrid[] {
    if (!this.spec.binning)
      throw new FedcreditError(ErrorCode.PROTOCOL, 'a binning histogram was requested for a job without a binning section', 'run the same fedcredit version on the coordinator and every participant');
    return fineGridsOf(this.quantileSearch(), this.spec.binning, this.features);
  }

  /** Per feature, rows and defaults of the training rows in each fine bin derived from the quantile search. */
  localHistogram(): Promise<Float64Array> {
    const grids = this.grids();
    return this.sumOverTraining((b) => localHistogram(b.x, b.y, grids));
  }

  /** Length this node expects of an aggregate; `params` is the model's size for updates. */
  expectedLength(purpose: SumPurpose, params: number): number {
    switch (purpose) {
      case 'moments':
        return momentsLength(this.features.length);
      case 'quantiles':
        return this.quantileSearch().length;
      case 'histogram':
        return histogramLength(this.grids());
      case 'evaluation':
        return EVALUATION_LENGTH;
      case 'update':
        return params + 2;
    }
  }

  /** The model's input: the job's columns reduced to the preprocessing's features, binned or standardised. */
  private input(prep: Preprocessing): (raw: Split) => Split {
    const levels = declaredLevels(this.spec.binning, this.features);
    // Validation rows may hold a declared level no training row has: `reject` is for scoring, here it is neutral.
    return (raw) => ({ x: applyPreprocessing(selectColumns(raw.x, this.features, prep.features), prep, levels, true), y: raw.y });
  }

  /** One part's preprocessed rows as blocks; a split of one block is preprocessed once and kept. */
  private rowsOf(part: 'train' | 'validation', prep: Preprocessing): RowBlocks {
    const input = this.input(prep);
    if (this.split.blockCount === 1) {
      const key = JSON.stringify(prep);
      if (this.prepared?.key !== key) {
        this.prepared = { key, train: input(this.block('train', 0)), validation: input(this.block('validation', 0)) };
      }
      const { x, y } = this.prepared[part];
      return { count: 1, block: () => ({ x, y }) };
    }
    return { count: this.split.blockCount, block: (b) => input(this.block(part, b)) };
  }

  private ensureModel(dim: number): TF.Sequential {
    if (this.model?.dim !== dim) {
      this.model?.net.dispose();
      this.model = { net: buildModel(this.tf, this.spec.model, dim, this.spec.training.seed), dim };
    }
    return this.model.net;
  }

  /**
   * Train from the global weights; return the update vector [n·(w_local − w_global), n, n·loss]. The count and
   * loss travel inside the encrypted sum so FedAvg's weighting needs no plaintext side channel; the coordinator
   * does learn each participant's row count from JobAccepted, which is stated in docs/protocol-horizontal.md.
   */
  async localUpdate(round: number, global: Float32Array, prep: Preprocessing): Promise<Float64Array> {
    const dim = prep.features.length;
    const model = this.ensureModel(dim);
    setFlatWeights(this.tf, model, global);
    const t = this.spec.training;
    const loss = await trainOnBlocks(this.tf, model, this.rowsOf('train', prep), dim, {
      epochs: t.local_epochs,
      batchSize: t.batch_size,
      learningRate: t.learning_rate,
      optimizer: t.optimizer,
      seed: seedFrom(t.seed, this.organisation, round),
      proximalMu: t.fedprox_mu,
      globalWeights: global,
    });
    const local = getFlatWeights(model);
    const n = this.trainRows;
    const out = new Float64Array(local.length + 2);
    for (let i = 0; i < local.length; i++) out[i] = n * (local[i]! - global[i]!);
    out[local.length] = n;
    out[local.length + 1] = n * loss;
    return out;
  }

  /**
   * Metrics of a global model on this participant's validation rows, counted block by block: the AUC in 65,536 cells
   * of PD (within about 1e-5 of the exact AUC), so memory does not grow with the rows.
   */
  async validate(weights: Float32Array, prep: Preprocessing): Promise<ValidationMetrics> {
    if (this.validationRows === 0) return { rows: 0, auc: 0, loss: 0 };
    const cells = new ScoreCells();
    let lossSum = 0;
    await this.overValidation(weights, prep, (y, pd) => {
      cells.add(y, pd);
      lossSum += logLoss(y, pd) * y.length;
    });
    const a = cells.auc();
    // A validation split with one class has no AUC; it is left out of the weighted mean rather than counted as 0.
    if (Number.isNaN(a)) return { rows: 0, auc: 0, loss: 0 };
    return { rows: this.validationRows, auc: a, loss: lossSum / this.validationRows };
  }

  /** Score the validation rows with the given weights, a block at a time. */
  private async overValidation(weights: Float32Array, prep: Preprocessing, visit: (y: Float32Array, pd: Float32Array) => void): Promise<void> {
    const dim = prep.features.length;
    const model = this.ensureModel(dim);
    setFlatWeights(this.tf, model, weights);
    const rows = this.rowsOf('validation', prep);
    for (let b = 0; b < rows.count; b++) {
      const block = rows.block(b);
      const pd = predict(this.tf, model, block.x, dim);
      if (pd.some(Number.isNaN)) {
        throw new FedcreditError(
          ErrorCode.JOB_FAILED,
          `the global model predicts NaN on ${this.organisation}'s validation rows: training diverged`,
          'lower training.learning_rate, or keep training.standardize on so every feature is on one scale',
        );
      }
      if (block.y.length > 0) visit(block.y, pd);
      await nextTurn();
    }
  }

  /** The evaluation histogram of the final model's PD on this participant's validation rows (src/fl/pd-histogram.ts). */
  async localEvaluation(weights: Float32Array, prep: Preprocessing): Promise<Float64Array> {
    const cutoff = this.spec.evaluation.decline_cutoff;
    const sum = localPdHistogram([], [], cutoff);
    await this.overValidation(weights, prep, (y, pd) => localPdHistogram(y, pd, cutoff).forEach((v, i) => (sum[i]! += v)));
    return sum;
  }

  dispose(): void {
    this.split.close();
    this.model?.net.dispose();
    this.engine?.dispose();
    // The key share goes with the job.
    this.threshold?.forget();
    this.threshold?.context.dispose();
  }
}

/** Lets the event loop run (keepalive pings, other messages) between blocks of a long pass. */
function nextTurn(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}
