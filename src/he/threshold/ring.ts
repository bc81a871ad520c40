/**
 * Arithmetic in R_Q = Z_Q[X]/(X^N + 1) in SEAL's representation, so that polynomials computed here can be written
 * into SEAL's serialised keys and ciphertexts and read back from them.
 *
 * RNS: Q = q_0·q_1·…·q_{L}, each q_j a prime below 2^61 with q_j ≡ 1 (mod 2N). A polynomial is one BigUint64Array
 * of N·(L+1) words, prime-major (word j·N + k is coefficient or NTT slot k modulo q_j): exactly the layout of one
 * polynomial in SEAL's Ciphertext, Plaintext and key data.
 *
 * NTT: SEAL keeps key and CKKS ciphertext polynomials in the negacyclic NTT domain. Its tables use ψ_j, the
 * *smallest* primitive 2N-th root of unity modulo q_j (SEAL's try_minimal_primitive_root), with the powers of ψ
 * stored in bit-reversed order, and a Cooley–Tukey forward transform without a final reordering: slot k holds
 * a(ψ^(2·bitrev(k) + 1)). ntt() and intt() below reproduce that exactly; the tests check it on SEAL's own secret
 * keys (the inverse transform of a SEAL secret key is ternary, identically in every prime).
 *
 * Products mod a 60-bit prime need 120 bits: this file uses BigInt for them. It is not fast (a transform of one
 * prime at N = 8192 is a few tens of milliseconds) but it runs only in key ceremonies and tests; a decryption share's
 * products and its flooding's residues are SEAL's (ThresholdContext.floodedProduct), and every homomorphic operation
 * stays in SEAL.
 */
import { randomBytes } from 'node:crypto';

export interface RingModulus {
  /** N, a power of two. */
  readonly degree: number;
  /** The primes of this level, in SEAL's order (the key level ends with the special prime). */
  readonly primes: readonly bigint[];
}

interface NttTable {
  q: bigint;
  /** ψ^bitrev(i) for i < N (SEAL's root_powers). */
  rootPowers: bigint[];
  /** (ψ^bitrev(i))^-1. */
  invRootPowers: bigint[];
  /** N^-1 mod q. */
  invDegree: bigint;
}

const tables = new Map<string, NttTable>();

export function modPow(base: bigint, exponent: bigint, q: bigint): bigint {
  let result = 1n;
  let b = base % q;
  let e = exponent;
  while (e > 0n) {
    if (e & 1n) result = (result * b) % q;
    b = (b * b) % q;
    e >>= 1n;
  }
  return result;
}

export function modInverse(a: bigint, q: bigint): bigint {
  const r = ((a % q) + q) % q;
  if (r === 0n) throw new RangeError('0 has no inverse');
  return modPow(r, q - 2n, q);
}

function bitReverse(x: number, bits: number): number {
  let r = 0;
  for (let i = 0; i < bits; i++) r = (r << 1) | ((x >> i) & 1);
  return r;
}

/** The smallest primitive 2N-th root of unity mod q, as SEAL's try_minimal_primitive_root finds it. */
function minimalPrimitiveRoot(twoN: bigint, q: bigint): bigint {
  const cofactor = (q - 1n) / twoN;
  if (cofactor * twoN !== q - 1n) throw new RangeError(`${q} is not 1 mod ${twoN}: not an NTT prime for this degree`);
  let root = 0n;
  for (let x = 2n; x < q; x++) {
    const candidate = modPow(x, cofactor, q);
    // Primitive iff candidate^(2N/2) = −1.
    if (modPow(candidate, twoN / 2n, q) === q - 1n) {
      root = candidate;
      break;
    }
  }
  // Every primitive 2N-th root is an odd power of one of them: take the smallest.
  const square = (root * root) % q;
  let current = root;
  let minimal = root;
  for (let i = 0n; i < twoN / 2n; i++) {
    if (current < minimal) minimal = current;
    current = (current * square) % q;
  }
  return minimal;
}

