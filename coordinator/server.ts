/**
 * The coordinator process: a gRPC server that participants dial into (one control stream each) and submitters
 * call to submit, watch and fetch jobs. It holds no raw data and no secret key.
 */
import * as grpc from '@grpc/grpc-js';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Ledger, LedgerError, decodeTreeHead, encodeTreeHead } from '../src/ledger/ledger.js';
import { readLedger } from '../src/ledger/read.js';
import { parse as parseYaml } from 'yaml';
import { validateConfig } from '../src/config/load.js';
import { JobSpec, type CoordinatorConfig } from '../src/config/schemas.js';
import { kindOf } from '../src/jobs/registry.js';
import { newJobId } from '../src/jobs/job-id.js';
import { ErrorCode, FedcreditError, errorMessage, isFedcreditError } from '../src/errors.js';
import type { Logger } from '../src/log.js';
import { softwareVersion } from '../src/paths.js';
import { writableDir } from '../src/config/writable-dir.js';
import { coordinatorServiceDefinition, CHANNEL_OPTIONS, PROTOCOL_VERSION, widenServerWindows } from '../src/wire/proto.js';
import { MAX_MESSAGE_BYTES, toChunks, type EncodedMessage, type Frame } from '../src/wire/framing.js';
import { FramedStream, type DuplexCall } from '../src/wire/stream.js';
import type { Chunk, CoordinatorMessage, JobEvent, JobIdRequest, JobStatus, ParticipantMessage, SubmitJobRequest, SubmitJobResponse } from '../src/wire/messages.js';
import type { JobBase, JobContext, SessionRegistry } from './job-base.js';
import { arbiterKeyFile } from './vertical-run.js';
import type { TrainedModel } from './score-run.js';
import { coordinatorKindOf } from './kinds/index.js';
import type { CoordinatorDeps } from './kinds/kind.js';
import { finishedJobs, ledgerJobs, unfinishedJobs } from './recovery.js';
import { FinishedJob } from './finished-job.js';
import { watchLiveness } from '../src/wire/liveness.js';
import { serverTransport, type PeerIdentity, type ServerTransport, type Transport } from '../src/wire/transport.js';
import type { Role } from '../src/pki/names.js';
import { hex } from '../src/bytes.js';
import { ARBITER_SHAREHOLDER } from '../src/vertical/lr/threshold-opener.js';

/** Largest message a stream may send before its Hello: a Hello is a few hundred bytes. */
const UNIDENTIFIED_MAX_BYTES = 64 * 1024;

interface Session {
  organisation: string;
  /** The connection's address as grpc-js names it (call.getPeer()). */
  peer: string;
  features: string[];
  stream: FramedStream<ParticipantMessage, CoordinatorMessage>;
  /** The client certificate the stream was opened with (mutual TLS), checked again when the revocation list reloads. */
  certificate?: Buffer;
  /** Ends the call with a status (the stream is closed for the participant). */
  refuse(code: grpc.status, details: string): void;
}

/** An open WatchJob stream, with the certificate it was opened with. */
interface Watcher {
  certificate?: Buffer;
  end(details: string): void;
}

export interface RunningCoordinator {
  address: string;
  port: number;
  /** Rejects (and the coordinator stops serving) when it must not go on, e.g. its ledger was rolled back. */
  failed: Promise<never>;
  close(): Promise<void>;
}

/** Nonces remembered per organisation for replay detection: far more than any job sends between reconnections. */
const NONCES_KEPT = 1_000_000;

/** What a caller may do, by the role in its certificate. */
const ALLOWED: Record<'connect' | 'submit' | 'read' | 'audit', readonly Role[]> = {
  connect: ['participant'],
  submit: ['submitter'],
  read: ['submitter', 'participant', 'auditor'],
  audit: ['auditor'],
};

