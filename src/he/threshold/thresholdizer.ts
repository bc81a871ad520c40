/**
 * t-out-of-n access to the collective key (Mouchet et al., PoPETs 2021, §V; Lattigo multiparty.Thresholdizer and
 * Combiner): Shamir re-sharing of the additive shares s_i over R_QP, so that any t of the n parties can decrypt
 * and a dropout does not end the job.
 *
 * Every party has a public point x_i ∈ {1, …, 2^20}, distinct, nonzero (below every prime, so invertible).
 *
 *   Share polynomial: party i samples P_i(Y) = s_i + c_{i,1}·Y + … + c_{i,t−1}·Y^(t−1), c_{i,k} uniform in R_QP.
 *   Share:            P_i(x_j), sent to party j over a private, authenticated channel (one per receiver).
 *   Aggregate:        party j adds what it received: σ_j = Σ_i P_i(x_j) = P(x_j) for P = Σ_i P_i, P(0) = s.
 *   Combine:          for a quorum T of t parties, λ_j = Π_{m ∈ T, m ≠ j} x_m / (x_m − x_j) (mod each prime)
 *                     and s = Σ_{j ∈ T} λ_j·σ_j: party j decrypts with the additive share λ_j·σ_j
 *                     (DecryptionParty, unchanged).
 *
 * Y's coefficients are polynomials and every operation is coefficient-wise in each prime, so this is Shamir's
 * scheme over the field Z_{q} in every NTT slot: any t − 1 points reveal nothing of s (perfect secrecy), t points
 * give it. The collective public and Galois keys are generated first from the additive s_i (all n parties present);
 * the re-sharing changes who can use s, not s. Unlike s_i, the σ_j and λ_j·σ_j are uniform, not small: they serve
 * decryption shares (where flooding hides them) and must not be used as RLWE secrets of new keys.
 */
import { randomBytes } from 'node:crypto';
import { decodeShare, encodeShare, ShareKind } from './codec.js';
import type { ThresholdContext } from './context.js';
import { addPoly, modInverse, mulScalarPoly, zeroPoly, type RingModulus } from './ring.js';
import { SecretKeyShare } from './secret-key.js';

export const MAX_SHAMIR_POINT = 2 ** 20;

function checkPoint(point: number): void {
  if (!Number.isInteger(point) || point < 1 || point > MAX_SHAMIR_POINT) throw new RangeError(`a Shamir point must be an integer from 1 to ${MAX_SHAMIR_POINT}, got ${point}`);
}

/** A uniform polynomial of R_QP (any domain: uniform is uniform in both). */
function uniformPoly(ring: RingModulus): BigUint64Array {
  const out = zeroPoly(ring);
  const n = ring.degree;
  ring.primes.forEach((q, j) => {
    const mask = (1n << BigInt(q.toString(2).length)) - 1n;
    let filled = 0;
    while (filled < n) {
      const words = new BigUint64Array(randomBytes(8 * (n - filled + 16)).buffer);
      for (let i = 0; i < words.length && filled < n; i++) {
        const v = words[i]! & mask;
        if (v < q) out[j * n + filled++] = v;
      }
    }
  });
  return out;
}

/** Party i's secret sharing polynomial P_i; never leaves the party. */
export class ShamirPolynomial {
  constructor(
    /** P_i's coefficients, constant term s_i first. */
    readonly coefficients: BigUint64Array[],
  ) {}
}

/** P_i(x_j), or the aggregate σ_j, for the party at `point`. */
export class ShamirShare {
  constructor(
    readonly context: ThresholdContext,
    readonly point: number,
    readonly poly: BigUint64Array,
  ) {}

  serialize(): Uint8Array {
    return encodeShare(ShareKind.shamir, { point: this.point }, [{ ring: this.context.keyRing, words: this.poly }]);
  }

