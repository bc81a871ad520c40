/**
 * The coordinator process: a gRPC server that participants dial into (one control stream each) and submitters
 * call to submit, watch and fetch jobs. It holds no raw data and no secret key.
 */
import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { Ledger } from '../src/ledger/ledger.js';
import { parse as parseYaml } from 'yaml';
import { validateConfig } from '../src/config/load.js';
import { JobSpec, jobParties, type CoordinatorConfig } from '../src/config/schemas.js';
import { ErrorCode, errorMessage, isFedcreditError } from '../src/errors.js';
import type { Logger } from '../src/log.js';
import { softwareVersion } from '../src/paths.js';
import { coordinatorServiceDefinition, CHANNEL_OPTIONS, PROTOCOL_VERSION, widenServerWindows } from '../src/wire/proto.js';
import { MAX_MESSAGE_BYTES, toChunks, type EncodedMessage, type Frame } from '../src/wire/framing.js';
import { FramedStream, type DuplexCall } from '../src/wire/stream.js';
import type {
  Chunk,
  CoordinatorMessage,
  JobEvent,
  JobIdRequest,
  JobStatus,
  ParticipantMessage,
  SubmitJobRequest,
  SubmitJobResponse,
} from '../src/wire/messages.js';
import { JobRun } from './job-run.js';
import type { JobBase, JobContext, SessionRegistry } from './job-base.js';
import { arbiterKeyFile, VerticalRun } from './vertical-run.js';
import { ScoreRun, type TrainedModel } from './score-run.js';
import { finishedJobs, ledgerJobs, unfinishedJobs } from './recovery.js';
import { FinishedJob } from './finished-job.js';
import { serverTransport, type PeerIdentity, type ServerTransport, type Transport } from '../src/wire/transport.js';
import type { Role } from '../src/pki/pki.js';


/** Largest message a stream may send before its Hello: a Hello is a few hundred bytes. */
const UNIDENTIFIED_MAX_BYTES = 64 * 1024;

interface Session {
  organisation: string;
  features: string[];
  stream: FramedStream<ParticipantMessage, CoordinatorMessage>;
}

export interface RunningCoordinator {
  address: string;
  port: number;
  close(): Promise<void>;
}

/** Nonces remembered per organisation for replay detection: far more than any job sends between reconnections. */
const NONCES_KEPT = 1_000_000;

/** What a caller may do, by the role in its certificate. */
const ALLOWED: Record<'connect' | 'submit' | 'read' | 'audit', readonly Role[]> = {
  connect: ['participant'],
  submit: ['submitter'],
  read: ['submitter', 'auditor'],
  audit: ['auditor'],
};

export class CoordinatorService implements SessionRegistry {
  private readonly sessions = new Map<string, Session>();
  private readonly connectWaiters = new Set<() => void>();
  readonly jobs = new Map<string, JobBase>();

  constructor(
    private readonly config: CoordinatorConfig,
    private readonly log: Logger,
    private readonly ledger: Ledger,
    private readonly tls: ServerTransport | undefined,
  ) {}

