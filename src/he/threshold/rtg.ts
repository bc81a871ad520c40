/**
 * Collective Galois (rotation) key generation (RTG; Mouchet et al., PoPETs 2021, §IV-D; Lattigo
 * multiparty.GaloisKeyGenProtocol), in the key-switching-key layout of SEAL 4.1.
 *
 * SEAL's key for Galois element g (KeyGenerator::generate_one_kswitch_key) switches from s(X^g) to s. It is one
 * ciphertext per data prime q_j (j < L), each at the key level Q·P (P the special prime):
 *
 *   c0_j = −a_j·s + e_j + [P]_{q_j}·[s(X^g)]_{q_j},   c1_j = a_j,
 *
 * where the last term is added to the RNS component of q_j only (zero in every other prime, and in P). Every term
 * is linear in s, so with s = Σ_i s_i (and s(X^g) = Σ_i s_i(X^g)) the collective key is a sum of shares:
 *
 *   CRS:       a_j uniform at the key level (label "rtg/<g>/<j>").
 *   Share:     h_{i,j} = −a_j·s_i + e_{i,j} + [P]_{q_j}·[s_i(X^g)]_{q_j}.
 *   Aggregate: Σ_i h_{i,j} = −a_j·s + e_j + [P]_{q_j}·[s(X^g)]_{q_j},  e_j = Σ_i e_{i,j}.
 *   Finish:    (Σ_i h_{i,j}, a_j) for every j: SEAL GaloisKeys, which Evaluator.rotateVector takes as is.
 *
 * The share comes from SEAL: a KeyGenerator built on s_i makes its own Galois key (c0'_j = −a'_j·s_i + e_{i,j} +
 * P·s_i(X^g), a'_j) with fresh a'_j and e_{i,j}; then h_{i,j} = c0'_j + (a'_j − a_j)·s_i, slot by slot in the NTT
 * domain. The key-switching noise of a rotation then grows with e_j (σ ≈ 3.2·√n) and s's larger coefficients.
 */
import type { GaloisKeys } from 'node-seal/implementation/galois-keys.js';
import { decodeShare, encodeShare, ShareKind } from './codec.js';
import type { ThresholdContext } from './context.js';
import type { CommonReferenceString } from './crs.js';
import { galoisElementForStep } from '../packing.js';
import { addPoly, mulPoly, subPoly, zeroPoly } from './ring.js';
import type { SecretKeyShare } from './secret-key.js';
import { readGaloisKeys, writeGaloisKeys, type SealCiphertextData } from '../seal-format.js';

export const rtgLabel = (galoisElement: number, prime: number): string => `rtg/${galoisElement}/${prime}`;

/** One party's (or an aggregate's) share of the Galois key for one element: one key-level polynomial per data prime. */
export class GaloisKeyShare {
  constructor(
    readonly context: ThresholdContext,
    readonly galoisElement: number,
    readonly polys: BigUint64Array[],
  ) {}

  serialize(): Uint8Array {
    return encodeShare(
      ShareKind.galoisKey,
      { galoisElement: this.galoisElement },
      this.polys.map((words) => ({ ring: this.context.keyRing, words })),
    );
  }

  static deserialize(context: ThresholdContext, bytes: Uint8Array): GaloisKeyShare {
    const { metadata, polys } = decodeShare(bytes, ShareKind.galoisKey, () => context.keyRing);
    const element = metadata.galoisElement;
    if (typeof element !== 'number' || !Number.isInteger(element) || element % 2 !== 1 || element >= 2 * context.degree)
      throw new RangeError(`a Galois key share names an invalid Galois element ${String(element)}`);
    if (polys.length !== context.dataPrimeCount) throw new RangeError(`a Galois key share holds ${polys.length} polynomials, ${context.dataPrimeCount} expected (one per data prime)`);
    return new GaloisKeyShare(
      context,
      element,
      polys.map((p) => p.words),
    );
  }
}

export class GaloisKeyGenProtocol {
  constructor(readonly context: ThresholdContext) {}

  allocateShare(galoisElement: number): GaloisKeyShare {
    return new GaloisKeyShare(
      this.context,
      galoisElement,
      Array.from({ length: this.context.dataPrimeCount }, () => zeroPoly(this.context.keyRing)),
    );
  }

