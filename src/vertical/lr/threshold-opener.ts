/**
 * The arbiter's Opener under a collective gradient key (encryption.scheme ckks-threshold), and each party's side of
 * it. Every party of the job (the guest, each host) and the arbiter hold one share of the key; the arbiter opens a
 * masked gradient only with a decryption share from every one of them (src/he/vertical-threshold.ts).
 *
 * A shareholder gives one share per ciphertext and per label (gradientLabel: job, step, attempt, whose gradient),
 * only for the masked-gradient class of ciphertext (level and scale), and, for a label naming itself, only for the
 * very ciphertext it sent: so a coalition that lacks a party cannot have anything but that party's own masked
 * gradient opened under its name. Each share given is reported to `onIssue` first (the ledger's record of it).
 *
 * Each shareholder's share is of the gradient's residue classes summed modulo a period P it knows from the signed
 * job spec (gradientPeriods): it applies the class sum to its own product with its key share (classSumTransform),
 * and the opener to the ciphertext's c0. The opened slots hold class sums, never a slot z_i + m_i, and no requester
 * can choose a finer P.
 */
import { ErrorCode, FedcreditError } from '../../errors.js';
import { nextPowerOfTwo, residueClassSums, verticalCollectiveRotationSteps } from '../../he/packing.js';
import { paramsFingerprint } from '../../he/params.js';
import { collectiveTranscript, verticalCollectiveKeyShare, verticalCollectiveKeys } from '../../he/key-ceremony.js';
import type { CanonicalCiphertext, PolyTransform, ThresholdContext } from '../../he/threshold/context.js';
import { DecryptionParty, DecryptionProtocol, DecryptionShare, type IssuedShareRecord, type ShareholderMemory } from '../../he/threshold/decrypt.js';
import type { SecretKeyShare } from '../../he/threshold/secret-key.js';
import { classSumTransform } from '../../he/class-sums.js';
import { VERTICAL_GRADIENT_RULE, verticalGradientRule } from '../../he/vertical-threshold.js';
import type { GradientRequest, Opener } from './opener.js';

/** The arbiter's name among a vertical job's shareholders (the coordinator; parties are organisations). */
export const ARBITER_SHAREHOLDER = 'arbiter';

/**
 * Most gradient values (columns, + 1 for the guest's intercept) of a party whose columns the job's `features` section
 * does not list, under a collective key: the other shareholders cannot know its count, so they sum its classes modulo
 * 64, and a larger party must be listed there.
 */
export const VERTICAL_THRESHOLD_DEFAULT_COLUMNS = 64;

/** Each party's class-sum period (gradientPeriods): every shareholder's and the opener's. */
export type ClassSumPeriods = ReadonlyMap<string, number>;

/**
 * The class-sum period every shareholder applies to each party's masked gradient, from the signed job spec alone (so
 * that all of them agree): the next power of two at or above the columns `features` lists for the party (+ 1 for
 * the guest's intercept), or at or above VERTICAL_THRESHOLD_DEFAULT_COLUMNS when it lists none. A party's gradient
 * length must not exceed its period (the coordinator checks it when it pins the lengths); binning only lowers it.
 */
export function gradientPeriods(job: { guest: string; hosts: readonly string[]; features?: Record<string, string[]> | undefined }): Map<string, number> {
  return new Map(
    [job.guest, ...job.hosts].map((org) => {
      const listed = job.features?.[org];
      return [org, nextPowerOfTwo(listed ? listed.length + (org === job.guest ? 1 : 0) : VERTICAL_THRESHOLD_DEFAULT_COLUMNS)];
    }),
  );
}

/**
 * FC_JOB_INVALID when a party's gradient (its columns, + 1 for the guest) would not fit the class-sum period every
 * shareholder takes from the job file (gradientPeriods): a party the job's `features` section does not list may
 * bring at most VERTICAL_THRESHOLD_DEFAULT_COLUMNS values. The coordinator checks it once the parties have declared
 * their columns, before any key is made.
 */
export function requireGradientsFitPeriods(job: { guest: string; hosts: readonly string[]; features?: Record<string, string[]> | undefined }, lengths: ReadonlyMap<string, number>): void {
  const periods = gradientPeriods(job);
  for (const [org, length] of lengths) {
    const period = periods.get(org)!;
    if (length > period)
      throw new FedcreditError(
        ErrorCode.JOB_INVALID,
        `${org} brings ${length - (org === job.guest ? 1 : 0)} columns; under encryption.scheme ckks-threshold the other shareholders open at most ${period} gradient values of a party the job's features section does not list`,
        `list ${org}'s columns in the job's features section (features.${org}), so that every shareholder knows how many gradient values to open`,
      );
  }
}

