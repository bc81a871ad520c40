/**
 * A participant's side of one horizontal job on the control stream: the offer's answer, the key ceremony, and each
 * secure sum (its contribution, then its decryption report of the aggregate; under a collective key its decryption
 * shares first, then the report from every contributor's shares, participant/threshold-party.ts). The rules of a sum are in
 * src/fl/secure-sum-round.ts, the computation on the rows in ./job-state.ts; this is the I/O between them.
 */
import { ceremonyRestarts, type HorizontalJobSpec } from '../src/config/schemas.js';
import type { RowStore } from '../src/data/row-store.js';
import { ErrorCode, FedcreditError, errorMessage } from '../src/errors.js';
import { StoredSplit } from '../src/data/split.js';
import { applyAggregate } from '../src/fl/fedavg.js';
import { hex } from '../src/bytes.js';
import { weightsDigest } from '../src/model/artifact.js';
import { canonicalOrder, globalWeightsOf, openedReport } from '../src/fl/secure-sum-round.js';
import type { Keys } from '../src/fl/vector-codec.js';
import type { SharesGiven, ShareholderMemory } from '../src/he/threshold/decrypt.js';
import type { Logger } from '../src/log.js';
import type { Tf } from '../src/model/tf.js';
import type { Preprocessing } from '../src/model/preprocess.js';
import type { CoordinatorMessage, JobAccepted, ParticipantReply, SumPurpose, ThresholdCeremony, ValidationMetrics } from '../src/wire/messages.js';
import { ParticipantJob, type DataDescription } from './job-state.js';
import type { ThresholdParty } from './threshold-party.js';

/** What a horizontal job uses of its node: the rows, TensorFlow, the log, and where the job's keys are kept. */
export interface HorizontalNode {
  organisation: string;
  rows: RowStore;
  tf: Tf;
  log: Logger;
  saveKeys(jobId: string, keys: Keys): void;
  /** Under a collective key: the job's record of decryption shares given (kept with its keys, reloaded after a restart). */
  sharesGiven(jobId: string): ShareholderMemory;
  /** Under a collective key whose ceremony restarts: delete the abandoned attempt's keys and record (none kept: nothing). */
  forgetCeremony?(jobId: string): void;
}

export class HorizontalJob {
  /** The global model and preprocessing the current training round started from. */
  private roundStart?: { global: Float32Array; prep: Preprocessing };
  /** The global model the next round must start from, as this participant computed it from the last aggregate it opened. */
  private nextGlobal?: { afterRound: number; weights: Float32Array };
  /** The SHA-256 (hex) of every training round's global model this participant computed, by round. */
  private readonly roundModels = new Map<number, string>();
  /** The sum this node last contributed to and its contributor set (its masks cancel only over that set). */
  private lastSum?: { purpose: SumPurpose; round: number; contributors: string };

  private constructor(
    readonly state: ParticipantJob,
    private readonly node: HorizontalNode,
  ) {}

  /** The job on this node's rows, split into training and validation as the spec says. */
  static async open(id: string, spec: HorizontalJobSpec, features: string[], node: HorizontalNode): Promise<HorizontalJob> {
    const featureIdx = features.map((f) => node.rows.features.indexOf(f));
    const split = await StoredSplit.create(node.rows, featureIdx, spec.training.validation_fraction, spec.training.seed);
    return new HorizontalJob(new ParticipantJob(id, spec, node.organisation, features, split, node.tf, node.rows.meta.levels, node.sharesGiven(id)), node);
  }

  get id(): string {
    return this.state.id;
  }

  /** The answer to the offer: row counts, the description of the data behind the job, keys and fingerprints. */
  accepted(description: DataDescription): JobAccepted {
    const { state } = this;
    return {
      trainRows: state.trainRows,
      validationRows: state.validationRows,
      ...description,
      boxPublicKey: state.box.publicKey,
      boxKeyBinding: state.boxKeyBinding(),
    };
  }