function nttTable(degree: number, q: bigint): NttTable {
  const key = `${degree}:${q}`;
  let table = tables.get(key);
  if (table) return table;
  const bits = Math.log2(degree);
  const psi = minimalPrimitiveRoot(BigInt(2 * degree), q);
  const powers: bigint[] = new Array(degree);
  let p = 1n;
  const natural: bigint[] = new Array(degree);
  for (let i = 0; i < degree; i++) {
    natural[i] = p;
    p = (p * psi) % q;
  }
  for (let i = 0; i < degree; i++) powers[i] = natural[bitReverse(i, bits)]!;
  const psiInverse = modInverse(psi, q);
  const invNatural: bigint[] = new Array(degree);
  p = 1n;
  for (let i = 0; i < degree; i++) {
    invNatural[i] = p;
    p = (p * psiInverse) % q;
  }
  const invPowers = powers.map((_, i) => invNatural[bitReverse(i, bits)]!);
  table = { q, rootPowers: powers, invRootPowers: invPowers, invDegree: modInverse(BigInt(degree), q) };
  tables.set(key, table);
  return table;
}

/** Forward negacyclic NTT of one prime's N words in place (SEAL's ntt_negacyclic_harvey, fully reduced). */
function nttOne(a: BigUint64Array, offset: number, degree: number, table: NttTable): void {
  const { q, rootPowers } = table;
  for (let m = 1, t = degree >> 1; m < degree; m <<= 1, t >>= 1) {
    for (let i = 0; i < m; i++) {
      const w = rootPowers[m + i]!;
      const start = offset + 2 * i * t;
      for (let j = start; j < start + t; j++) {
        const x = a[j]!;
        const y = (a[j + t]! * w) % q;
        const sum = x + y;
        a[j] = sum >= q ? sum - q : sum;
        a[j + t] = x >= y ? x - y : x + q - y;
      }
    }
  }
}

/** Inverse of nttOne (Gentleman–Sande, then multiplication by N^-1). */
function inttOne(a: BigUint64Array, offset: number, degree: number, table: NttTable): void {
  const { q, invRootPowers, invDegree } = table;
  for (let m = degree >> 1, t = 1; m >= 1; m >>= 1, t <<= 1) {
    for (let i = 0; i < m; i++) {
      const w = invRootPowers[m + i]!;
      const start = offset + 2 * i * t;
      for (let j = start; j < start + t; j++) {
        const x = a[j]!;
        const y = a[j + t]!;
        const sum = x + y;
        a[j] = sum >= q ? sum - q : sum;
        a[j + t] = ((x >= y ? x - y : x + q - y) * w) % q;
      }
    }
  }
  for (let j = offset; j < offset + degree; j++) a[j] = (a[j]! * invDegree) % q;
}

export function zeroPoly(ring: RingModulus): BigUint64Array {
  return new BigUint64Array(ring.degree * ring.primes.length);
}

/** Transform a polynomial from coefficients to SEAL's NTT slots, in place, every prime. */
export function ntt(ring: RingModulus, a: BigUint64Array): BigUint64Array {
  ring.primes.forEach((q, j) => nttOne(a, j * ring.degree, ring.degree, nttTable(ring.degree, q)));
  return a;
}

/** Transform back from NTT slots to coefficients, in place, every prime. */
export function intt(ring: RingModulus, a: BigUint64Array): BigUint64Array {
  ring.primes.forEach((q, j) => inttOne(a, j * ring.degree, ring.degree, nttTable(ring.degree, q)));
  return a;
}

/*
 * Additions and subtractions work on each 64-bit word as two 32-bit halves in Numbers (every prime is below 2^61,
 * so the high half stays below 2^29 and no intermediate leaves the exact range of a double): an order of magnitude
 * faster than BigInt, which only the products need.
 */
