/**
 * An in-memory horizontal federation: the coordinator's job runner (coordinator/job-run.ts) and each participant's
 * horizontal job (participant/horizontal-job.ts) in one process, with real CKKS, a real signed ledger and real row
 * stores, joined by an in-memory port in place of gRPC and TLS. Every message is still encoded and decoded as the
 * wire does (protobuf, chunk frames), so a field the wire would lose is lost here too. What it leaves out is what the
 * process tests cover: transport, sessions, Hello/Welcome, reconnection, consent and faults. Each participant keeps
 * the coordinator's receipts in <dir>/<name>/receipts, as a node keeps them in its state folder.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { csvHead, HOMO_PARTIES, UCI } from './federation.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { JobRun } from '../../coordinator/job-run.js';
import type { SessionRegistry } from '../../coordinator/job-base.js';
import { HorizontalJob } from '../../participant/horizontal-job.js';
import { dataDescription } from '../../participant/job-state.js';
import { OwnRecord } from '../../participant/own-record.js';
import { HorizontalJobSpec } from '../../src/config/schemas.js';
import { validateConfig } from '../../src/config/load.js';
import type { DatasetSpec } from '../../src/data/schema.js';
import { ingestSource } from '../../src/data/source.js';
import type { RowStore } from '../../src/data/row-store.js';
import { ErrorCode, FedcreditError, errorMessage } from '../../src/errors.js';
import { Ledger } from '../../src/ledger/ledger.js';
import type { ArtifactFiles } from '../../src/model/artifact.js';
import { loadTf } from '../../src/model/tf.js';
import { ChunkJoiner, encodeFrames, type EncodedMessage } from '../../src/wire/framing.js';
import { decodeMessage } from '../../src/wire/proto.js';
import type { CoordinatorMessage, JobEvent, ParticipantMessage, ParticipantReply } from '../../src/wire/messages.js';

const silent = pino({ level: 'silent' });

/** What a message becomes on the far side of the wire: encoded into frames, joined and decoded. */
export function overTheWire<M>(frames: EncodedMessage, frameType: 'CoordinatorFrame' | 'ParticipantFrame', messageType: 'CoordinatorMessage' | 'ParticipantMessage'): M {
  const joiner = new ChunkJoiner();
  for (const frame of frames.frames) {
    const decoded = decodeMessage<{ message?: M; chunk?: Parameters<ChunkJoiner['accept']>[0] }>(frameType, frame);
    if (decoded.message) return decoded.message;
    const whole = joiner.accept(decoded.chunk);
    if (whole) return decodeMessage<M>(messageType, whole);
  }
  throw new Error('a message whose frames did not complete');
}

/** One data owner: its row store and its horizontal jobs, answering the coordinator's messages one at a time. */
class MemoryParticipant {
  private readonly jobs = new Map<string, HorizontalJob>();
  private queue: Promise<void> = Promise.resolve();
  connected = true;
  /** A fault to inject: what this participant sends instead of each reply (undefined: nothing). */
  tamper?: (reply: ParticipantMessage) => ParticipantMessage | undefined;

  constructor(
    readonly organisation: string,
    private readonly data: DatasetSpec,
    readonly rows: RowStore,
    /** Its own record, where it keeps the coordinator's receipts as a node does. */
    private readonly record: OwnRecord,
    private readonly reply: (message: ParticipantMessage) => void,
  ) {}

  receive(m: CoordinatorMessage): void {
    this.queue = this.queue.then(() =>
      this.handle(m).catch((err) => {
        const e = err instanceof FedcreditError ? err : new FedcreditError(ErrorCode.JOB_FAILED, errorMessage(err));
        this.send(m, { body: 'error', error: { code: e.code, message: e.message, hint: e.hint } });
      }),
    );
  }

  private send(to: CoordinatorMessage, body: ParticipantReply): void {
    const message = { jobId: to.jobId, round: to.round, nonce: new Uint8Array(16), ...body } as ParticipantMessage;
    const sent = this.tamper ? this.tamper(message) : message;
    if (sent && this.connected) this.reply(sent);
  }

  private async handle(m: CoordinatorMessage): Promise<void> {
    switch (m.body) {
      case 'jobOffer': {
        const spec = HorizontalJobSpec.parse(JSON.parse(m.jobOffer.specJson));
        const features = spec.features ?? this.rows.features;
        const { tf } = await loadTf();
        const job = await HorizontalJob.open(m.jobId, spec, features, { organisation: this.organisation, rows: this.rows, tf, log: silent, saveKeys: () => undefined, sharesGiven: () => ({}) });
        this.jobs.set(m.jobId, job);
        return this.send(m, {
          body: 'jobAccepted',
          jobAccepted: job.accepted(
            dataDescription(
              m.jobId,
              this.organisation,
              features,
              features.map((f) => this.data.features.find((c) => c.name === f)!.type),
              this.rows.meta,
            ),
          ),
        });
      }
      case 'jobEnded':
        this.jobs.get(m.jobId)?.dispose();
        this.jobs.delete(m.jobId);
        return;
      case 'receipt':
        this.record.receipt(m.jobId, m.receipt.treeHead);
        return;
      case 'error':
        return;
      default: {
        const job = this.jobs.get(m.jobId);
        if (!job) throw new FedcreditError(ErrorCode.NOT_FOUND, `no job ${m.jobId} on ${this.organisation}`);
        const reply = await job.handle(m);
        if (reply) this.send(m, reply);
      }
    }
  }

  async stop(): Promise<void> {
    await this.queue.catch(() => undefined);
    for (const job of this.jobs.values()) job.dispose();
  }
}