export class CoordinatorService implements SessionRegistry {
  private readonly sessions = new Map<string, Session>();
  private readonly watchers = new Set<Watcher>();
  private readonly connectWaiters = new Set<() => void>();
  /** Why the liveness check closed a connection, by peer, until its control stream reports the close. */
  private readonly unreachablePeers = new Map<string, string>();
  readonly jobs = new Map<string, JobBase>();
  /** Called once when the coordinator must stop (its ledger contradicts a participant's receipt). */
  fatal?: (err: FedcreditError) => void;
  /** Participants whose receipts the held ledger waits for (see awaitReceipts). */
  private receiptsAwaited?: { orgs: Set<string>; timer: NodeJS.Timeout };

  constructor(
    private readonly config: CoordinatorConfig,
    private readonly log: Logger,
    private readonly ledger: Ledger,
    private readonly tls: ServerTransport | undefined,
  ) {
    tls?.onReload(() => void this.cutRevoked().catch((err) => this.log.error({ err: errorMessage(err) }, 'could not check open streams against the new revocation list')));
  }

  /**
   * After the revocation list reloads: every open stream whose certificate no longer verifies is closed at once. A
   * participant's loss reaches its running jobs as a disconnection (a dropout in a horizontal job; a pause, then
   * failure, in a vertical one), and each of those jobs records the revocation in the ledger.
   */
  private async cutRevoked(): Promise<void> {
    if (!this.tls) return;
    for (const session of [...this.sessions.values()]) {
      if (!session.certificate) continue;
      const verdict = this.tls.check(session.certificate);
      if (verdict.ok) continue;
      const reason = `certificate no longer valid (${verdict.reason})`;
      this.log.warn({ participant: session.organisation, reason }, 'control stream closed: its certificate was revoked');
      for (const job of this.jobs.values()) {
        if (!job.participants.includes(session.organisation) || job.state !== 'running') continue;
        await this.ledger.append({ kind: 'participant_revoked', jobId: job.id, body: { participant: session.organisation, reason } });
      }
      session.refuse(grpc.status.UNAUTHENTICATED, reason);
      this.dropSession(session, reason);
    }
    for (const watcher of [...this.watchers]) {
      if (watcher.certificate && !this.tls.check(watcher.certificate).ok) watcher.end('certificate no longer valid (revoked)');
    }
  }

  /** A participant's control stream is gone: its jobs hear of it once. */
  private dropSession(session: Session, reason: string): void {
    if (this.sessions.get(session.organisation) !== session) return;
    this.sessions.delete(session.organisation);
    this.log.warn({ participant: session.organisation }, `participant ${reason}`);
    for (const job of this.jobs.values()) job.participantLost(session.organisation, reason);
  }

  /**
   * The caller's identity from its certificate, if its role may do `action`; otherwise undefined after refusing
   * the call with PERMISSION_DENIED (logged). On an insecure server (tests) every caller is let through unnamed.
   */
  private authorise(
    call: { getPeer(): string; getAuthContext?: () => unknown },
    action: keyof typeof ALLOWED,
    refuse: (code: grpc.status, details: string) => void,
  ): { identity?: PeerIdentity; certificate?: Buffer; ok: boolean } {
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
    return { identity, certificate: raw, ok: true };
  }

  /** Set when the coordinator must stop: no participant counts as connected and nothing more is sent. */
  private stopped = false;