const TWO32 = 4294967296;

if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) throw new Error("fedcredit threshold CKKS needs a little-endian platform (as SEAL's serialisation does)");

/** The 64-bit words of a as little-endian 32-bit halves (a view, no copy). */
export function halves(a: BigUint64Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length * 2);
}

/** [low 32 bits, high bits] of a prime. */
export function primeHalves(q: bigint): [number, number] {
  return [Number(q & 0xffffffffn), Number(q >> 32n)];
}

/** Whether every word of prime j's block is below q_j. */
export function isReduced(ring: RingModulus, a: BigUint64Array): boolean {
  const n = ring.degree;
  const w = halves(a);
  for (let j = 0; j < ring.primes.length; j++) {
    const [ql, qh] = primeHalves(ring.primes[j]!);
    for (let i = 2 * j * n; i < 2 * (j + 1) * n; i += 2) {
      const hi = w[i + 1]!;
      if (hi > qh || (hi === qh && w[i]! >= ql)) return false;
    }
  }
  return true;
}

/** out = a + b (mod each prime); out may be a or b. */
export function addPoly(ring: RingModulus, a: BigUint64Array, b: BigUint64Array, out: BigUint64Array = a): BigUint64Array {
  const n = ring.degree;
  const x = halves(a);
  const y = halves(b);
  const o = halves(out);
  for (let j = 0; j < ring.primes.length; j++) {
    const [ql, qh] = primeHalves(ring.primes[j]!);
    for (let i = 2 * j * n; i < 2 * (j + 1) * n; i += 2) {
      let lo = x[i]! + y[i]!;
      let hi = x[i + 1]! + y[i + 1]!;
      if (lo >= TWO32) {
        lo -= TWO32;
        hi += 1;
      }
      if (hi > qh || (hi === qh && lo >= ql)) {
        lo -= ql;
        hi -= qh;
        if (lo < 0) {
          lo += TWO32;
          hi -= 1;
        }
      }
      o[i] = lo;
      o[i + 1] = hi;
    }
  }
  return out;
}

/** out = a − b. */
export function subPoly(ring: RingModulus, a: BigUint64Array, b: BigUint64Array, out: BigUint64Array = a): BigUint64Array {
  const n = ring.degree;
  const x = halves(a);
  const y = halves(b);
  const o = halves(out);
  for (let j = 0; j < ring.primes.length; j++) {
    const [ql, qh] = primeHalves(ring.primes[j]!);
    for (let i = 2 * j * n; i < 2 * (j + 1) * n; i += 2) {
      let lo = x[i]! - y[i]!;
      let hi = x[i + 1]! - y[i + 1]!;
      if (lo < 0) {
        lo += TWO32;
        hi -= 1;
      }
      if (hi < 0) {
        lo += ql;
        hi += qh;
        if (lo >= TWO32) {
          lo -= TWO32;
          hi += 1;
        }
      }
      o[i] = lo;
      o[i + 1] = hi;
    }
  }
  return out;
}

/** out = a ⊙ b, slot by slot: the ring product when both are in the NTT domain. */
export function mulPoly(ring: RingModulus, a: BigUint64Array, b: BigUint64Array, out: BigUint64Array = a): BigUint64Array {
  const n = ring.degree;
  ring.primes.forEach((q, j) => {
    for (let k = j * n; k < (j + 1) * n; k++) out[k] = (a[k]! * b[k]!) % q;
  });
  return out;
}

/** out = c_j · a in prime j, for one scalar per prime (an RNS constant, e.g. a Lagrange coefficient). */
export function mulScalarPoly(ring: RingModulus, a: BigUint64Array, scalars: readonly bigint[], out: BigUint64Array = a): BigUint64Array {
  const n = ring.degree;
  ring.primes.forEach((q, j) => {
    const c = scalars[j]! % q;
    for (let k = j * n; k < (j + 1) * n; k++) out[k] = (a[k]! * c) % q;
  });
  return out;
}

