/**
 * The participant process: runs inside a data owner's domain, dials out to the coordinator, and answers job
 * steps from its own data. Rows never leave: only counts, encrypted vectors, digests and validation metrics do.
 */
import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { ParticipantConfig } from '../src/config/schemas.js';
import { JobSpec, type HorizontalJobSpec } from '../src/config/schemas.js';
import { kindOf } from '../src/jobs/registry.js';
import type { DataOwner } from '../src/jobs/kind.js';
import { datasetOf, formatLoadReport, heavilyImputed, IMPUTED_WARN_SHARE, invalidCells, type LoadedDataset, withScoringRows } from '../src/data/csv.js';
import { ingestWithUnlabelled } from '../src/data/source.js';
import type { RowStore } from '../src/data/row-store.js';
import { ErrorCode, FedcreditError, errorMessage } from '../src/errors.js';
import type { Logger } from '../src/log.js';
import { loadTf, type Tf } from '../src/model/tf.js';
import { ROWS_DIR, softwareVersion, UNLABELLED_ROWS_DIR } from '../src/paths.js';
import { writableDir } from '../src/config/writable-dir.js';
import { x25519Backend } from '../src/psi/x25519.js';
import type { Frame } from '../src/wire/framing.js';
import { coordinatorServiceDefinition, CHANNEL_OPTIONS, PROTOCOL_VERSION } from '../src/wire/proto.js';
import { FramedStream, type DuplexCall } from '../src/wire/stream.js';
import type { CoordinatorMessage, JobAccepted, JobOffer, ParticipantMessage, ParticipantReply } from '../src/wire/messages.js';
import { dataDescription } from './job-state.js';
import { participantStateDir } from './state-dir.js';
import { HorizontalJob } from './horizontal-job.js';
import { JobStore } from './job-store.js';
import { OwnRecord, ledgerRollback } from './own-record.js';
import { decodeTreeHead } from '../src/ledger/ledger.js';
import type { PartyData } from './vertical-job.js';
import { dialed, dialFailure, jobBinding, type Transport } from '../src/wire/transport.js';
import { Approvals, offerShares } from './approvals.js';
import { ScoringQuota } from './scoring-quota.js';
import { consentNow } from './consent-reload.js';
import type { PartyChannel } from './vertical-channel.js';
import type { JobBinding } from '../src/crypto/key-binding.js';
import { participantKindOf } from './kinds/index.js';
import type { PartyNode } from './kinds/kind.js';

const CoordinatorClient = grpc.makeGenericClientConstructor(coordinatorServiceDefinition(), 'Coordinator');

export interface ParticipantOptions {
  config: ParticipantConfig;
  configDir: string;
  log: Logger;
  /** Override of config.coordinator (the demo and tests pick ports at run time). */
  coordinator?: string;
  /** Mutual TLS with this node's certificate, or plaintext (tests). */
  transport: Transport;
  /** The file `config` was read from: its consent is read again at each offer (participant/consent-reload.ts). */
  configFile?: string;
}

export class ParticipantNode {
  private rows!: RowStore;
  private inMemory?: LoadedDataset;
  /** The guest's rows without a label (applicants with no outcome yet), kept for scoring only; none elsewhere. */
  private unlabelled?: RowStore;
  private scoringRows?: LoadedDataset;
  /** The row store's rowOrderDigest, computed when a vertical job first asks (the store does not change while the node runs). */
  private rowsDigest?: string;
  private tf!: Tf;
  private client?: grpc.Client;
  private stream?: FramedStream<CoordinatorMessage, ParticipantMessage>;
  private readonly jobs = new Map<string, HorizontalJob>();
  private readonly vertical = new Map<string, PartyChannel>();
  private readonly approvals: Approvals;
  /** Jobs the coordinator ended while an offer of theirs waited for the owner's approval. */
  private readonly endedJobs = new Set<string>();
  /** Every job this process was offered: a second offer of one is refused (secondOffer). */
  private readonly offered = new Set<string>();
  private readonly stateDir: string;
  private queue: Promise<void> = Promise.resolve();
  private stopping = false;
  private connectedOnce?: () => void;
  private readonly record: OwnRecord;
  private readonly store: JobStore;
  /** The owner's caps on scoring with models it helped train (consent.scoring). */
  private scoringQuota: ScoringQuota;
  private reconnectAttempt = 0;
  /** The cause of the last failed dial, logged as an error once per cause. */
  private lastDialFailure: string | undefined;

