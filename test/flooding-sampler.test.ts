/**
 * The flooding sampler's law (docs/threshold-ckks.md, "The sampler"). The per-share security bound adds up, over
 * coordinates, the Hellinger² between a flooded coordinate and its shift by e; the sampler is an exact Irwin–Hall
 * sum of 8 uniforms, whose Hellinger² is at most J·Var = 1.005 times the normal's at every scale, and the digits
 * `sampleFlooding` draws follow that law. Box–Muller on 53-bit uniforms (the sampler until 2026-12-07) did not: in an
 * exact, scaled-down model its rings near r = 0 and in the tail are more than a cell apart and project to spikes.
 */
import { describe, expect, it } from 'vitest';
import { sampleFlooding } from '../src/he/threshold/ring.js';
import { compareIrwinHall, compareSamplers, irwinHallCellMasses, pairShiftHellinger } from './helpers/flooding-model.js';

const SHIFT = 0.82; // cells: the vertical rule's 2^57.7 against its cell of 2^58

describe('flooding sampler', () => {
  for (const cellsPerUniform of [64, 256]) {
    it(`exact law, ${cellsPerUniform} cells per uniform: Hellinger² of a shift within J·Var = 1.005 of the normal's`, () => {
      const { normal, irwinHall, sigmaCells } = compareIrwinHall(8, cellsPerUniform, SHIFT);
      // the proof's bound for a shift e < 1 cell: J·e·w/8 with J·σ² = 1.005 (Fisher information of Irwin–Hall 8)
      const bound = (1.00504 * SHIFT) / (8 * sigmaCells ** 2);
      expect(irwinHall.hellinger2).toBeLessThanOrEqual(bound);
      expect(irwinHall.hellinger2 / normal.hellinger2).toBeGreaterThan(1.004);
      expect(irwinHall.hellinger2 / normal.hellinger2).toBeLessThan(1.006);
      expect(irwinHall.statistical).toBeLessThan(normal.statistical);
    });
  }

  it("sampleFlooding's digits follow the exact law (chi-square against the convolution)", () => {
    const sigma = 10;
    const cellsPerUniform = Math.ceil(sigma * Math.sqrt(12 / 8)); // k = 0: cells are integers
    const q = (1n << 60n) - 93n;
    const ring = { degree: 8192, primes: [q] };
    const counts = new Map<number, number>();
    const draws = 16;
    for (let d = 0; d < draws; d++) {
      const { cellBits, high } = sampleFlooding(ring, sigma, 20 * sigma);
      expect(cellBits).toBe(0);
      for (const word of high) {
        const c = Number(word > q / 2n ? word - q : word);
        counts.set(c, (counts.get(c) ?? 0) + 1);
      }
    }
    const total = draws * ring.degree;
    const support = 4 * cellsPerUniform;
    expect(Math.max(...counts.keys())).toBeLessThanOrEqual(support);
    expect(Math.min(...counts.keys())).toBeGreaterThanOrEqual(-support);
    const law = irwinHallCellMasses(8, cellsPerUniform, support);
    // bins of expectation ≥ 20, the tails merged into their neighbours
    let chi2 = 0;
    let bins = 0;
    let expected = 0;
    let observed = 0;
    for (let c = -support; c <= support; c++) {
      expected += law[c + support]! * total;
      observed += counts.get(c) ?? 0;
      if (expected >= 20 || c === support) {
        chi2 += (observed - expected) ** 2 / expected;
        bins += 1;
        expected = 0;
        observed = 0;
      }
    }
    // a false failure needs chi-square 8 standard deviations above its mean (about 72 bins): 2·10^−9 (Wilson–Hilferty).
    // A rounded normal of the same σ in place of the exact law gave 227 against a limit of 168.
    expect(chi2).toBeLessThan(bins + 8 * Math.sqrt(2 * bins));
  });

  // The old sampler, in the scaled model: σ = 2^S cells, Box–Muller on B-bit uniforms (the real one: 53 bits, σ =
  // 2^45.7 cells). Its Hellinger² exceeds the normal's by half at these small scales already, and more at larger σ.
  for (const [sigmaBits, oldBits] of [
    [5, 10],
    [6, 11],
  ] as const) {
    it(`old Box–Muller, σ = 2^${sigmaBits} cells on ${oldBits}-bit uniforms: Hellinger² of a shift well above the normal's`, () => {
      const row = compareSamplers(sigmaBits, oldBits, SHIFT, 4);
      expect(row.old.hellinger2 / row.normal.hellinger2 - 1).toBeGreaterThan(0.5);
      // the normal histogram's own: e·w/(8σ²) for a shift by less than a cell
      expect(row.normal.hellinger2 / (SHIFT / (8 * 4 ** sigmaBits))).toBeCloseTo(1, 2);
    });
  }

  it('old Box–Muller: the sine of the same draw was not a second normal, the pair sits on a lattice coarser than its cells', () => {
    // 2^24 points at σ = 2^5 cells: a few thousand per cell pair near the centre, as 2^106 are at 2^45.7 cells per σ
    const { pair, normal } = pairShiftHellinger(12, 5, SHIFT);
    expect(pair / normal).toBeGreaterThan(4);
  });
});