/** The first `count` primes' words of a (a view: a polynomial of the lower level, the primes being a prefix). */
export function prefixPoly(ring: RingModulus, a: BigUint64Array, count: number): BigUint64Array {
  return a.subarray(0, ring.degree * count);
}

/**
 * The centred integer coefficients of a coefficient-domain polynomial, read from its first prime (valid when every
 * |coefficient| < q_0/2, as for secrets and noise).
 */
export function centredFirstPrime(ring: RingModulus, a: BigUint64Array): bigint[] {
  const q = ring.primes[0]!;
  const half = q / 2n;
  return Array.from(a.subarray(0, ring.degree), (c) => (c > half ? c - q : c));
}

/**
 * The centred coefficients of a coefficient-domain polynomial reconstructed over the whole RNS modulus by CRT:
 * what Σ shares actually decrypt to, exact even when a coefficient exceeds one prime.
 */
export function centredCrt(ring: RingModulus, a: BigUint64Array): bigint[] {
  const Q = ring.primes.reduce((x, y) => x * y, 1n);
  const half = Q / 2n;
  const basis = ring.primes.map((q) => {
    const hat = Q / q;
    return (hat * modInverse(hat % q, q)) % Q;
  });
  const out: bigint[] = new Array(ring.degree);
  for (let k = 0; k < ring.degree; k++) {
    let x = 0n;
    ring.primes.forEach((_, j) => {
      x += a[j * ring.degree + k]! * basis[j]!;
    });
    x %= Q;
    out[k] = x > half ? x - Q : x;
  }
  return out;
}

/** T of the flooding's Irwin–Hall law: a sum of 8 uniforms, of Fisher information J with J·Var = 1.005 (1 for a normal). */
const FLOOD_UNIFORMS = 8;

/**
 * P(round(F_1 + … + F_T) ≤ j) for F_t uniform on [0, 1), as integers over T!·2^T (the Irwin–Hall CDF at j + ½:
 * Σ_k (−1)^k·C(T, k)·(2j + 1 − 2k)^T / (T!·2^T)), j = 0 … T; exact, and below 2^24 for T = 8.
 */
const ROUNDED_SUM_CDF: number[] = (() => {
  const t = BigInt(FLOOD_UNIFORMS);
  const cdf: number[] = [];
  for (let j = 0n; j <= t; j++) {
    let sum = 0n;
    let binomial = 1n;
    for (let k = 0n; k <= t && 2n * k < 2n * j + 1n; k++) {
      sum += (k % 2n === 0n ? 1n : -1n) * binomial * (2n * j + 1n - 2n * k) ** t;
      binomial = (binomial * (t - k)) / (k + 1n);
    }
    cdf.push(Number(sum));
  }
  return cdf;
})();

/**
 * `count` flooding digits in cells of the 2^k grid, exactly round(Z/2^k) for Z the sum of T = 8 independent uniforms
 * on [0, m·2^k), centred: Σ I_t + round(Σ F_t) − 4m, with the cells I_t uniform integers below m (by rejection on
 * draws of as many bits as m needs) and round(Σ F_t) of the fractional parts drawn from its exact law
 * (ROUNDED_SUM_CDF, by rejection). Z has variance (2/3)·(m·2^k)², support ±4m·2^k = ±4.9 standard deviations, and
 * J·Var = 1.005, so the shift of a flooded coordinate by e has Hellinger² at most 1.005·(e² + 4^k/4)/(8·Var) with the
 * dither (docs/threshold-ckks.md, "The sampler"). m ≤ 2^47, |digit| ≤ 4m.
 */
