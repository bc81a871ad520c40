/**
 * A party's share s_i of the collective secret key s = Σ_i s_i. Each s_i is a secret key exactly as SEAL samples
 * one (KeyGenerator: coefficients uniform in {−1, 0, 1}), kept in SEAL's form: NTT domain, key level (every data
 * prime and the special prime). s itself is never formed by anyone; its coefficients lie in [−n, n] for n parties,
 * which is what the collective keys' noise analysis assumes (docs/threshold-ckks.md).
 *
 * The share is the party's long-term secret for the job: it never leaves the party (serialise it only to keep it
 * at rest, with the protections of a private key).
 */
import type { SecretKey } from 'node-seal/implementation/secret-key.js';
import type { KeyGenerator } from 'node-seal/implementation/key-generator.js';
import { decodeShare, encodeShare, ShareKind } from './codec.js';
import type { ThresholdContext } from './context.js';
import { readPlaintext, writePlaintext } from '../seal-format.js';

export class SecretKeyShare {
  private constructor(
    readonly context: ThresholdContext,
    /** s_i in NTT form over the key level's primes. */
    readonly poly: BigUint64Array,
  ) {}

  /** A fresh share sampled by SEAL's KeyGenerator. */
  static generate(context: ThresholdContext): SecretKeyShare {
    const keygen = context.seal.KeyGenerator(context.context);
    const secret = keygen.secretKey();
    try {
      return new SecretKeyShare(context, readPlaintext(secret.saveArray(context.seal.ComprModeType.none), 'a SEAL secret key').coefficients);
    } finally {
      secret.delete();
      keygen.delete();
    }
  }

  /** A share from a polynomial in NTT form at the key level (e.g. λ_j·σ_j of a t-of-n quorum). */
  static fromPoly(context: ThresholdContext, poly: BigUint64Array): SecretKeyShare {
    if (poly.length !== context.keyRing.degree * context.keyRing.primes.length) throw new RangeError('a secret key share spans every prime of the key level');
    return new SecretKeyShare(context, poly);
  }

  serialize(): Uint8Array {
    return encodeShare(ShareKind.secretKey, {}, [{ ring: this.context.keyRing, words: this.poly }]);
  }

  static deserialize(context: ThresholdContext, bytes: Uint8Array): SecretKeyShare {
    const { polys } = decodeShare(bytes, ShareKind.secretKey, () => context.keyRing);
    if (polys.length !== 1) throw new RangeError('a secret key share holds one polynomial');
    return new SecretKeyShare(context, polys[0]!.words);
  }

  /**
   * Run `use` with a SEAL KeyGenerator built on this share (SEAL then samples the `a` and the noise of keys under
   * s_i natively); both SEAL objects are deleted afterwards.
   */
  withKeyGenerator<T>(use: (keygen: KeyGenerator) => T): T {
    const { seal, context } = this.context;
    let secret: SecretKey | undefined;
    let keygen: KeyGenerator | undefined;
    try {
      secret = seal.SecretKey();
      secret.loadArray(context, writePlaintext({ parmsId: this.context.keyParmsId, scale: 1, coefficients: this.poly }));
      keygen = seal.KeyGenerator(context, secret);
      return use(keygen);
    } finally {
      keygen?.delete();
      secret?.delete();
    }
  }
}