export interface MemoryRun {
  jobId: string;
  state: 'succeeded' | 'failed';
  message: string;
  events: JobEvent[];
  /** The published model's files, as DownloadModel returns them (empty when the job failed). */
  files: ArtifactFiles;
  modelDir: string;
  /** Hex SHA-256 of the published weights, as GetJob reports it (empty when the job failed). */
  modelSha256: string;
}

export class MemoryFederation {
  private jobCount = 0;
  private readonly participants = new Map<string, MemoryParticipant>();
  private job?: JobRun;

  private constructor(
    readonly dir: string,
    readonly ledger: Ledger,
  ) {}

  get ledgerDir(): string {
    return join(this.dir, 'coordinator-state', 'ledger');
  }

  get ledgerKey(): string {
    return join(this.dir, 'coordinator-state', 'keys', 'ledger-ed25519.pem');
  }

  /** The parties' rows go to row stores in a temporary folder, as a participant's do at start. */
  static async start(parties: { name: string; data: DatasetSpec }[]): Promise<MemoryFederation> {
    const dir = await mkdtemp(join(tmpdir(), 'fedcredit-memory-'));
    const stateDir = join(dir, 'coordinator-state');
    const fed = new MemoryFederation(dir, await Ledger.open(join(stateDir, 'ledger'), 'coordinator', join(stateDir, 'keys', 'ledger-ed25519.pem')));
    for (const { name, data } of parties) {
      const rows = await ingestSource(data, { baseDir: dir, columns: data.features.map((f) => f.name), dir: join(dir, name, 'rows'), scatter: true });
      const participant = new MemoryParticipant(name, data, rows, new OwnRecord(join(dir, name)), (message) => fed.fromParticipant(name, message));
      fed.participants.set(name, participant);
    }
    return fed;
  }

  /** A coordinator double: what the coordinator sends `org` instead of each message (the message itself: unchanged). */
  coordinatorTamper?: (org: string, message: CoordinatorMessage) => CoordinatorMessage;

  /** The participant named `org`, to inject a fault. */
  participant(org: string): Pick<MemoryParticipant, 'tamper'> {
    return this.participants.get(org)!;
  }

  /** `org`'s control stream closes: the running job loses it, and it hears nothing more. */
  disconnect(org: string, reason = 'stream closed'): void {
    this.participants.get(org)!.connected = false;
    this.job?.participantLost(org, reason);
  }

  reconnect(org: string): void {
    this.participants.get(org)!.connected = true;
  }

  /** A participant's message as the coordinator's server hands it to the job. */
  private fromParticipant(org: string, message: ParticipantMessage): void {
    const received = overTheWire<ParticipantMessage>(encodeFrames('ParticipantMessage', message), 'ParticipantFrame', 'ParticipantMessage');
    const job = this.job;
    // A late answer to a job that ended goes nowhere, as the server drops a message for a job it does not run.
    if (!job || job.id !== received.jobId) return;
    if (!job.accepts(received.body)) throw new Error(`${org} sent a ${received.body} message, which a horizontal job has no use for`);
    job.deliver(org, received);
  }

  private readonly sessions: SessionRegistry = {
    isConnected: (org) => this.participants.get(org)?.connected ?? false,
    waitConnected: async (org) => this.participants.get(org)?.connected ?? false,
    send: async (org, message) => {
      const participant = this.participants.get(org);
      if (!participant?.connected) throw new FedcreditError(ErrorCode.UNAVAILABLE, `${org} is not connected`);
      const frames = 'frames' in message ? message : encodeFrames('CoordinatorMessage', message);
      const received = overTheWire<CoordinatorMessage>(frames, 'CoordinatorFrame', 'CoordinatorMessage');
      participant.receive(this.coordinatorTamper ? this.coordinatorTamper(org, received) : received);
    },
    declaredFeatures: (org) => this.participants.get(org)!.rows.features,
  };

  /** Run one job to its end, as `fedcredit submit` and `watch` would; the spec is validated as the server does. */
  async run(job: object): Promise<MemoryRun> {
    const spec = validateConfig(HorizontalJobSpec, job, 'job spec', 'job');
    const jobId = `job-memory-${++this.jobCount}`;
    const stateDir = join(this.dir, 'coordinator-state');
    const run = new JobRun(jobId, spec, 'test', { sessions: this.sessions, log: silent, stateDir, offerTimeoutMs: 60_000, ledger: this.ledger });
    this.job = run;
    const events: JobEvent[] = [];
    run.subscribe((e) => events.push(e));
    await run.run();
    this.job = undefined;
    const modelDir = join(stateDir, 'jobs', jobId, 'model');
    const files: ArtifactFiles = {};
    if (run.state === 'succeeded') for (const name of await readdir(modelDir)) files[name] = await readFile(join(modelDir, name));
    return { jobId, state: run.state as MemoryRun['state'], message: run.message, events, files, modelDir, modelSha256: Buffer.from(run.modelSha256).toString('hex') };
  }

  async stop(): Promise<void> {
    for (const p of this.participants.values()) await p.stop();
    await this.ledger.close();
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** The first `rows` rows of each UCI homo part (HOMO_PARTIES, in order) as `names`' files in a temporary folder. */
export async function writeUciSlices(names: string[], rows: number): Promise<{ dir: string; files: string[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'fedcredit-uci-slices-'));
  const files = HOMO_PARTIES.map((p, i) => csvHead(join(UCI, `fate_default_credit_homo_${p}.csv`), rows, join(dir, `${names[i]}.csv`)));
  return { dir, files };
}
