/**
 * The participant process: runs inside a data owner's domain, dials out to the coordinator, and answers job
 * steps from its own data. Rows never leave: only counts, encrypted vectors, digests and validation metrics do.
 */
import { binningConflict } from '../src/credit/settle.js';
import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import type { ParticipantConfig } from '../src/config/schemas.js';
import { consentKind, JobSpec, type HorizontalJobSpec, type VerticalJobSpec, type VerticalScoreSpec } from '../src/config/schemas.js';
import { datasetOf, formatLoadReport, heavilyImputed, IMPUTED_WARN_SHARE, type LoadedDataset } from '../src/data/csv.js';
import { ingestSource } from '../src/data/source.js';
import type { RowStore } from '../src/data/row-store.js';
import { ErrorCode, FedcreditError, errorMessage } from '../src/errors.js';
import type { Logger } from '../src/log.js';
import { loadTf, type Tf } from '../src/model/tf.js';
import { softwareVersion } from '../src/paths.js';
import { float64Bytes, toFloat32 } from '../src/fl/vector-codec.js';
import { x25519Backend } from '../src/psi/x25519.js';
import { applyAggregate } from '../src/fl/fedavg.js';
import { sha256 } from '../src/bytes.js';
import type { Frame } from '../src/wire/framing.js';
import { coordinatorServiceDefinition, CHANNEL_OPTIONS, PROTOCOL_VERSION } from '../src/wire/proto.js';
import { FramedStream, type DuplexCall } from '../src/wire/stream.js';
import type { Preprocessing } from '../src/model/preprocess.js';
import type { CoordinatorMessage, JobOffer, ParticipantMessage, ParticipantReply } from '../src/wire/messages.js';
import { ParticipantJob, idSetDigest, schemaHash } from './job-state.js';
import { JobStore } from './job-store.js';
import { OwnRecord, ledgerRollback } from './own-record.js';
import { decodeTreeHead } from '../src/ledger/ledger.js';
import { StoredSplit } from '../src/data/split.js';
import { VerticalParty, type PartyData } from './vertical-job.js';
import { dialed, jobBinding, type Transport } from '../src/wire/transport.js';
import { ScoringParty } from './vertical-score.js';
import { Approvals } from './approvals.js';
import { ScoringQuota } from './scoring-quota.js';
import type { PartyChannel } from './vertical-channel.js';
import type { JobBinding } from '../src/crypto/key-binding.js';

const CoordinatorClient = grpc.makeGenericClientConstructor(coordinatorServiceDefinition(), 'Coordinator');

export interface ParticipantOptions {
  config: ParticipantConfig;
  configDir: string;
  log: Logger;
  /** Override of config.coordinator (the demo and tests pick ports at run time). */
  coordinator?: string;
  /** Mutual TLS with this node's certificate, or plaintext (tests). */
  transport: Transport;
}


/** Where a participant keeps its own record, job files and score requests. */
export function participantStateDir(config: ParticipantConfig, configDir: string): string {
  return resolve(configDir, config.state_dir ?? join('fedcredit-state', config.organisation));
}

export class ParticipantNode {
  private rows!: RowStore;
  private inMemory?: LoadedDataset;
  /** The row store's rowOrderDigest, computed when a vertical job first asks (the store does not change while the node runs). */
  private rowsDigest?: string;
  private tf!: Tf;
  private client?: grpc.Client;
  private stream?: FramedStream<CoordinatorMessage, ParticipantMessage>;
  private readonly jobs = new Map<string, ParticipantJob>();
  private readonly vertical = new Map<string, PartyChannel>();
  private readonly approvals: Approvals;
  /** Jobs the coordinator ended while an offer of theirs waited for the owner's approval. */
  private readonly endedJobs = new Set<string>();
  private readonly stateDir: string;
  private queue: Promise<void> = Promise.resolve();
  private stopping = false;
  private connectedOnce?: () => void;
  private readonly record: OwnRecord;
  private readonly store: JobStore;
  /** The owner's caps on scoring with models it helped train (consent.scoring). */
  private readonly scoringQuota: ScoringQuota;
  private reconnectAttempt = 0;

  constructor(private readonly opts: ParticipantOptions) {
    const stateDir = participantStateDir(opts.config, opts.configDir);
    this.stateDir = stateDir;
    this.approvals = new Approvals(stateDir);
    this.record = new OwnRecord(stateDir);
    this.store = new JobStore(join(stateDir, 'jobs'));
    this.scoringQuota = new ScoringQuota(stateDir, opts.config.consent.scoring);
  }

