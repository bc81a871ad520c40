/**
 * A participant's side of a horizontal job under a collective key (encryption.scheme ckks-threshold): its part of
 * the key ceremony (commit to a public-key share, reveal it once every party has committed, add every share into
 * the collective public key itself) and of each sum's collective decryption (one flooded share per block of the
 * aggregate of a sum it contributed to, once; then the values from every contributor's shares). It never holds
 * the job's secret key: nobody does. Pure computation, no I/O.
 */
import { signBinding, verifyBinding, type JobBinding } from '../src/crypto/key-binding.js';
import { ErrorCode, FedcreditError } from '../src/errors.js';
import type { Keys } from '../src/fl/vector-codec.js';
import {
  collectiveKeyShare,
  collectivePublicKey,
  collectiveTranscript,
  verticalCollectiveKeyShare,
  verticalCollectiveKeys,
  verticalKeyDigest,
  type CollectiveKeyShare,
} from '../src/he/key-ceremony.js';
import { ThresholdVectors, sumLabel } from '../src/he/threshold-vectors.js';
import type { ThresholdContext } from '../src/he/threshold/context.js';
import type { DecryptionParty, IssuedShareRecord, ShareholderMemory } from '../src/he/threshold/decrypt.js';
import { SecretKeyShare } from '../src/he/threshold/secret-key.js';
import { Combiner, ShamirShare, Thresholdizer } from '../src/he/threshold/thresholdizer.js';
import { open as openBox, seal, type BoxKeyPair } from '../src/crypto/sealed-box.js';
import { sha256 } from '../src/bytes.js';
import { canonicalOrder, decryptionSharesDigest } from '../src/fl/secure-sum-round.js';
import type { AggregateReady, DecryptionShares, KeyShareEntry, Recipient, SumPurpose, ThresholdCeremony } from '../src/wire/messages.js';

/** What a Shamir share is sealed under: the job, the sender and the receiver (a box cannot be moved to another). */
const reshareAad = (jobId: string, from: string, to: string) => `${jobId}|shamir|${from}|${to}`;

/**
 * A vertical job's collective gradient key (docs/threshold-ckks.md, "Vertical jobs under a collective key"): each
 * share is a bundle with Galois-key shares for `steps`, and `arbiter` is the shareholder that is the coordinator
 * itself, whose commitment comes unsigned (it relays the ceremony, so a signature would guard against nobody).
 */
export interface VerticalCeremony {
  steps: readonly number[];
  arbiter: string;
}

/**
 * What the 'key' step leaves with the party: the collective keys and its secret share (a vertical job's: the Galois
 * keys too, and the sums that rebuild both keys after a restart, verticalKeysFromSums).
 */
export type CeremonyKeys = Keys & { galoisKeys?: Uint8Array; sums?: Uint8Array };

const ceremonyError = (message: string) =>
  new FedcreditError(ErrorCode.KEY_BINDING, message, 'the coordinator (or a party it relays) deviates from the key ceremony; this node takes no further part in the job. Tell the federation operator');

/** The aggregate a party was last asked to open, whom it opens with, the shares it gave; `reopened` once asked again with another quorum. */
interface AskedToOpen {
  label: string;
  blocks: Uint8Array[];
  length: number;
  contributors: string[];
  quorum: string[];
  shares: Uint8Array[];
  reopened: boolean;
}

export class ThresholdParty {
  private own?: CollectiveKeyShare;
  private decryption?: DecryptionParty;
  /** t-of-n: this party's aggregated Shamir share σ_i once the re-sharing is done, and its own point P_i(x_i) until then. */
  private shamir?: ShamirShare;
  private ownPoint?: ShamirShare;
  /** Every decryption share given (by ciphertext and label), carried from one quorum's DecryptionParty to the next. */
  private issued: IssuedShareRecord[] = [];
  /** The contributor set of each (purpose, round) this party gave decryption shares for: one set each. */
  private readonly decryptedSets = new Map<string, string>();
  readonly vectors: ThresholdVectors;
  readonly transcript: Uint8Array;
  /** This party's latest contribution: it decrypts only the aggregate of that sum, and only once. */
  private contribution?: {
    purpose: SumPurpose;
    round: number;
    sent?: AskedToOpen;
  };