  /** After a restart: the keys this node stored for the job. */
  restoreKeys(keys: Keys): Promise<void> {
    return this.state.restoreKeys(keys);
  }

  /** Answer one of this job's messages (key ceremony and sums); undefined when no answer is due. */
  async handle(m: CoordinatorMessage): Promise<ParticipantReply | undefined> {
    const { state: job, node } = this;
    const log = node.log;
    switch (m.body) {
      case 'keygenRequest': {
        const keys = await job.generateKeys(m.keygenRequest.recipients);
        node.saveKeys(m.jobId, job.keysToStore());
        log.info({ job: m.jobId, recipients: m.keygenRequest.recipients.map((r) => r.organisation) }, 'CKKS keys generated; secret key sealed to each participant');
        return { body: 'keysPublished', keysPublished: keys };
      }
      case 'keyDelivery': {
        await job.installKeys(m.keyDelivery);
        node.saveKeys(m.jobId, job.keysToStore());
        log.info({ job: m.jobId }, 'CKKS secret key received and unsealed');
        return undefined;
      }
      case 'contributionRequest': {
        const req = m.contributionRequest;
        // A coordinator asking for rounds the job does not have would get a contribution (and its aggregate) per round asked.
        const rounds = job.spec.training.rounds;
        if ((req.purpose === 'update' && (m.round < 1 || m.round > rounds)) || (req.purpose === 'evaluation' && m.round !== rounds + 1)) {
          throw new FedcreditError(
            ErrorCode.PROTOCOL,
            `the coordinator asked for an ${req.purpose} contribution in round ${m.round}; the job trains in rounds 1 to ${rounds} and evaluates in round ${rounds + 1}`,
            'the coordinator deviates from the protocol; tell the federation operator',
          );
        }
        let values: Float64Array;
        if (req.purpose === 'moments') {
          values = await job.localMoments();
        } else if (req.purpose === 'quantiles') {
          values = await job.localQuantileCounts();
        } else if (req.purpose === 'histogram') {
          values = await job.localHistogram();
        } else {
          const global = globalWeightsOf(req, m.round);
          if (req.purpose === 'evaluation' && job.spec.training.model_selection === 'best_validation_auc') this.checkSelected(global);
          else this.checkRoundStart(global, m.round);
          if (req.purpose === 'evaluation') {
            values = await job.localEvaluation(global, req.preprocessing!);
          } else {
            values = await job.localUpdate(m.round, global, req.preprocessing!);
            this.roundStart = { global, prep: req.preprocessing! };
          }
        }
        const mask = job.sumMask(m.round, req);
        const vector = await job.encode(values, req.purpose, mask);
        job.threshold?.contributed(req.purpose, m.round);
        this.lastSum = { purpose: req.purpose, round: m.round, contributors: canonicalOrder(req.contributors.map((r) => r.organisation)).join('\n') };
        const bytes = vector.blocks.reduce((n, b) => n + b.length, 0);
        log.info({ job: m.jobId, round: m.round, purpose: req.purpose, values: values.length, ciphertexts: vector.blocks.length, bytes, scheme: vector.scheme }, 'contribution sent');
        return { body: 'contribution', contribution: { purpose: req.purpose, vector } };
      }
      case 'thresholdCeremony': {
        let party = await job.thresholdParty();
        const attempt = m.thresholdCeremony.attempt ?? 0;
        if (attempt !== party.attempt) party = this.restartCeremony(party, attempt, m.thresholdCeremony.step);
        if (m.thresholdCeremony.step === 'commit') log.info({ job: m.jobId, attempt }, "key ceremony: making this participant's share of the collective CKKS key");
        const { reply, keys } = party.ceremony(m.thresholdCeremony);
        if (keys) {
          job.keys = keys;
          node.saveKeys(m.jobId, job.keysToStore());
          log.info({ job: m.jobId }, 'collective CKKS public key in place; this node holds a share of the secret key, nobody the key');
        }
        return { body: 'thresholdCeremony', thresholdCeremony: reply };
      }
      case 'aggregateReady': {
        const agg = m.aggregateReady;
        this.checkContributors(agg.purpose, m.round, agg.contributors);
        const length = job.expectedLength(agg.purpose, this.roundStart?.global.length ?? 0);
        if (job.threshold) {
          await job.checkAggregate(agg.sum, length);
          const shares = job.threshold.decryptionShares(agg, m.round);
          // t-of-n: a contributor outside the quorum gives no shares and waits for the quorum's combined share.
          return shares ? { body: 'decryptionShares', decryptionShares: shares } : undefined;
        }
        return this.opened(agg.purpose, m.round, await job.decode(agg.sum, length), agg.contributors);
      }
      case 'decryptionShares': {
        const { values, contributors } = (await job.thresholdParty()).open(m.decryptionShares);
        return this.opened(m.decryptionShares.purpose, m.round, values, contributors);
      }
      default:
        return undefined;
    }
  }