  /** The rows in memory, for vertical and scoring jobs (which align and index rows at random). */
  private get data(): LoadedDataset {
    return (this.inMemory ??= datasetOf(this.rows));
  }

  /** A vertical job's view of the rows: ids streamed from the store for the PSI, the rows in memory after it. */
  private get partyData(): PartyData {
    return { ids: () => this.rows.ids(), load: () => this.data, rowsDigest: () => (this.rowsDigest ??= this.rows.rowOrderDigest()) };
  }

  private get org(): string {
    return this.opts.config.organisation;
  }

  /** How this node binds its keys for a job and checks its peers' (src/crypto/key-binding.ts); none with --insecure. */
  private partyBinding(specJson: string, parties: string[]): JobBinding | undefined {
    const binding = jobBinding(this.opts.transport, specJson, parties);
    if (!binding) this.opts.log.warn('--insecure: this job\'s keys are not bound to certificates, and the peers\' keys are not checked (tests only)');
    return binding;
  }

  /** Load and check the data, then connect (and keep reconnecting with backoff) until stopped. */
  async start(): Promise<void> {
    const { config, configDir, log } = this.opts;
    const { tf, backend } = await loadTf();
    this.tf = tf;
    log.info({ backend }, 'TensorFlow.js backend');
    // Also checks FEDCREDIT_X25519 before any job depends on it.
    log.info({ x25519: x25519Backend() }, 'X25519 for the PSI');
    // Columns outside consent.columns are never read (nor selected from a database), let alone put into a job. The
    // rows go to a store on disk, which horizontal jobs stream; vertical jobs load it into memory when they start.
    this.rows = await ingestSource(config.data, { baseDir: configDir, columns: config.consent.columns, dir: join(this.stateDir, 'rows'), scatter: true });
    log.info({ rows: this.rows.rows, features: this.rows.features.length }, `data loaded:\n${formatLoadReport(this.rows.meta.report)}`);
    for (const { feature, cells, share } of heavilyImputed(this.rows.meta.report)) {
      log.warn(
        { feature, imputedCells: cells, rows: this.rows.rows, share: Math.round(share * 1000) / 1000 },
        `feature "${feature}": ${cells} of ${this.rows.rows} kept rows (${(100 * share).toFixed(1)}%, over ${IMPUTED_WARN_SHARE * 100}%) have no valid value and will be imputed with the federation-wide mean; check the column and its missing_values`,
      );
    }
    await this.restoreJobs();
    await new Promise<void>((resolve) => {
      this.connectedOnce = resolve;
      void this.connectLoop();
    });
  }

  /** Jobs that were running when this node stopped: rebuilt from the stored job file and keys, ready to rejoin. */
  private async restoreJobs(): Promise<void> {
    for (const stored of this.store.unfinished()) {
      const spec = JobSpec.parse(JSON.parse(stored.specJson));
      if (spec.kind === 'vertical-lr') {
        const job = await VerticalParty.restore(stored.id, spec, this.org, this.partyData, stored.features, this.verticalIo(stored.id), this.opts.log, this.store.dirOf(stored.id)).catch((err) => {
          this.opts.log.warn({ job: stored.id, err: errorMessage(err) }, 'a vertical job could not be restored');
          return undefined;
        });
        if (job) {
          job.shareStatistics = this.opts.config.consent.share_statistics;
          this.vertical.set(stored.id, job);
          continue;
        }
      }
      if (spec.kind !== 'horizontal') {
        this.opts.log.warn({ job: stored.id, kind: spec.kind }, 'a job was interrupted before it had aligned its rows (or is a scoring job); it cannot be rejoined');
        this.store.end(stored.id, 'abandoned');
        continue;
      }
      if (spec.encryption.scheme === 'ckks' && !stored.keys?.secretKey) {
        this.opts.log.warn({ job: stored.id }, 'a job was interrupted before its keys arrived; it cannot be rejoined');
        this.store.end(stored.id, 'abandoned');
        continue;
      }
      const job = await this.createJob(stored.id, spec, stored.features);
      if (stored.keys) await job.restoreKeys(stored.keys);
      this.opts.log.info({ job: stored.id }, 'job restored after a restart; rejoining at the next round');
    }
  }