  /**
   * The caller's identity from its certificate, if its role may do `action`; otherwise undefined after refusing
   * the call with PERMISSION_DENIED (logged). On an insecure server (tests) every caller is let through unnamed.
   */
  private authorise(call: { getPeer(): string; getAuthContext?: () => unknown }, action: keyof typeof ALLOWED, refuse: (code: grpc.status, details: string) => void): { identity?: PeerIdentity; ok: boolean } {
    if (!this.tls) return { ok: true };
    const raw = (call as { getAuthContext?: () => { sslPeerCertificate?: { raw?: Buffer } } | null }).getAuthContext?.()?.sslPeerCertificate?.raw;
    const verdict = raw ? this.tls.check(raw) : { ok: false as const, reason: 'no client certificate' };
    if (!verdict.ok) {
      this.log.warn({ peer: call.getPeer(), reason: verdict.reason }, 'call refused: the client certificate does not verify');
      refuse(grpc.status.UNAUTHENTICATED, `the client certificate does not verify (${verdict.reason})`);
      return { ok: false };
    }
    const identity = verdict.identity;
    if (!ALLOWED[action].includes(identity.role)) {
      const who = `${identity.organisation} (certificate role ${identity.role})`;
      const what = { connect: 'open a participant control stream', submit: 'submit jobs', read: 'read jobs', audit: 'read the audit ledger' }[action];
      const needed = ALLOWED[action].map((r) => `${/^[aeiou]/.test(r) ? 'an' : 'a'} ${r}`).join(' or ');
      const details = `${who} may not ${what}: that needs ${needed} certificate`;
      this.log.warn({ peer: call.getPeer(), organisation: identity.organisation, role: identity.role, action }, `refused: ${details}`);
      refuse(grpc.status.PERMISSION_DENIED, details);
      return { ok: false };
    }
    return { identity, ok: true };
  }

  isConnected(org: string): boolean {
    return this.sessions.has(org);
  }

  declaredFeatures(org: string): string[] {
    return this.sessions.get(org)?.features ?? [];
  }