  constructor(
    readonly jobId: string,
    readonly organisation: string,
    /** The job's participants, in the spec's order. */
    readonly parties: readonly string[],
    readonly context: ThresholdContext,
    readonly paramsFingerprint: Uint8Array,
    /** The job's binding as the node set it (read when used: it is set after the job opens); none with --insecure. */
    private readonly bindingOf: () => JobBinding | undefined,
    /** t: how many parties' shares open a sum (encryption.threshold; the number of parties for N-of-N). */
    readonly threshold: number = parties.length,
    /** This party's per-job box key (t-of-n: the Shamir shares are sealed with it). */
    private readonly boxOf?: () => BoxKeyPair,
    /** Set for a vertical job's gradient key; a horizontal job's key otherwise. */
    private readonly vertical?: VerticalCeremony,
    /**
     * A horizontal job's record of decryption shares given and contributor sets, as its job folder keeps it (a
     * vertical job's shares are GradientShareholder's): kept before any share leaves, reloaded after a restart.
     */
    private readonly memory: ShareholderMemory = {},
    /** The ceremony's attempt (a ceremony restarted after a lost party: 1, 2, …), in its transcript. */
    readonly attempt = 0,
  ) {
    this.vectors = new ThresholdVectors(context, parties.length);
    this.transcript = collectiveTranscript(jobId, parties, paramsFingerprint, vertical ? 'vertical' : 'horizontal', attempt);
    this.issued = [...(memory.given?.issued ?? [])];
    for (const [sum, contributors] of Object.entries(memory.given?.contributorSets ?? {})) this.decryptedSets.set(sum, contributors.join('\n'));
    this.firstContribution = memory.given?.contributed;
  }

  /** One step of the ceremony; on 'key', also the keys to keep (the collective public key, this party's secret share). */
  ceremony(m: ThresholdCeremony): { reply: ThresholdCeremony; keys?: CeremonyKeys } {
    const reply = (parties: KeyShareEntry[], publicKeySha256: Uint8Array = new Uint8Array()): ThresholdCeremony => ({
      step: m.step,
      parties,
      paramsFingerprint: this.paramsFingerprint,
      publicKeySha256,
    });
    const entry = (fields: Partial<KeyShareEntry>): KeyShareEntry => ({ organisation: this.organisation, commitment: new Uint8Array(), commitmentBinding: null, share: new Uint8Array(), ...fields });
    if ((m.attempt ?? 0) !== this.attempt)
      throw ceremonyError(`the coordinator sent step ${m.step} of attempt ${m.attempt ?? 0} of the key ceremony of job ${this.jobId} to ${this.organisation}, which is at attempt ${this.attempt}`);
    if (m.step === 'commit') {
      if (this.own) throw ceremonyError(`the coordinator asked ${this.organisation} to commit twice in job ${this.jobId}`);
      this.own = this.vertical
        ? verticalCollectiveKeyShare(this.context, this.transcript, this.organisation, this.vertical.steps)
        : collectiveKeyShare(this.context, this.transcript, this.organisation);
      const b = this.bindingOf();
      const commitmentBinding = b ? signBinding(b.signer, { purpose: 'ckks-key-share', jobId: this.jobId, specSha256: b.specSha256, organisation: this.organisation, key: this.own.commitment }) : null;
      return { reply: reply([entry({ commitment: this.own.commitment, commitmentBinding })]) };
    }
    const own = this.own;
    if (!own) throw ceremonyError(`the coordinator asked ${this.organisation} to ${m.step} before it committed in job ${this.jobId}`);
    if (m.step === 'reveal' || m.step === 'key') this.checkParties(m.parties, own, m.step === 'key');
    if (m.step === 'reveal') return { reply: reply([entry({ commitment: own.commitment, share: own.share })]) };
    if (m.step === 'reshare') return { reply: reply(this.reshare(m.recipients ?? [], own)) };
    if (m.step === 'reshared') return { reply: reply([]), keys: this.reshared(m.parties, m.recipients ?? []) };
    if (m.step !== 'key') throw ceremonyError(`unknown key ceremony step "${String(m.step)}"`);
    if (this.decryption || this.publicKey) throw ceremonyError(`the coordinator sent the collective key twice in job ${this.jobId}`);
    if (this.vertical) {
      const made = verticalCollectiveKeys(this.context, this.transcript, this.vertical.steps, m.parties);
      this.publicKey = made.publicKey;
      return { reply: reply([], verticalKeyDigest(made)), keys: { ...made, secretKey: own.secret.serialize() } };
    }
    const publicKey = collectivePublicKey(this.context, this.transcript, m.parties);
    const keys = { publicKey, secretKey: own.secret.serialize() };
    // The (empty) record beside the key share it is kept with: a restored job without it cannot rejoin.
    this.keepRecord();
    this.restore(keys);
    return { reply: reply([], sha256(publicKey)), keys };
  }