  /** SEAL's Galois element for a rotation by `step` slots (rotateVector's convention). */
  galoisElement(step: number): number {
    return galoisElementForStep(this.context.degree, step);
  }

  /**
   * The party's shares for the rotations by `steps` (one SEAL key generation for all of them), one share per
   * Galois element, in the order of `steps`.
   */
  generateShares(secret: SecretKeyShare, steps: readonly number[], crs: CommonReferenceString): GaloisKeyShare[] {
    const elements = steps.map((s) => this.galoisElement(s));
    if (new Set(elements).size !== elements.length) throw new RangeError(`rotation steps ${steps.join(', ')} repeat a Galois element`);
    const own = secret.withKeyGenerator((keygen) => {
      const keys = keygen.createGaloisKeys(Int32Array.from(steps));
      try {
        return readGaloisKeys(keys.saveArray(this.context.seal.ComprModeType.none), 'SEAL Galois keys');
      } finally {
        keys.delete();
      }
    });
    const ring = this.context.keyRing;
    return elements.map((g) => {
      const seal = own.keys.get(g);
      if (!seal || seal.length !== this.context.dataPrimeCount) throw new Error(`SEAL made no key for Galois element ${g}`);
      const share = this.allocateShare(g);
      seal.forEach((kswitch, j) => {
        const [c0, aPrime] = kswitch.polys as [BigUint64Array, BigUint64Array];
        subPoly(ring, aPrime, this.crsPolynomial(crs, g, j), aPrime);
        mulPoly(ring, aPrime, secret.poly, aPrime);
        addPoly(ring, c0, aPrime, share.polys[j]!);
      });
      return share;
    });
  }

  /** One share into `share` (for share.galoisElement). */
  generateShare(secret: SecretKeyShare, crs: CommonReferenceString, share: GaloisKeyShare): void {
    const step = this.stepOf(share.galoisElement);
    const [made] = this.generateShares(secret, [step], crs);
    made!.polys.forEach((p, j) => share.polys[j]!.set(p));
  }

  aggregateShares(a: GaloisKeyShare, b: GaloisKeyShare, out: GaloisKeyShare): void {
    if (a.galoisElement !== b.galoisElement || a.galoisElement !== out.galoisElement) throw new RangeError(`Galois key shares for elements ${a.galoisElement} and ${b.galoisElement} cannot be added`);
    a.polys.forEach((p, j) => addPoly(this.context.keyRing, p, b.polys[j]!, out.polys[j]!));
  }

  /** The collective Galois keys for the aggregated shares, as SEAL GaloisKeys bytes (compression none), checked by loading them into SEAL. */
  generateGaloisKeys(aggregates: readonly GaloisKeyShare[], crs: CommonReferenceString): Uint8Array {
    const ring = this.context.keyRing;
    const keys = new Map<number, SealCiphertextData[]>();
    for (const share of aggregates) {
      keys.set(
        share.galoisElement,
        share.polys.map((c0, j) => ({
          parmsId: this.context.keyParmsId,
          isNttForm: true,
          degree: ring.degree,
          primeCount: ring.primes.length,
          scale: 1,
          polys: [c0, this.crsPolynomial(crs, share.galoisElement, j)],
        })),
      );
    }
    const bytes = writeGaloisKeys({ parmsId: this.context.keyParmsId, keys, slots: ring.degree });
    let loaded: GaloisKeys | undefined;
    try {
      loaded = this.context.seal.GaloisKeys();
      loaded.loadArray(this.context.context, bytes);
    } finally {
      loaded?.delete();
    }
    return bytes;
  }

  private crsPolynomial(crs: CommonReferenceString, galoisElement: number, prime: number): BigUint64Array {
    return crs.polynomial(this.context.keyRing, rtgLabel(galoisElement, prime));
  }

  /** The rotation step whose Galois element is g (the inverse of galoisElement over the slot rotations). */
  private stepOf(galoisElement: number): number {
    const slots = this.context.degree / 2;
    let element = 1;
    for (let step = 0; step < slots; step++) {
      if (element === galoisElement && step > 0) return step;
      element = (element * 3) % (2 * this.context.degree);
    }
    throw new RangeError(`Galois element ${galoisElement} is not a slot rotation`);
  }
}