  async waitConnected(org: string, deadlineMs: number): Promise<boolean> {
    while (!this.sessions.has(org)) {
      const remaining = deadlineMs - Date.now();
      if (remaining <= 0) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, remaining);
        const self = this;
        function done() {
          clearTimeout(timer);
          self.connectWaiters.delete(done);
          resolve();
        }
        this.connectWaiters.add(done);
      });
    }
    return true;
  }

  async send(org: string, message: CoordinatorMessage | EncodedMessage): Promise<void> {
    const session = this.sessions.get(org);
    if (!session) throw new Error(`${org} is not connected`);
    await session.stream.send(message);
  }

  /** Connect: the participant's control stream. */
  connect(call: grpc.ServerDuplexStream<Frame<ParticipantMessage>, Uint8Array>): void {
    let session: Session | undefined;
    const peer = call.getPeer();
    const refuse = (code: grpc.status, details: string) => {
      this.log.warn({ peer, code: grpc.status[code], details }, 'control stream refused');
      call.emit('error', { code, details });
    };
    const auth = this.authorise(call, 'connect', refuse);
    if (!auth.ok) return;
    const stream = new FramedStream<ParticipantMessage, CoordinatorMessage>(
      call as unknown as DuplexCall<Frame<ParticipantMessage>, Uint8Array>,
      'ParticipantMessage',
      'CoordinatorMessage',
      {
        onMessage: (message) => {
          if (!session) {
            if (message.body !== 'hello') return refuse(grpc.status.FAILED_PRECONDITION, 'the first message on a control stream must be Hello');
            const org = message.hello.organisation;
            if (!org) return refuse(grpc.status.INVALID_ARGUMENT, 'Hello without an organisation');
            if (auth.identity && auth.identity.organisation !== org) {
              return refuse(grpc.status.PERMISSION_DENIED, `the Hello claims organisation ${org} but the certificate is ${auth.identity.organisation}'s`);
            }
            if (message.hello.protocolVersion !== PROTOCOL_VERSION) {
              return refuse(grpc.status.FAILED_PRECONDITION, `${org} speaks protocol version ${message.hello.protocolVersion}; this coordinator speaks ${PROTOCOL_VERSION}: upgrade the older side`);
            }
            if (this.sessions.has(org)) {
              return refuse(grpc.status.ALREADY_EXISTS, `organisation ${org} is already connected; a second connection claiming it is refused`);
            }
            session = { organisation: org, features: message.hello.featureColumns, stream };
            stream.maxMessageBytes = MAX_MESSAGE_BYTES;
            this.sessions.set(org, session);
            this.log.info({ participant: org, peer, version: message.hello.softwareVersion }, 'participant connected');
            stream
              .send({ jobId: '', round: 0, body: 'welcome', welcome: { coordinatorVersion: softwareVersion(), protocolVersion: PROTOCOL_VERSION } })
              .catch(() => undefined); // the participant may already have gone; onClose handles that
            // Jobs of this participant that ended while it was away: tell it, so it forgets their keys.
            for (const job of this.jobs.values()) {
              if (!job.participants.includes(org) || (job.state !== 'succeeded' && job.state !== 'failed')) continue;
              stream
                .send({ jobId: job.id, round: 0, body: 'jobEnded', jobEnded: { state: job.state, message: job.message, modelSha256: job.modelSha256 } })
                .catch(() => undefined);
            }
            for (const wake of [...this.connectWaiters]) wake();
            return;
          }
          if (this.isReplay(session.organisation, message)) {
            this.log.warn({ participant: session.organisation, job: message.jobId, round: message.round, kind: message.body }, 'replayed message refused');
            void stream
              .send({ jobId: message.jobId, round: message.round, body: 'error', error: { code: ErrorCode.PROTOCOL, message: `replayed message refused: ${session.organisation} already sent nonce ${Buffer.from(message.nonce!).toString('hex')} (job ${message.jobId || '-'}, round ${message.round}, ${message.body})`, hint: '' } })
              .catch(() => undefined);
            return;
          }
          if (message.body === 'hello') {
            void stream
              .send({ jobId: '', round: 0, body: 'error', error: { code: ErrorCode.PROTOCOL, message: `${session.organisation} already said Hello on this stream`, hint: '' } })
              .catch(() => undefined);
            return;
          }
          const job = this.jobs.get(message.jobId);
          // Not the job's participant: its messages would queue in the job's mailbox forever, unread (memory leak).
          if (job && !job.participants.includes(session.organisation)) {
            this.log.warn({ participant: session.organisation, job: message.jobId, kind: message.body }, 'message for a job the sender is not part of');
            void stream
              .send({ jobId: message.jobId, round: message.round, body: 'error', error: { code: ErrorCode.PROTOCOL, message: `${session.organisation} is not a participant of job ${message.jobId}`, hint: '' } })
              .catch(() => undefined);
            return;
          }
          if (!job) {
            this.log.warn({ participant: session.organisation, job: message.jobId, kind: message.body }, 'message for an unknown job');
            void stream
              .send({ jobId: message.jobId, round: message.round, body: 'error', error: { code: 'FC_NOT_FOUND', message: `unknown job ${message.jobId}`, hint: '' } })
              .catch(() => undefined);
            return;
          }
          if (!job.accepts(message.body)) {
            this.log.warn({ participant: session.organisation, job: message.jobId, kind: message.body }, 'message of a kind this job does not use');
            void stream
              .send({ jobId: message.jobId, round: message.round, body: 'error', error: { code: ErrorCode.PROTOCOL, message: `job ${message.jobId} has no use for a ${message.body} message`, hint: '' } })
              .catch(() => undefined);
            return;
          }
          job.deliver(session.organisation, message);
        },
        onProtocolError: (err) => {
          this.log.warn({ participant: session?.organisation, peer, err: err.message }, 'protocol error on control stream');
          refuse(grpc.status.INVALID_ARGUMENT, err.message);
        },
        onClose: (err) => {
          // The participant half-closed (or left): finish the call, else it stays open until the client's deadline.
          if (!err) call.end();
          if (!session || this.sessions.get(session.organisation) !== session) return;
          this.sessions.delete(session.organisation);
          const reason = err ? `disconnected (${err.message})` : 'disconnected';
          this.log.warn({ participant: session.organisation }, `participant ${reason}`);
          for (const job of this.jobs.values()) job.participantLost(session.organisation, reason);
        },
      },
    );
    // Until its Hello, a stream is nobody: it may not make the coordinator buffer more than a Hello needs.
    stream.maxMessageBytes = UNIDENTIFIED_MAX_BYTES;
  }

  submitJob(call: grpc.ServerUnaryCall<SubmitJobRequest, SubmitJobResponse>, callback: grpc.sendUnaryData<SubmitJobResponse>): void {
    const auth = this.authorise(call, 'submit', (code, details) => callback({ code, details }));
    if (!auth.ok) return;
    let spec: JobSpec;
    try {
      spec = validateConfig(JobSpec, parseYaml(call.request.specYaml), 'job spec', 'job');
    } catch (err) {
      callback({ code: grpc.status.INVALID_ARGUMENT, details: isFedcreditError(err) ? err.describe() : `job spec is not valid YAML: ${errorMessage(err)}` });
      return;
    }
    const id = `job-${new Date().toISOString().slice(0, 10).replaceAll('-', '')}-${randomBytes(4).toString('hex')}`;
    // With mutual TLS the submitter is the organisation in its certificate, whatever the request says.
    const submitter = auth.identity?.organisation ?? (call.request.submitter || 'anonymous');
    const job = this.createJob(id, spec, submitter);
    this.jobs.set(id, job);
    this.log.info({ job: id, name: spec.name, kind: spec.kind, submitter, purpose: spec.purpose, participants: jobParties(spec) }, 'job submitted');
    void job.run();
    callback(null, { jobId: id });
  }

  /** Nonces seen per organisation, most recent last (bounded: the oldest are forgotten past the limit). */
  private readonly nonces = new Map<string, Set<string>>();

  /** A message carrying a nonce this organisation already used is a replay. */
  private isReplay(org: string, message: ParticipantMessage): boolean {
    if (!message.nonce || message.nonce.length === 0) return false;
    const key = Buffer.from(message.nonce).toString('base64');
    const seen = this.nonces.get(org) ?? new Set<string>();
    this.nonces.set(org, seen);
    if (seen.has(key)) return true;
    seen.add(key);
    if (seen.size > NONCES_KEPT) seen.delete(seen.values().next().value!);
    return false;
  }

  private createJob(id: string, spec: JobSpec, submitter: string): JobBase {
    switch (spec.kind) {
      case 'horizontal':
        return new JobRun(id, spec, submitter, this.jobContext());
      case 'vertical-lr':
        return new VerticalRun(id, spec, submitter, this.jobContext());
      case 'vertical-score':
        return new ScoreRun(id, spec, submitter, this.jobContext(), this.trainedModel(spec.model_job));
    }
  }

  /** What this coordinator knows of the training job a scoring job names. */
  private trainedModel(jobId: string): TrainedModel | undefined {
    const trained = this.jobs.get(jobId);
    return trained && { kind: trained.kind, state: trained.state, participants: trained.participants, modelSha256: trained.modelSha256 };
  }

  private jobContext(): JobContext {
    return { sessions: this, log: this.log, stateDir: this.config.state_dir, offerTimeoutMs: this.config.offer_timeout_s * 1000, ledger: this.ledger };
  }

  private findJob(jobId: string): JobBase | undefined {
    return this.jobs.get(jobId);
  }

  watchJob(call: grpc.ServerWritableStream<JobIdRequest, JobEvent>): void {
    if (!this.authorise(call, 'read', (code, details) => call.emit('error', { code, details })).ok) return;
    const job = this.findJob(call.request.jobId);
    if (!job) return void call.emit('error', { code: grpc.status.NOT_FOUND, details: `no job ${call.request.jobId}` });
    // Past events are replayed synchronously inside subscribe(), so the final one may arrive before it returns.
    let ended = false;
    const unsubscribe = job.subscribe((event) => {
      if (ended) return;
      call.write(event);
      if (event.state === 'succeeded' || event.state === 'failed') {
        ended = true;
        call.end();
      }
    });
    if (ended) unsubscribe();
    else call.on('cancelled', unsubscribe);
  }

  getJob(call: grpc.ServerUnaryCall<JobIdRequest, JobStatus>, callback: grpc.sendUnaryData<JobStatus>): void {
    if (!this.authorise(call, 'read', (code, details) => callback({ code, details })).ok) return;
    const job = this.findJob(call.request.jobId);
    if (!job) return callback({ code: grpc.status.NOT_FOUND, details: `no job ${call.request.jobId}` });
    callback(null, {
      jobId: job.id,
      state: job.state,
      stage: job.stage,
      message: job.message,
      roundsDone: job.roundsDone,
      rounds: job.rounds,
      modelSha256: job.modelSha256,
      participants: job.participants,
    });
  }

  downloadModel(call: grpc.ServerWritableStream<JobIdRequest, Chunk>): void {
    if (!this.authorise(call, 'read', (code, details) => call.emit('error', { code, details })).ok) return;
    const job = this.findJob(call.request.jobId);
    if (!job) return void call.emit('error', { code: grpc.status.NOT_FOUND, details: `no job ${call.request.jobId}` });
    let artifact: Uint8Array | undefined;
    try {
      artifact = job.modelArtifact();
    } catch (err) {
      this.log.error({ job: job.id, err: errorMessage(err) }, 'the published model cannot be read from the ledger');
      return void call.emit('error', { code: grpc.status.DATA_LOSS, details: `the published model of ${job.id} cannot be read from the ledger: ${errorMessage(err)}` });
    }
    if (!artifact) {
      return void call.emit('error', { code: grpc.status.FAILED_PRECONDITION, details: `job ${job.id} has no published model (state ${job.state})` });
    }
    for (const chunk of toChunks(job.id, artifact)) call.write(chunk);
    call.end();
  }

  /**
   * ReadLedger: the ledger folder, file by file, to an auditor. Files are read as they are when each is sent: a
   * copy taken while jobs run may end in the middle of an entry, which `audit verify` reports as a torn tail.
   */
  readLedger(call: grpc.ServerWritableStream<object, Chunk>): void {
    if (!this.authorise(call, 'audit', (code, details) => call.emit('error', { code, details })).ok) return;
    const root = resolve(this.config.state_dir, this.config.ledger_dir);
    const files = (dir: string): string[] =>
      readdirSync(join(root, dir), { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.lock') ? [] : [join(dir, e.name)]));
    void (async () => {
      for (const file of files('')) {
        for (const chunk of toChunks(file, readFileSync(join(root, file)))) {
          if (!call.write(chunk)) await new Promise((r) => call.once('drain', r));
        }
      }
      call.end();
    })().catch((err) => call.emit('error', { code: grpc.status.INTERNAL, details: errorMessage(err) }));
  }

  /** Continue the jobs a previous run of this coordinator left unfinished, as its ledger records them. */
  /**
   * Serve the jobs a previous run of this coordinator finished, and continue those it left unfinished, as its
   * ledger records them. A job that cannot be continued is recorded as failed and served as such: its participants
   * learn it when they reconnect (the Hello handler) and delete what they kept for it.
   */
  async recover(ledgerDir: string): Promise<void> {
    const byJob = ledgerJobs(ledgerDir);
    // Finished jobs first, before anything waits on the ledger: their status and models are served at once.
    const finished = finishedJobs(byJob);
    for (const [id, list] of finished) this.jobs.set(id, new FinishedJob(id, list, ledgerDir, this.jobContext()));
    const unfinished = unfinishedJobs(byJob, ledgerDir, this.config.state_dir);
    // Started once the finished jobs are known: a scoring job checks the model it names.
    for (const job of unfinished) {
      if (job.kind === 'failed' || job.kind === 'published') continue;
      const ctx = this.jobContext();
      const run =
        job.kind === 'horizontal'
          ? new JobRun(job.jobId, job.spec, job.submitter, ctx, job.resume)
          : job.kind === 'vertical-lr'
            ? new VerticalRun(job.jobId, job.spec, job.submitter, ctx, job.resume)
            : new ScoreRun(job.jobId, job.spec, job.submitter, ctx, this.trainedModel(job.spec.model_job), job.resume);
      this.jobs.set(job.jobId, run);
      void run.run();
    }
    this.log.info({ finished: finished.length, unfinished: unfinished.length }, 'jobs rebuilt from the ledger');
    for (const job of unfinished) {
      if (job.kind !== 'failed' && job.kind !== 'published') continue;
      const body =
        job.kind === 'failed'
          ? { state: 'failed' as const, stage: 'recovery', message: job.reason }
          : { state: 'succeeded' as const, model_sha256: job.modelSha256, message: 'model published (the end was recorded after a coordinator restart)' };
      this.log.warn({ job: job.jobId, reason: job.kind === 'failed' ? job.reason : undefined }, job.kind === 'failed' ? 'an unfinished job cannot be resumed' : 'the job published its model before the coordinator stopped; its end is recorded now');
      await this.ledger.append({ kind: 'job_ended', jobId: job.jobId, body });
      // A vertical job's arbiter key, if one was kept, serves no one any more.
      rmSync(dirname(arbiterKeyFile(this.config.state_dir, job.jobId)), { recursive: true, force: true });
      // Served as ended from now on: its participants learn it when they reconnect, and forget the job.
      const list = ledgerJobs(ledgerDir).get(job.jobId)!;
      this.jobs.set(job.jobId, new FinishedJob(job.jobId, list, ledgerDir, this.jobContext()));
      for (const org of this.jobs.get(job.jobId)!.participants) {
        if (this.isConnected(org)) await this.send(org, { jobId: job.jobId, round: 0, body: 'jobEnded', jobEnded: { state: body.state, message: body.message, modelSha256: Buffer.from(job.kind === 'published' ? job.modelSha256 : '', 'hex') } }).catch(() => undefined);
      }
    }
  }

  closeSessions(): void {
    for (const s of this.sessions.values()) s.stream.end();
  }
}

export async function startCoordinator(config: CoordinatorConfig, log: Logger, transport: Transport): Promise<RunningCoordinator> {
  await mkdir(config.state_dir, { recursive: true });
  const ledgerDir = resolve(config.state_dir, config.ledger_dir);
  const ledger = await Ledger.open(ledgerDir, config.name, join(config.state_dir, 'keys', 'ledger-ed25519.pem'));
  if (ledger.tornTail) {
    log.error({ ledgerDir, seq: ledger.tornTail.seq, bytes: ledger.tornTail.bytes }, 'the ledger ended in a torn (incomplete) entry from a crash mid-write; its bytes were kept aside in torn-*.bin and earlier entries are intact');
  }
  log.info({ ledgerDir, entries: ledger.size }, 'audit ledger open');
  const tls = serverTransport(transport, log);
  const service = new CoordinatorService(config, log, ledger, transport.kind === 'mtls' ? tls : undefined);
  await service.recover(ledgerDir);
  const server = new grpc.Server({ ...CHANNEL_OPTIONS });
  server.addService(coordinatorServiceDefinition(), {
    connect: service.connect.bind(service),
    submitJob: service.submitJob.bind(service),
    watchJob: service.watchJob.bind(service),
    getJob: service.getJob.bind(service),
    downloadModel: service.downloadModel.bind(service),
    readLedger: service.readLedger.bind(service),
  } as grpc.UntypedServiceImplementation);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(config.listen, tls.credentials, (err, p) => (err ? reject(err) : resolve(p))),
  );
  tls.guardHandshakes(server);
  widenServerWindows(server);
  const host = config.listen.slice(0, config.listen.lastIndexOf(':'));
  const address = `${host}:${port}`;
  log.info({ address, stateDir: config.state_dir, version: softwareVersion(), transport: transport.kind === 'mtls' ? `mutual TLS (identity ${transport.dir})` : 'INSECURE plaintext' }, 'coordinator listening');
  return {
    address,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        service.closeSessions();
        tls.close();
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 3000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }).then(() => ledger.close()),
  };
}
