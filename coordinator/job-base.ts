/**
 * What every kind of job shares on the coordinator: its event stream for watchers, its mailbox of participant
 * messages, the ledger record with receipts, the offer to the named parties, and how it fails.
 */
import { ErrorCode, FedcreditError, errorMessage } from '../src/errors.js';
import type { Logger } from '../src/log.js';
import { encodeTreeHead, type Ledger } from '../src/ledger/ledger.js';
import { Mailbox, ParticipantGone } from './mailbox.js';
import { encodeFrames, type EncodedMessage } from '../src/wire/framing.js';
import type { CoordinatorMessage, CoordinatorRequest, JobAccepted, JobEvent, JobState, ParticipantMessage, RoundProgress } from '../src/wire/messages.js';

export interface SessionRegistry {
  isConnected(org: string): boolean;
  waitConnected(org: string, deadlineMs: number): Promise<boolean>;
  send(org: string, message: CoordinatorMessage | EncodedMessage): Promise<void>;
  /** Feature columns a participant declared in its Hello (names only). */
  declaredFeatures(org: string): string[];
}

export interface JobContext {
  sessions: SessionRegistry;
  log: Logger;
  stateDir: string;
  offerTimeoutMs: number;
  ledger: Ledger;
}

export abstract class JobBase {
  readonly mailbox = new Mailbox();
  state: JobState = 'pending';
  stage = 'offer';
  message = 'waiting for participants';
  roundsDone = 0;
  modelSha256: Uint8Array = new Uint8Array();
  /** What DownloadModel returns once the job succeeded. */
  artifact?: Uint8Array;

  /** The published model as DownloadModel sends it (a job rebuilt from the ledger reads it from there when asked). */
  modelArtifact(): Uint8Array | undefined {
    return this.artifact;
  }
  private readonly events: JobEvent[] = [];
  protected readonly watchers = new Set<(e: JobEvent) => void>();
  protected readonly sessions: SessionRegistry;
  protected readonly log: Logger;
  protected readonly stateDir: string;
  protected readonly offerTimeoutMs: number;
  protected readonly ledger: Ledger;

  constructor(
    readonly id: string,
    readonly submitter: string,
    ctx: JobContext,
  ) {
    this.sessions = ctx.sessions;
    this.log = ctx.log;
    this.stateDir = ctx.stateDir;
    this.offerTimeoutMs = ctx.offerTimeoutMs;
    this.ledger = ctx.ledger;
  }

  /** The job file's kind: horizontal, vertical-lr or vertical-score. */
  abstract readonly kind: string;
  abstract get participants(): string[];
  /** Rounds (horizontal) or epochs (vertical) the job asks for. */
  abstract get rounds(): number;

  /** Past events, then live ones, until the job ends. Returns the unsubscribe function. */
  subscribe(listener: (e: JobEvent) => void): () => void {
    for (const e of this.events) listener(e);
    this.watchers.add(listener);
    return () => this.watchers.delete(listener);
  }

  protected emit(stage: string, message: string, progress?: RoundProgress): void {
    this.stage = stage;
    this.message = message;
    const event: JobEvent = { jobId: this.id, unixMs: Date.now(), state: this.state, stage, message, progress: progress ?? null };
    this.events.push(event);
    for (const w of this.watchers) w(event);
  }

  /** Message kinds a participant may send for this kind of job; the server refuses others. */
  abstract accepts(kind: ParticipantMessage['body']): boolean;

  deliver(org: string, message: ParticipantMessage): void {
    this.mailbox.deliver(org, message);
  }

  participantLost(org: string, reason: string): void {
    this.mailbox.lost(org, reason);
  }

  /** Append an event of this job to the audit ledger (durable before it returns). */
  protected record(kind: string, body: Record<string, unknown>, blobs?: { name: string; bytes: Uint8Array }[]) {
    return this.ledger.append({ kind, jobId: this.id, body, blobs });
  }

  /** Record a participant's submission and hand it the signed tree head as its receipt. */
  protected async recordWithReceipt(org: string, round: number, kind: string, body: Record<string, unknown>, blobs?: { name: string; bytes: Uint8Array }[]) {
    const { seq, treeHead } = await this.record(kind, body, blobs);
    await this.send(org, round, { body: 'receipt', receipt: { seq, treeHead: encodeTreeHead(treeHead) } }).catch(() => undefined);
  }