/** A gradient decryption asked of a shareholder: the request, the masked gradient, and who asks (the arbiter). */
export interface ShareRequest extends GradientRequest {
  masked: Uint8Array;
  /** The arbiter's canonical form of `masked`, which it loaded into SEAL once for its own share and the opening. */
  canonical?: CanonicalCiphertext;
}

/**
 * The ciphertext a share request sends a shareholder: none to the party whose gradient it is (it opens the one it sent
 * under the label, GradientShareholder.share), the masked gradient to every other.
 */
export function askedCiphertext(org: string, request: ShareRequest): Uint8Array {
  return org === request.party ? new Uint8Array(0) : request.masked;
}

/** One party's share of the gradient key and its rules. */
export class GradientShareholder {
  private readonly decryption: DecryptionParty;
  /** The digest of the masked gradient this party sent under each label. */
  private readonly own = new Map<string, string>();
  private forgotten = false;

  constructor(
    readonly context: ThresholdContext,
    readonly organisation: string,
    private readonly secret: SecretKeyShare,
    /** Number of shares of the key (every party and the arbiter): sizes the flooding. */
    parties: number,
    private readonly periods: ClassSumPeriods,
    memory: ShareholderMemory = {},
  ) {
    const { given, keep } = memory;
    const issued = given?.issued;
    // The whole record with the new share, kept before the share is made: a throw means no share.
    const onIssue = keep && ((record: IssuedShareRecord) => keep({ issued: [...this.decryption.issued(), record] }));
    this.decryption = new DecryptionParty(context, secret, { rules: [verticalGradientRule(context, parties)], ...(issued ? { issued } : {}), ...(onIssue ? { onIssue } : {}) });
  }

  /** How many decryption shares this shareholder has given (its record's, reloaded after a restart, included). */
  get sharesGiven(): number {
    return this.decryption.issued().length;
  }

  /** The job ended: the share is wiped (its SEAL copies too) and nothing more is decrypted with it. */
  forget(): void {
    this.secret.poly.fill(0n);
    this.decryption.dispose();
    this.forgotten = true;
  }

  /** The masked gradient this party sent last, under its label: what a request for it that carries no ciphertext opens. */
  private lastSent?: { purpose: string; ciphertext: CanonicalCiphertext };

  /** Remember the masked gradient this party sends for opening under `purpose` (before it sends it). */
  sent(purpose: string, masked: Uint8Array): void {
    const ciphertext = this.context.canonicalCiphertext(masked, 'the masked gradient sent');
    this.own.set(purpose, ciphertext.digest);
    this.lastSent = { purpose, ciphertext };
  }

  /**
   * This party's decryption share (serialised) of the request's masked gradient with its classes summed modulo the
   * party's period, or FC_DECRYPTION_REFUSED. A request for this party's own gradient may carry no ciphertext (the
   * coordinator does not send a party's gradient back to it): the one it sent under the label is opened.
   */
  share(request: ShareRequest): Uint8Array {
    if (this.forgotten) throw new FedcreditError(ErrorCode.DECRYPTION_REFUSED, `${this.organisation}'s key share of the job is deleted`, 'the job has ended; nothing more is decrypted for it');
    let ciphertext: Uint8Array | CanonicalCiphertext = request.canonical ?? request.masked;
    if (request.party === this.organisation) {
      const mine = this.own.get(request.purpose);
      const kept = this.lastSent?.purpose === request.purpose ? this.lastSent.ciphertext : undefined;
      const asked = request.masked.length === 0 ? kept : this.context.canonicalCiphertext(request.masked, `the ciphertext to decrypt for "${request.purpose}"`);
      if (!asked || mine !== asked.digest)
        throw new FedcreditError(
          ErrorCode.DECRYPTION_REFUSED,
          !mine
            ? `${this.organisation} sent no masked gradient for "${request.purpose}"`
            : asked
              ? `the ciphertext to decrypt as ${this.organisation}'s gradient ("${request.purpose}") is not the one ${this.organisation} sent`
              : `the request to decrypt ${this.organisation}'s gradient ("${request.purpose}") carries no ciphertext, and ${this.organisation} no longer keeps the one it sent`,
          "the arbiter asked to open under this party's name a ciphertext it did not send: it deviates from the protocol",
        );
      ciphertext = asked;
    }
    return this.decryption.generateShare(ciphertext, request.purpose, VERTICAL_GRADIENT_RULE, classSum(this.context, this.periods, request)).serialize();
  }

  /** The records of every share given. */
  issued(): IssuedShareRecord[] {
    return this.decryption.issued();
  }
}