  isConnected(org: string): boolean {
    return !this.stopped && this.sessions.has(org);
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
    const session = this.stopped ? undefined : this.sessions.get(org);
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
    const stream = new FramedStream<ParticipantMessage, CoordinatorMessage>(call as unknown as DuplexCall<Frame<ParticipantMessage>, Uint8Array>, 'ParticipantMessage', 'CoordinatorMessage', {
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
          if (this.stopped) return refuse(grpc.status.UNAVAILABLE, 'the coordinator is stopping');
          const receipt = this.checkReceipt(org, message.hello.newestReceipt);
          if (!receipt.ok) return refuse(grpc.status.FAILED_PRECONDITION, receipt.message);
          session = { organisation: org, peer, features: message.hello.featureColumns, stream, certificate: auth.certificate, refuse };
          stream.maxMessageBytes = MAX_MESSAGE_BYTES;
          this.sessions.set(org, session);
          this.log.info({ participant: org, peer, version: message.hello.softwareVersion }, 'participant connected');
          stream
            .send({
              jobId: '',
              round: 0,
              body: 'welcome',
              welcome: { coordinatorVersion: softwareVersion(), protocolVersion: PROTOCOL_VERSION, treeHead: encodeTreeHead(this.ledger.treeHead()), consistencyProof: receipt.proof },
            })
            .catch(() => undefined); // the participant may already have gone; onClose handles that
          // Jobs of this participant that ended while it was away: tell it, so it forgets their keys.
          for (const job of this.jobs.values()) {
            if (!job.participants.includes(org) || (job.state !== 'succeeded' && job.state !== 'failed')) continue;
            stream.send({ jobId: job.id, round: 0, body: 'jobEnded', jobEnded: { state: job.state, message: job.message, modelSha256: job.modelSha256 } }).catch(() => undefined);
          }
          for (const wake of [...this.connectWaiters]) wake();
          this.receiptHeard(org);
          return;
        }
        if (this.isReplay(session.organisation, message)) {
          this.log.warn({ participant: session.organisation, job: message.jobId, round: message.round, kind: message.body }, 'replayed message refused');
          void stream
            .send({
              jobId: message.jobId,
              round: message.round,
              body: 'error',
              error: {
                code: ErrorCode.PROTOCOL,
                message: `replayed message refused: ${session.organisation} already sent nonce ${hex(message.nonce!)} (job ${message.jobId || '-'}, round ${message.round}, ${message.body})`,
                hint: '',
              },
            })
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
            .send({
              jobId: message.jobId,
              round: message.round,
              body: 'error',
              error: { code: ErrorCode.PROTOCOL, message: `${session.organisation} is not a participant of job ${message.jobId}`, hint: '' },
            })
            .catch(() => undefined);
          return;
        }
        if (!job) {
          this.log.warn({ participant: session.organisation, job: message.jobId, kind: message.body }, 'message for an unknown job');
          void stream.send({ jobId: message.jobId, round: message.round, body: 'error', error: { code: 'FC_NOT_FOUND', message: `unknown job ${message.jobId}`, hint: '' } }).catch(() => undefined);
          return;
        }
        if (!job.accepts(message.body)) {
          this.log.warn({ participant: session.organisation, job: message.jobId, kind: message.body }, 'message of a kind this job does not use');
          void stream
            .send({
              jobId: message.jobId,
              round: message.round,
              body: 'error',
              error: { code: ErrorCode.PROTOCOL, message: `job ${message.jobId} has no use for a ${message.body} message`, hint: '' },
            })
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
        const unreachable = this.unreachablePeers.get(peer);
        this.unreachablePeers.delete(peer);
        if (session) this.dropSession(session, unreachable ?? (err ? `disconnected (${err.message})` : 'disconnected'));
      },
    });
    // Until its Hello, a stream is nobody: it may not make the coordinator buffer more than a Hello needs.
    stream.maxMessageBytes = UNIDENTIFIED_MAX_BYTES;
  }

  /**
   * The newest receipt a connecting participant holds (from its Hello) against this ledger. A receipt this ledger
   * does not extend (shorter, or another history: RFC 6962 consistency) means the ledger was rolled back: appends are
   * refused from then on and the coordinator stops. A receipt signed by another key refuses only that participant.
   */
  private checkReceipt(org: string, bytes: Uint8Array | undefined): { ok: true; proof: Uint8Array[] } | { ok: false; message: string } {
    if (!bytes || bytes.length === 0) return { ok: true, proof: [] };
    let head: ReturnType<typeof decodeTreeHead>;
    try {
      head = decodeTreeHead(bytes);
    } catch (err) {
      return { ok: false, message: `${org}'s Hello carries a newest receipt that is not a TreeHead (${errorMessage(err)})` };
    }
    const verdict = this.ledger.checkReceipt(head);
    if (verdict.ok) return verdict;
    if (verdict.problem === 'foreign') {
      const message =
        `${org} holds a receipt this coordinator did not sign: ${verdict.detail}. Either this coordinator's state (ledger and signing key) was replaced, ` +
        `or the participant's receipts come from another coordinator. Restore the coordinator's ledger and key, or, if ${org} has joined a new federation, move its receipts folder aside`;
      this.log.error({ participant: org, size: head.size }, message);
      return { ok: false, message };
    }
    const err = new FedcreditError(
      ErrorCode.LEDGER_ROLLED_BACK,
      `participant ${org} holds a receipt for ledger size ${head.size}; this coordinator's ledger has ${this.ledger.size} entries${verdict.problem === 'inconsistent' ? ' and is inconsistent with it' : ''}: ${verdict.detail}. The coordinator will not extend this ledger and stops`,
      `the ledger was cut short or restored from an older copy: restore the folder ${this.ledger.dir} from a copy that verifies against the receipts (\`fedcredit audit verify ${this.ledger.dir} --receipts <${org}'s state folder>/receipts\`), then start the coordinator again`,
    );
    this.log.error({ participant: org, receiptSize: head.size, ledgerSize: this.ledger.size, problem: verdict.problem }, err.describe());
    this.ledger.refuseAppends(new LedgerError('receipt_mismatch', err.message));
    this.fatal?.(err);
    return { ok: false, message: err.describe() };
  }

  /**
   * Hold the ledger's appends until each of `orgs` has connected and shown its newest receipt, or `timeoutMs` has
   * passed: so that a restarted coordinator does not extend (resume jobs on, record failures in) a ledger that a
   * participant's receipt would prove was rolled back. Later connections are still checked.
   */
  awaitReceipts(orgs: string[], timeoutMs: number): void {
    const pending = new Set(orgs.filter((o) => !this.sessions.has(o)));
    if (pending.size === 0) return;
    this.ledger.holdAppends();
    this.log.info({ participants: [...pending], timeoutS: timeoutMs / 1000 }, "the ledger waits for these participants' receipts before it is extended");
    const timer = setTimeout(() => {
      this.log.warn({ participants: [...pending] }, 'these participants did not connect in time; the ledger is extended without checking their receipts (they are checked when they connect)');
      this.receiptsAwaited = undefined;
      this.ledger.releaseAppends();
    }, timeoutMs);
    timer.unref();
    this.receiptsAwaited = { orgs: pending, timer };
  }

  private receiptHeard(org: string): void {
    const awaited = this.receiptsAwaited;
    if (!awaited?.orgs.delete(org) || awaited.orgs.size > 0) return;
    clearTimeout(awaited.timer);
    this.receiptsAwaited = undefined;
    this.log.info('every awaited participant showed a receipt consistent with the ledger');
    this.ledger.releaseAppends();
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
    const id = newJobId();
    // With mutual TLS the submitter is the organisation in its certificate, whatever the request says.
    const submitter = auth.identity?.organisation ?? (call.request.submitter || 'anonymous');
    const kind = coordinatorKindOf(spec);
    const refused = auth.identity ? kind.refuseSubmitter?.(spec, submitter, this.kindDeps) : undefined;
    if (refused) {
      this.log.warn(refused.fields, `refused: ${refused.details}`);
      return callback({ code: grpc.status.PERMISSION_DENIED, details: refused.details });
    }
    const job = kind.start(id, spec, submitter, this.jobContext(), this.kindDeps);
    this.jobs.set(id, job);
    this.log.info({ job: id, name: spec.name, kind: spec.kind, submitter, purpose: spec.purpose, participants: kindOf(spec).parties(spec) }, 'job submitted');
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

  /** What a job may ask of this coordinator. */
  private readonly kindDeps: CoordinatorDeps = { trainedModel: (jobId) => this.trainedModel(jobId) };

  /** What this coordinator knows of the training job a scoring job names. */
  private trainedModel(jobId: string): TrainedModel | undefined {
    const trained = this.jobs.get(jobId);
    return trained && { kind: trained.kind, state: trained.state, submitter: trained.submitter, participants: trained.participants, modelSha256: trained.modelSha256 };
  }

  private jobContext(): JobContext {
    return { sessions: this, log: this.log, stateDir: this.config.state_dir, offerTimeoutMs: this.config.offer_timeout_s * 1000, ledger: this.ledger };
  }

  private findJob(jobId: string): JobBase | undefined {
    return this.jobs.get(jobId);
  }

  /**
   * The job a caller asked to read, if it may: auditors read every job; a submitter the jobs it submitted and the
   * jobs its organisation takes part in (a bank's modeller follows the jobs its bank's node is in); a participant
   * the jobs it takes part in (on an insecure server, anyone). Otherwise undefined after refusing the call
   * (NOT_FOUND for no such job, PERMISSION_DENIED naming the rule).
   */
  private readableJob(jobId: string, identity: PeerIdentity | undefined, refuse: (code: grpc.status, details: string) => void): JobBase | undefined {
    const job = this.findJob(jobId);
    if (!job) return void refuse(grpc.status.NOT_FOUND, `no job ${jobId}`);
    if (!identity || identity.role === 'auditor') return job;
    const org = identity.organisation;
    if (job.participants.includes(org) || (identity.role === 'submitter' && job.submitter === org)) return job;
    const details = `${org} (certificate role ${identity.role}) may not read job ${jobId}: a job is read by the organisation that submitted it, the organisations taking part in it, and auditors`;
    this.log.warn({ organisation: org, role: identity.role, job: jobId }, `refused: ${details}`);
    refuse(grpc.status.PERMISSION_DENIED, details);
    return undefined;
  }

  watchJob(call: grpc.ServerWritableStream<JobIdRequest, JobEvent>): void {
    const refuse = (code: grpc.status, details: string) => call.emit('error', { code, details });
    const auth = this.authorise(call, 'read', refuse);
    if (!auth.ok) return;
    const job = this.readableJob(call.request.jobId, auth.identity, refuse);
    if (!job) return;
    // Past events are replayed synchronously inside subscribe(), so the final one may arrive before it returns.
    let ended = false;
    const watcher: Watcher = {
      certificate: auth.certificate,
      end: (details) => {
        if (ended) return;
        ended = true;
        unsubscribe();
        this.watchers.delete(watcher);
        refuse(grpc.status.UNAUTHENTICATED, details);
      },
    };
    const unsubscribe = job.subscribe((event) => {
      if (ended) return;
      call.write(event);
      if (event.state === 'succeeded' || event.state === 'failed') {
        ended = true;
        this.watchers.delete(watcher);
        call.end();
      }
    });
    if (ended) {
      unsubscribe();
      return;
    }
    this.watchers.add(watcher);
    call.on('cancelled', () => {
      unsubscribe();
      this.watchers.delete(watcher);
    });
  }

  getJob(call: grpc.ServerUnaryCall<JobIdRequest, JobStatus>, callback: grpc.sendUnaryData<JobStatus>): void {
    const refuse = (code: grpc.status, details: string) => callback({ code, details });
    const auth = this.authorise(call, 'read', refuse);
    if (!auth.ok) return;
    const job = this.readableJob(call.request.jobId, auth.identity, refuse);
    if (!job) return;
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
    const refuse = (code: grpc.status, details: string) => call.emit('error', { code, details });
    const auth = this.authorise(call, 'read', refuse);
    if (!auth.ok) return;
    const job = this.readableJob(call.request.jobId, auth.identity, refuse);
    if (!job) return;
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
      if (job.kind !== 'resumable') continue;
      const run = job.start(this.jobContext(), this.kindDeps);
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
      this.log.warn(
        { job: job.jobId, reason: job.kind === 'failed' ? job.reason : undefined },
        job.kind === 'failed' ? 'an unfinished job cannot be resumed' : 'the job published its model before the coordinator stopped; its end is recorded now',
      );
      // Served as ended at once: the append may wait for the participants' receipts (Ledger.holdAppends).
      this.jobs.set(job.jobId, new FinishedJob(job.jobId, byJob.get(job.jobId)!, ledgerDir, this.jobContext(), body));
      await this.ledger.append({ kind: 'job_ended', jobId: job.jobId, body });
      // A vertical job's arbiter key, if one was kept, serves no one any more.
      rmSync(dirname(arbiterKeyFile(this.config.state_dir, job.jobId)), { recursive: true, force: true });
      // Served as ended from now on: its participants learn it when they reconnect, and forget the job.
      const list = ledgerJobs(ledgerDir).get(job.jobId)!;
      this.jobs.set(job.jobId, new FinishedJob(job.jobId, list, ledgerDir, this.jobContext()));
      for (const org of this.jobs.get(job.jobId)!.participants) {
        if (this.isConnected(org))
          await this.send(org, {
            jobId: job.jobId,
            round: 0,
            body: 'jobEnded',
            jobEnded: { state: body.state, message: body.message, modelSha256: Buffer.from(job.kind === 'published' ? job.modelSha256 : '', 'hex') },
          }).catch(() => undefined);
      }
    }
  }

  /**
   * The liveness check found the connection from `peer` silent (watchLiveness): name the participant behind it, and
   * remember why, for the close that follows.
   */
  connectionUnreachable(peer: string, silentMs: number): void {
    const session = [...this.sessions.values()].find((s) => s.peer === peer);
    const seconds = Math.round(silentMs / 100) / 10;
    const reason = `unreachable (left a liveness ping unanswered for ${seconds}s: its process is stopped, its event loop blocked, or its network gone)`;
    if (!session) {
      this.log.info({ peer, silentMs }, `connection closed: ${reason}`);
      return;
    }
    this.unreachablePeers.set(peer, reason);
    this.log.warn(
      { participant: session.organisation, peer, silentMs, livenessTimeoutS: this.config.liveness_timeout_s },
      `participant unreachable: left a liveness ping unanswered for ${seconds}s; closing its connection`,
    );
  }

  closeSessions(): void {
    for (const s of this.sessions.values()) s.stream.end();
  }

  /** Stop talking to participants at once (before the jobs notice that the ledger refuses their appends). */
  stop(): void {
    this.stopped = true;
    this.closeSessions();
  }
}