  /**
   * Every party of the job exactly once, in the job's order; this party's own commitment (and share) as it sent
   * them; every other commitment signed by its party for this job (unless --insecure).
   */
  private checkParties(parties: KeyShareEntry[], own: CollectiveKeyShare, withShares: boolean): void {
    const named = parties.map((p) => p.organisation);
    if (named.join('\n') !== this.parties.join('\n')) throw ceremonyError(`the key ceremony of job ${this.jobId} names the parties [${named.join(', ')}]; the job's are [${this.parties.join(', ')}]`);
    const mine = parties.find((p) => p.organisation === this.organisation)!;
    if (!Buffer.from(mine.commitment).equals(Buffer.from(own.commitment)))
      throw ceremonyError(`the coordinator relayed another commitment for ${this.organisation} than the one it made in job ${this.jobId}`);
    if (withShares && !Buffer.from(mine.share).equals(Buffer.from(own.share)))
      throw ceremonyError(`the coordinator relayed another key share for ${this.organisation} than the one it revealed in job ${this.jobId}`);
    const b = this.bindingOf();
    if (!b) return;
    for (const p of parties) {
      if (p.organisation === this.organisation || p.organisation === this.vertical?.arbiter) continue;
      verifyBinding(p.commitmentBinding, { purpose: 'ckks-key-share', jobId: this.jobId, specSha256: b.specSha256, organisation: p.organisation, key: p.commitment }, b.trust);
    }
  }

  /** This party's Shamir point: its position among the job's participants, from 1. */
  private pointOf(organisation: string): number {
    return this.parties.indexOf(organisation) + 1;
  }

  private get tOfN(): boolean {
    return this.threshold < this.parties.length;
  }

  /**
   * Every party's box key, as the coordinator relays it for the re-sharing: the job's parties in order, this party's
   * own unchanged, every other one bound to its owner's certificate (unless --insecure).
   */
  private checkRecipients(recipients: Recipient[]): Map<string, Uint8Array> {
    const named = recipients.map((r) => r.organisation);
    if (named.join('\n') !== this.parties.join('\n'))
      throw ceremonyError(`the re-sharing of job ${this.jobId} names the box keys of [${named.join(', ')}]; the job's parties are [${this.parties.join(', ')}]`);
    const box = this.boxOf?.();
    if (!box) throw ceremonyError(`${this.organisation} has no box key to re-share its key share in job ${this.jobId}`);
    const mine = recipients.find((r) => r.organisation === this.organisation)!;
    if (!Buffer.from(mine.boxPublicKey).equals(Buffer.from(box.publicKey))) throw ceremonyError(`the coordinator relayed another box key for ${this.organisation} than its own in job ${this.jobId}`);
    const b = this.bindingOf();
    if (b)
      for (const r of recipients)
        if (r.organisation !== this.organisation)
          verifyBinding(r.binding, { purpose: 'box-key', jobId: this.jobId, specSha256: b.specSha256, organisation: r.organisation, key: r.boxPublicKey }, b.trust);
    return new Map(recipients.map((r) => [r.organisation, r.boxPublicKey]));
  }