  static deserialize(context: ThresholdContext, bytes: Uint8Array): ShamirShare {
    const { metadata, polys } = decodeShare(bytes, ShareKind.shamir, () => context.keyRing);
    const point = metadata.point;
    if (typeof point !== 'number') throw new RangeError('a Shamir share must name its point');
    checkPoint(point);
    if (polys.length !== 1) throw new RangeError('a Shamir share holds one polynomial');
    return new ShamirShare(context, point, polys[0]!.words);
  }
}

export class Thresholdizer {
  constructor(
    readonly context: ThresholdContext,
    readonly threshold: number,
  ) {
    if (!Number.isInteger(threshold) || threshold < 1) throw new RangeError(`the threshold must be a positive integer, got ${threshold}`);
  }

  /** P_i(Y) = s_i + c_1·Y + … + c_{t−1}·Y^(t−1). */
  generateShamirPolynomial(secret: SecretKeyShare): ShamirPolynomial {
    const coefficients: BigUint64Array[] = [secret.poly.slice()];
    for (let k = 1; k < this.threshold; k++) coefficients.push(uniformPoly(this.context.keyRing));
    return new ShamirPolynomial(coefficients);
  }

  allocateShare(point: number): ShamirShare {
    checkPoint(point);
    return new ShamirShare(this.context, point, zeroPoly(this.context.keyRing));
  }

  /** share.poly = P_i(share.point), by Horner's rule in each prime. */
  generateShare(polynomial: ShamirPolynomial, share: ShamirShare): void {
    const ring = this.context.keyRing;
    const x = ring.primes.map(() => BigInt(share.point));
    const acc = polynomial.coefficients[polynomial.coefficients.length - 1]!.slice();
    for (let k = polynomial.coefficients.length - 2; k >= 0; k--) {
      mulScalarPoly(ring, acc, x, acc);
      addPoly(ring, acc, polynomial.coefficients[k]!, acc);
    }
    share.poly.set(acc);
  }

  /** out = a + b, for shares at the same point. */
  aggregateShares(a: ShamirShare, b: ShamirShare, out: ShamirShare): void {
    if (a.point !== b.point || a.point !== out.point) throw new RangeError(`Shamir shares at points ${a.point} and ${b.point} cannot be added`);
    addPoly(this.context.keyRing, a.poly, b.poly, out.poly);
  }
}

/** Turns a party's aggregated Shamir share into its additive share for one quorum. */
export class Combiner {
  constructor(
    readonly context: ThresholdContext,
    readonly threshold: number,
  ) {}

  /** λ_j (one value per prime of the key level) for `point` in `quorum`. */
  lagrangeCoefficient(point: number, quorum: readonly number[]): bigint[] {
    if (quorum.length !== this.threshold) throw new RangeError(`a quorum has exactly ${this.threshold} parties, got ${quorum.length}`);
    if (new Set(quorum).size !== quorum.length) throw new RangeError('a quorum names a party twice');
    quorum.forEach(checkPoint);
    if (!quorum.includes(point)) throw new RangeError(`point ${point} is not in the quorum ${quorum.join(', ')}`);
    return this.context.keyRing.primes.map((q) => {
      let numerator = 1n;
      let denominator = 1n;
      for (const m of quorum) {
        if (m === point) continue;
        numerator = (numerator * BigInt(m)) % q;
        denominator = (denominator * ((BigInt(m) - BigInt(point) + q) % q)) % q;
      }
      return (numerator * modInverse(denominator, q)) % q;
    });
  }

  /** λ_j·σ_j: the secret this party decrypts with when exactly `quorum` takes part. */
  generateAdditiveShare(own: ShamirShare, quorum: readonly number[]): SecretKeyShare {
    const lambda = this.lagrangeCoefficient(own.point, quorum);
    return SecretKeyShare.fromPoly(this.context, mulScalarPoly(this.context.keyRing, own.poly, lambda, zeroPoly(this.context.keyRing)));
  }
}