export async function startCoordinator(config: CoordinatorConfig, log: Logger, transport: Transport): Promise<RunningCoordinator> {
  // The coordinator's state (ledger, arbiter keys, published models) is its own: 0700, like a participant's.
  writableDir(config.state_dir, 'state_dir', 'the coordinator config');
  const ledgerDir = resolve(config.state_dir, config.ledger_dir);
  writableDir(ledgerDir, 'ledger_dir', 'the coordinator config');
  const ledger = await Ledger.open(ledgerDir, config.name, join(config.state_dir, 'keys', 'ledger-ed25519.pem')).catch((err) => {
    if (!(err instanceof LedgerError) || err.seq === undefined) throw err;
    throw new FedcreditError(
      ErrorCode.LEDGER_DAMAGED,
      `the coordinator will not start on a damaged ledger: ${err.message}`,
      `restore ${ledgerDir} (or the file named) from a copy that \`fedcredit audit verify\` accepts, then start again; do not delete entries to make it start`,
      { cause: err },
    );
  });
  if (ledger.tornTail) {
    log.error(
      { ledgerDir, seq: ledger.tornTail.seq, bytes: ledger.tornTail.bytes },
      'the ledger ended in a torn (incomplete) entry from a crash mid-write; its bytes were kept aside in torn-*.bin and earlier entries are intact',
    );
  }
  log.info({ ledgerDir, entries: ledger.size }, 'audit ledger open');
  const tls = serverTransport(transport, log);
  const service = new CoordinatorService(config, log, ledger, transport.kind === 'mtls' ? tls : undefined);
  let failWith!: (err: FedcreditError) => void;
  const failed = new Promise<never>((_, reject) => (failWith = reject));
  failed.catch(() => undefined); // the caller may not listen; the error is logged where it arises
  service.fatal = (err) => {
    service.fatal = undefined;
    service.stop();
    failWith(err);
  };
  service.awaitReceipts(partiesToHearFrom(ledgerDir), config.offer_timeout_s * 1000);
  // Recovery may wait on the held ledger, which participants release by connecting: it goes on while we listen.
  const recovered = service.recover(ledgerDir).catch((err) => log.error({ err: errorMessage(err) }, 'recovering the unfinished jobs failed'));
  const server = new grpc.Server({ ...CHANNEL_OPTIONS });
  server.addService(coordinatorServiceDefinition(), {
    connect: service.connect.bind(service),
    submitJob: service.submitJob.bind(service),
    watchJob: service.watchJob.bind(service),
    getJob: service.getJob.bind(service),
    downloadModel: service.downloadModel.bind(service),
    readLedger: service.readLedger.bind(service),
  } as grpc.UntypedServiceImplementation);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync(config.listen, tls.credentials, (err, p) => (err ? reject(err) : resolve(p))));
  tls.guardHandshakes(server);
  widenServerWindows(server);
  watchLiveness(server, { timeoutMs: config.liveness_timeout_s * 1000, onUnreachable: (peer, silentMs) => service.connectionUnreachable(peer, silentMs) });
  const host = config.listen.slice(0, config.listen.lastIndexOf(':'));
  const address = `${host}:${port}`;
  log.info(
    { address, stateDir: config.state_dir, version: softwareVersion(), transport: transport.kind === 'mtls' ? `mutual TLS (identity ${transport.dir})` : 'INSECURE plaintext' },
    'coordinator listening',
  );
  return {
    address,
    port,
    failed,
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
      })
        .then(() => ledger.close())
        .then(() => recovered),
  };
}

/**
 * The participants whose receipts a restarted coordinator waits for before it extends its ledger: those of its
 * unfinished jobs and of its last job (they hold the newest receipts: every party gets one at a job's end).
 */
function partiesToHearFrom(ledgerDir: string): string[] {
  const byJob = new Map<string, { parties: Set<string>; ended: boolean }>();
  let last: string | undefined;
  for (const { entry, body } of readLedger(ledgerDir).entries) {
    if (!entry.jobId) continue;
    const job = byJob.get(entry.jobId) ?? { parties: new Set<string>(), ended: false };
    byJob.set(entry.jobId, job);
    last = entry.jobId;
    if (entry.kind === 'job_ended') job.ended = true;
    for (const v of [body.participant, body.guest, ...(Array.isArray(body.participants) ? body.participants : []), ...(Array.isArray(body.hosts) ? body.hosts : [])]) {
      // The arbiter's share of a vertical collective key is recorded as `participant: arbiter`: that is this coordinator.
      if (typeof v === 'string' && v !== '' && v !== ARBITER_SHAREHOLDER) job.parties.add(v);
    }
  }
  const out = new Set<string>();
  for (const [id, job] of byJob) if (!job.ended || id === last) for (const p of job.parties) out.add(p);
  return [...out].sort();
}
