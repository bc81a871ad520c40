/**
 * Feature standardisation from federation-wide moments. Each party contributes [count_j, sum_j, sumsq_j] per
 * feature over its non-missing training cells (to a secure sum); the aggregate gives every party the same means
 * and scales, and a missing cell becomes the federation-wide mean (0 after standardising).
 */
import type { Preprocessing } from '../wire/messages.js';

export function localMoments(x: Float32Array, dim: number): Float64Array {
  const out = new Float64Array(3 * dim);
  const rows = x.length / dim;
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < dim; j++) {
      const v = x[r * dim + j]!;
      if (Number.isNaN(v)) continue;
      out[3 * j] += 1;
      out[3 * j + 1] += v;
      out[3 * j + 2] += v * v;
    }
  }
  return out;
}

export function preprocessingFromMoments(features: string[], moments: Float64Array, standardize: boolean): Preprocessing {
  const mean: number[] = [];
  const scale: number[] = [];
  features.forEach((_, j) => {
    const count = moments[3 * j]!;
    const m = count > 0 ? moments[3 * j + 1]! / count : 0;
    const variance = count > 1 ? Math.max(0, moments[3 * j + 2]! / count - m * m) : 0;
    mean.push(m);
    scale.push(standardize && variance > 1e-12 ? Math.sqrt(variance) : 1);
  });
  return { features: [...features], mean, scale: standardize ? scale : features.map(() => 1) };
}

/** Standardise row-major x in a new array; NaN (missing) cells become 0, i.e. the federation-wide mean. */
export function applyPreprocessing(x: Float32Array, prep: Preprocessing): Float32Array {
  const dim = prep.features.length;
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const j = i % dim;
    const v = x[i]!;
    out[i] = Number.isNaN(v) ? 0 : (v - prep.mean[j]!) / prep.scale[j]!;
  }
  return out;
}
