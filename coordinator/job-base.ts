/**
 * What every kind of job shares on the coordinator: its event stream for watchers, its mailbox of participant
 * messages, the ledger record with receipts, the offer to the named parties, and how it fails.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../src/paths.js';
import { ErrorCode, FedcreditError, errorMessage } from '../src/errors.js';
import type { Logger } from '../src/log.js';
import { encodeTreeHead, type Ledger } from '../src/ledger/ledger.js';
import { Mailbox, ParticipantGone, refusalFix } from './mailbox.js';
import { encodeFrames, type EncodedMessage } from '../src/wire/framing.js';
import { CommitThenReveal } from '../src/he/threshold/commitment.js';
import { hex, sha256 } from '../src/bytes.js';
import { decodeMessage, encodeMessage } from '../src/wire/proto.js';
import type { CoordinatorMessage, CoordinatorRequest, JobAccepted, JobEvent, JobState, KeyShareEntry, ParticipantMessage, Recipient, RoundProgress, ThresholdCeremony } from '../src/wire/messages.js';

/**
 * A party lost during a key ceremony step (gone, or silent past the deadline) rather than one that answered with an
 * error or deviated: the one failure after which the ceremony may be restarted (nothing is encrypted under its key yet).
 */
export class CeremonyPartyLost extends FedcreditError {
  constructor(
    readonly organisation: string,
    readonly step: ThresholdCeremony['step'],
    readonly reason: string,
  ) {
    super(ErrorCode.JOB_FAILED, `key ceremony (${step}): no answer from ${organisation}: ${reason}`, `see ${organisation}'s log; every participant must take part in the key ceremony`);
  }
}

/** One step of a collective key ceremony: sent to every party (the same entries, or each its own), every answer. */
export type CeremonyAsk = (step: ThresholdCeremony['step'], parties: KeyShareEntry[] | ((org: string) => KeyShareEntry[])) => Promise<{ org: string; reply: ThresholdCeremony }[]>;

/** A collective key ceremony (docs/threshold-ckks.md): who takes part and how their shares are checked and added. */
export interface CeremonyPlan {
  /** Every shareholder in the transcript's order: the parties on the wire, and `local`'s organisation if any. */
  shareholders: string[];
  transcript: Uint8Array;
  paramsFingerprint: Uint8Array;
  /** Refuses (throws) a revealed share of `sender` that does not parse for the job's parameters. */
  checkShare(sender: string, share: Uint8Array): void;
  /** The collective key from every entry (commitments and shares checked again): its digest, which every party must report. */
  keyDigest(entries: KeyShareEntry[]): Uint8Array;
  /** The coordinator's own share (vertical jobs: the arbiter's), committed before any party reveals. */
  local?: { organisation: string; commitment: Uint8Array; share: Uint8Array };
  /** Box keys sent with the t-of-n re-sharing steps. */
  recipients?: Recipient[];
}

/**
 * Where a collective key ceremony stood when the coordinator stopped (kinds/ceremony-resume.ts): the restart that
 * starts it again (`attempt`, numbered after the ledger's restarts) and the step the stop interrupted.
 */
export interface CeremonyResume {
  attempt: number;
  step: string;
}

/** How long a restarted ceremony waits for every party, and the setting that says so (for the record and the hints). */
export interface CeremonyWait {
  seconds: number;
  setting: string;
  field: string;
  period: string;
}