  constructor(private readonly opts: ParticipantOptions) {
    const stateDir = participantStateDir(opts.config, opts.configDir);
    writableDir(stateDir, 'state_dir', opts.configFile ?? 'the participant config');
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

  /** The rows scoring jobs read: the kept rows, and at the guest also those without a label, kept for scoring only. */
  private get scoringData(): LoadedDataset {
    return (this.scoringRows ??= this.unlabelled ? withScoringRows(this.data, datasetOf(this.unlabelled)) : this.data);
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
    if (!binding) this.opts.log.warn("--insecure: this job's keys are not bound to certificates, and the peers' keys are not checked (tests only)");
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
    // Rows without a label never train, but a guest scores them: they are its applicants with no outcome yet, kept
    // apart in the same pass. Only a vertical model's guest scores them: an owner who takes part in horizontal jobs
    // only keeps none (nor those kept by an earlier start).
    const vertical = config.consent.job_kinds.some((k) => k !== 'horizontal');
    const opts = { baseDir: configDir, columns: config.consent.columns, dir: join(this.stateDir, ROWS_DIR), scatter: true };
    ({ rows: this.rows, unlabelled: this.unlabelled } = await ingestWithUnlabelled(config.data, opts, { dir: join(this.stateDir, UNLABELLED_ROWS_DIR), keep: vertical }));
    log.info({ rows: this.rows.rows, features: this.rows.features.length }, `data loaded:\n${formatLoadReport(this.rows.meta.report)}`);
    if (this.unlabelled) log.info({ rows: this.unlabelled.rows }, `${this.unlabelled.rows} rows without a label kept for scoring only (never trained on): \`fedcredit score\` scores them`);
    for (const { feature, cells, share } of heavilyImputed(this.rows.meta.report)) {
      log.warn(
        { feature, imputedCells: cells, rows: this.rows.rows, share: Math.round(share * 1000) / 1000 },
        `feature "${feature}": ${cells} of ${this.rows.rows} kept rows (${(100 * share).toFixed(1)}%, over ${IMPUTED_WARN_SHARE * 100}%) have no valid value and will be imputed with the federation-wide mean; check the column and its missing_values`,
      );
    }
    for (const { feature, cells, examples, message } of invalidCells(this.rows.meta)) log.warn({ feature, invalidCells: cells, examples }, message);
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
      await participantKindOf(spec).restore(this.party, stored, spec);
    }
  }

  private async createJob(id: string, spec: HorizontalJobSpec, features: string[]): Promise<HorizontalJob> {
    const job = await HorizontalJob.open(id, spec, features, {
      organisation: this.org,
      rows: this.rows,
      tf: this.tf,
      log: this.opts.log,
      saveKeys: (jobId, keys) => this.store.saveKeys(jobId, keys),
      forgetCeremony: (jobId) => this.store.forgetCeremony(jobId),
      sharesGiven: (jobId) => this.store.sharesGiven(jobId),
    });
    this.jobs.set(id, job);
    return job;
  }