  /** t-of-n, after the key: P_i(x_j) for every other party j, sealed to j's box key with this party's. */
  private reshare(recipients: Recipient[], own: CollectiveKeyShare): KeyShareEntry[] {
    if (!this.tOfN) throw ceremonyError(`the coordinator asked ${this.organisation} to re-share its key share in job ${this.jobId}, whose every sum opens with every party's share`);
    if (!this.decryption) throw ceremonyError(`the coordinator asked ${this.organisation} to re-share its key share before the collective key in job ${this.jobId}`);
    if (this.ownPoint || this.shamir) throw ceremonyError(`the coordinator asked ${this.organisation} to re-share its key share twice in job ${this.jobId}`);
    const keys = this.checkRecipients(recipients);
    const thresholdizer = new Thresholdizer(this.context, this.threshold);
    const polynomial = thresholdizer.generateShamirPolynomial(own.secret);
    const box = this.boxOf!();
    const entries: KeyShareEntry[] = [];
    for (const org of this.parties) {
      const share = thresholdizer.allocateShare(this.pointOf(org));
      thresholdizer.generateShare(polynomial, share);
      if (org === this.organisation) this.ownPoint = share;
      else
        entries.push({ organisation: org, commitment: new Uint8Array(), commitmentBinding: null, share: seal(share.serialize(), keys.get(org)!, reshareAad(this.jobId, this.organisation, org), box) });
    }
    polynomial.coefficients.forEach((c) => c.fill(0n));
    return entries;
  }

  /**
   * t-of-n: every other party's Shamir share for this party (each box authenticated by its sender's bound box key),
   * added to its own into σ_i, which replaces the additive share s_i as the key material this party keeps.
   */
  private reshared(parties: KeyShareEntry[], recipients: Recipient[]): Keys {
    const ownPoint = this.ownPoint;
    if (!ownPoint || this.shamir) throw ceremonyError(`the coordinator delivered Shamir shares to ${this.organisation} out of turn in job ${this.jobId}`);
    const keys = this.checkRecipients(recipients);
    const senders = parties.map((p) => p.organisation);
    const others = this.parties.filter((o) => o !== this.organisation);
    if ([...senders].sort().join('\n') !== [...others].sort().join('\n'))
      throw ceremonyError(`${this.organisation} received Shamir shares from [${senders.join(', ')}]; it needs one from each of [${others.join(', ')}] in job ${this.jobId}`);
    const thresholdizer = new Thresholdizer(this.context, this.threshold);
    const sigma = thresholdizer.allocateShare(ownPoint.point);
    thresholdizer.aggregateShares(sigma, ownPoint, sigma);
    const box = this.boxOf!();
    for (const p of parties) {
      let share: ShamirShare;
      try {
        share = ShamirShare.deserialize(this.context, openBox(p.share, box, reshareAad(this.jobId, p.organisation, this.organisation), keys.get(p.organisation)!));
      } catch (err) {
        throw ceremonyError(`the Shamir share from ${p.organisation} for ${this.organisation} in job ${this.jobId} is refused: ${(err as Error).message}`);
      }
      if (share.point !== ownPoint.point) throw ceremonyError(`the Shamir share from ${p.organisation} is for point ${share.point}, not ${this.organisation}'s ${ownPoint.point}`);
      thresholdizer.aggregateShares(sigma, share, sigma);
    }
    // s_i is P_i(0): from here on this party keeps σ_i only.
    ownPoint.poly.fill(0n);
    this.own?.secret.poly.fill(0n);
    this.ownPoint = undefined;
    this.shamir = sigma;
    this.setDecryption(undefined);
    return { publicKey: this.publicKey!, secretKey: sigma.serialize() };
  }

  private publicKey?: Uint8Array;

  /**
   * The ceremony was abandoned (restarted after a lost party): the secret share made for it is wiped, and any key
   * material made from it (the key share kept for decryption, t-of-n: the Shamir points).
   */
  forget(): void {
    this.own?.secret.poly.fill(0n);
    this.own = undefined;
    this.ownPoint?.poly.fill(0n);
    this.ownPoint = undefined;
    this.shamir?.poly.fill(0n);
    this.shamir = undefined;
    this.setDecryption(undefined);
    this.publicKey = undefined;
  }