  private async createJob(id: string, spec: HorizontalJobSpec, features: string[]): Promise<ParticipantJob> {
    const featureIdx = features.map((f) => this.rows.features.indexOf(f));
    const split = await StoredSplit.create(this.rows, featureIdx, spec.training.validation_fraction, spec.training.seed);
    const job = new ParticipantJob(id, spec, this.org, features, split, this.tf);
    this.jobs.set(id, job);
    return job;
  }

  private async connectLoop(): Promise<void> {
    const address = this.opts.coordinator ?? this.opts.config.coordinator;
    while (!this.stopping) {
      const closed = this.openStream(address);
      const reason = await closed;
      if (this.stopping) return;
      // Exponential backoff with full jitter, capped at 30 s.
      const delay = Math.random() * Math.min(30_000, 500 * 2 ** Math.min(this.reconnectAttempt++, 6));
      this.opts.log.warn({ coordinator: address, reason, retryInMs: Math.round(delay) }, 'control stream closed; reconnecting');
      await new Promise((r) => setTimeout(r, delay));
    }
  }

  private openStream(address: string): Promise<string> {
    return new Promise((resolve) => {
      this.client?.close();
      const client = dialed(CoordinatorClient, address, this.opts.transport, { ...CHANNEL_OPTIONS });
      this.client = client;
      const call = (client as unknown as { connect(): DuplexCall<Frame<CoordinatorMessage>, Uint8Array> }).connect();
      const stream = new FramedStream<CoordinatorMessage, ParticipantMessage>(call, 'CoordinatorMessage', 'ParticipantMessage', {
        onMessage: (m) => {
          this.record.message('received', m.jobId, m.round, m.body, null, receivedDetail(m));
          const vertical = this.vertical.get(m.jobId);
          // A vertical step waits for payloads from peers while it runs: those must not queue behind it.
          if (vertical && (m.body === 'relay' || m.body === 'decryptReply' || m.body === 'stepRequest' || m.body === 'verticalSetup')) return this.onVertical(vertical, m);
          this.enqueue(m);
        },
        onProtocolError: (err) => this.opts.log.warn({ err: err.message }, 'protocol error from coordinator'),
        // Job state (keys, model) survives a reconnect: the coordinator asks every connected participant at each
        // round, so a node back from a network blip rejoins at the next round with the current global model.
        onClose: (err) => resolve(err ? err.message : 'closed by coordinator'),
      });
      this.stream = stream;
      void stream
        .send({
          jobId: '',
          round: 0,
          nonce: randomBytes(16),
          body: 'hello',
          hello: {
            organisation: this.org,
            softwareVersion: softwareVersion(),
            protocolVersion: PROTOCOL_VERSION,
            featureColumns: this.rows.features,
            hasLabels: this.rows.meta.labels,
            newestReceipt: this.record.newestReceipt() ?? new Uint8Array(),
          },
        })
        .then((bytes) => this.record.message('sent', '', 0, 'hello', bytes))
        .catch(() => undefined);
    });
  }

  /** Handle messages one at a time, in arrival order (training is CPU-bound and must not interleave). */
  private enqueue(message: CoordinatorMessage): void {
    this.queue = this.queue.then(() =>
      this.handle(message).catch(async (err) => {
        this.opts.log.error({ job: message.jobId, round: message.round, step: message.body, err: errorMessage(err) }, 'step failed');
        const e = err instanceof FedcreditError ? err : new FedcreditError(ErrorCode.JOB_FAILED, errorMessage(err));
        await this.reply(message, { body: 'error', error: { code: e.code, message: e.message, hint: e.hint } }).catch(() => undefined);
      }),
    );
  }

