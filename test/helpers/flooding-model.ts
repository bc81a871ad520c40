/**
 * Exact, scaled-down models of flooding samplers' cell masses (docs/threshold-ckks.md, "The sampler"), to compare the
 * Hellinger² and statistical distance of a flooded coordinate and its shift by e < 1 cell with the normal's.
 *
 * Box–Muller, as the flooding was drawn until 2026-12-07: x = σ·r·cos θ at σ = 2^45.7 cells of the 2^k grid (the
 * vertical rule) from 53-bit uniforms. The model keeps the construction and shrinks the scales: σ = 2^S cells,
 * uniforms of B bits. The mass of every cell is counted exactly, ring by ring (the angles of one ring that land in a
 * cell are counted with acos).
 * - old: u1 = (a + 1)/2^B, a uniform in [0, 2^B); θ = 2π·b/2^B (the real one: B = 53).
 * - full-precision: v = 2^−(g+1)·(1 + (m + 1)/2^M) with P(g) = 2^−g (g ≥ 1), m uniform in [0, 2^M); a fair coin takes
 *   u1 = v (E = −ln v) or u1 = 1 − v (E = −log1p(−v)); r = √(2E); θ = 2π·b/2^(M+1) (M = 52 would be the real one).
 *
 * The exact sampler that replaced them (`floodingDigits` in src/he/threshold/ring.ts): irwinHallCellMasses.
 */
import { modPow, sampleFlooding, zeroPoly, type FloodingSample, type RingModulus } from '../../src/he/threshold/ring.js';

/** A ring of the model: its radius in standard deviations and its probability. */
interface Ring {
  radius: number;
  weight: number;
}

export type Construction = 'old' | 'full-precision';

/** The exponents the full-precision model enumerates: the rest has r > 7.4σ (beyond the region compared) or lands in cell 0. */
const NEW_EXPONENTS = 40;

function* rings(construction: Construction, bits: number): Generator<Ring> {
  const n = 2 ** bits;
  if (construction === 'old') {
    for (let a = 0; a < n; a++) yield { radius: Math.sqrt(-2 * Math.log((a + 1) / n)), weight: 1 / n };
    return;
  }
  for (let g = 1; g <= NEW_EXPONENTS; g++) {
    const weight = 2 ** -(g + bits + 1);
    for (let m = 0; m < n; m++) {
      const v = 2 ** -(g + 1) * (1 + (m + 1) / n);
      yield { radius: Math.sqrt(-2 * Math.log(v)), weight };
      yield { radius: Math.sqrt(-2 * Math.log1p(-v)), weight };
    }
  }
}

/** Cell masses of the construction: index c + offset holds P(round(σ·r·cos θ) = c), for |c| ≤ offset. */
export function samplerCellMasses(construction: Construction, bits: number, sigmaBits: number, offset: number): Float64Array {
  const sigma = 2 ** sigmaBits;
  const masses = new Float64Array(2 * offset + 1);
  const angles = 2 ** (construction === 'old' ? bits : bits + 1);
  const perRadian = angles / (2 * Math.PI);
  for (const { radius, weight } of rings(construction, bits)) {
    const R = radius * sigma;
    // how many of the ring's angles give x ≥ t
    const above = (t: number) => (t > R ? 0 : t <= -R ? angles : 2 * Math.floor(Math.acos(t / R) * perRadian) + 1);
    const top = Math.min(offset, Math.ceil(R) + 1);
    const share = weight / angles;
    let previous = above(-top - 0.5);
    for (let c = -top; c <= top; c++) {
      const next = above(c + 0.5);
      masses[c + offset]! += (previous - next) * share;
      previous = next;
    }
  }
  // the full-precision construction's rings beyond the enumerated exponents: r ≥ √(2·40·ln 2) = 7.4σ on the coin's one side
  // (outside the region compared), r < √(2^−40)·σ on its other side, which is cell 0 for σ ≤ 2^19
  if (construction === 'full-precision') masses[offset]! += 2 ** -(NEW_EXPONENTS + 1);
  return masses;
}

/** The exact normal's cell masses, Φ((c + ½)/σ) − Φ((c − ½)/σ), by Simpson's rule within each cell. */
export function normalCellMasses(sigmaBits: number, offset: number): Float64Array {
  const sigma = 2 ** sigmaBits;
  const density = (x: number) => Math.exp(-(x * x) / (2 * sigma * sigma)) / (sigma * Math.sqrt(2 * Math.PI));
  const steps = 8;
  const h = 1 / steps;
  return Float64Array.from({ length: 2 * offset + 1 }, (_, i) => {
    const left = i - offset - 0.5;
    let sum = density(left) + density(left + 1);
    for (let s = 1; s < steps; s++) sum += (s % 2 === 1 ? 4 : 2) * density(left + s * h);
    return (sum * h) / 3;
  });
}