/** The participants' bound box keys of a job, in the coordinator's job folder (a KeygenRequest's encoding). */
export function boxKeysFile(stateDir: string, jobId: string): string {
  return join(stateDir, 'jobs', jobId, 'box-keys.bin');
}

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
    this.ceremonyLosses?.add(org);
    this.mailbox.lost(org, reason);
  }

  /** Parties whose stream closed since the current key ceremony attempt began (one that restarts quickly is still lost). */
  private ceremonyLosses?: Set<string>;

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
            throw new FedcreditError(ErrorCode.JOB_REFUSED, `participant ${err.organisation} did not accept the job: ${err.reason}`, refusalFix(err.organisation, err.field));
          }
          if (err instanceof ParticipantGone) throw offerUnanswered(err.organisation, err.reason, this.sessions.isConnected(err.organisation), this.offerTimeoutMs / 1000);
          throw err;
        }
      }),
    );
  }

  /**
   * A party was lost during attempt `attempt` of a key ceremony: recorded (`key_ceremony_restarted`, with how long the
   * coordinator waits under `wait.field`), then the ceremony starts again once every party is connected, within
   * `wait.seconds` (a vertical job's training.grace_period_s, a horizontal one's offer_timeout_s); the job fails if
   * the bound on restarts (encryption.ceremony_restarts) is reached or the party does not come back.
   */
  protected async restartCeremony(lost: CeremonyPartyLost, attempt: number, bound: number, wait: CeremonyWait): Promise<void> {
    const missing = this.participants.filter((o) => o === lost.organisation || !this.sessions.isConnected(o));
    if (attempt >= bound)
      throw new FedcreditError(
        ErrorCode.JOB_FAILED,
        `${lost.message}; the key ceremony was restarted ${attempt} times already, the job's bound (encryption.ceremony_restarts ${bound})`,
        `see ${missing.join(', ')}'s log: the node keeps leaving during the ceremony; resubmit the job once it runs steadily, or raise encryption.ceremony_restarts`,
      );
    await this.record('key_ceremony_restarted', { attempt: attempt + 1, lost: missing, step: lost.step, reason: lost.reason, [wait.field]: wait.seconds });
    this.emit(
      'keys',
      `${missing.join(', ')} lost during the key ceremony (${lost.step}); waiting up to ${wait.seconds}s to restart it from the beginning (restart ${attempt + 1} of at most ${bound})`,
    );
    this.log.warn({ job: this.id, lost: missing, step: lost.step, attempt: attempt + 1 }, 'key ceremony restarted: a party was lost before the key was in place');
    await this.awaitCeremonyParties(wait, 'left during the key ceremony');
  }

  /**
   * This coordinator stopped (a crash, kill -9) during the job's key ceremony and was restarted: the ceremony starts
   * again from its commit step as after a lost party, recorded as `key_ceremony_restarted` with `coordinator_restart`,
   * once every party is back within `wait.seconds`. Every shareholder makes a fresh share under the new attempt's
   * transcript; the parties wipe the killed attempt's (they refuse a restart once anything is encrypted under a key).
   */
  protected async resumeCeremony(resume: CeremonyResume, bound: number, wait: CeremonyWait): Promise<void> {
    await this.record('key_ceremony_restarted', {
      attempt: resume.attempt,
      lost: [],
      step: resume.step,
      reason: 'the coordinator restarted during the key ceremony',
      coordinator_restart: true,
      [wait.field]: wait.seconds,
    });
    this.emit(
      'recovery',
      `resumed after a coordinator restart during the key ceremony (${resume.step}); waiting up to ${wait.seconds}s for ${this.participants.join(', ')} to reconnect, then restarting it from the beginning (restart ${resume.attempt} of at most ${bound})`,
    );
    this.log.warn({ job: this.id, step: resume.step, attempt: resume.attempt }, 'key ceremony restarted: the coordinator restarted before the key was in place');
    await this.awaitCeremonyParties(wait, 'did not reconnect after the coordinator restarted during the key ceremony');
  }

  /** Every party connected within `wait.seconds`, or the job fails naming those that are not. */
  private async awaitCeremonyParties(wait: CeremonyWait, why: string): Promise<void> {
    const end = Date.now() + wait.seconds * 1000;
    const back = await Promise.all(this.participants.map((o) => this.sessions.waitConnected(o, end)));
    const gone = this.participants.filter((_, i) => !back[i]);
    if (gone.length > 0)
      throw new FedcreditError(
        ErrorCode.JOB_FAILED,
        `${gone.join(', ')} ${why} and did not return within ${wait.period}; no key was made and nothing was encrypted`,
        `restart the missing participant and resubmit the job, or raise ${wait.setting}`,
      );
  }

  /** Keep the parties' bound box keys (public) in the job's folder: a restarted coordinator sends them on (boxKeysFile). */
  protected keepBoxKeys(boxKeys: Map<string, Recipient>): void {
    const file = boxKeysFile(this.stateDir, this.id);
    mkdirSync(join(file, '..'), { recursive: true, mode: 0o700 });
    // Whole or not at all: a restarted coordinator resumes a ceremony only from a file it can decode.
    writeFileAtomic(file, encodeMessage('KeygenRequest', { recipients: [...boxKeys.values()] }));
  }

  /** After a restart: the parties' box keys as kept at their acceptance, each with its owner's binding as it came. */
  protected keptBoxKeys(): Map<string, Recipient> {
    const file = boxKeysFile(this.stateDir, this.id);
    if (!existsSync(file)) throw new FedcreditError(ErrorCode.JOB_FAILED, `the parties' box keys of job ${this.id} are not in ${file}`, 'resubmit the job');
    const { recipients } = decodeMessage<{ recipients: Recipient[] }>('KeygenRequest', readFileSync(file));
    return new Map(recipients.map((r) => [r.organisation, r]));
  }

  /**
   * How the coordinator asks every party on the wire (`this.participants`) for one step of a key ceremony. The
   * messages of a restarted ceremony's `attempt` travel as its round, so an answer to an abandoned attempt is
   * discarded, never taken for the new one's, and a party whose stream closed since the attempt began is lost even
   * if it is back (it lost the ceremony's state). A party that is lost throws CeremonyPartyLost.
   */
  protected ceremonyAsk(plan: CeremonyPlan, requireFingerprint: (fingerprint: Uint8Array, org: string) => void, attempt: number): CeremonyAsk {
    const deviates = (org: string, why: string) => this.ceremonyDeviation(org, why);
    const losses = new Set<string>();
    this.ceremonyLosses = losses;
    return async (step, parties) => {
      const withRecipients = step === 'reshare' || step === 'reshared' ? { recipients: plan.recipients ?? [] } : {};
      const message = (p: KeyShareEntry[]) => ({
        body: 'thresholdCeremony' as const,
        thresholdCeremony: { step, parties: p, paramsFingerprint: plan.paramsFingerprint, publicKeySha256: new Uint8Array(), ...withRecipients, attempt },
      });
      if (typeof parties === 'function') await Promise.all(this.participants.map((org) => this.send(org, attempt, message(parties(org))).catch(() => undefined)));
      else await this.sendEach(this.participants, attempt, message(parties));
      const deadline = Date.now() + this.offerTimeoutMs;
      // Every answer awaited at once: the first party lost or refusing ends the step then, not after the others'.
      const replies = await Promise.all(
        this.participants.map(async (org) => {
          let m: ParticipantMessage;
          try {
            if (losses.has(org)) throw new CeremonyPartyLost(org, step, 'its stream closed during the key ceremony');
            m = await this.mailbox.waitFor(org, 'thresholdCeremony', attempt, deadline, () => this.sessions.isConnected(org));
          } catch (err) {
            if (err instanceof CeremonyPartyLost) throw err;
            if (err instanceof ParticipantGone && !err.answered) throw new CeremonyPartyLost(org, step, err.reason);
            throw new FedcreditError(
              ErrorCode.JOB_FAILED,
              `key ceremony (${step}): no answer from ${org}: ${err instanceof ParticipantGone ? err.reason : errorMessage(err)}`,
              `see ${org}'s log; every participant must take part in the key ceremony`,
            );
          }
          if (m.body !== 'thresholdCeremony') throw new Error('unreachable');
          const reply = m.thresholdCeremony;
          if (reply.step !== step) throw deviates(org, `answered step ${reply.step} when asked to ${step}`);
          requireFingerprint(reply.paramsFingerprint, org);
          return { org, reply };
        }),
      );
      // A party lost after it answered (after the key step: before its setup) lost the attempt's state all the same.
      const lost = this.participants.find((org) => losses.has(org));
      if (lost) throw new CeremonyPartyLost(lost, step, 'its stream closed during the key ceremony, after it answered');
      return replies;
    };
  }

  protected ceremonyDeviation(org: string, why: string): FedcreditError {
    return new FedcreditError(ErrorCode.JOB_FAILED, `key ceremony: ${org} ${why}`, `${org} deviates from the key ceremony (see its log); the job stops`);
  }

  /**
   * Commit, reveal and key (docs/threshold-ckks.md): every party commits to its share (signed), then, once all have
   * committed, reveals it; the coordinator checks each share against its commitment and adds them, and so does every
   * party, who must arrive at the same key (its digest). A share that does not match its commitment fails the job
   * naming its sender, and the ledger records it. The coordinator's own share, if it holds one (`local`), is
   * committed before any party is asked to reveal.
   */
  protected async commitRevealKey(plan: CeremonyPlan, ask: CeremonyAsk): Promise<{ entries: KeyShareEntry[]; keyDigest: Uint8Array }> {
    const deviates = (org: string, why: string) => this.ceremonyDeviation(org, why);
    const entries = new Map<string, KeyShareEntry>();
    const local = plan.local;
    if (local) {
      entries.set(local.organisation, { organisation: local.organisation, commitment: local.commitment, commitmentBinding: null, share: new Uint8Array() });
      await this.record('key_share_committed', { participant: local.organisation, commitment: hex(local.commitment), signed: false });
    }
    for (const { org, reply } of await ask('commit', [])) {
      const own = reply.parties[0];
      if (reply.parties.length !== 1 || own?.organisation !== org || own.commitment.length !== 32) throw deviates(org, 'sent no single 32-byte commitment of its own');
      entries.set(org, { organisation: org, commitment: own.commitment, commitmentBinding: own.commitmentBinding, share: new Uint8Array() });
      await this.recordWithReceipt(org, 0, 'key_share_committed', { participant: org, commitment: hex(own.commitment), signed: own.commitmentBinding !== null });
    }
    const ordered = () => plan.shareholders.map((o) => entries.get(o)!);
    const ceremony = new CommitThenReveal(plan.shareholders, plan.transcript);
    for (const e of ordered()) ceremony.commit(e.organisation, e.commitment);
    const reveal = async (org: string, share: Uint8Array) => {
      try {
        ceremony.reveal(org, share);
        plan.checkShare(org, share);
      } catch (err) {
        await this.record('key_share_rejected', { participant: org, share_sha256: hex(sha256(share)), reason: errorMessage(err) }, [{ name: 'share', bytes: share }]);
        throw deviates(org, `revealed a share that is refused: ${errorMessage(err)}`);
      }
      entries.get(org)!.share = share;
    };
    if (local) {
      await reveal(local.organisation, local.share);
      await this.record('key_share_revealed', { participant: local.organisation, share_sha256: hex(sha256(local.share)) }, [{ name: 'share', bytes: local.share }]);
    }
    // Every party sees every commitment (the coordinator's own included) before it reveals; the coordinator's share
    // travels with the others' once they are all revealed.
    const committed = ordered().map((e) => (e.organisation === local?.organisation ? { ...e, share: new Uint8Array() } : e));
    for (const { org, reply } of await ask('reveal', committed)) {
      const share = reply.parties.length === 1 && reply.parties[0]!.organisation === org ? reply.parties[0]!.share : new Uint8Array();
      await reveal(org, share);
      await this.recordWithReceipt(org, 0, 'key_share_revealed', { participant: org, share_sha256: hex(sha256(share)) }, [{ name: 'share', bytes: share }]);
    }
    const keyDigest = plan.keyDigest(ordered());
    for (const { org, reply } of await ask('key', ordered())) {
      if (!Buffer.from(reply.publicKeySha256).equals(Buffer.from(keyDigest))) throw deviates(org, 'added the shares into another collective public key than the coordinator did');
    }
    return { entries: ordered(), keyDigest };
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

/**
 * A party that did not answer a job offer. One still connected at the deadline is not down: most likely its owner
 * approves offers by hand (consent.approval: manual) and had not yet, which the coordinator cannot see, so the
 * message names that case and offer_timeout_s beside the log to read.
 */
export function offerUnanswered(org: string, reason: string, connected: boolean, offerTimeoutS: number): FedcreditError {
  if (!connected) return new FedcreditError(ErrorCode.JOB_FAILED, `participant ${org} did not answer the job offer: ${reason}`, "see that participant's log; restart it if it is down");
  return new FedcreditError(
    ErrorCode.JOB_FAILED,
    `participant ${org} is connected but did not answer the job offer within the coordinator's offer_timeout_s (${offerTimeoutS}s): ${reason}`,
    `if ${org}'s owner approves offers by hand (consent.approval: manual), ask them to answer within ${offerTimeoutS}s (\`fedcredit participant pending\`, then \`approve\`) and resubmit, or raise offer_timeout_s in the coordinator config; else see ${org}'s log`,
  );
}
