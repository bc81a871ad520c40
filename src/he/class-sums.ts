/**
 * The residue-class sums of a vertical masked gradient, made inside its decryption rather than on the ciphertext,
 * under either key: the arbiter's single key (VerticalGradient.decryptGradientSlots) and a collective key (every
 * shareholder's share, src/vertical/lr/threshold-opener.ts). A rotation by r slots is the automorphism σ_r:
 * X → X^(3^r) followed by a key switch back to s. The class sum Σ_k rot(c, k·P) therefore decrypts to T(c0 + c1·s)
 * with T = Π_{step = P, 2P, …, S/2} (1 + σ_step), and T is linear: it can be applied to the decryption c0 + c1·s
 * itself (single key), or to c0 and to each shareholder's c1·s_i (collective key, T(c0) + Σ_i T(c1·s_i)). No key
 * switch, no Galois key; on SEAL's NTT slots each σ is a permutation (ring.ts automorphismNtt). The opened slots hold
 * the class sums Σ_{i' ≡ i (mod P)} (z_i' + m_i') and nothing finer: what the key-switched rotations gave, less
 * their key-switching noise. Under a collective key a share is T of the product, flooded so that it hides T(e_ct),
 * the noise verticalGradientNoiseBits bounds, and each shareholder derives P from the signed job spec, so no
 * requester chooses a finer one (docs/threshold-ckks.md, "Which coalitions learn what in a vertical job").
 */
import { galoisElementForStep } from './packing.js';
import type { PolyTransform } from './threshold/context.js';
import { automorphismNtt, halves } from './threshold/ring.js';

/** Each NTT slot's orbit (0 to 2P − 1) under the automorphisms of T, by degree and period. */
const orbitTables = new Map<string, Uint32Array>();

/**
 * Expanded, T = Σ_{h ∈ H} σ_h over the S/P automorphisms of the group H that σ_P generates (3^P has order S/P
 * modulo 2N). H moves every NTT slot (a root ψ^odd) freely, so its orbits are 2P sets of S/P slots, and slot k of
 * T(a) is the sum of a over k's orbit. Read off by applying σ_P to the slot indices themselves.
 */
function orbitsOf(degree: number, period: number): Uint32Array {
  const key = `${degree}/${period}`;
  let orbits = orbitTables.get(key);
  if (!orbits) {
    const indices = { degree, primes: [BigInt(degree)] };
    const moved = automorphismNtt(
      indices,
      BigUint64Array.from({ length: degree }, (_, k) => BigInt(k)),
      galoisElementForStep(degree, period),
    );
    orbits = new Uint32Array(degree).fill(degree);
    let count = 0;
    for (let k = 0; k < degree; k++) {
      if (orbits[k] !== degree) continue;
      for (let slot = k; orbits[slot] === degree; slot = Number(moved[slot]!)) orbits[slot] = count;
      count++;
    }
    if (count !== 2 * period) throw new Error(`the class sum modulo ${period} found ${count} orbits of NTT slots, not ${2 * period}`);
    orbitTables.set(key, orbits);
  }
  return orbits;
}

/** T for period P (a power of two from 1 to S = degree/2; the identity for P = S), in place on NTT-form polynomials. */
export function classSumTransform(degree: number, period: number): PolyTransform {
  const slots = degree / 2;
  if (!Number.isInteger(Math.log2(period)) || period < 1 || period > slots) throw new RangeError(`a class-sum period must be a power of two from 1 to ${slots}, got ${period}`);
  if (period === slots) return () => {};
  const orbits = orbitsOf(degree, period);
  return (ring, poly) => {
    const n = ring.degree;
    const words = halves(poly);
    // Sums of S/P low halves (< 2^32) and high halves (< 2^29) stay below 2^45 and 2^42: exact in doubles.
    const low = new Float64Array(2 * period);
    const high = new Float64Array(2 * period);
    const reduced = new BigUint64Array(2 * period);
    const sums = halves(reduced);
    ring.primes.forEach((q, j) => {
      const base = 2 * j * n;
      low.fill(0);
      high.fill(0);
      for (let k = 0; k < n; k++) {
        low[orbits[k]!]! += words[base + 2 * k]!;
        high[orbits[k]!]! += words[base + 2 * k + 1]!;
      }
      for (let o = 0; o < 2 * period; o++) reduced[o] = ((BigInt(high[o]!) << 32n) + BigInt(low[o]!)) % q;
      for (let k = 0; k < n; k++) {
        words[base + 2 * k] = sums[2 * orbits[k]!]!;
        words[base + 2 * k + 1] = sums[2 * orbits[k]! + 1]!;
      }
    });
  };
}