  /** The party that decrypts with the whole key share (N-of-N), the one it replaces disposed (its SEAL copies of the share). */
  private setDecryption(party: DecryptionParty | undefined): void {
    this.decryption?.dispose();
    this.decryption = party;
  }

  /**
   * What puts the collective key in use at this party, as its record (reloaded after a restart) says: the decryption
   * shares it gave and the first sum it contributed to under the key. Either refuses a restart of the ceremony.
   */
  get keyInUse(): { sharesGiven: number; contributed?: string } {
    return { sharesGiven: this.issued.length, ...(this.firstContribution ? { contributed: this.firstContribution } : {}) };
  }

  /** After the ceremony, or a restart: decrypt with the stored secret share (t-of-n: the Shamir share once re-shared). */
  restore(keys: Keys): void {
    if (!keys.secretKey) throw new Error("a collective key's party needs its secret share");
    this.publicKey = keys.publicKey;
    // The share codec's kind byte ("FCTH", version, kind): 5 is a Shamir share.
    if (this.tOfN && keys.secretKey[5] === 5) {
      this.shamir = ShamirShare.deserialize(this.context, keys.secretKey);
      this.setDecryption(undefined);
      return;
    }
    this.setDecryption(this.vectors.party(SecretKeyShare.deserialize(this.context, keys.secretKey), this.issued));
  }

  /**
   * The record of shares given (and of the contributor set of each sum shared), with `set` for `sum` if given,
   * rewritten whole in the job folder. A failed write is FC_DECRYPTION_REFUSED: the shares it was to record are not
   * sent.
   */
  private keepRecord(issued: IssuedShareRecord[] = this.issued, sum?: { key: string; set: string }): void {
    const sets = new Map(this.decryptedSets);
    if (sum) sets.set(sum.key, sum.set);
    try {
      this.keep(issued, sets, this.firstContribution);
    } catch (err) {
      throw new FedcreditError(
        ErrorCode.DECRYPTION_REFUSED,
        `${this.organisation} could not record its decryption shares for job ${this.jobId} in its job folder (${err instanceof Error ? err.message : String(err)}), so it sends none`,
        "free space in the participant's state_dir or fix its permissions; the coordinator records the shares as missing",
      );
    }
  }

  private keep(issued: IssuedShareRecord[], sets: Map<string, string>, contributed: string | undefined): void {
    this.memory.keep?.({ issued, contributorSets: Object.fromEntries([...sets].map(([key, set]) => [key, set.split('\n')])), ...(contributed ? { contributed } : {}) });
  }

  /** The first sum this party contributed to under the key (its record's, reloaded after a restart). */
  private firstContribution?: string;

  /**
   * `use` with the party that makes this party's shares for `quorum` (t-of-n: λ_i·σ_i, a party made for the quorum
   * and disposed after; N-of-N: s_i), with every share it gave before.
   */
  private withDecryption<T>(quorum: readonly string[], use: (party: DecryptionParty) => T): T {
    if (!this.shamir) return use(this.decryption!);
    const combiner = new Combiner(this.context, this.threshold);
    const secret = combiner.generateAdditiveShare(
      this.shamir,
      quorum.map((o) => this.pointOf(o)),
    );
    const party = this.vectors.party(secret, this.issued, quorum);
    try {
      return use(party);
    } finally {
      party.dispose();
      // λ_i·σ_i is a secret too: wiped as this party's own share is, not left for the garbage collector.
      secret.poly.fill(0n);
    }
  }

  /**
   * Note a contribution about to be sent: the next aggregate this party decrypts must be of this sum. The first is
   * kept in the record before it leaves (the key is in use from then on: no restart of the ceremony); a failed write
   * sends no contribution.
   */
  contributed(purpose: SumPurpose, round: number): void {
    if (!this.firstContribution) {
      const first = `${purpose}/${round}`;
      try {
        this.keep(this.issued, this.decryptedSets, first);
      } catch (err) {
        throw new FedcreditError(
          ErrorCode.JOB_FAILED,
          `${this.organisation} could not record in its job folder that it contributes under the collective key of job ${this.jobId} (${err instanceof Error ? err.message : String(err)}), so it sends no contribution`,
          "free space in the participant's state_dir or fix its permissions",
        );
      }
      this.firstContribution = first;
    }
    this.contribution = { purpose, round };
  }