  /**
   * The coordinator restarted the key ceremony at `attempt` (a participant was lost before the key was in use): the
   * abandoned attempt's share and keys are wiped and their files deleted, and a fresh share is made for the new
   * attempt. Refused (FC_CEREMONY_RESTART_REFUSED) once the key is in use, as the job's record of shares given says,
   * read again from the job folder (so a restart of this node forgets nothing): a decryption share given, or a
   * contribution encrypted under the key (a restarted key would let a coordinator open the same sum over two
   * contributor sets, one under each key). Refused too for an attempt that is not after the current one, beyond
   * encryption.ceremony_restarts, or at another step than commit.
   */
  private restartCeremony(party: ThresholdParty, attempt: number, step: ThresholdCeremony['step']) {
    const { state: job, node } = this;
    const refuse = (why: string) =>
      new FedcreditError(
        ErrorCode.CEREMONY_RESTART_REFUSED,
        `${node.organisation} refuses attempt ${attempt} of the key ceremony of job ${job.id}: ${why}`,
        "the coordinator asked for a key ceremony the protocol does not allow; the refusal is in this node's log. Tell the federation operator",
      );
    let record: SharesGiven | undefined;
    try {
      record = node.sharesGiven(job.id).given;
    } catch (err) {
      throw refuse(`its record of decryption shares given does not read (${errorMessage(err)}), so it cannot tell the key is not in use`);
    }
    const inUse = party.keyInUse;
    const given = Math.max(record?.issued.length ?? 0, inUse.sharesGiven);
    const contributed = record?.contributed ?? inUse.contributed;
    if (given > 0) throw refuse(`the collective key is in use: ${given} decryption shares given under it`);
    if (contributed) throw refuse(`the collective key is in use: this node contributed the ${contributed.replace('/', ' sum of round ')} under it`);
    if (attempt <= party.attempt) throw refuse(`it is at attempt ${party.attempt} already`);
    const bound = ceremonyRestarts(job.spec);
    if (attempt > bound) throw refuse(`the job allows at most ${bound} restarts (encryption.ceremony_restarts)`);
    if (step !== 'commit') throw refuse(`a restarted ceremony begins with commit, not ${step}`);
    node.forgetCeremony?.(job.id);
    node.log.warn(
      { job: job.id, attempt, abandoned: party.attempt },
      'key ceremony restarted by the coordinator (a participant was lost before the key was in use): the share of the abandoned attempt is wiped and its files deleted',
    );
    return job.restartCeremony(attempt, node.sharesGiven(job.id));
  }

  /**
   * An aggregate must be of the sum this node last contributed to, over the set its contribution was masked for: any
   * other (another participant's contribution, a sum over part of the set) would open to noise.
   */
  private checkContributors(purpose: SumPurpose, round: number, contributors: string[]): void {
    if (this.state.spec.encryption.scheme === 'plaintext') return;
    const last = this.lastSum;
    if (!last || last.purpose !== purpose || last.round !== round || last.contributors !== canonicalOrder(contributors).join('\n')) {
      throw new FedcreditError(
        ErrorCode.PROTOCOL,
        `the coordinator sent a ${purpose} aggregate of round ${round} over [${contributors.join(', ')}], not of the sum this node last contributed to`,
        'the coordinator deviates from the protocol; tell the federation operator',
      );
    }
  }