  private onVertical(job: PartyChannel, m: CoordinatorMessage): void {
    const log = this.opts.log;
    switch (m.body) {
      case 'relay':
        return job.onRelay(m.relay.peer, m.relay.kind, m.round, m.relay.attempt, m.relay.sealed);
      case 'decryptReply':
        return job.onDecryptReply(m.round, m.decryptReply.attempt, m.decryptReply.values);
      case 'verticalSetup':
        job.install(m.verticalSetup).catch(async (err) => {
          log.error({ job: m.jobId, err: errorMessage(err) }, 'vertical job setup failed');
          // Nothing of this job runs any more: no payload is sealed to a key that failed its check.
          this.vertical.delete(m.jobId);
          job.dispose();
          this.store.end(m.jobId, 'failed');
          const e = err instanceof FedcreditError ? err : new FedcreditError(ErrorCode.JOB_FAILED, errorMessage(err));
          await this.reply(m, { body: 'error', error: { code: e.code, message: e.message, hint: e.hint } }).catch(() => undefined);
        });
        return;
      case 'stepRequest': {
        const started = Date.now();
        job.runStep(m.round, m.stepRequest).then(
          async (done) => {
            if (!done) return;
            const minRows = this.opts.config.consent.min_rows;
            const aligned = m.stepRequest.step === 'psi' ? Number((JSON.parse(done.reportJson) as { intersection?: number }).intersection ?? Infinity) : Infinity;
            if (aligned < minRows) {
              const reason = `consent.min_rows: the job aligns ${aligned} enterprises; ${this.org} takes part only with at least ${minRows}`;
              log.warn({ job: m.jobId, aligned, minRows }, 'job refused after alignment');
              await this.reply(m, { body: 'error', error: { code: ErrorCode.JOB_REFUSED, message: reason, hint: 'a larger overlap is needed, or the data owner lowers consent.min_rows' } }).catch(() => undefined);
              return;
            }
            log.info({ job: m.jobId, step: m.round, name: m.stepRequest.step, epoch: m.stepRequest.epoch, batch: m.stepRequest.batch, ms: Date.now() - started }, 'step done');
            await this.reply(m, { body: 'stepDone', stepDone: done }).catch(() => undefined);
          },
          async (err) => {
            log.error({ job: m.jobId, step: m.round, name: m.stepRequest.step, err: errorMessage(err) }, 'step failed');
            const e = err instanceof FedcreditError ? err : new FedcreditError(ErrorCode.JOB_FAILED, errorMessage(err));
            await this.reply(m, { body: 'error', error: { code: e.code, message: e.message, hint: e.hint } }).catch(() => undefined);
          },
        );
        return;
      }
    }
  }

  /** What a vertical job sends: a sealed payload for a peer, or a masked gradient for the arbiter. */
  private verticalIo(jobId: string) {
    return {
      relay: async (to: string, kind: string, step: number, attempt: number, sealed: Uint8Array) => {
        if (!this.stream) throw new FedcreditError(ErrorCode.UNAVAILABLE, 'not connected to the coordinator', 'the node reconnects by itself');
        const bytes = await this.stream.send({ jobId, round: step, nonce: randomBytes(16), body: 'relay', relay: { peer: to, kind, attempt, sealed } });
        this.record.message('sent', jobId, step, 'relay', bytes, `${kind} for ${to}`);
      },
      decrypt: async (step: number, attempt: number, ciphertext: Uint8Array, count: number) => {
        if (!this.stream) throw new FedcreditError(ErrorCode.UNAVAILABLE, 'not connected to the coordinator', 'the node reconnects by itself');
        const bytes = await this.stream.send({ jobId, round: step, nonce: randomBytes(16), body: 'decryptRequest', decryptRequest: { attempt, ciphertext, count } });
        this.record.message('sent', jobId, step, 'decryptRequest', bytes, `${count} gradient values`);
      },
    };
  }

  private async reply(to: CoordinatorMessage, body: ParticipantReply): Promise<void> {
    if (!this.stream) throw new Error('not connected');
    const bytes = await this.stream.send({ jobId: to.jobId, round: to.round, nonce: randomBytes(16), ...body } as ParticipantMessage);
    const detail = body.body === 'contribution' ? `${body.contribution.purpose}, ${body.contribution.vector.blocks.length} blocks, ${body.contribution.vector.scheme}` : undefined;
    this.record.message('sent', to.jobId, to.round, body.body, bytes, detail);
  }

  private job(id: string): ParticipantJob {
    const job = this.jobs.get(id);
    if (!job) throw new FedcreditError(ErrorCode.NOT_FOUND, `no job ${id} on ${this.org}`, 'the participant restarted during the job; resubmit it');
    return job;
  }