  /**
   * This party's decryption shares of an aggregate (already checked as a canonical vector of the right length): only
   * for the sum of its latest contribution, once, over every party of the job (N-of-N) or over at least t of them
   * with a quorum of exactly t contributors (t-of-n), and for one contributor set per round and purpose (so that a
   * round asked again over a smaller set, after a claimed dropout, cannot also be opened with this party's shares).
   * Under t-of-n the same aggregate may be asked once more with another quorum (a member of the first was lost
   * before its shares; see reopening). Undefined when this party is a contributor outside the quorum: it gives no
   * shares and opens the sum from the quorum's combined share.
   */
  decryptionShares(agg: AggregateReady, round: number): DecryptionShares | undefined {
    const c = this.contribution;
    const refuse = (why: string) =>
      new FedcreditError(
        ErrorCode.DECRYPTION_REFUSED,
        `${this.organisation} refuses to decrypt the ${agg.purpose} aggregate of round ${round}: ${why}`,
        "the coordinator asked for a decryption the protocol does not allow; the refusal is in this node's log. Tell the federation operator",
      );
    if (!this.decryption && !this.shamir) throw refuse('the collective key is not in place');
    if (this.tOfN && !this.shamir) throw refuse('the key shares were not re-shared for t-of-n');
    if (!c || c.purpose !== agg.purpose || c.round !== round) throw refuse('this node contributed to no such sum');
    if (c.sent && !this.tOfN) throw refuse('it already gave its shares for that sum');
    if (!agg.contributors.includes(this.organisation)) throw refuse('the aggregate does not name this node among its contributors');
    const stranger = agg.contributors.find((o) => !this.parties.includes(o));
    if (stranger || new Set(agg.contributors).size !== agg.contributors.length) throw refuse(`the contributors [${agg.contributors.join(', ')}] are not distinct parties of the job`);
    const quorum = agg.quorum ?? [];
    if (this.tOfN) {
      // The sum opens with any t contributors' shares; the coordinator names which, in canonical order.
      if (agg.contributors.length < this.threshold) throw refuse(`the sum is over ${agg.contributors.length} contributors; it opens only with the shares of ${this.threshold}`);
      const canonical = canonicalOrder(quorum).join('\n') === quorum.join('\n');
      if (quorum.length !== this.threshold || new Set(quorum).size !== quorum.length || !canonical || quorum.some((o) => !agg.contributors.includes(o)))
        throw refuse(`the quorum [${quorum.join(', ')}] is not ${this.threshold} distinct contributors of the sum in canonical order`);
    } else if (agg.contributors.length !== this.parties.length) {
      // The collective key is the sum of every party's share, so a sum opens only with every party's share: a sum
      // must be over every party (a coordinator cannot shrink it towards one party's update by leaving others out).
      throw refuse(`the sum is over ${agg.contributors.length} contributors; under a collective key it must be over all ${this.parties.length} participants`);
    }
    const opens = this.tOfN ? quorum : agg.contributors;
    const label = sumLabel(this.jobId, round, agg.purpose, agg.sum.blockSha256);
    const reopened = c.sent !== undefined;
    if (c.sent) this.checkReopening(c.sent, agg, quorum, refuse);
    if (!opens.includes(this.organisation)) {
      c.sent = { label, blocks: agg.sum.blocks, length: agg.sum.length, contributors: agg.contributors, quorum: opens, shares: [], reopened };
      return undefined;
    }
    const set = canonicalOrder(agg.contributors).join('\n');
    const key = `${agg.purpose}/${round}`;
    const before = this.decryptedSets.get(key);
    if (before !== undefined && before !== set)
      throw refuse(`it already gave decryption shares for the ${agg.purpose} sum of round ${round} over [${before.split('\n').join(', ')}], and gives them for one contributor set per round`);
    const { shares, issued } = this.withDecryption(opens, (party) => ({ shares: this.vectors.shares(party, agg.sum.blocks, label, agg.purpose), issued: party.issued() }));
    // Kept (with this sum's contributor set) before the shares leave this node, so a restart does not forget them.
    this.keepRecord(issued, { key, set });
    this.issued = issued;
    this.decryptedSets.set(key, set);
    c.sent = { label, blocks: agg.sum.blocks, length: agg.sum.length, contributors: agg.contributors, quorum: opens, shares, reopened };
    return { purpose: agg.purpose, parties: [{ organisation: this.organisation, shares, sharesSha256: new Uint8Array() }], combined: [] };
  }

