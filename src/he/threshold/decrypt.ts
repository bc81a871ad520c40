/**
 * Collective decryption with noise flooding (Mouchet et al., PoPETs 2021, §IV-E: the key-switching protocol to the
 * zero key; Lattigo multiparty.KeySwitchProtocol with s_out = 0; OpenFHE's MultipartyDecryptLead/Main with
 * NOISE_FLOODING_MULTIPARTY).
 *
 * A CKKS ciphertext (c0, c1) at level ℓ under s = Σ_i s_i decrypts to c0 + c1·s = Δ·m + e_ct (mod Q_ℓ).
 *
 *   Share:     h_i = c1·s_i + e_flood,i  (mod Q_ℓ),  e_flood,i a rounded normal of standard deviation σ_f.
 *   Aggregate: h = Σ_i h_i = c1·s + Σ_i e_flood,i.
 *   Finish:    c0 + h = Δ·m + e_ct + Σ_i e_flood,i, decoded by SEAL's CKKSEncoder.
 *
 * Why flood: c0 + h reveals e_ct to whoever sees every share, and e_ct depends on the secret key (the encryption
 * noise u·e + e1 + e2·s, key-switching noise of rotations). Each honest party's e_flood,i must hide e_ct on its
 * own, because all other parties may be corrupt. Between h_i and h_i − e_ct (what a simulator knowing only the
 * result could produce) the statistical distance is at most ‖e_ct‖₂ / (2σ_f) (Pinsker's inequality on the
 * Kullback–Leibler divergence ‖e_ct‖₂² / (2σ_f²) of two normals with the same σ_f). With ‖e_ct‖_∞ ≤ 2^b,
 * ‖e_ct‖₂ ≤ √N·2^b, so
 *
 *   σ_f = 2^(λ−1) · √N · 2^b   gives statistical distance ≤ 2^−λ per share.
 *
 * The price is precision: every decoded slot carries Σ_i e_flood,i through the canonical embedding, an error of
 * standard deviation √n · σ_f · √(N/2) / Δ (floodingSlotError). docs/threshold-ckks.md tabulates it for the
 * project's scales. The flooding is sized per class of ciphertext (DecryptionRule.noiseBits), which the protocol
 * that makes the ciphertext must bound.
 *
 * Rules a deviating requester cannot break silently: a party gives at most one share per ciphertext (by the
 * SHA-256 of its canonical bytes) and at most one per purpose label (e.g. "job/round 7/aggregate"), so a
 * coordinator can neither replay a ciphertext under a new label nor slip a second ciphertext (one participant's
 * update, a re-randomisation of the aggregate) under a label already used; and it decrypts only ciphertexts of a
 * class its caller allows (level, scale). Every share names the ciphertext digest and purpose it is for.
 *
 * One exception, for t-of-n (a party whose secret is its additive share λ_i·σ_i for a named quorum): a ciphertext
 * it decrypted for one quorum it decrypts once more, under the same label, for another quorum, so that a sum whose
 * quorum lost a member before its shares can still be opened. That opens nothing new (the same ciphertext, hence
 * the same plaintext) and gives at most two flooded samples per ciphertext: the Kullback–Leibler divergence doubles,
 * so the statistical distance is at most √2·2^−λ (docs/threshold-ckks.md, "A quorum member lost before its shares").
 */
import type { PlainText } from 'node-seal/implementation/plain-text.js';
import { ErrorCode, FedcreditError } from '../../errors.js';
import { decodeShare, encodeShare, ShareKind } from './codec.js';
import type { CanonicalCiphertext, PolyTransform, ThresholdContext } from './context.js';
import { addPoly, floodingFits, prefixPoly, sampleFlooding, zeroPoly, type RingModulus } from './ring.js';
import type { SecretKeyShare } from './secret-key.js';

/** Default statistical security of the flooding: 2^−40 statistical distance per share. */
export const DEFAULT_STATISTICAL_SECURITY = 40;

/** A class of ciphertext a party agrees to decrypt, with the bound on its noise that the flooding must hide. */
export interface DecryptionRule {
  /** e.g. "horizontal-aggregate"; named in refusals. */
  name: string;
  /** The data level the ciphertext must be at (0 = fresh). */
  level: number;
  /** The scale it must have (relative tolerance 1e-9). */
  scale: number;
  /** b: log2 of a bound on ‖e_ct‖_∞, the ciphertext's noise (before flooding) in any coefficient. */
  noiseBits: number;
}