function floodingDigits(count: number, m: number): Float64Array {
  const out = new Float64Array(count);
  const denominator = ROUNDED_SUM_CDF[FLOOD_UNIFORMS]!;
  // a draw below 2^bits: `high` bits from one word's top and 32 from another (or `bits` from one word's top)
  const drawBits = (bound: number) => Math.max(1, Math.ceil(Math.log2(bound)));
  const cellBits = drawBits(m);
  const sumBits = drawBits(denominator);
  let words = new Uint32Array(0);
  let next = 0;
  const draw = (bits: number): number => {
    if (next + 2 > words.length) {
      words = new Uint32Array(randomBytes(4096 * 4 * (2 * FLOOD_UNIFORMS + 4)).buffer);
      next = 0;
    }
    if (bits <= 32) return words[next++]! >>> (32 - bits);
    const high = words[next++]! >>> (64 - bits);
    return high * 2 ** 32 + words[next++]!;
  };
  for (let i = 0; i < count; i++) {
    let cells = -(FLOOD_UNIFORMS / 2) * m;
    for (let t = 0; t < FLOOD_UNIFORMS; t++) {
      let x = draw(cellBits);
      while (x >= m) x = draw(cellBits);
      cells += x;
    }
    let u = draw(sumBits);
    while (u >= denominator) u = draw(sumBits);
    let j = 0;
    while (u >= ROUNDED_SUM_CDF[j]!) j++;
    out[i] = cells + j;
  }
  return out;
}

/**
 * Flooding noise of standard deviation `sigma` (at least) at integer resolution, within `bound` (which must hold the
 * sampler's support, ±4.9σ), coefficient domain, as two digits: the noise is low + 2^k·high. The digits are exact
 * integers, so the noise's law is known exactly (floodingDigits): high = round(Z / 2^k) for Z an Irwin–Hall sum of 8
 * uniforms, |high| ≤ 2^51, on a grid of 2^k (k = 0 while σ is within 2^47; 2^k ≤ 2^−45·σ for a bound of 20σ) so
 * that the high digit stays below every prime; and low an independent uniform integer within the grid cell, in
 * [−2^(k−1), 2^(k−1)). Both digits are below every prime, so their residues need no multiplication: the sampler uses
 * no BigInt, and low + 2^k·high is formed modulo each prime by SEAL (ThresholdContext.floodedProduct; the tests
 * check it against a BigInt reference, floodingWords in test/helpers/flooding-model.ts).
 */
export interface FloodingSample {
  /** k: the grid's cell is 2^k. */
  cellBits: number;
  /** round(σz / 2^k) modulo each prime. */
  high: BigUint64Array;
  /** The dither, uniform in [−2^(k−1), 2^(k−1)), modulo each prime (0 for k = 0). */
  low: BigUint64Array;
}

/** k of FloodingSample for a normal of standard deviation σ clipped at `bound`. */
export function floodingCellBits(sigma: number, bound: number): number {
  return Math.max(0, Math.ceil(Math.log2(Math.max(sigma, bound, 1))) + 1 - 52);
}

/** Whether sampleFlooding's digits for this noise stay below every prime of `ring` (half a grid cell below the smallest). */
export function floodingFits(ring: RingModulus, sigma: number, bound: number): boolean {
  const cellBits = floodingCellBits(sigma, bound);
  return cellBits === 0 || ring.primes.every((q) => 2n ** BigInt(cellBits - 1) < q);
}

