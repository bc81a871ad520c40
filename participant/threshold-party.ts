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
import { collectiveKeyShare, collectivePublicKey, collectiveTranscript, type CollectiveKeyShare } from '../src/he/key-ceremony.js';
import { ThresholdVectors, sumLabel } from '../src/he/threshold-vectors.js';
import type { ThresholdContext } from '../src/he/threshold/context.js';
import type { DecryptionParty } from '../src/he/threshold/decrypt.js';
import { SecretKeyShare } from '../src/he/threshold/secret-key.js';
import { sha256 } from '../src/bytes.js';
import { decryptionSharesDigest } from '../src/fl/secure-sum-round.js';
import type { AggregateReady, DecryptionShares, KeyShareEntry, SumPurpose, ThresholdCeremony } from '../src/wire/messages.js';

const ceremonyError = (message: string) =>
  new FedcreditError(ErrorCode.KEY_BINDING, message, 'the coordinator (or a party it relays) deviates from the key ceremony; this node takes no further part in the job. Tell the federation operator');

export class ThresholdParty {
  private own?: CollectiveKeyShare;
  private decryption?: DecryptionParty;
  readonly vectors: ThresholdVectors;
  readonly transcript: Uint8Array;
  /** This party's latest contribution: it decrypts only the aggregate of that sum, and only once. */
  private contribution?: { purpose: SumPurpose; round: number; sent?: { label: string; blocks: Uint8Array[]; length: number; contributors: string[]; shares: Uint8Array[] } };

  constructor(
    readonly jobId: string,
    readonly organisation: string,
    /** The job's participants, in the spec's order. */
    readonly parties: readonly string[],
    readonly context: ThresholdContext,
    readonly paramsFingerprint: Uint8Array,
    /** The job's binding as the node set it (read when used: it is set after the job opens); none with --insecure. */
    private readonly bindingOf: () => JobBinding | undefined,
  ) {
    this.vectors = new ThresholdVectors(context, parties.length);
    this.transcript = collectiveTranscript(jobId, parties, paramsFingerprint);
  }