/** Distances between cell masses dithered within their cells (density p_c on [c − ½, c + ½)) and their shift by e < 1 cell. */
export interface ShiftDistances {
  /** Statistical distance of (X, X + e), per coordinate. */
  statistical: number;
  /** Hellinger² of (X, X + e), per coordinate (½ Σ (√p − √q)²): it adds over independent coordinates. */
  hellinger2: number;
}

export function shiftDistances(masses: Float64Array, offset: number, shift: number, limit: number): ShiftDistances {
  let statistical = 0;
  let hellinger2 = 0;
  for (let c = -limit; c <= limit; c++) {
    const p = masses[c + offset]!;
    const q = masses[c - 1 + offset]!;
    statistical += shift * Math.abs(p - q);
    hellinger2 += shift * (Math.sqrt(p) - Math.sqrt(q)) ** 2;
  }
  return { statistical: statistical / 2, hellinger2: hellinger2 / 2 };
}

/** One row of the comparison: the old and the full-precision construction at the same σ and random bits against the normal. */
export interface ModelRow {
  sigmaBits: number;
  oldBits: number;
  mantissaBits: number;
  /** the region compared: |x| ≤ limitSigmas·σ */
  limitSigmas: number;
  normal: ShiftDistances;
  old: ShiftDistances;
  fullPrecision: ShiftDistances;
}

/** The comparison at σ = 2^S cells, old on B-bit uniforms, full-precision with a (B − 1)-bit mantissa (as 53 and 52), shift e. */
export function compareSamplers(sigmaBits: number, oldBits: number, shift: number, limitSigmas: number): ModelRow {
  const limit = Math.floor(limitSigmas * 2 ** sigmaBits);
  const offset = limit + 2;
  const old = samplerCellMasses('old', oldBits, sigmaBits, offset);
  const fullPrecision = samplerCellMasses('full-precision', oldBits - 1, sigmaBits, offset);
  const normal = normalCellMasses(sigmaBits, offset);
  return {
    sigmaBits,
    oldBits,
    mantissaBits: oldBits - 1,
    limitSigmas,
    normal: shiftDistances(normal, offset, shift, limit),
    old: shiftDistances(old, offset, shift, limit),
    fullPrecision: shiftDistances(fullPrecision, offset, shift, limit),
  };
}

/**
 * The docs' table, one row per [S, B] (Node 24 runs this file as it is; about 3 minutes):
 * `node -e "import('./test/helpers/flooding-model.ts').then((m) => m.printComparison())"`.
 */
export function printComparison(
  cases: Array<[number, number]> = [
    [4, 11],
    [5, 12],
    [6, 13],
    [7, 14],
    [8, 15],
    [5, 11],
    [6, 12],
    [7, 13],
    [6, 11],
    [8, 13],
  ],
): void {
  const log = (x: number) => `2^${Math.log2(x).toFixed(2)}`;
  for (const [sigmaBits, oldBits] of cases) {
    const row = compareSamplers(sigmaBits, oldBits, 0.82, 4);
    const excess = (d: ShiftDistances) => {
      const x = d.hellinger2 / row.normal.hellinger2 - 1;
      return x < 0 ? `−${log(-x)}` : log(x);
    };
    console.log(
      `| 2^${sigmaBits} | ${oldBits} / ${oldBits - 1} | ${log(row.normal.statistical)} | ${log(row.old.statistical)} | ${log(row.fullPrecision.statistical)} | ${log(row.normal.hellinger2)} | ${excess(row.old)} | ${excess(row.fullPrecision)} |`,
    );
  }
}

/**
 * The pair (r·cos θ, r·sin θ) of one old-construction draw, enumerated: Hellinger² between the pair (dithered within
 * its cells) and its shift by (e, e), and the same for a pair of independent exact normals. The pair lies on a polar
 * lattice of 2^(2B) points, a few thousand per cell pair near the centre for B − S = 7, as 2^106 are at σ = 2^45.7 cells.
 */
