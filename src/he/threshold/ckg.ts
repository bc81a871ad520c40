/**
 * Collective public-key generation (CKG; Mouchet et al., PoPETs 2021, §IV-B; Lattigo multiparty.PublicKeyGenProtocol).
 *
 *   CRS:       a ∈ R_QP uniform, from the common reference string (label "ckg").
 *   Share:     p0_i = −a·s_i + e_i,  e_i ← SEAL's error distribution (σ = 3.2, |e| ≤ 19).
 *   Aggregate: p0 = Σ_i p0_i = −a·s + e with s = Σ s_i, e = Σ e_i.
 *   Finish:    pk = (p0, a): a SEAL PublicKey (key level, NTT form), which SEAL's Encryptor takes as is.
 *
 * Encryption under pk is ordinary SEAL public-key encryption; its noise grows by the √n of e = Σ e_i (σ ≈ 3.2·√n)
 * and by s having coefficients in [−n, n] (docs/threshold-ckks.md, "Noise").
 *
 * The share is computed without any transform in TypeScript: SEAL's KeyGenerator, built on s_i, makes a public key
 * (p0' = −a'·s_i + e_i, a') with its own fresh a' and e_i; then p0_i = p0' + (a' − a)·s_i, slot by slot in the NTT
 * domain. e_i is SEAL's own sample and a' never leaves the party.
 */
import type { PublicKey } from 'node-seal/implementation/public-key.js';
import { decodeShare, encodeShare, ShareKind } from './codec.js';
import type { ThresholdContext } from './context.js';
import type { CommonReferenceString } from './crs.js';
import { addPoly, mulPoly, subPoly, zeroPoly } from './ring.js';
import type { SecretKeyShare } from './secret-key.js';
import { readCiphertext, writeCiphertext } from '../seal-format.js';

export const CKG_LABEL = 'ckg';

export class PublicKeyShare {
  constructor(
    readonly context: ThresholdContext,
    /** p0_i (or a sum of them) in NTT form at the key level. */
    readonly poly: BigUint64Array,
  ) {}

  serialize(): Uint8Array {
    return encodeShare(ShareKind.publicKey, {}, [{ ring: this.context.keyRing, words: this.poly }]);
  }

  static deserialize(context: ThresholdContext, bytes: Uint8Array): PublicKeyShare {
    const { polys } = decodeShare(bytes, ShareKind.publicKey, () => context.keyRing);
    if (polys.length !== 1) throw new RangeError('a public key share holds one polynomial');
    return new PublicKeyShare(context, polys[0]!.words);
  }
}

export class PublicKeyGenProtocol {
  constructor(readonly context: ThresholdContext) {}

  allocateShare(): PublicKeyShare {
    return new PublicKeyShare(this.context, zeroPoly(this.context.keyRing));
  }

  /** p0_i = −a·s_i + e_i into `share`. */
  generateShare(secret: SecretKeyShare, crs: CommonReferenceString, share: PublicKeyShare): void {
    const ring = this.context.keyRing;
    const a = crs.polynomial(ring, CKG_LABEL);
    const own = secret.withKeyGenerator((keygen) => {
      const pk = keygen.createPublicKey();
      try {
        return readCiphertext(pk.saveArray(this.context.seal.ComprModeType.none), 'a SEAL public key');
      } finally {
        pk.delete();
      }
    });
    const [p0, aPrime] = own.polys as [BigUint64Array, BigUint64Array];
    // p0' + (a' − a)·s_i = −a·s_i + e_i.
    subPoly(ring, aPrime, a, aPrime);
    mulPoly(ring, aPrime, secret.poly, aPrime);
    addPoly(ring, p0, aPrime, share.poly);
  }

  /** out = a + b: shares add up to the collective p0. */
  aggregateShares(a: PublicKeyShare, b: PublicKeyShare, out: PublicKeyShare): void {
    addPoly(this.context.keyRing, a.poly, b.poly, out.poly);
  }

  /** The collective public key (p0, a) as SEAL PublicKey bytes (compression none), checked by loading them into SEAL. */
  generatePublicKey(aggregate: PublicKeyShare, crs: CommonReferenceString): Uint8Array {
    const ring = this.context.keyRing;
    const bytes = writeCiphertext({
      parmsId: this.context.keyParmsId,
      isNttForm: true,
      degree: ring.degree,
      primeCount: ring.primes.length,
      scale: 1,
      polys: [aggregate.poly, crs.polynomial(ring, CKG_LABEL)],
    });
    let pk: PublicKey | undefined;
    try {
      pk = this.context.seal.PublicKey();
      pk.loadArray(this.context.context, bytes);
    } finally {
      pk?.delete();
    }
    return bytes;
  }
}