  private async handle(m: CoordinatorMessage): Promise<void> {
    const log = this.opts.log;
    switch (m.body) {
      case 'welcome': {
        const treeHead = m.welcome.treeHead ?? new Uint8Array();
        const rolledBack = ledgerRollback(this.org, this.record.newestReceipt(), treeHead, m.welcome.consistencyProof ?? []);
        if (rolledBack) {
          log.error({ coordinator: this.opts.coordinator ?? this.opts.config.coordinator }, rolledBack.describe());
          this.stream?.end();
          return;
        }
        this.reconnectAttempt = 0;
        log.info({ coordinatorVersion: m.welcome.coordinatorVersion, ledgerSize: treeHead.length ? decodeTreeHead(treeHead).size : undefined }, 'connected to coordinator');
        this.connectedOnce?.();
        this.connectedOnce = undefined;
        return;
      }
      case 'jobOffer':
        return this.onOffer(m, m.jobOffer);
      case 'keygenRequest': {
        const job = this.job(m.jobId);
        const keys = await job.generateKeys(m.keygenRequest.recipients);
        this.store.saveKeys(m.jobId, job.keys!);
        log.info({ job: m.jobId, recipients: m.keygenRequest.recipients.map((r) => r.organisation) }, 'CKKS keys generated; secret key sealed to each participant');
        return this.reply(m, { body: 'keysPublished', keysPublished: keys });
      }
      case 'keyDelivery': {
        const d = m.keyDelivery;
        const job = this.job(m.jobId);
        await job.installKeys(d);
        this.store.saveKeys(m.jobId, job.keys!);
        log.info({ job: m.jobId }, 'CKKS secret key received and unsealed');
        return;
      }
      case 'contributionRequest': {
        const job = this.job(m.jobId);
        const req = m.contributionRequest;
        let values: Float64Array;
        if (req.purpose === 'moments') {
          values = await job.localMoments();
        } else if (req.purpose === 'quantiles') {
          values = await job.localQuantileCounts();
        } else if (req.purpose === 'histogram') {
          values = await job.localHistogram();
        } else {
          const global = toFloat32(req.globalWeights);
          if (!Buffer.from(sha256(req.globalWeights)).equals(Buffer.from(req.globalWeightsSha256))) {
            throw new FedcreditError(ErrorCode.PROTOCOL, `round ${m.round}: global weights do not match their digest`, 'restart the coordinator');
          }
          if (req.purpose === 'evaluation') {
            values = await job.localEvaluation(global, req.preprocessing!);
          } else {
            values = await job.localUpdate(m.round, global, req.preprocessing!);
            this.roundStart.set(m.jobId, { global, prep: req.preprocessing! });
          }
        }
        const vector = await job.encode(values);
        const bytes = vector.blocks.reduce((n, b) => n + b.length, 0);
        log.info({ job: m.jobId, round: m.round, purpose: req.purpose, values: values.length, ciphertexts: vector.blocks.length, bytes, scheme: vector.scheme }, 'contribution sent');
        return this.reply(m, { body: 'contribution', contribution: { purpose: req.purpose, vector } });
      }
      case 'aggregateReady': {
        const job = this.job(m.jobId);
        const agg = m.aggregateReady;
        const start = this.roundStart.get(m.jobId);
        const values = await job.decode(agg.sum, job.expectedLength(agg.purpose, start?.global.length ?? 0));
        if (agg.purpose === 'moments') job.setMoments(values);
        if (agg.purpose === 'quantiles') job.advanceQuantiles(values);
        const bytes = float64Bytes(values);
        const reporter = agg.contributors[0] === this.org;
        let validation = null;
        if (agg.purpose === 'update') {
          validation = await job.validate(applyAggregate(start!.global, values), start!.prep);
        }
        return this.reply(m, {
          body: 'aggregateOpened',
          aggregateOpened: { purpose: agg.purpose, valuesSha256: sha256(bytes), values: reporter ? bytes : new Uint8Array(), validation },
        });
      }
      case 'jobEnded': {
        // At every reconnection the coordinator names each ended job of this node: only news is logged.
        const news = this.store.stateOf(m.jobId) === 'running' || this.vertical.has(m.jobId) || this.jobs.has(m.jobId);
        if (news) log.info({ job: m.jobId, state: m.jobEnded.state, message: m.jobEnded.message }, 'job ended; what was kept to rejoin it is deleted');
        this.endedJobs.add(m.jobId);
        this.vertical.get(m.jobId)?.dispose();
        this.vertical.delete(m.jobId);
        // The rows in memory serve vertical jobs only: with none left, let them go.
        if (this.vertical.size === 0) this.inMemory = undefined;
        this.jobs.get(m.jobId)?.dispose();
        this.jobs.delete(m.jobId);
        this.store.end(m.jobId, m.jobEnded.state);
        this.roundStart.delete(m.jobId);
        return;
      }
      case 'receipt':
        this.record.receipt(m.jobId, m.receipt.treeHead);
        return;
      case 'error':
        log.warn({ job: m.jobId, round: m.round, code: m.error.code, message: m.error.message }, 'coordinator reported an error');
        return;
    }
  }