  /** One step of the ceremony; on 'key', also the keys to keep (the collective public key, this party's secret share). */
  ceremony(m: ThresholdCeremony): { reply: ThresholdCeremony; keys?: Keys } {
    const reply = (parties: KeyShareEntry[], publicKeySha256: Uint8Array = new Uint8Array()): ThresholdCeremony => ({
      step: m.step,
      parties,
      paramsFingerprint: this.paramsFingerprint,
      publicKeySha256,
    });
    const entry = (fields: Partial<KeyShareEntry>): KeyShareEntry => ({ organisation: this.organisation, commitment: new Uint8Array(), commitmentBinding: null, share: new Uint8Array(), ...fields });
    if (m.step === 'commit') {
      if (this.own) throw ceremonyError(`the coordinator asked ${this.organisation} to commit twice in job ${this.jobId}`);
      this.own = collectiveKeyShare(this.context, this.transcript, this.organisation);
      const b = this.bindingOf();
      const commitmentBinding = b ? signBinding(b.signer, { purpose: 'ckks-key-share', jobId: this.jobId, specSha256: b.specSha256, organisation: this.organisation, key: this.own.commitment }) : null;
      return { reply: reply([entry({ commitment: this.own.commitment, commitmentBinding })]) };
    }
    const own = this.own;
    if (!own) throw ceremonyError(`the coordinator asked ${this.organisation} to ${m.step} before it committed in job ${this.jobId}`);
    this.checkParties(m.parties, own, m.step === 'key');
    if (m.step === 'reveal') return { reply: reply([entry({ commitment: own.commitment, share: own.share })]) };
    if (m.step !== 'key') throw ceremonyError(`unknown key ceremony step "${String(m.step)}"`);
    if (this.decryption) throw ceremonyError(`the coordinator sent the collective key twice in job ${this.jobId}`);
    const publicKey = collectivePublicKey(this.context, this.transcript, m.parties);
    const keys = { publicKey, secretKey: own.secret.serialize() };
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
      if (p.organisation === this.organisation) continue;
      verifyBinding(p.commitmentBinding, { purpose: 'ckks-key-share', jobId: this.jobId, specSha256: b.specSha256, organisation: p.organisation, key: p.commitment }, b.trust);
    }
  }

  /** After the ceremony, or a restart: decrypt with the stored secret share. */
  restore(keys: Keys): void {
    if (!keys.secretKey) throw new Error("a collective key's party needs its secret share");
    this.decryption = this.vectors.party(SecretKeyShare.deserialize(this.context, keys.secretKey));
  }

  /** Note a contribution sent: the next aggregate this party decrypts must be of this sum. */
  contributed(purpose: SumPurpose, round: number): void {
    this.contribution = { purpose, round };
  }

  /**
   * This party's decryption shares of an aggregate (already checked as a canonical vector of the right length): only
   * for the sum of its latest contribution, once, over every party of the job (itself included).
   */
  decryptionShares(agg: AggregateReady, round: number): DecryptionShares {
    const c = this.contribution;
    const refuse = (why: string) =>
      new FedcreditError(
        ErrorCode.DECRYPTION_REFUSED,
        `${this.organisation} refuses to decrypt the ${agg.purpose} aggregate of round ${round}: ${why}`,
        "the coordinator asked for a decryption the protocol does not allow; the refusal is in this node's log. Tell the federation operator",
      );
    if (!this.decryption) throw refuse('the collective key is not in place');
    if (!c || c.purpose !== agg.purpose || c.round !== round) throw refuse('this node contributed to no such sum');
    if (c.sent) throw refuse('it already gave its shares for that sum');
    if (!agg.contributors.includes(this.organisation)) throw refuse('the aggregate does not name this node among its contributors');
    const stranger = agg.contributors.find((o) => !this.parties.includes(o));
    if (stranger || new Set(agg.contributors).size !== agg.contributors.length) throw refuse(`the contributors [${agg.contributors.join(', ')}] are not distinct parties of the job`);
    // The collective key is the sum of every party's share, so a sum opens only with every party's share: a sum
    // must be over every party (a coordinator cannot shrink it towards one party's update by leaving others out).
    if (agg.contributors.length !== this.parties.length)
      throw refuse(`the sum is over ${agg.contributors.length} contributors; under a collective key it must be over all ${this.parties.length} participants`);
    const label = sumLabel(this.jobId, round, agg.purpose, agg.sum.blockSha256);
    const shares = this.vectors.shares(this.decryption, agg.sum.blocks, label, agg.purpose);
    c.sent = { label, blocks: agg.sum.blocks, length: agg.sum.length, contributors: agg.contributors, shares };
    return { purpose: agg.purpose, parties: [{ organisation: this.organisation, shares, sharesSha256: new Uint8Array() }], combined: [] };
  }

  /**
   * The opened values from the combined shares the coordinator sent, once it names every contributor and this
   * party's shares by the digest of the shares this party sent (what the ledger records). The combined share itself
   * cannot be checked here (it needs the other parties' shares): a wrong one opens wrong values, which the
   * contributors' digest agreement catches if they differ and `audit replay` catches in any case (the recorded
   * values must be what the recorded shares open the aggregate to).
   */
  open(m: DecryptionShares): { values: Float64Array; contributors: string[] } {
    const sent = this.contribution?.sent;
    if (!sent || this.contribution!.purpose !== m.purpose)
      throw new FedcreditError(ErrorCode.PROTOCOL, `decryption shares for a ${m.purpose} sum this node gave no shares for`, 'the coordinator deviates from the protocol');
    const named = m.parties.map((p) => p.organisation);
    if ([...named].sort().join() !== [...sent.contributors].sort().join())
      throw new FedcreditError(ErrorCode.PROTOCOL, `decryption shares from [${named.join(', ')}] for a sum over [${sent.contributors.join(', ')}]`, 'the coordinator deviates from the protocol');
    const mine = m.parties.find((p) => p.organisation === this.organisation)!;
    if (!Buffer.from(mine.sharesSha256).equals(Buffer.from(decryptionSharesDigest(this.organisation, sent.shares)))) {
      throw new FedcreditError(ErrorCode.PROTOCOL, `the coordinator names other decryption shares for ${this.organisation} than it sent`, 'the coordinator deviates from the protocol');
    }
    return { values: this.vectors.open(sent.blocks, sent.length, sent.label, m.combined), contributors: sent.contributors };
  }
}