  /**
   * An opened update aggregate carries the contributors' total training rows: at least this node's own, and a whole
   * number. One contribution or a sum over part of its set (an aggregate the coordinator substituted) opens to noise,
   * which fails this with overwhelming probability.
   */
  private checkPlausible(purpose: SumPurpose, values: Float64Array): void {
    if (purpose !== 'update' || this.state.spec.encryption.scheme === 'plaintext') return;
    const rows = values[values.length - 2]!;
    if (!(rows >= this.state.trainRows - 0.5 && rows < 2 ** 40 && Math.abs(rows - Math.round(rows)) < 0.1)) {
      throw new FedcreditError(
        ErrorCode.PROTOCOL,
        `the opened update aggregate is not a sum including this node's update (its row count opened as ${rows}; this node alone trains on ${this.state.trainRows})`,
        'the coordinator sent an aggregate that is not the sum of the contributions (a substituted aggregate opens to noise); nothing was reported. Tell the federation operator',
      );
    }
  }

  /** Take an opened aggregate into the job and report it (its digest; the values from the reporter). */
  private async opened(purpose: SumPurpose, round: number, values: Float64Array, contributors: string[]): Promise<ParticipantReply> {
    const { state: job, node } = this;
    const start = this.roundStart;
    this.checkPlausible(purpose, values);
    if (purpose === 'moments') job.setMoments(values);
    if (purpose === 'quantiles') job.advanceQuantiles(values);
    let validation: ValidationMetrics | null = null;
    if (purpose === 'update') {
      const next = applyAggregate(start!.global, values);
      this.nextGlobal = { afterRound: round, weights: next };
      this.roundModels.set(round, hex(weightsDigest(next)));
      validation = await job.validate(next, start!.prep);
    }
    return { body: 'aggregateOpened', aggregateOpened: openedReport(purpose, values, node.organisation, contributors, validation) };
  }

  /**
   * A round that follows one whose aggregate this participant opened must start from that round's global model with
   * the aggregate applied, as the coordinator computes it (src/fl/fedavg.ts): a coordinator that starts it from
   * weights of its choosing (a model crafted to make an update say more) is refused. After a round this participant
   * missed, or a restart, it has nothing to check against and takes the weights by their digest alone.
   */
  private checkRoundStart(global: Float32Array, round: number): void {
    const expected = this.nextGlobal;
    if (!expected || expected.afterRound !== round - 1) return;
    if (Buffer.from(global.buffer, global.byteOffset, global.byteLength).equals(Buffer.from(expected.weights.buffer, expected.weights.byteOffset, expected.weights.byteLength))) return;
    throw new FedcreditError(
      ErrorCode.PROTOCOL,
      `round ${round}: the coordinator starts the round from weights that are not round ${round - 1}'s global model with its aggregate applied (which this participant opened)`,
      'the coordinator deviates from the protocol; tell the federation operator',
    );
  }

  /**
   * Under `best_validation_auc` the evaluated (and published) model must be one of the training rounds' global models.
   * Which one depends on every participant's validation AUC, which this node does not see; the auditor's replay checks
   * the choice. A node that missed a round, or restarted, cannot tell and takes the weights by their digest alone.
   */
  private checkSelected(global: Float32Array): void {
    if (this.roundModels.size !== this.state.spec.training.rounds) return;
    if ([...this.roundModels.values()].includes(hex(weightsDigest(global)))) return;
    throw new FedcreditError(
      ErrorCode.PROTOCOL,
      "the coordinator asks to evaluate a model that is none of the training rounds' global models (which this participant computed from the aggregates it opened)",
      'the coordinator deviates from the protocol; tell the federation operator',
    );
  }

  dispose(): void {
    this.state.dispose();
  }
}