  /** The global model and preprocessing each job's current round started from. */
  private readonly roundStart = new Map<string, { global: Float32Array; prep: Preprocessing }>();

  /** Check the job against this data owner's consent and data, then accept or refuse with the rule named. */
  private async onOffer(m: CoordinatorMessage, offer: JobOffer): Promise<void> {
    const { config, log } = this.opts;
    const spec = JobSpec.parse(JSON.parse(offer.specJson));
    const refuse = (code: string, reason: string) => {
      log.warn({ job: m.jobId, submitter: offer.submitter, code, reason }, 'job refused');
      return this.reply(m, { body: 'jobRefused', jobRefused: { code, reason } });
    };
    const consent = config.consent;
    if (!consent.job_kinds.includes(consentKind(spec))) return refuse('consent.job_kinds', `job kind ${consentKind(spec)} is not in consent.job_kinds (${consent.job_kinds.join(', ')})`);
    if (!consent.submitters.includes('*') && !consent.submitters.includes(offer.submitter)) {
      return refuse('consent.submitters', `submitter ${offer.submitter} is not in consent.submitters`);
    }
    if (config.consent.approval === 'manual' && spec.kind !== 'vertical-score') {
      // Rules first: the owner is asked only about jobs its policy allows.
      const refusal = this.policyRefusal(spec);
      if (refusal) return refuse(...refusal);
      // Waiting for a person must not hold up this node's other jobs: the answer is sent when the owner decides.
      void this.awaitApproval(m, offer, spec, refuse).catch((err) => log.error({ job: m.jobId, err: errorMessage(err) }, 'could not answer the offer after the owner decided'));
      return;
    }
    return this.acceptOffer(m, offer, spec, refuse);
  }

  private async awaitApproval(m: CoordinatorMessage, offer: JobOffer, spec: JobSpec, refuse: (code: string, reason: string) => Promise<void>): Promise<void> {
    const { config, log } = this.opts;
    const columns = spec.kind === 'horizontal' ? (spec.features ?? this.rows.features) : spec.kind === 'vertical-lr' ? (spec.features?.[this.org] ?? this.rows.features) : [];
    this.approvals.hold({ jobId: m.jobId, name: spec.name, kind: spec.kind, purpose: spec.purpose, submitter: offer.submitter, columns, receivedAt: new Date().toISOString() });
    log.warn({ job: m.jobId, name: spec.name, purpose: spec.purpose, submitter: offer.submitter, columns }, `job offer awaits the data owner's approval: fedcredit participant approve --config <this config> ${m.jobId} (or reject)`);
    const decision = await this.approvals.wait(m.jobId, config.consent.approval_timeout_s * 1000, () => this.stopping || this.endedJobs.has(m.jobId));
    if (this.endedJobs.has(m.jobId)) return;
    if (!decision.approved) return refuse('consent.approval', `the data owner did not approve the job: ${decision.reason || 'rejected'}`);
    log.info({ job: m.jobId }, 'job approved by the data owner');
    // Accept in turn with the other messages this node is handling.
    const accepted = this.queue.then(() => this.acceptOffer(m, offer, spec, refuse));
    this.queue = accepted.catch(() => undefined);
    await accepted;
  }