/** σ_f = 2^(λ−1)·√N·2^b: see the file comment. */
export function floodingSigma(degree: number, noiseBits: number, statisticalSecurity = DEFAULT_STATISTICAL_SECURITY): number {
  return 2 ** (statisticalSecurity - 1) * Math.sqrt(degree) * 2 ** noiseBits;
}

/**
 * A bound (bits) on ‖e_ct‖_∞ for a sum of `ciphertexts` fresh SEAL public-key encryptions under a key of `parties`
 * shares. SEAL encrypts at the key level and divides by the special prime P, which leaves the rounding r0 + r1·s
 * (r0, r1 uniform in [−1/2, 1/2], variance 1/12 per coefficient; s = Σ s_i has per-coefficient variance 2n/3) plus
 * the encoding's rounding: variance N·n/18 + 1/6 per coefficient and per ciphertext (the RLWE noise e·u + e1 + e2·s
 * is divided by P ≈ 2^60 and vanishes). The bound is 8 standard deviations of the sum (a coefficient exceeds it
 * with probability about 10^−15). Measured: 3 parties, 3 ciphertexts, max 2^8.0 (bound 2^9.1); 10 and 10, max 2^9.7
 * (bound 2^10.7).
 */
export function freshSumNoiseBits(degree: number, parties: number, ciphertexts: number): number {
  return Math.log2(8 * Math.sqrt(ciphertexts * ((degree * parties) / 18 + 1 / 6)));
}

/** Standard deviation of the error the flooding of `parties` shares adds to each decoded slot at scale Δ. */
export function floodingSlotError(degree: number, sigma: number, parties: number, scale: number): number {
  return (Math.sqrt(parties) * sigma * Math.sqrt(degree / 2)) / scale;
}

/** Flooding noise is clipped at this many standard deviations (a tail of probability below 2^−280). */
const FLOOD_CLIP = 20;

function refused(message: string, hint: string): FedcreditError {
  return new FedcreditError(ErrorCode.DECRYPTION_REFUSED, message, hint);
}

export class DecryptionShare {
  constructor(
    readonly context: ThresholdContext,
    /** SHA-256 (hex) of the canonical ciphertext bytes the share is for. */
    readonly ciphertextDigest: string,
    readonly purpose: string,
    readonly level: number,
    /** h_i (or a sum of them) in NTT form over the level's primes. */
    readonly poly: BigUint64Array,
  ) {}

  get ring(): RingModulus {
    return this.context.levels[this.level]!.ring;
  }

  serialize(): Uint8Array {
    return encodeShare(ShareKind.decryption, { ciphertextDigest: this.ciphertextDigest, purpose: this.purpose, level: this.level }, [{ ring: this.ring, words: this.poly }]);
  }

  static deserialize(context: ThresholdContext, bytes: Uint8Array): DecryptionShare {
    let level = -1;
    const { metadata, polys } = decodeShare(bytes, ShareKind.decryption, (_, meta) => {
      level = typeof meta.level === 'number' && Number.isInteger(meta.level) ? meta.level : -1;
      const info = context.levels[level];
      if (!info) throw new RangeError(`a decryption share names level ${String(meta.level)}, not a data level of the job`);
      return info.ring;
    });
    const { ciphertextDigest, purpose } = metadata;
    if (typeof ciphertextDigest !== 'string' || !/^[0-9a-f]{64}$/.test(ciphertextDigest)) throw new RangeError('a decryption share must name the SHA-256 of its ciphertext');
    if (typeof purpose !== 'string') throw new RangeError('a decryption share must name its purpose');
    if (polys.length !== 1) throw new RangeError('a decryption share holds one polynomial');
    return new DecryptionShare(context, ciphertextDigest, purpose, level, polys[0]!.words);
  }
}

/** What a party remembers of each share it gave (to be kept with the job's state, so a restart does not forget). */
export interface IssuedShareRecord {
  ciphertextDigest: string;
  purpose: string;
  rule: string;
  /** t-of-n: the quorum the share was for (its members, in canonical order). */
  quorum?: string[];
}

/**
 * A shareholder's record of the decryption shares it gave, as its job folder keeps it (collective-shares-given.json),
 * so that a restart does not make it forget them.
 */
export interface SharesGiven {
  issued: IssuedShareRecord[];
  /**
   * A horizontal job's: the contributor set (canonical order) of each sum (`purpose/round`) it gave shares for, one
   * set per sum (participant/threshold-party.ts).
   */
  contributorSets?: Record<string, string[]>;
  /**
   * A horizontal job's: the first sum it contributed to under the collective key (`purpose/round`), kept before that
   * contribution left. From then on the key is in use and the party refuses to restart the key ceremony.
   */
  contributed?: string;
}

