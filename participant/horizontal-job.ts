/**
 * A participant's side of one horizontal job on the control stream: the offer's answer, the key ceremony, and each
 * secure sum (its contribution, then its decryption report of the aggregate; under a collective key its decryption
 * shares first, then the report from every contributor's shares, participant/threshold-party.ts). The rules of a sum are in
 * src/fl/secure-sum-round.ts, the computation on the rows in ./job-state.ts; this is the I/O between them.
 */
import type { HorizontalJobSpec } from '../src/config/schemas.js';
import type { RowStore } from '../src/data/row-store.js';
import { StoredSplit } from '../src/data/split.js';
import { applyAggregate } from '../src/fl/fedavg.js';
import { globalWeightsOf, openedReport } from '../src/fl/secure-sum-round.js';
import type { Keys } from '../src/fl/vector-codec.js';
import type { Logger } from '../src/log.js';
import type { Tf } from '../src/model/tf.js';
import type { Preprocessing } from '../src/model/preprocess.js';
import type { CoordinatorMessage, JobAccepted, ParticipantReply, SumPurpose } from '../src/wire/messages.js';
import { ParticipantJob, type DataDescription } from './job-state.js';

/** What a horizontal job uses of its node: the rows, TensorFlow, the log, and where the job's keys are kept. */
export interface HorizontalNode {
  organisation: string;
  rows: RowStore;
  tf: Tf;
  log: Logger;
  saveKeys(jobId: string, keys: Keys): void;
}

export class HorizontalJob {
  /** The global model and preprocessing the current training round started from. */
  private roundStart?: { global: Float32Array; prep: Preprocessing };

  private constructor(
    readonly state: ParticipantJob,
    private readonly node: HorizontalNode,
  ) {}

  /** The job on this node's rows, split into training and validation as the spec says. */
  static async open(id: string, spec: HorizontalJobSpec, features: string[], node: HorizontalNode): Promise<HorizontalJob> {
    const featureIdx = features.map((f) => node.rows.features.indexOf(f));
    const split = await StoredSplit.create(node.rows, featureIdx, spec.training.validation_fraction, spec.training.seed);
    return new HorizontalJob(new ParticipantJob(id, spec, node.organisation, features, split, node.tf, node.rows.meta.levels), node);
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
        node.saveKeys(m.jobId, job.keys!);
        log.info({ job: m.jobId, recipients: m.keygenRequest.recipients.map((r) => r.organisation) }, 'CKKS keys generated; secret key sealed to each participant');
        return { body: 'keysPublished', keysPublished: keys };
      }
      case 'keyDelivery': {
        await job.installKeys(m.keyDelivery);
        node.saveKeys(m.jobId, job.keys!);
        log.info({ job: m.jobId }, 'CKKS secret key received and unsealed');
        return undefined;
      }
      case 'contributionRequest': {
        const req = m.contributionRequest;
        let values: Float64Array;
        if (req.purpose === 'moments') {
          values = await job.localMoments();
        } else if (req.purpose === 'quantiles') {
          values = await job.localQuantileCounts();
        } else if (req.purpose === 'histogram') {
          values = await job.localHistogram();
        } else {
          const global = globalWeightsOf(req, m.round);
          if (req.purpose === 'evaluation') {
            values = await job.localEvaluation(global, req.preprocessing!);
          } else {
            values = await job.localUpdate(m.round, global, req.preprocessing!);
            this.roundStart = { global, prep: req.preprocessing! };
          }
        }
        const vector = await job.encode(values, req.purpose);
        job.threshold?.contributed(req.purpose, m.round);
        const bytes = vector.blocks.reduce((n, b) => n + b.length, 0);
        log.info({ job: m.jobId, round: m.round, purpose: req.purpose, values: values.length, ciphertexts: vector.blocks.length, bytes, scheme: vector.scheme }, 'contribution sent');
        return { body: 'contribution', contribution: { purpose: req.purpose, vector } };
      }
      case 'thresholdCeremony': {
        const { reply, keys } = (await job.thresholdParty()).ceremony(m.thresholdCeremony);
        if (keys) {
          job.keys = keys;
          node.saveKeys(m.jobId, keys);
          log.info({ job: m.jobId }, 'collective CKKS public key in place; this node holds a share of the secret key, nobody the key');
        }
        return { body: 'thresholdCeremony', thresholdCeremony: reply };
      }
      case 'aggregateReady': {
        const agg = m.aggregateReady;
        const length = job.expectedLength(agg.purpose, this.roundStart?.global.length ?? 0);
        if (job.threshold) {
          await job.checkAggregate(agg.sum, length);
          return { body: 'decryptionShares', decryptionShares: job.threshold.decryptionShares(agg, m.round) };
        }
        return this.opened(agg.purpose, await job.decode(agg.sum, length), agg.contributors);
      }
      case 'decryptionShares': {
        const { values, contributors } = (await job.thresholdParty()).open(m.decryptionShares);
        return this.opened(m.decryptionShares.purpose, values, contributors);
      }
      default:
        return undefined;
    }
  }

  /** Take an opened aggregate into the job and report it (its digest; the values from the reporter). */
  private async opened(purpose: SumPurpose, values: Float64Array, contributors: string[]): Promise<ParticipantReply> {
    const { state: job, node } = this;
    const start = this.roundStart;
    if (purpose === 'moments') job.setMoments(values);
    if (purpose === 'quantiles') job.advanceQuantiles(values);
    const validation = purpose === 'update' ? await job.validate(applyAggregate(start!.global, values), start!.prep) : null;
    return { body: 'aggregateOpened', aggregateOpened: openedReport(purpose, values, node.organisation, contributors, validation) };
  }

  dispose(): void {
    this.state.dispose();
  }
}