  private async acceptOffer(m: CoordinatorMessage, offer: JobOffer, spec: JobSpec, refuse: (code: string, reason: string) => Promise<void>): Promise<void> {
    const { config, log } = this.opts;
    if (spec.kind === 'vertical-score') return this.onScoreOffer(m, spec, offer.specJson, refuse);
    const refusal = this.policyRefusal(spec);
    if (refusal) return refuse(...refusal);
    if (spec.kind === 'vertical-lr') return this.onVerticalOffer(m, spec, offer.specJson, refuse);
    if (!this.rows.meta.labels) return refuse('data.label_column', `${this.org}'s data section has no label_column; horizontal participants hold labels`);
    const features = spec.features ?? this.rows.features;
    const types = features.map((f) => config.data.features.find((c) => c.name === f)!.type);
    const job = await this.createJob(m.jobId, spec, features);
    job.binding = this.partyBinding(offer.specJson, spec.participants);
    this.store.save({ id: m.jobId, specJson: offer.specJson, features });
    log.info({ job: m.jobId, name: spec.name, purpose: spec.purpose, submitter: offer.submitter, trainRows: job.trainRows, validationRows: job.validationRows }, 'job accepted');
    if (spec.encryption.scheme === 'plaintext') log.warn({ job: m.jobId }, 'PLAINTEXT MODE: this job sends model updates unencrypted (comparison/debugging only)');
    return this.reply(m, {
      body: 'jobAccepted',
      jobAccepted: {
        trainRows: job.trainRows,
        validationRows: job.validationRows,
        schemaHash: schemaHash(features, types),
        boxPublicKey: job.box.publicKey,
        // Counts only: the local file path stays home.
        loadReport: formatLoadReport({ ...this.rows.meta.report, file: this.org }),
        idSetSha256: idSetDigest(m.jobId, this.rows.meta.idSetSha256),
        boxKeyBinding: job.boxKeyBinding(),
      },
    });
  }

  /** The policy rules an offer can be checked against before anyone is asked (the offer's own checks repeat them). */
  private policyRefusal(spec: JobSpec): [string, string] | undefined {
    const consent = this.opts.config.consent;
    if (spec.kind === 'vertical-score') return undefined;
    if (spec.encryption.scheme === 'plaintext' && !consent.allow_plaintext) return ['consent.allow_plaintext', 'the job runs in plaintext mode (nothing encrypted) and consent.allow_plaintext is false'];
    const rounds = spec.kind === 'horizontal' ? spec.training.rounds : spec.training.epochs;
    if (rounds > consent.max_rounds) return ['consent.max_rounds', `the job asks for ${rounds} ${spec.kind === 'horizontal' ? 'rounds' : 'epochs'}; consent.max_rounds is ${consent.max_rounds}`];
    const features = spec.kind === 'horizontal' ? (spec.features ?? this.rows.features) : (spec.features?.[this.org] ?? this.rows.features);
    const columns = this.columnRefusal(features);
    if (columns) return columns;
    const categories = features.filter((f) => this.rows.meta.levels?.[f]);
    if (spec.kind === 'horizontal' && categories.length > 0) {
      return ['data.features', `${categories.join(', ')} ${categories.length > 1 ? 'are categories' : 'is a category'} (type: category); horizontal jobs do not bin categories yet: list the job's features without ${categories.length > 1 ? 'them' : 'it'}`];
    }
    const specials = spec.kind === 'horizontal' ? features.find((f) => spec.binning?.features[f]?.special_values) : undefined;
    if (specials) return [`binning.features.${specials}.special_values`, `horizontal jobs do not count special values in their secure histograms yet: remove binning.features.${specials}.special_values`];
    const binning = binningConflict(spec.binning, features.map((name) => ({ name, category: !!this.rows.meta.levels?.[name] })));
    if (binning) return binning;
    if (spec.kind === 'horizontal' && this.rows.rows < consent.min_rows) return ['consent.min_rows', `the job would use ${this.rows.rows} rows of this data owner; consent.min_rows is ${consent.min_rows}`];
    const fair = spec.kind === 'vertical-lr' ? spec.fairness : undefined;
    const groupColumns = this.rows.meta.groupColumns;
    if (fair?.party === this.org && !groupColumns.includes(fair.column)) {
      return ['data.group_columns', `the job groups its fairness figures by ${fair.column}, which ${this.org} does not list in data.group_columns (listed: ${groupColumns.join(', ') || 'none'})`];
    }
    return undefined;
  }

  /** Why a job's columns cannot be used: not consented to (consent.columns), or not declared at all. */
  private columnRefusal(features: string[]): [string, string] | undefined {
    const missing = features.filter((f) => !this.rows.features.includes(f));
    if (missing.length === 0) return undefined;
    const declared = new Set(this.opts.config.data.features.map((f) => f.name));
    const withheld = missing.filter((f) => declared.has(f));
    if (withheld.length > 0) return ['consent.columns', `the job asks for ${withheld.join(', ')}, which consent.columns does not allow (allowed: ${this.rows.features.join(', ')})`];
    return ['data.features', `the job uses columns this participant does not offer: ${missing.join(', ')}`];
  }