export function sampleFlooding(ring: RingModulus, sigma: number, bound: number): FloodingSample {
  const cellBits = floodingCellBits(sigma, bound);
  if (!floodingFits(ring, sigma, bound))
    throw new RangeError(`noise of σ = 2^${Math.log2(sigma).toFixed(1)} is beyond what this sampler serves at primes of ${Math.min(...ring.primes.map((q) => q.toString(2).length))} bits`);
  const n = ring.degree;
  const cell = 2 ** cellBits;
  // T uniforms of width m cells have variance T·m²/12 (cells²): at least σ²
  const cellsPerUniform = Math.ceil((sigma * Math.sqrt(12 / FLOOD_UNIFORMS)) / cell);
  if ((FLOOD_UNIFORMS / 2) * cellsPerUniform * cell > bound) throw new RangeError(`a flooding clip of ${bound} is inside the sampler's support, ±${Math.sqrt(3 * FLOOD_UNIFORMS).toFixed(1)}σ`);
  const digits = floodingDigits(n, cellsPerUniform);
  // The uniform u = low + 2^(k−1) in [0, 2^k), as 32-bit halves: word 2i below 2^min(k, 32), word 2i + 1 below 2^(k−32).
  const dither = new Uint32Array(randomBytes(8 * n).buffer);
  const cellLo = Math.min(cell, TWO32);
  const cellHi = cellBits > 32 ? 2 ** (cellBits - 32) : 1;
  for (let i = 0; i < n; i++) {
    dither[2 * i] = dither[2 * i]! % cellLo;
    dither[2 * i + 1] = dither[2 * i + 1]! % cellHi;
  }
  const high = zeroPoly(ring);
  const low = zeroPoly(ring);
  const h = halves(high);
  for (let j = 0; j < ring.primes.length; j++) {
    const q = ring.primes[j]!;
    const [ql, qh] = primeHalves(q);
    const base = 2 * j * n;
    // high: |digit| ≤ 2^51, below q when q > 2^53; otherwise reduced exactly in doubles (q is then exact).
    if (q > 2n ** 53n) {
      for (let i = 0; i < n; i++) {
        const digit = digits[i]!;
        const magnitude = Math.abs(digit);
        const lo = magnitude % TWO32;
        const hi = Math.floor(magnitude / TWO32);
        if (digit < 0) putWord(h, base + 2 * i, ql - lo, qh - hi);
        else putWord(h, base + 2 * i, lo, hi);
      }
    } else {
      const qn = Number(q);
      for (let i = 0; i < n; i++) {
        let r = digits[i]! % qn;
        if (r < 0) r += qn;
        h[base + 2 * i] = r % TWO32;
        h[base + 2 * i + 1] = Math.floor(r / TWO32);
      }
    }
  }
  if (cellBits > 0) {
    // low = u − 2^(k−1) modulo each prime, by subPoly: u may exceed q, but u − 2^(k−1) lies within 2^(k−1) < q of 0.
    const u = new BigUint64Array(dither.buffer, dither.byteOffset, n);
    for (let j = 0; j < ring.primes.length; j++) low.set(u, j * n);
    subPoly(ring, low, zeroPoly(ring).fill(2n ** BigInt(cellBits - 1)), low);
  }
  return { cellBits, high, low };
}

/** A 64-bit word as its two 32-bit halves at `at`, from a low half within one borrow or carry of [0, 2^32). */
function putWord(out: Uint32Array, at: number, lo: number, hi: number): void {
  if (lo < 0) {
    out[at] = lo + TWO32;
    out[at + 1] = hi - 1;
  } else if (lo >= TWO32) {
    out[at] = lo - TWO32;
    out[at + 1] = hi + 1;
  } else {
    out[at] = lo;
    out[at + 1] = hi;
  }
}

/** The automorphism X → X^g of a coefficient-domain polynomial (g odd, < 2N): coefficient k moves to k·g mod 2N, negated past N. */
export function automorphism(ring: RingModulus, a: BigUint64Array, galoisElement: number): BigUint64Array {
  const n = ring.degree;
  const out = zeroPoly(ring);
  ring.primes.forEach((q, j) => {
    const base = j * n;
    for (let k = 0; k < n; k++) {
      const target = (k * galoisElement) % (2 * n);
      const c = a[base + k]!;
      if (target < n) out[base + target] = c;
      else out[base + target - n] = c === 0n ? 0n : q - c;
    }
  });
  return out;
}

function reverseBits(value: number, bits: number): number {
  let out = 0;
  for (let b = 0; b < bits; b++) out = (out << 1) | ((value >>> b) & 1);
  return out >>> 0;
}

