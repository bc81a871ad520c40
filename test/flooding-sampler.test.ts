/**
 * The flooding sampler's cells against the normal's (docs/threshold-ckks.md, "The sampler"): in an exact, scaled-down
 * model of its construction (test/helpers/flooding-model.ts), the Hellinger² between a flooded coordinate and its
 * shift by e, which the per-share security bound adds up over coordinates, is the exact normal's to within 1% at
 * these scales. Box–Muller on uniforms of as many bits (the sampler until 2026-12-07) is not: its rings near r = 0
 * and in the tail are more than a cell apart and project to spikes.
 */
import { describe, expect, it } from 'vitest';
import { compareSamplers, pairShiftHellinger } from './helpers/flooding-model.js';

describe('flooding sampler, scaled model', () => {
  // σ = 2^S cells, old on B-bit uniforms, new with a (B − 1)-bit mantissa and θ of B bits (the real one: 53, 52, 53);
  // e = 0.82 cell, as the vertical rule's 2^57.7 against its 2^58 cell
  for (const [sigmaBits, oldBits] of [
    [5, 10],
    [6, 11],
  ] as const) {
    it(`σ = 2^${sigmaBits} cells, ${oldBits}-bit uniforms: the new construction's shift distance is the normal's, the old one's is not`, () => {
      const row = compareSamplers(sigmaBits, oldBits, 0.82, 4);
      const newExcess = row.new.hellinger2 / row.normal.hellinger2 - 1;
      const oldExcess = row.old.hellinger2 / row.normal.hellinger2 - 1;
      expect(Math.abs(newExcess)).toBeLessThan(0.01);
      expect(oldExcess).toBeGreaterThan(0.5);
      expect(row.new.statistical / row.normal.statistical).toBeLessThan(1.01);
      expect(row.new.statistical / row.normal.statistical).toBeGreaterThan(0.99);
      // the normal's own: e/(8σ²) in cells for a histogram shifted by less than a cell
      expect(row.normal.hellinger2 / (0.82 / (8 * 4 ** sigmaBits))).toBeCloseTo(1, 2);
    });
  }

  it('the sine of the same draw is not a second normal: the pair sits on a lattice far coarser than its cells', () => {
    // 2^24 points at σ = 2^5 cells: a few thousand per cell pair near the centre, as 2^106 are at 2^45.7 cells per σ
    const { pair, normal } = pairShiftHellinger(12, 5, 0.82);
    expect(pair / normal).toBeGreaterThan(4);
  });
});
