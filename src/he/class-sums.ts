/**
 * The residue-class sums of a vertical masked gradient, made inside its decryption rather than on the ciphertext,
 * under either key: the arbiter's single key (VerticalGradient.decryptGradientSlots) and a collective key (every
 * shareholder's share, src/vertical/lr/threshold-opener.ts). A rotation by r slots is the automorphism σ_r:
 * X → X^(3^r) followed by a key switch back to s. The class sum Σ_k rot(c, k·P) therefore decrypts to T(c0 + c1·s)
 * with T = Π_{step = P, 2P, …, S/2} (1 + σ_step), and T is linear: it can be applied to the decryption c0 + c1·s
 * itself (single key), or to c0 and to each shareholder's c1·s_i (collective key, T(c0) + Σ_i T(c1·s_i)). No key
 * switch, no Galois key; on SEAL's NTT slots each σ is a permutation, so T sums each slot's orbit (ring.ts nttOrbits, orbitSumNtt). The opened slots hold
 * the class sums Σ_{i' ≡ i (mod P)} (z_i' + m_i') and nothing finer: what the key-switched rotations gave, less
 * their key-switching noise. Under a collective key a share is T of the product, flooded so that it hides T(e_ct),
 * the noise verticalGradientNoiseBits bounds, and each shareholder derives P from the signed job spec, so no
 * requester chooses a finer one (docs/threshold-ckks.md, "Which coalitions learn what in a vertical job").
 */
import { galoisElementForStep } from './packing.js';
import type { PolyTransform } from './threshold/context.js';
import { nttOrbits, orbitSumNtt } from './threshold/ring.js';

/** T for period P (a power of two from 1 to S = degree/2; the identity for P = S), in place on NTT-form polynomials. */
export function classSumTransform(degree: number, period: number): PolyTransform {
  const slots = degree / 2;
  if (!Number.isInteger(Math.log2(period)) || period < 1 || period > slots) throw new RangeError(`a class-sum period must be a power of two from 1 to ${slots}, got ${period}`);
  if (period === slots) return () => {};
  // Π_{step = P, 2P, …, S/2} (1 + σ_step) is the sum over the group σ_P generates: each slot takes its orbit's sum.
  const orbits = nttOrbits(degree, galoisElementForStep(degree, period));
  return (ring, poly) => void orbitSumNtt(ring, poly, orbits);
}
