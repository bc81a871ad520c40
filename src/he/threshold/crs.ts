/**
 * The common reference string: public uniform polynomials a ∈ R_Q that every party derives from one 32-byte seed
 * the parties agreed on (e.g. a hash of the job transcript), so that shares made with the same `a` can be added.
 *
 * a is sampled directly in SEAL's NTT domain, as SEAL samples the `a` of its own keys: the NTT is a bijection of
 * R_Q, so a uniform vector of NTT slots is a uniform polynomial. Expansion: for each label (what the polynomial
 * is for, e.g. "ckg" or "rtg/3/0") and prime q_j, SHAKE256(domain ‖ seed ‖ label ‖ j ‖ block) is read as 64-bit
 * little-endian words, each masked to q_j's bit length and kept when below q_j (rejection sampling: uniform).
 */
import { createHash } from 'node:crypto';
import { halves, primeHalves, zeroPoly, type RingModulus } from './ring.js';

const DOMAIN = 'fedcredit/threshold-ckks/crs/v1';

export class CommonReferenceString {
  private readonly seed: Uint8Array;

  constructor(seed: Uint8Array) {
    if (seed.length !== 32) throw new RangeError(`the common reference string seed must be 32 bytes, got ${seed.length}`);
    this.seed = Uint8Array.from(seed);
  }

  /** The polynomial for `label` over the ring's primes, in NTT form. Deterministic: every party gets the same. */
  polynomial(ring: RingModulus, label: string): BigUint64Array {
    const out = zeroPoly(ring);
    const o = halves(out);
    const n = ring.degree;
    ring.primes.forEach((q, j) => {
      const [ql, qh] = primeHalves(q);
      // Every prime has more than 32 bits: the high half is masked to the prime's remaining bits.
      const highMask = 2 ** (q.toString(2).length - 32) - 1;
      let filled = 0;
      for (let block = 0; filled < n; block++) {
        const prefix = Buffer.from(`${DOMAIN}\0${label}\0${j}\0${block}\0`, 'utf8');
        const stream = createHash('shake256', { outputLength: 8 * (n + 64) })
          .update(prefix)
          .update(this.seed)
          .digest();
        const words = new Uint32Array(Uint8Array.from(stream).buffer);
        for (let i = 0; i < words.length && filled < n; i += 2) {
          const lo = words[i]!;
          const hi = words[i + 1]! & highMask;
          if (hi < qh || (hi === qh && lo < ql)) {
            const at = 2 * (j * n + filled++);
            o[at] = lo;
            o[at + 1] = hi;
          }
        }
      }
    });
    return out;
  }
}