  /**
   * t-of-n: the sum this party was already asked to open, asked again (the coordinator lost a member of its quorum
   * before that member's shares). Allowed once, for exactly the same aggregate (the same ciphertexts, the same
   * contributors: so nothing opens but the sum already meant to open) and another quorum. A party then gives at
   * most two shares per ciphertext, for two quorums (the DecryptionParty checks it again by digest).
   */
  private checkReopening(before: AskedToOpen, agg: AggregateReady, quorum: string[], refuse: (why: string) => FedcreditError): void {
    if (before.reopened) throw refuse(`it was already asked to open that sum with a second quorum [${before.quorum.join(', ')}]; it takes part in at most two quorums per sum`);
    const sameBlocks = before.blocks.length === agg.sum.blocks.length && before.blocks.every((b, i) => Buffer.from(b).equals(Buffer.from(agg.sum.blocks[i]!)));
    if (!sameBlocks || before.length !== agg.sum.length)
      throw refuse('it already gave its shares for that sum, and an aggregate asked again must be the same ciphertexts (only a lost quorum member lets the same aggregate be opened again)');
    if (canonicalOrder(before.contributors).join('\n') !== canonicalOrder(agg.contributors).join('\n'))
      throw refuse(`the sum was over [${before.contributors.join(', ')}]; asked again, it names [${agg.contributors.join(', ')}]`);
    if (quorum.join('\n') === before.quorum.join('\n')) throw refuse(`it already gave its shares for that sum to the quorum [${quorum.join(', ')}]`);
  }

  /**
   * The opened values from the combined shares the coordinator sent, once it names every party that opens the sum
   * (every contributor; t-of-n: the quorum) and this party's shares, if it gave any, by the digest of the shares it
   * sent (what the ledger records). `contributors` is who opened it, in canonical order: its first reports the values. The combined share itself
   * cannot be checked here (it needs the other parties' shares): a wrong one opens wrong values, which the
   * contributors' digest agreement catches if they differ and `audit replay` catches in any case (the recorded
   * values must be what the recorded shares open the aggregate to).
   */
  open(m: DecryptionShares): { values: Float64Array; contributors: string[] } {
    const sent = this.contribution?.sent;
    if (!sent || this.contribution!.purpose !== m.purpose)
      throw new FedcreditError(ErrorCode.PROTOCOL, `decryption shares for a ${m.purpose} sum this node gave no shares for`, 'the coordinator deviates from the protocol');
    const named = m.parties.map((p) => p.organisation);
    if ([...named].sort().join() !== [...sent.quorum].sort().join())
      throw new FedcreditError(
        ErrorCode.PROTOCOL,
        `decryption shares from [${named.join(', ')}] for a sum opened by [${sent.quorum.join(', ')}] (contributors [${sent.contributors.join(', ')}])`,
        'the coordinator deviates from the protocol',
      );
    const mine = m.parties.find((p) => p.organisation === this.organisation);
    if (mine && !Buffer.from(mine.sharesSha256).equals(Buffer.from(decryptionSharesDigest(this.organisation, sent.shares)))) {
      throw new FedcreditError(ErrorCode.PROTOCOL, `the coordinator names other decryption shares for ${this.organisation} than it sent`, 'the coordinator deviates from the protocol');
    }
    return { values: this.vectors.open(sent.blocks, sent.length, sent.label, m.combined), contributors: sent.quorum };
  }
}