const nttAutomorphismTables = new Map<string, Uint32Array>();

/**
 * SEAL's table for X → X^g on NTT slots (GaloisTool::generate_table_ntt): slot k of σ_g(a) is slot table[k] of a.
 * Slot k holds a at ψ^(2·bitrev(k)+1), and σ_g(a) there is a at ψ^((2·bitrev(k)+1)·g): a permutation of the slots.
 */
function nttAutomorphismTable(degree: number, galoisElement: number): Uint32Array {
  const key = `${degree}/${galoisElement}`;
  let table = nttAutomorphismTables.get(key);
  if (!table) {
    const logN = Math.log2(degree);
    table = new Uint32Array(degree);
    for (let i = degree; i < 2 * degree; i++) {
      const reversed = reverseBits(i, logN + 1);
      const raw = Number((BigInt(galoisElement) * BigInt(reversed)) >> 1n) & (degree - 1);
      table[i - degree] = reverseBits(raw, logN);
    }
    nttAutomorphismTables.set(key, table);
  }
  return table;
}

const nttOrbitTables = new Map<string, { count: number; of: Uint32Array }>();

/**
 * The orbits of NTT slots under the cyclic group of automorphisms generated by X → X^g (g odd, < 2N): slot k's orbit
 * number. The group acts freely on the slots (σ_h fixes the point ψ^e only if h ≡ 1 mod 2N), so every orbit has the
 * group's order of slots. Made once per (degree, g) and shared: not to be modified.
 */
export function nttOrbits(degree: number, generator: number): { readonly count: number; readonly of: Uint32Array } {
  const key = `${degree}/${generator}`;
  let orbits = nttOrbitTables.get(key);
  if (!orbits) {
    const table = nttAutomorphismTable(degree, generator);
    const of = new Uint32Array(degree).fill(0xffffffff);
    let count = 0;
    for (let start = 0; start < degree; start++) {
      if (of[start] !== 0xffffffff) continue;
      for (let k = start; of[k] === 0xffffffff; k = table[k]!) of[k] = count;
      count++;
    }
    orbits = { count, of };
    nttOrbitTables.set(key, orbits);
  }
  return orbits;
}

/**
 * Σ_h σ_h(a) over the group whose orbits are given (nttOrbits), in place, on SEAL's NTT slots: every slot takes the
 * sum of its orbit's slots, modulo each prime. One pass, instead of log2(order) automorphisms and additions.
 */
export function orbitSumNtt(ring: RingModulus, a: BigUint64Array, orbits: { count: number; of: Uint32Array }): BigUint64Array {
  const n = ring.degree;
  const w = halves(a);
  const lo = new Float64Array(orbits.count);
  const hi = new Float64Array(orbits.count);
  const sumLo = new Uint32Array(orbits.count);
  const sumHi = new Uint32Array(orbits.count);
  for (let j = 0; j < ring.primes.length; j++) {
    const q = ring.primes[j]!;
    const base = 2 * j * n;
    lo.fill(0);
    hi.fill(0);
    // Each half stays exact in a double: up to 2^21 words of below 2^32 (low) and 2^29 (high) per orbit.
    for (let k = 0; k < n; k++) {
      const o = orbits.of[k]!;
      lo[o]! += w[base + 2 * k]!;
      hi[o]! += w[base + 2 * k + 1]!;
    }
    for (let o = 0; o < orbits.count; o++) {
      const r = ((BigInt(hi[o]!) << 32n) + BigInt(lo[o]!)) % q;
      sumLo[o] = Number(r & 0xffffffffn);
      sumHi[o] = Number(r >> 32n);
    }
    for (let k = 0; k < n; k++) {
      const o = orbits.of[k]!;
      w[base + 2 * k] = sumLo[o]!;
      w[base + 2 * k + 1] = sumHi[o]!;
    }
  }
  return a;
}
