/**
 * The flooding sampler's cells follow the normal's (docs/threshold-ckks.md, "Noise, flooding and the security they
 * give"): in an exact, scaled-down model of its construction (test/helpers/flooding-model.ts), the Hellinger² between
 * a flooded coordinate and its shift by e is that of the exact normal, to a small fraction. It is what the per-share
 * security bound adds up over coordinates. Box–Muller on uniforms of as many bits (the sampler until 2026-12-07) is
 * not: its rings near r = 0 and in the tail are more than a cell apart and project to spikes.
 */
import { describe, expect, it } from 'vitest';
import { compareSamplers } from './helpers/flooding-model.js';

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
});
