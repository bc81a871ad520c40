/**
 * Per-job inbox: messages from participants queue here until the job runner asks for them. A wait ends with the
 * message, with the participant's error or refusal, with its disconnection, or at the deadline, so one vanished
 * participant never stalls a job past its deadline.
 */
import type { ParticipantBody, ParticipantMessage } from '../src/wire/messages.js';

export type BodyKind = keyof ParticipantBody;

/**
 * What to do about a participant's refusal, by the field it names: a consent rule is the data owner's to set, a data
 * field the owner's data section, any other field the job's.
 */
export function refusalFix(org: string, field: string | undefined): string {
  if (field === 'consent.scoring.max_requests_per_model_per_day')
    return `${org}'s owner allows only so many scoring requests per model and day: score again tomorrow, or ask the owner to raise \`${field}\``;
  if (field?.startsWith('consent.')) return `\`${field}\` is ${org}'s data owner's rule (its participant config): change the job to fit it, or ask the owner; ${org}'s log has the details`;
  if (field?.startsWith('data.')) return `the job needs what ${org}'s data section does not declare (\`${field}\`): correct the job, or ask ${org}'s owner; ${org}'s log has the details`;
  if (field === 'protocol') return `${org} found the coordinator deviating from the protocol: tell the federation's operator, and check the coordinator's log and ledger; ${org}'s log has the details`;
  if (field === 'model') return `score with a vertical-lr or vertical-boost job ${org} took part in and that succeeded (\`fedcredit score --model JOB\`)`;
  if (field) return `change \`${field}\` in the job file as the reason says, and submit it again`;
  return `see ${org}'s log; adjust its consent section or the job`;
}

export class ParticipantGone extends Error {
  constructor(
    readonly organisation: string,
    readonly reason: string,
    /** True when the participant declined (JobRefused), not when it failed, timed out or went away. */
    readonly refused = false,
    /** The participant's own fix for its error, when it sent one. */
    readonly hint = '',
    /** True when the participant answered (an error or a refusal), false when it went away or stayed silent. */
    readonly answered = false,
    /** A refusal's code: the job or config field it is about (`consent.min_rows`, `binning`, `data.features`). */
    readonly field?: string,
  ) {
    super(`${organisation}: ${reason}`);
  }
}

interface Waiter {
  kind: BodyKind;
  round: number;
  resolve: (m: ParticipantMessage) => void;
  reject: (err: ParticipantGone) => void;
}

export class Mailbox {
  private readonly queues = new Map<string, ParticipantMessage[]>();
  private readonly waiters = new Map<string, Waiter>();

  deliver(org: string, message: ParticipantMessage): void {
    const waiter = this.waiters.get(org);
    if (waiter && this.settle(org, waiter, message)) return;
    const queue = this.queues.get(org) ?? [];
    queue.push(message);
    this.queues.set(org, queue);
  }

  /** The participant disconnected: fail its pending wait; later waits fail at once until it is back. */
  lost(org: string, reason: string): void {
    const waiter = this.waiters.get(org);
    if (waiter) {
      this.waiters.delete(org);
      waiter.reject(new ParticipantGone(org, reason));
    }
  }

  /**
   * Wait for a message of `kind` for `round` from `org`. Stale messages (other rounds or kinds) are discarded;
   * an ErrorReport or JobRefused ends the wait with ParticipantGone. A deadline given as a function may move later
   * while the wait runs (a step's deadline moves with its progress); it is read again when it seems to have passed.
   */
  waitFor(org: string, kind: BodyKind, round: number, deadlineMs: number | (() => number), isConnected: () => boolean): Promise<ParticipantMessage> {
    const due = typeof deadlineMs === 'number' ? () => deadlineMs : deadlineMs;
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { kind, round, resolve, reject };
      const queue = this.queues.get(org) ?? [];
      while (queue.length > 0) if (this.settle(org, waiter, queue.shift()!)) return;
      if (!isConnected()) return reject(new ParticipantGone(org, 'not connected'));
      let timer: NodeJS.Timeout;
      const arm = () => {
        timer = setTimeout(
          () => {
            if (due() > Date.now()) return arm();
            if (this.waiters.get(org) === waiter) this.waiters.delete(org);
            reject(new ParticipantGone(org, `no ${kind} within the deadline`));
          },
          Math.max(0, due() - Date.now()),
        );
      };
      arm();
      const clear =
        <T>(fn: (v: T) => void) =>
        (v: T) => {
          clearTimeout(timer);
          fn(v);
        };
      waiter.resolve = clear(resolve);
      waiter.reject = clear(reject);
      this.waiters.set(org, waiter);
    });
  }

  /** Hand a message to a waiter if it is the awaited one, or an error; returns whether the waiter is settled. */
  private settle(org: string, waiter: Waiter, message: ParticipantMessage): boolean {
    if (message.body === 'error' || message.body === 'jobRefused') {
      this.waiters.delete(org);
      const reason = message.body === 'error' ? `${message.error.code}: ${message.error.message}` : `refused (${message.jobRefused.code}): ${message.jobRefused.reason}`;
      const refused = message.body === 'jobRefused';
      waiter.reject(new ParticipantGone(org, reason, refused, message.body === 'error' ? message.error.hint : '', true, refused ? message.jobRefused.code : undefined));
      return true;
    }
    if (message.body !== waiter.kind || message.round !== waiter.round) return false;
    this.waiters.delete(org);
    waiter.resolve(message);
    return true;
  }
}