/**
 * What a shareholder remembers across a restart of its process: what it gave before (`given`), and where it keeps
 * the whole record each time it gives more (`keep`, called before the shares leave it; a throw, such as a failed
 * write, means no share). Without it the memory lasts as long as the process.
 */
export interface ShareholderMemory {
  given?: SharesGiven;
  keep?: (given: SharesGiven) => void;
}

/** At most this many shares per ciphertext: one, and under t-of-n one more for another quorum. */
const MAX_SHARES_PER_CIPHERTEXT = 2;

export interface DecryptionPartyOptions {
  /** The ciphertext classes this party decrypts. */
  rules: readonly DecryptionRule[];
  /** λ: statistical distance 2^−λ per share (default 40). */
  statisticalSecurity?: number;
  /** Shares given before (e.g. loaded after a restart). */
  issued?: Iterable<IssuedShareRecord>;
  /**
   * Called with each new record before its share is made; a throw (e.g. the record could not be persisted) means
   * no share. The protocol integration writes it to the ledger here.
   */
  onIssue?: (record: IssuedShareRecord) => void;
  /**
   * t-of-n: the quorum whose additive share (λ_i·σ_i) the secret is. A ciphertext decrypted for one quorum may then
   * be decrypted once more, under the same label, for another (see the file comment).
   */
  quorum?: readonly string[];
}

/**
 * One party's side of collective decryption: its secret share, its rules and its memory of shares given. It keeps a
 * SEAL copy of its share at each level it decrypts at: dispose() wipes and deletes them.
 */
export class DecryptionParty {
  private readonly byDigest = new Map<string, IssuedShareRecord[]>();
  private readonly byPurpose = new Map<string, IssuedShareRecord>();
  private readonly rules: Map<string, DecryptionRule>;
  readonly statisticalSecurity: number;
  /** s_i at each level asked so far, loaded into SEAL on first use (NTT form). */
  private readonly secretAt = new Map<number, PlainText>();
  private disposed = false;

  constructor(
    readonly context: ThresholdContext,
    private readonly secret: SecretKeyShare,
    private readonly options: DecryptionPartyOptions,
  ) {
    this.statisticalSecurity = options.statisticalSecurity ?? DEFAULT_STATISTICAL_SECURITY;
    if (!(this.statisticalSecurity >= 1 && this.statisticalSecurity <= 128)) throw new RangeError(`statistical security must be 1 to 128 bits, got ${this.statisticalSecurity}`);
    this.rules = new Map();
    for (const rule of options.rules) {
      const info = context.levels[rule.level];
      if (!info) throw new RangeError(`decryption rule ${rule.name} names level ${rule.level}; the chain has levels 0 to ${context.levels.length - 1}`);
      const sigma = floodingSigma(context.degree, rule.noiseBits, this.statisticalSecurity);
      const modulusBits = info.ring.primes.reduce((bits, q) => bits + Math.log2(Number(q)), 0);
      // The flooding of up to 2^10 parties, clipped at FLOOD_CLIP σ each, must stay below Q/4 or it wraps around.
      if (Math.log2(sigma * FLOOD_CLIP) + 10 >= modulusBits - 2) {
        throw new RangeError(`decryption rule ${rule.name}: flooding of σ = 2^${Math.log2(sigma).toFixed(1)} does not fit the ${modulusBits.toFixed(0)}-bit modulus of level ${rule.level}`);
      }
      // The sampler's digits must stay below every prime (sampleFlooding): a grid cell of at most the smallest prime.
      if (!floodingFits(info.ring, sigma, FLOOD_CLIP * sigma)) {
        throw new RangeError(`decryption rule ${rule.name}: flooding of σ = 2^${Math.log2(sigma).toFixed(1)} needs primes of more bits than level ${rule.level} has`);
      }
      this.rules.set(rule.name, rule);
    }
    for (const record of options.issued ?? []) this.remember(record);
  }

  /** The records of every share this party gave. */
  issued(): IssuedShareRecord[] {
    return [...this.byDigest.values()].flat();
  }

  /** σ_f for a rule (see floodingSigma). */
  floodingSigma(ruleName: string): number {
    const rule = this.rules.get(ruleName);
    if (!rule) throw new RangeError(`no decryption rule named ${ruleName}`);
    return floodingSigma(this.context.degree, rule.noiseBits, this.statisticalSecurity);
  }