/**
 * The class sum modulo the request's party's period (what every shareholder's share and the opening apply), or
 * FC_DECRYPTION_REFUSED for a party that has none (not a party of the job).
 */
function classSum(context: ThresholdContext, periods: ClassSumPeriods, request: GradientRequest): PolyTransform {
  const period = periods.get(request.party);
  if (period === undefined)
    throw new FedcreditError(ErrorCode.DECRYPTION_REFUSED, `${request.party} is not a party of the job: no share is given for its "gradient"`, 'the arbiter deviates from the protocol');
  return classSumTransform(context.degree, period);
}

/**
 * The arbiter's Opener: `collect` returns every shareholder's serialised share for the request (the arbiter's own
 * included), each a share of the masked gradient (checked here to be what every share is for) with its classes
 * summed modulo the party's period; the opener adds the shares and opens the class sums. The class sums modulo the
 * party's own P (at most its period) go back to the party, as under the single key. A count above the period is
 * refused: the shareholders' sums cannot give it.
 */
export function thresholdOpener(context: ThresholdContext, shareholders: readonly string[], periods: ClassSumPeriods, collect: (request: ShareRequest) => Map<string, Uint8Array>): Opener {
  const protocol = new DecryptionProtocol(context);
  return {
    openGradient(masked, count, request) {
      const period = periods.get(request.party);
      if (period === undefined || !(count <= period))
        throw new FedcreditError(
          ErrorCode.DECRYPTION_REFUSED,
          `${count} gradient values of ${request.party} asked for; its shareholders sum its classes modulo ${period ?? 'nothing (not a party)'}, which gives at most that many`,
          "the count is the party's columns (+ 1 for the guest); list the party's columns in the job's features section",
        );
      const ct = context.canonicalCiphertext(masked, 'a masked gradient');
      const shares = collect({ ...request, masked, canonical: ct });
      const missing = shareholders.filter((org) => !shares.has(org));
      if (missing.length > 0)
        throw new FedcreditError(
          ErrorCode.PROTOCOL,
          `no decryption share from ${missing.join(', ')} for "${request.purpose}"`,
          'every shareholder must answer; the gradient cannot be opened without all of them',
        );
      const all = new Map(
        shareholders.map((org): [string, DecryptionShare] => {
          try {
            return [org, DecryptionShare.deserialize(context, shares.get(org)!)];
          } catch (err) {
            throw new FedcreditError(
              ErrorCode.PROTOCOL,
              `${org}'s decryption share does not parse: ${err instanceof Error ? err.message : String(err)}`,
              `${org} runs another fedcredit version or deviates`,
            );
          }
        }),
      );
      return residueClassSums(protocol.finalize(ct, request.purpose, all, classSumTransform(context.degree, period)).subarray(0, period), count);
    },
    openLabelSums() {
      throw new FedcreditError(
        ErrorCode.PROTOCOL,
        'per-bin label sums are opened by the guest under its own key, never by the arbiter',
        'report this: the binning step asked the arbiter to open label sums',
      );
    },
  };
}

/**
 * The whole ceremony and the opening in one process, for in-memory jobs, tests and benchmarks: the arbiter and
 * every party make their shares, commit and reveal; `collect` asks every shareholder in turn. A real job runs the
 * same functions at each party, over the coordinator.
 */
export function inProcessCollectiveKeys(context: ThresholdContext, jobId: string, job: { guest: string; hosts: readonly string[]; features?: Record<string, string[]> }) {
  const orgs = [ARBITER_SHAREHOLDER, job.guest, ...job.hosts];
  const steps = verticalCollectiveRotationSteps(context.degree / 2);
  const transcript = collectiveTranscript(jobId, orgs, paramsFingerprint(context.params), 'vertical');
  const made = orgs.map((organisation) => ({ organisation, ...verticalCollectiveKeyShare(context, transcript, organisation, steps) }));
  const { publicKey, galoisKeys } = verticalCollectiveKeys(context, transcript, steps, made);
  const periods = gradientPeriods(job);
  const shareholders = new Map(made.map((m) => [m.organisation, new GradientShareholder(context, m.organisation, m.secret, orgs.length, periods)]));
  const opener = thresholdOpener(context, orgs, periods, (request) => new Map([...shareholders].map(([org, holder]) => [org, holder.share({ ...request, masked: askedCiphertext(org, request) })])));
  return {
    publicKey,
    galoisKeys,
    secrets: new Map(made.map((m) => [m.organisation, m.secret])),
    shareholders,
    periods,
    opener,
    /** What a party records when it sends its masked gradient for opening (MemoryFederation's sentGradient). */
    sentGradient: (party: string, purpose: string, masked: Uint8Array) => shareholders.get(party)!.sent(purpose, masked),
  };
}