  /**
   * Record an event that closes a round, an epoch or the job, and hand every connected party the signed tree head
   * over it: each keeps its newest, so that a ledger cut back before this event is caught at the next restart.
   */
  protected async recordForAll(kind: string, body: Record<string, unknown>, round = 0, blobs?: { name: string; bytes: Uint8Array }[]) {
    const result = await this.record(kind, body, blobs);
    await this.broadcast({ body: 'receipt', receipt: { seq: result.seq, treeHead: encodeTreeHead(result.treeHead) } }, round);
    return result;
  }

  protected async send(org: string, round: number, body: CoordinatorRequest): Promise<void> {
    await this.sessions.send(org, { jobId: this.id, round, ...body } as CoordinatorMessage);
  }

  /** Send the same message to each of `orgs`, encoded once; a party that cannot be reached is skipped. */
  protected async sendEach(orgs: string[], round: number, body: CoordinatorRequest): Promise<void> {
    const encoded = encodeFrames('CoordinatorMessage', { jobId: this.id, round, ...body } as CoordinatorMessage);
    await Promise.all(orgs.map((o) => this.sessions.send(o, encoded).catch(() => undefined)));
  }

  protected async broadcast(body: CoordinatorRequest, round = 0): Promise<void> {
    await this.sendEach(
      this.participants.filter((o) => this.sessions.isConnected(o)),
      round,
      body,
    );
  }

  /** Offer the job to every party (the first is the lead); all must accept within the offer timeout. */
  protected async collectAcceptances(specJson: string): Promise<{ org: string; accepted: JobAccepted }[]> {
    this.emit('offer', `offering the job to ${this.participants.join(', ')}`);
    const deadline = Date.now() + this.offerTimeoutMs;
    const lead = this.participants[0]!;
    return Promise.all(
      this.participants.map(async (org) => {
        if (!(await this.sessions.waitConnected(org, deadline))) {
          throw new FedcreditError(
            ErrorCode.JOB_FAILED,
            `participant ${org} did not connect within ${this.offerTimeoutMs / 1000}s`,
            `start \`fedcredit participant\` for ${org} pointing at this coordinator, or remove it from the job`,
          );
        }
        await this.send(org, 0, { body: 'jobOffer', jobOffer: { specJson, submitter: this.submitter, lead } });
        try {
          const m = await this.mailbox.waitFor(org, 'jobAccepted', 0, deadline, () => this.sessions.isConnected(org));
          if (m.body !== 'jobAccepted') throw new Error('unreachable');
          return { org, accepted: m.jobAccepted };
        } catch (err) {
          if (err instanceof ParticipantGone) await this.record('participant_refused', { participant: err.organisation, reason: err.reason });
          if (err instanceof ParticipantGone && err.refused) {
            throw new FedcreditError(
              ErrorCode.JOB_REFUSED,
              `participant ${err.organisation} did not accept the job: ${err.reason}`,
              "see that participant's log; adjust its consent section or the job",
            );
          }
          if (err instanceof ParticipantGone) {
            throw new FedcreditError(ErrorCode.JOB_FAILED, `participant ${err.organisation} did not answer the job offer: ${err.reason}`, "see that participant's log; restart it if it is down");
          }
          throw err;
        }
      }),
    );
  }

  protected async fail(err: unknown): Promise<void> {
    this.state = 'failed';
    const message = errorMessage(err);
    this.log.error({ job: this.id, err: message }, 'job failed');
    this.emit(this.stage, message);
    await this.recordForAll('job_ended', { state: 'failed', stage: this.stage, message, rounds: this.roundsDone }).catch((e) =>
      this.log.error({ job: this.id, err: errorMessage(e) }, 'could not record the end of the job'),
    );
    await this.broadcast({ body: 'jobEnded', jobEnded: { state: 'failed', message, modelSha256: new Uint8Array() } }).catch(() => undefined);
  }

  protected endWatchers(): void {
    for (const w of this.watchers) this.watchers.delete(w);
  }

  abstract run(): Promise<void>;
}