  /**
   * h_i = c1·s_i + e_flood for the ciphertext (T(c1·s_i) + e_flood with a transform T, for which the combiner
   * decodes T(c0) + Σ h_i = T(c0 + c1·s)), if the rules allow: refuses (FC_DECRYPTION_REFUSED) a ciphertext of
   * no allowed class, one already decrypted (unless for another quorum, once: see reopening), and a purpose already
   * used for another ciphertext.
   */
  generateShare(ciphertext: Uint8Array | CanonicalCiphertext, purpose: string, ruleName: string, transform?: PolyTransform): DecryptionShare {
    if (this.disposed) throw new Error('this DecryptionParty is disposed: its secret share is deleted');
    const rule = this.rules.get(ruleName);
    if (!rule)
      throw refused(
        `no decryption of class "${ruleName}" is allowed in this job (allowed: ${[...this.rules.keys()].join(', ') || 'none'})`,
        'the requester asked for a decryption the job does not define; report it',
      );
    if (purpose.length === 0 || purpose.length > 512)
      throw refused('a decryption request must name its purpose (1 to 512 characters)', 'the requester must label each decryption with its job, round and what it is');
    const ct = ciphertext instanceof Uint8Array ? this.context.canonicalCiphertext(ciphertext, `the ciphertext to decrypt for "${purpose}"`) : ciphertext;
    this.checkRule(ct, rule, purpose);
    const earlier = this.byDigest.get(ct.digest) ?? [];
    const why = earlier.length > 0 ? this.reopening(earlier, purpose) : undefined;
    if (why !== undefined)
      throw refused(
        `this ciphertext (SHA-256 ${ct.digest.slice(0, 16)}…) was already decrypted for "${earlier[0]!.purpose}"${why}; a party gives one decryption share per ciphertext (under t-of-n one more, under the same purpose, for another quorum)`,
        'a second share for one ciphertext is refused: the requester deviates from the protocol',
      );
    const used = this.byPurpose.get(purpose);
    if (used && used.ciphertextDigest !== ct.digest)
      throw refused(
        `a decryption share for "${purpose}" was already given (for ciphertext ${used.ciphertextDigest.slice(0, 16)}…); a party gives one decryption share per purpose`,
        'a second ciphertext under a purpose already used is refused: the requester deviates from the protocol',
      );
    const quorum = this.options.quorum;
    const record: IssuedShareRecord = { ciphertextDigest: ct.digest, purpose, rule: rule.name, ...(quorum ? { quorum: [...quorum] } : {}) };
    this.options.onIssue?.(record);
    this.remember(record);
    return this.shareFor(ct, purpose, floodingSigma(this.context.degree, rule.noiseBits, this.statisticalSecurity), transform);
  }

  private checkRule(ct: CanonicalCiphertext, rule: DecryptionRule, purpose: string): void {
    if (ct.data.polys.length !== 2)
      throw refused(`the ciphertext for "${purpose}" has ${ct.data.polys.length} polynomials; only relinearised ciphertexts (2) are decrypted`, 'relinearise before asking for a decryption');
    if (ct.level !== rule.level)
      throw refused(
        `the ciphertext for "${purpose}" is at level ${ct.level}, class "${rule.name}" is decrypted only at level ${rule.level}`,
        'the requester sent a ciphertext of another kind than the one it names; report it',
      );
    if (!(Math.abs(ct.scale / rule.scale - 1) < 1e-9))
      throw refused(
        `the ciphertext for "${purpose}" has scale 2^${Math.log2(ct.scale).toFixed(2)}, class "${rule.name}" is decrypted only at 2^${Math.log2(rule.scale).toFixed(2)}`,
        'the requester sent a ciphertext of another kind than the one it names; report it',
      );
  }

  /**
   * Why a second share of a ciphertext already decrypted (`earlier`) is refused, or undefined when it is the one
   * reopening allowed: this party's secret is for a quorum, the one earlier share was for another quorum, under the
   * same purpose.
   */
  private reopening(earlier: IssuedShareRecord[], purpose: string): string | undefined {
    const quorum = this.options.quorum?.join('\n');
    const first = earlier[0]!;
    if (earlier.length >= MAX_SHARES_PER_CIPHERTEXT) return ` and for a second quorum`;
    if (quorum === undefined || first.quorum === undefined) return '';
    if (first.purpose !== purpose) return ` (not "${purpose}")`;
    if (first.quorum.join('\n') === quorum) return ` for this quorum [${first.quorum.join(', ')}]`;
    return undefined;
  }

