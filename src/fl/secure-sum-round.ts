/**
 * One horizontal secure sum as decisions over messages, with no I/O, ledger or timer: who is asked and who must
 * contribute, what a late or foreign message is, who is dropped, the canonical order the contributions are added in,
 * whether to retry, and whether the contributors agree on the opened aggregate. The coordinator's job runner
 * (coordinator/job-run.ts) and the participant (participant/horizontal-job.ts) are the I/O around it.
 */
import { ErrorCode, FedcreditError } from '../errors.js';
import { sha256 } from '../bytes.js';
import { float64Bytes, toFloat32, toFloat64 } from './vector-codec.js';
import { encodeMessage } from '../wire/proto.js';
import type { AggregateOpened, ContributionRequest, SumPurpose, ValidationMetrics } from '../wire/messages.js';

/**
 * How many contributions a sum needs: every participant for `needAll` (moments, quantiles, histograms), else
 * training.min_participants (all when unset). Never fewer than two of a federation of two or more: a sum over a single
 * contributor would hand the coordinator that contributor's vector.
 */
export function contributorsNeeded(participants: number, rule: { needAll?: boolean; minParticipants?: number }): number {
  return Math.max(rule.needAll ? participants : (rule.minParticipants ?? participants), Math.min(2, participants));
}

/** The order contributions are added and named in, so that every replay of the record adds in the same order. */
export function canonicalOrder(orgs: Iterable<string>): string[] {
  return [...orgs].sort((a, b) => a.localeCompare(b));
}

/** The contributor that sends the opened values; the others send only their digest. */
export function reporterOf(contributors: readonly string[]): string | undefined {
  return contributors[0];
}

/**
 * What a message of sum `got` means while sum `asked` waits on the same round: `take` it; `stale`, a late message of
 * the moments or quantile sums that share round 0 with the later sums, to discard; or `foreign`, a protocol error.
 */
export function purposeDecision(asked: SumPurpose, got: SumPurpose): 'take' | 'stale' | 'foreign' {
  if (got === asked) return 'take';
  if ((got === 'moments' || got === 'quantiles') && (asked === 'quantiles' || asked === 'histogram')) return 'stale';
  return 'foreign';
}

/** The protocol error of a `foreign` message (see purposeDecision). */
export function foreignPurpose(asked: SumPurpose, got: SumPurpose, what: 'contribution' | 'decryption report' | 'decryption shares'): FedcreditError {
  return new FedcreditError(ErrorCode.PROTOCOL, `sent a ${got} ${what} where the ${asked} sum was asked for`, 'run the same fedcredit version on every participant');
}

/**
 * One attempt at a sum: the connected participants are asked, each answers with a contribution or is dropped with
 * its reason, and the outcome is the contributors in canonical order, or why there are too few.
 */
/**
 * The digest of one contributor's decryption shares of an aggregate, as the ledger records it (`shares_sha256` of a
 * `decryption_shares` entry) and as the coordinator names it beside the combined shares, so each contributor checks
 * the coordinator took its shares as it sent them.
 */
export function decryptionSharesDigest(organisation: string, shares: Uint8Array[]): Uint8Array {
  return sha256(encodeMessage('PartyDecryptionShares', { organisation, shares }));
}

export class SumAttempt {
  readonly asked: string[];
  readonly notConnected: string[];
  /** Each dropped participant with its reason, as the progress and the error name them. */
  readonly dropped: string[];
  private readonly taken = new Set<string>();
  private readonly answered = new Set<string>();

  constructor(
    readonly round: number,
    readonly participants: readonly string[],
    isConnected: (org: string) => boolean,
    readonly needed: number,
    /**
     * Every asked participant must contribute: under pairwise masks (src/fl/pairwise-mask.ts) a sum over fewer than
     * the set the request named opens to noise, so a participant dropped mid-sum means asking again.
     */
    readonly everyAsked = false,
    /** Participants not to ask, with the reason (a contribution of theirs to an earlier attempt was refused). */
    excluded: ReadonlyMap<string, string> = new Map(),
  ) {
    const connected = participants.filter((o) => isConnected(o) && !excluded.has(o));
    // Masked contributions must be over a set of at least `needed` (participants refuse a smaller one): with fewer
    // connected, nobody is asked and the attempt falls short at once.
    this.asked = everyAsked && connected.length < needed ? [] : connected;
    this.notConnected = participants.filter((o) => !connected.includes(o) && !excluded.has(o));
    this.dropped = [...this.notConnected.map((o) => `${o} (not connected)`), ...[...excluded].map(([o, reason]) => `${o} (${reason})`)];
  }

  /** `org` answered (with a contribution or an error): it is no longer late. */
  answer(org: string): void {
    this.answered.add(org);
  }

  /** The asked participants that have not answered yet. */
  late(): string[] {
    return this.asked.filter((o) => !this.answered.has(o));
  }

  /**
   * Take `org`'s contribution into the sum: refused from a participant that was not asked (not connected when the
   * round opened, or not in the job) and for a second contribution of the same participant (a replay).
   */
  take(org: string): void {
    if (!this.asked.includes(org))
      throw new FedcreditError(ErrorCode.PROTOCOL, `round ${this.round}: a contribution from ${org}, which was not asked for one`, 'run the same fedcredit version on every participant');
    if (this.taken.has(org)) throw new FedcreditError(ErrorCode.PROTOCOL, `round ${this.round}: a second contribution from ${org}`, 'run the same fedcredit version on every participant');
    this.taken.add(org);
  }