export function pairShiftHellinger(bits: number, sigmaBits: number, shift: number): { pair: number; normal: number } {
  const n = 2 ** bits;
  const sigma = 2 ** sigmaBits;
  const offset = Math.ceil(6 * sigma);
  const width = 2 * offset + 1;
  const masses = new Float64Array(width * width);
  const cos = Float64Array.from({ length: n }, (_, b) => Math.cos((2 * Math.PI * b) / n));
  const sin = Float64Array.from({ length: n }, (_, b) => Math.sin((2 * Math.PI * b) / n));
  for (let a = 0; a < n; a++) {
    const R = Math.sqrt(-2 * Math.log((a + 1) / n)) * sigma;
    for (let b = 0; b < n; b++) {
      const x = Math.round(R * cos[b]!) + offset;
      const y = Math.round(R * sin[b]!) + offset;
      if (x >= 0 && x < width && y >= 0 && y < width) masses[x * width + y]! += 1 / (n * n);
    }
  }
  const line = normalCellMasses(sigmaBits, offset);
  const normal = Float64Array.from({ length: width * width }, (_, k) => line[Math.floor(k / width)]! * line[k % width]!);
  const hellinger2 = (p: Float64Array) => {
    let h = 0;
    for (let i = 1; i < width; i++) {
      for (let j = 1; j < width; j++) {
        const s = Math.sqrt(p[i * width + j]!);
        const across = (Math.sqrt(p[(i - 1) * width + j]!) - s) ** 2 + (Math.sqrt(p[i * width + j - 1]!) - s) ** 2;
        h += (1 - shift) * shift * across + shift * shift * (Math.sqrt(p[(i - 1) * width + j - 1]!) - s) ** 2;
      }
    }
    return h / 2;
  };
  return { pair: hellinger2(masses), normal: hellinger2(normal) };
}

/**
 * The exact sampler's cell law (`floodingDigits`): H = Σ I_t + round(Σ F_t) − (T/2)·m, T uniform integers I_t below m
 * and the rounded sum of T uniform fractions, by convolution. Index c + offset holds P(H = c).
 */
export function irwinHallCellMasses(uniforms: number, cellsPerUniform: number, offset: number): Float64Array {
  let law = Float64Array.of(1);
  for (let t = 0; t < uniforms; t++) {
    const next = new Float64Array(law.length + cellsPerUniform - 1);
    for (let i = 0; i < law.length; i++) for (let k = 0; k < cellsPerUniform; k++) next[i + k]! += law[i]! / cellsPerUniform;
    law = next;
  }
  // P(round(Σ F_t) = j): differences of the Irwin–Hall CDF at j ± ½
  const cdf = (x: number) => {
    let sum = 0;
    let binomial = 1;
    let factorial = 1;
    for (let k = 1; k <= uniforms; k++) factorial *= k;
    for (let k = 0; k <= uniforms && k < x; k++) {
      sum += (k % 2 === 0 ? 1 : -1) * binomial * (x - k) ** uniforms;
      binomial = (binomial * (uniforms - k)) / (k + 1);
    }
    return sum / factorial;
  };
  const masses = new Float64Array(2 * offset + 1);
  const shift = (uniforms / 2) * cellsPerUniform;
  for (let j = 0; j <= uniforms; j++) {
    const pj = cdf(j + 0.5) - cdf(j - 0.5);
    for (let i = 0; i < law.length; i++) {
      const c = i + j - shift;
      if (Math.abs(c) <= offset) masses[c + offset]! += pj * law[i]!;
    }
  }
  return masses;
}

/** The exact sampler at m cells per uniform against the normal histogram of the same σ = m·√(T/12) cells, shift e < 1 cell. */
export function compareIrwinHall(uniforms: number, cellsPerUniform: number, shift: number): { normal: ShiftDistances; irwinHall: ShiftDistances; sigmaCells: number } {
  const sigmaCells = cellsPerUniform * Math.sqrt(uniforms / 12);
  const offset = (uniforms / 2) * cellsPerUniform + 2;
  const masses = irwinHallCellMasses(uniforms, cellsPerUniform, offset);
  const normal = normalCellMasses(Math.log2(sigmaCells), offset);
  return { normal: shiftDistances(normal, offset, shift, offset - 1), irwinHall: shiftDistances(masses, offset, shift, offset - 1), sigmaCells };
}

/**
 * The reference the tests check SEAL's share arithmetic against: low + 2^k·high modulo each prime, a FloodingSample's
 * words in the coefficient domain, in BigInt (a share has SEAL form them).
 */
export function floodingWords(ring: RingModulus, sample: FloodingSample): BigUint64Array {
  const out = zeroPoly(ring);
  ring.primes.forEach((q, j) => {
    const radix = modPow(2n, BigInt(sample.cellBits), q);
    for (let k = j * ring.degree; k < (j + 1) * ring.degree; k++) out[k] = (sample.low[k]! + radix * sample.high[k]!) % q;
  });
  return out;
}

/** sampleFlooding's noise in the coefficient domain, in one polynomial (floodingWords). */
export function sampleFloodingPoly(ring: RingModulus, sigma: number, bound: number): BigUint64Array {
  return floodingWords(ring, sampleFlooding(ring, sigma, bound));
}