  private async connectLoop(): Promise<void> {
    const address = this.opts.coordinator ?? this.opts.config.coordinator;
    while (!this.stopping) {
      const closed = this.openStream(address);
      const reason = await closed;
      if (this.stopping) return;
      // Exponential backoff with full jitter, capped at 8 s: a coordinator back from a restart finds every participant
      // within 8 s (a resumed job waits for all of them), and a few hundred participants retrying that often cost it nothing.
      const delay = Math.random() * Math.min(8_000, 500 * 2 ** Math.min(this.reconnectAttempt++, 4));
      const known = dialFailure(reason);
      this.opts.log.warn({ coordinator: address, reason, retryInMs: Math.round(delay), ...known }, 'control stream closed; reconnecting');
      // A refused certificate does not heal by retrying: say so once, as an error naming the fix.
      if (known && known.cause !== this.lastDialFailure) this.opts.log.error({ coordinator: address, fix: known.fix }, `cannot connect to the coordinator: ${known.cause}`);
      this.lastDialFailure = known?.cause;
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
          if (
            vertical &&
            (m.body === 'relay' || m.body === 'decryptReply' || m.body === 'stepRequest' || m.body === 'verticalSetup' || m.body === 'thresholdCeremony' || m.body === 'gradientShareRequest')
          )
            return this.onVertical(vertical, m);
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
      case 'thresholdCeremony':
        job.ceremony(m.thresholdCeremony).then(
          (reply) => this.reply(m, { body: 'thresholdCeremony', thresholdCeremony: reply }).catch(() => undefined),
          async (err) => {
            log.error({ job: m.jobId, step: m.thresholdCeremony.step, err: errorMessage(err) }, 'key ceremony refused');
            const e = err instanceof FedcreditError ? err : new FedcreditError(ErrorCode.JOB_FAILED, errorMessage(err));
            await this.reply(m, { body: 'error', error: { code: e.code, message: e.message, hint: e.hint } }).catch(() => undefined);
          },
        );
        return;
      case 'gradientShareRequest': {
        const { attempt, party } = m.gradientShareRequest;
        let share: Uint8Array;
        try {
          share = job.gradientShare(m.round, m.gradientShareRequest);
        } catch (err) {
          log.error({ job: m.jobId, step: m.round, party, err: errorMessage(err) }, 'decryption share refused');
          const e = err instanceof FedcreditError ? err : new FedcreditError(ErrorCode.DECRYPTION_REFUSED, errorMessage(err));
          void this.reply(m, { body: 'error', error: { code: e.code, message: e.message, hint: e.hint } }).catch(() => undefined);
          return;
        }
        log.info({ job: m.jobId, step: m.round, party }, 'decryption share given');
        void this.reply(m, { body: 'gradientShare', gradientShare: { attempt, party, share } }).catch(() => undefined);
        return;
      }
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
              await this.reply(m, { body: 'error', error: { code: ErrorCode.JOB_REFUSED, message: reason, hint: 'a larger overlap is needed, or the data owner lowers consent.min_rows' } }).catch(
                () => undefined,
              );
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
    // An error's or a refusal's text may quote this node's data (masked examples of invalid ids): the owner's record
    // keeps it as sent.
    const detail =
      body.body === 'contribution'
        ? `${body.contribution.purpose}, ${body.contribution.vector.blocks.length} blocks, ${body.contribution.vector.scheme}`
        : body.body === 'error'
          ? `${body.error.code}: ${body.error.message}`
          : body.body === 'jobRefused'
            ? `${body.jobRefused.code}: ${body.jobRefused.reason}`
            : undefined;
    this.record.message('sent', to.jobId, to.round, body.body, bytes, detail);
  }

  private job(id: string): HorizontalJob {
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
        this.lastDialFailure = undefined;
        log.info({ coordinatorVersion: m.welcome.coordinatorVersion, ledgerSize: treeHead.length ? decodeTreeHead(treeHead).size : undefined }, 'connected to coordinator');
        this.connectedOnce?.();
        this.connectedOnce = undefined;
        return;
      }
      case 'jobOffer':
        return this.onOffer(m, m.jobOffer);
      case 'keygenRequest':
      case 'keyDelivery':
      case 'contributionRequest':
      case 'aggregateReady':
      case 'thresholdCeremony':
      case 'decryptionShares': {
        const reply = await this.job(m.jobId).handle(m);
        if (reply) await this.reply(m, reply);
        return;
      }
      case 'jobEnded': {
        // At every reconnection the coordinator names each ended job of this node: only news is logged.
        const news = this.store.stateOf(m.jobId) === 'running' || this.vertical.has(m.jobId) || this.jobs.has(m.jobId);
        if (news) log.info({ job: m.jobId, state: m.jobEnded.state, message: m.jobEnded.message }, 'job ended; what was kept to rejoin it is deleted');
        this.endedJobs.add(m.jobId);
        this.vertical.get(m.jobId)?.dispose();
        this.vertical.delete(m.jobId);
        // The rows in memory serve vertical jobs only: with none left, let them go.
        if (this.vertical.size === 0) {
          this.inMemory = undefined;
          this.scoringRows = undefined;
        }
        this.jobs.get(m.jobId)?.dispose();
        this.jobs.delete(m.jobId);
        this.store.end(m.jobId, m.jobEnded.state);
        return;
      }
      case 'receipt':
        this.record.receipt(m.jobId, m.receipt.treeHead);
        return;
      case 'error':
        log.warn({ job: m.jobId, round: m.round, code: m.error.code, message: m.error.message }, 'coordinator reported an error');
        return;
      case 'verticalSetup':
      case 'stepRequest':
      case 'gradientShareRequest': {
        // onVertical answers these for the vertical jobs this node holds: the coordinator waits for an answer, so one
        // for a job it does not hold says so at once (it would wait out the step's deadline and name another party).
        if (this.store.stateOf(m.jobId) === 'abandoned') {
          // Given up when this node restarted (abandonUnrejoinable).
          const kind = this.store.kindOf(m.jobId) ?? 'vertical';
          throw new FedcreditError(ErrorCode.JOB_FAILED, `${this.org} was restarted during this ${kind} job and cannot rejoin it (its log says why)`, 'resubmit the job');
        }
        throw new FedcreditError(
          ErrorCode.JOB_FAILED,
          `${this.org} does not hold vertical job ${m.jobId}: it ${this.endedJobs.has(m.jobId) ? 'ended it' : 'dropped it'} (its log says why)`,
          'resubmit the job',
        );
      }
    }
  }

  /** Check the job against this data owner's consent and data, then accept or refuse with the rule named. */
  private async onOffer(m: CoordinatorMessage, offer: JobOffer): Promise<void> {
    const { config, log } = this.opts;
    const spec = JobSpec.parse(JSON.parse(offer.specJson));
    const refuse = (code: string, reason: string) => {
      log.warn({ job: m.jobId, submitter: offer.submitter, code, reason }, 'job refused');
      return this.reply(m, { body: 'jobRefused', jobRefused: { code, reason } });
    };
    // Answered with a fresh job, a second offer would forget the box key, setup and key share this node holds for it:
    // a coordinator could then put other keys in place after the checks, or restart a collective key in use. One
    // still awaiting the owner's approval would replace the offer the owner is shown, and both would be accepted.
    const second = this.secondOffer(m.jobId);
    if (second) return refuse('protocol', second);
    this.offered.add(m.jobId);
    if (this.opts.configFile) {
      const now = consentNow(this.opts.configFile, config);
      if ('refusal' in now) {
        log.warn({ job: m.jobId, config: this.opts.configFile }, 'the participant config cannot be taken up at this offer');
        return refuse('consent', now.refusal);
      }
      if (now.changed) {
        log.info({ job: m.jobId, consent: now.consent }, `consent changed in ${this.opts.configFile}: this offer and the next are checked against it`);
        config.consent = now.consent;
        this.scoringQuota = new ScoringQuota(this.stateDir, now.consent.scoring);
      }
    }
    const consent = config.consent;
    const kind = kindOf(spec);
    // A scoring job is admitted by the kind of the job whose model it uses, as this node kept that job.
    const modelJob = 'model_job' in spec ? spec.model_job : '';
    const consentKind = kind.consentKind === 'model_job' ? this.store.kindOf(modelJob) : kind.consentKind;
    if (consentKind && !(consent.job_kinds as string[]).includes(consentKind))
      return refuse('consent.job_kinds', `job kind ${consentKind} is not in consent.job_kinds (${consent.job_kinds.join(', ')})`);
    if (!consent.submitters.includes('*') && !consent.submitters.includes(offer.submitter)) {
      return refuse('consent.submitters', `submitter ${offer.submitter} is not in consent.submitters`);
    }
    if (!consentKind) return refuse('model', `${this.org} holds no model of job ${modelJob}`);
    if (config.consent.approval === 'manual' && kind.policy) {
      // Rules first: the owner is asked only about jobs its policy allows.
      const refusal = kind.policy.refusal(spec, this.owner);
      if (refusal) return refuse(...refusal);
      // Waiting for a person must not hold up this node's other jobs: the answer is sent when the owner decides.
      void this.awaitApproval(m, offer, spec, refuse).catch((err) => log.error({ job: m.jobId, err: errorMessage(err) }, 'could not answer the offer after the owner decided'));
      return;
    }
    return this.acceptOffer(m, offer, spec, refuse);
  }

  private async awaitApproval(m: CoordinatorMessage, offer: JobOffer, spec: JobSpec, refuse: (code: string, reason: string) => Promise<void>): Promise<void> {
    const { config, log } = this.opts;
    const columns = kindOf(spec).policy?.columns(spec, this.owner) ?? [];
    const shares = offerShares(spec, this.org);
    this.approvals.hold({ jobId: m.jobId, name: spec.name, kind: spec.kind, purpose: spec.purpose, submitter: offer.submitter, columns, shares, receivedAt: new Date().toISOString() });
    log.warn(
      { job: m.jobId, name: spec.name, purpose: spec.purpose, submitter: offer.submitter, columns, shares },
      `job offer awaits the data owner's approval: fedcredit participant approve --config <this config> ${m.jobId} (or reject)`,
    );
    const decision = await this.approvals.wait(m.jobId, config.consent.approval_timeout_s * 1000, () => this.stopping || this.endedJobs.has(m.jobId));
    if (this.endedJobs.has(m.jobId)) return;
    if (!decision.approved) return refuse('consent.approval', `the data owner did not approve the job: ${decision.reason || 'rejected'}`);
    log.info({ job: m.jobId }, 'job approved by the data owner');
    // Accept in turn with the other messages this node is handling.
    const accepted = this.queue.then(() => this.acceptOffer(m, offer, spec, refuse));
    this.queue = accepted.catch(() => undefined);
    await accepted;
  }

  /**
   * Why an offer of `jobId` is a second one, or undefined: this node holds the job (running, ended, or kept in its
   * folder), or, unless `offeredCounts` is false (the offer being accepted), this process was offered it already.
   */
  private secondOffer(jobId: string, offeredCounts = true): string | undefined {
    const refused = `a second offer of the same job is refused (the coordinator deviates from the protocol)`;
    if (this.vertical.has(jobId) || this.jobs.has(jobId) || this.store.stateOf(jobId) !== undefined) return `${this.org} already holds job ${jobId}; ${refused}`;
    if (offeredCounts && this.offered.has(jobId)) return `${this.org} was offered job ${jobId} already; ${refused}`;
    return undefined;
  }

  private async acceptOffer(m: CoordinatorMessage, offer: JobOffer, spec: JobSpec, refuse: (code: string, reason: string) => Promise<void>): Promise<void> {
    // After a wait for the owner: the job must not have been taken up meanwhile.
    const taken = this.secondOffer(m.jobId, false);
    if (taken) return refuse('protocol', taken);
    const refusal = kindOf(spec).policy?.refusal(spec, this.owner);
    if (refusal) return refuse(...refusal);
    const accept = (jobAccepted: JobAccepted) => this.reply(m, { body: 'jobAccepted', jobAccepted });
    return participantKindOf(spec).accept(this.party, { jobId: m.jobId, specJson: offer.specJson, submitter: offer.submitter, refuse, accept }, spec);
  }

  /** This data owner's data and consent, as the kinds' consent rules read them. */
  private get owner(): DataOwner {
    return {
      org: this.org,
      consent: this.opts.config.consent,
      offered: this.rows.features,
      declared: this.opts.config.data.features.map((f) => f.name),
      levels: Object.fromEntries(this.rows.features.flatMap((f) => (this.rows.meta.levels?.[f] ? [[f, this.rows.meta.levels[f]]] : []))),
      undeclaredLevels: (feature, levels) => this.opts.log.warn({ feature, levels }, `levels of ${feature} the job does not declare`),
      rows: this.rows.rows,
      groupColumns: this.rows.meta.groupColumns,
    };
  }

  /** What this node lends the job kinds (participant/kinds/). */
  private readonly party: PartyNode = (() => {
    const node = this;
    return {
      get org() {
        return node.org;
      },
      get config() {
        return node.opts.config;
      },
      get log() {
        return node.opts.log;
      },
      get rows() {
        return node.rows;
      },
      scoringData(asGuest: boolean) {
        return asGuest ? node.scoringData : node.data;
      },
      get partyData() {
        return node.partyData;
      },
      get store() {
        return node.store;
      },
      get stateDir() {
        return node.stateDir;
      },
      get scoringQuota() {
        return node.scoringQuota;
      },
      verticalIo: (jobId) => node.verticalIo(jobId),
      partyBinding: (specJson, parties) => node.partyBinding(specJson, parties),
      dataDescription: (jobId, features) =>
        dataDescription(
          jobId,
          node.org,
          features,
          features.map((f) => node.opts.config.data.features.find((c) => c.name === f)!.type),
          node.rows.meta,
        ),
      createJob: (id, spec, features) => node.createJob(id, spec, features),
      addParty: (jobId, party) => void node.vertical.set(jobId, party),
    };
  })();

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
      return (
        {
          moments: 'request for feature moments',
          quantiles: "request for counts at the quantile search's points",
          histogram: 'request for binning histograms',
          update: 'global model for the round',
          evaluation: 'final model to evaluate on the validation rows',
        }[m.contributionRequest.purpose] ?? m.contributionRequest.purpose
      );
    case 'aggregateReady':
      return `encrypted sum over ${m.aggregateReady.contributors.join(', ')}`;
    case 'keyDelivery':
      return "CKKS public key and this node's sealed secret key";
    default:
      return m.body;
  }
}