  /** Drop `org` from the sum (taking back its contribution if it was taken), naming the reason. */
  drop(org: string, reason: string): void {
    this.taken.delete(org);
    this.dropped.push(`${org} (${reason})`);
  }

  /** The contributors in canonical order once every asked participant answered, or why they are too few. */
  outcome(): { ok: true; contributors: string[]; reporter: string } | { ok: false; contributors: string[]; why: string } {
    const contributors = canonicalOrder(this.taken);
    if (this.everyAsked && contributors.length < this.asked.length && contributors.length >= this.needed) {
      return {
        ok: false,
        contributors,
        why: `round ${this.round}: ${contributors.length} of the ${this.asked.length} participants asked contributed; the masks of a sum cancel only over everyone asked; dropped: ${this.dropped.join('; ')}`,
      };
    }
    if (contributors.length < this.needed) {
      return {
        ok: false,
        contributors,
        why: `round ${this.round}: ${contributors.length} of ${this.participants.length} participants contributed, ${this.needed} needed; dropped: ${this.dropped.join('; ')}`,
      };
    }
    return { ok: true, contributors, reporter: reporterOf(contributors)! };
  }
}

/**
 * What follows an attempt with too few contributions: `retry` (after waiting for `waitFor` to reconnect when too few
 * are connected to reach `needed`), `skip` an optional sum, or `fail` the job.
 */
export function afterShortfall(
  attempt: number,
  rule: { maxRetries: number; optional?: boolean; needed: number },
  participants: readonly string[],
  isConnected: (org: string) => boolean,
): { action: 'retry'; waitFor: string[] } | { action: 'skip' } | { action: 'fail' } {
  if (attempt < rule.maxRetries) {
    const away = participants.filter((o) => !isConnected(o));
    // Asking again at once would only ask the same too few: first give the missing time to come back.
    return { action: 'retry', waitFor: participants.length - away.length < rule.needed ? away : [] };
  }
  return rule.optional ? { action: 'skip' } : { action: 'fail' };
}

/** One contributor's decryption report of the aggregate. */
export interface OpenedReply {
  org: string;
  opened: AggregateOpened;
}

export interface AgreedAggregate {
  values: Float64Array;
  /** Hex SHA-256 of the values as float64. */
  digest: string;
  /** The contributors that reported, all with the reporter's digest. */
  agreeing: string[];
  /** Each reporting contributor's validation metrics, as it sent them. */
  validation: { org: string; metrics: ValidationMetrics }[];
}

/**
 * Digest agreement: the reporter's values are the opened aggregate only if every contributor that reported decrypted
 * the same (a participant that did not report is left out; the reporter must report). A disagreement fails the job:
 * the participants hold different keys, or one of them lies about what it decrypted.
 */
export function agreeOnOpened(round: number, reporter: string, replies: readonly (OpenedReply | undefined)[]): AgreedAggregate {
  const reported = replies.filter((r): r is OpenedReply => r !== undefined);
  const fromReporter = reported.find((r) => r.org === reporter);
  if (!fromReporter || fromReporter.opened.values.length === 0) {
    throw new FedcreditError(ErrorCode.JOB_FAILED, `round ${round}: ${reporter} did not report the opened aggregate`, `see ${reporter}'s log`);
  }
  const values = new Float64Array(toFloat64(fromReporter.opened.values));
  const digest = Buffer.from(sha256(float64Bytes(values)));
  for (const r of reported) {
    if (!Buffer.from(r.opened.valuesSha256).equals(digest)) {
      throw new FedcreditError(
        ErrorCode.JOB_FAILED,
        `round ${round}: ${r.org} decrypted a different aggregate than ${reporter}`,
        'the participants hold different CKKS keys or one is faulty; re-run the job',
      );
    }
  }
  return {
    values,
    digest: digest.toString('hex'),
    agreeing: reported.map((r) => r.org),
    validation: reported.flatMap((r) => (r.opened.validation ? [{ org: r.org, metrics: r.opened.validation }] : [])),
  };
}

/** The global model a round's request carries, after checking it against its digest. */
export function globalWeightsOf(request: ContributionRequest, round: number): Float32Array {
  if (!Buffer.from(sha256(request.globalWeights)).equals(Buffer.from(request.globalWeightsSha256))) {
    throw new FedcreditError(ErrorCode.PROTOCOL, `round ${round}: global weights do not match their digest`, 'restart the coordinator');
  }
  return toFloat32(request.globalWeights);
}

/** A contributor's decryption report: the values from the reporter, the digest from everyone. */
export function openedReport(purpose: SumPurpose, values: Float64Array, self: string, contributors: readonly string[], validation: ValidationMetrics | null): AggregateOpened {
  const bytes = float64Bytes(values);
  return { purpose, valuesSha256: sha256(bytes), values: reporterOf(contributors) === self ? bytes : new Uint8Array(), validation };
}