  private remember(record: IssuedShareRecord): void {
    this.byDigest.set(record.ciphertextDigest, [...(this.byDigest.get(record.ciphertextDigest) ?? []), record]);
    this.byPurpose.set(record.purpose, record);
  }

  private shareFor(ct: CanonicalCiphertext, purpose: string, sigma: number, transform?: PolyTransform): DecryptionShare {
    const ring = this.context.levels[ct.level]!.ring;
    const h = this.context.floodedProduct(ct, this.secretPlaintext(ct.level), sampleFlooding(ring, sigma, FLOOD_CLIP * sigma), transform);
    return new DecryptionShare(this.context, ct.digest, purpose, ct.level, h);
  }

  private secretPlaintext(level: number): PlainText {
    let plain = this.secretAt.get(level);
    if (!plain) {
      const primes = this.context.levels[level]!.ring.primes.length;
      plain = this.context.nttPlaintext(level, prefixPoly(this.context.keyRing, this.secret.poly, primes));
      this.secretAt.set(level, plain);
    }
    return plain;
  }

  /** Wipe and delete the SEAL copies of the secret share; the party makes no share after this. */
  dispose(): void {
    this.disposed = true;
    for (const plain of this.secretAt.values()) {
      plain.setZero();
      plain.delete();
    }
    this.secretAt.clear();
  }
}

/**
 * FC_PROTOCOL naming `from` unless `share` is for the ciphertext `ct` (its digest and level) under `purpose`: what a
 * combiner checks of every share it is sent.
 */
export function requireShareFor(from: string, share: DecryptionShare, ct: { digest: string; level: number }, purpose: string): void {
  if (share.ciphertextDigest !== ct.digest || share.purpose !== purpose || share.level !== ct.level)
    throw new FedcreditError(
      ErrorCode.PROTOCOL,
      `${from}'s decryption share is not for this request: it is for "${share.purpose}" ${share.ciphertextDigest.slice(0, 16)}… at level ${share.level}, not "${purpose}" ${ct.digest.slice(0, 16)}… at level ${ct.level}`,
      `${from} answered another request than the one it was sent; the share is refused`,
    );
}

/** The combiner's side: adds the shares and decodes c0 + Σ h_i. Holds no secret. */
export class DecryptionProtocol {
  constructor(readonly context: ThresholdContext) {}

  allocateShare(ciphertextDigest: string, purpose: string, level: number): DecryptionShare {
    const info = this.context.levels[level];
    if (!info) throw new RangeError(`level ${level} is not a data level`);
    return new DecryptionShare(this.context, ciphertextDigest, purpose, level, zeroPoly(info.ring));
  }

  /** out = a + b, for shares of the same ciphertext and purpose. */
  aggregateShares(a: DecryptionShare, b: DecryptionShare, out: DecryptionShare): void {
    for (const s of [b, out]) {
      if (s.ciphertextDigest !== a.ciphertextDigest || s.purpose !== a.purpose || s.level !== a.level) {
        throw new FedcreditError(
          ErrorCode.PROTOCOL,
          `decryption shares for different ciphertexts or purposes cannot be combined ("${a.purpose}" ${a.ciphertextDigest.slice(0, 16)}… vs "${s.purpose}" ${s.ciphertextDigest.slice(0, 16)}…)`,
          'a party answered another request than the one it was sent; the share is refused',
        );
      }
    }
    addPoly(a.ring, a.poly, b.poly, out.poly);
  }

  /**
   * Decode c0 + Σ h_i (T(c0) + Σ h_i for shares made with a transform T) from the shares asked for `purpose`, each
   * under the name of whoever sent it (every party's share, or their aggregate): the slots of the plaintext
   * (slotCount values). SEAL adds the shares (ThresholdContext.decodeSum). A share for another ciphertext, purpose or
   * level is refused (requireShareFor). A CanonicalCiphertext passed in is consumed (T is applied to its c0 in place).
   */
  finalize(ciphertext: Uint8Array | CanonicalCiphertext, purpose: string, shares: ReadonlyMap<string, DecryptionShare>, transform?: PolyTransform): Float64Array {
    if (shares.size === 0) throw new RangeError('finalize needs at least one decryption share');
    const ct = ciphertext instanceof Uint8Array ? this.context.canonicalCiphertext(ciphertext) : ciphertext;
    for (const [from, share] of shares) requireShareFor(from, share, ct, purpose);
    const c0 = ct.data.polys[0]!;
    transform?.(this.context.levels[ct.level]!.ring, c0);
    return this.context.decodeSum(ct.level, ct.scale, [c0, ...[...shares.values()].map((share) => share.poly)]);
  }
}