  private async onVerticalOffer(m: CoordinatorMessage, spec: VerticalJobSpec, specJson: string, refuse: (code: string, reason: string) => Promise<void>): Promise<void> {
    const { config, log } = this.opts;
    const role = spec.guest === this.org ? 'guest' : 'host';
    if (role === 'guest' && !this.rows.meta.labels) return refuse('data.label_column', `${this.org} is the job's guest but its data section has no label_column`);
    const features = spec.features?.[this.org] ?? this.rows.features;
    const types = features.map((f) => config.data.features.find((c) => c.name === f)!.type);
    this.store.save({ id: m.jobId, specJson, features });
    const job = new VerticalParty(m.jobId, spec, this.org, this.partyData, features, this.verticalIo(m.jobId), log, this.store.dirOf(m.jobId));
    job.shareStatistics = config.consent.share_statistics;
    job.binding = this.partyBinding(specJson, [spec.guest, ...spec.hosts]);
    this.vertical.set(m.jobId, job);
    log.info({ job: m.jobId, name: spec.name, purpose: spec.purpose, role, features: features.length }, 'vertical job accepted');
    return this.reply(m, {
      body: 'jobAccepted',
      jobAccepted: {
        trainRows: this.rows.rows,
        validationRows: 0,
        schemaHash: schemaHash(features, types),
        boxPublicKey: job.box.publicKey,
        loadReport: formatLoadReport({ ...this.rows.meta.report, file: this.org }),
        idSetSha256: idSetDigest(m.jobId, this.rows.meta.idSetSha256),
        boxKeyBinding: job.boxKeyBinding(),
      },
    });
  }

  private async onScoreOffer(m: CoordinatorMessage, spec: VerticalScoreSpec, specJson: string, refuse: (code: string, reason: string) => Promise<void>): Promise<void> {
    const { log } = this.opts;
    const admitted = this.scoringQuota.admit(m.jobId, spec.model_job);
    if (admitted.refused) return refuse(...admitted.refused);
    this.store.save({ id: m.jobId, specJson, features: [] });
    let job: ScoringParty;
    try {
      job = new ScoringParty(m.jobId, spec, this.org, this.data, this.verticalIo(m.jobId), log, this.store.dirOf(m.jobId), this.store.dirOf(spec.model_job), join(this.stateDir, 'score-requests'));
    } catch (err) {
      this.store.end(m.jobId, 'refused');
      return refuse('model', errorMessage(err));
    }
    job.binding = this.partyBinding(specJson, [spec.guest, ...spec.hosts]);
    job.quota = this.scoringQuota;
    this.vertical.set(m.jobId, job);
    log.info({ job: m.jobId, modelJob: spec.model_job, role: job.role }, 'scoring job accepted');
    return this.reply(m, {
      body: 'jobAccepted',
      jobAccepted: { trainRows: 0, validationRows: 0, schemaHash: new Uint8Array(), boxPublicKey: job.box.publicKey, loadReport: '', idSetSha256: new Uint8Array(), boxKeyBinding: job.boxKeyBinding() },
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.stream?.end();
    await this.queue.catch(() => undefined);
    for (const job of this.jobs.values()) job.dispose();
    for (const job of this.vertical.values()) job.dispose();
    this.client?.close();
  }
}

/** The participant's own note of what a received message was (for its egress record). */
function receivedDetail(m: CoordinatorMessage): string {
  switch (m.body) {
    case 'jobOffer':
      return `job offer from ${m.jobOffer.submitter}`;
    case 'contributionRequest':
      return {
        moments: 'request for feature moments',
        quantiles: 'request for counts at the quantile search\'s points',
        histogram: 'request for binning histograms',
        update: 'global model for the round',
        evaluation: 'final model to evaluate on the validation rows',
      }[m.contributionRequest.purpose] ?? m.contributionRequest.purpose;
    case 'aggregateReady':
      return `encrypted sum over ${m.aggregateReady.contributors.join(', ')}`;
    case 'keyDelivery':
      return 'CKKS public key and this node\'s sealed secret key';
    default:
      return m.body;
  }
}
