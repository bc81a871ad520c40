import { createHash } from 'node:crypto';
import type { LoadedDataset } from './csv.js';

/** Rows of one split, row-major over the chosen features. */
export interface Split {
  x: Float32Array;
  y: Float32Array;
}

/**
 * Deterministic train/validation split by a keyed hash of each id: the same ids land in the same split in every
 * run and after a restart, whatever the row order.
 */
export function splitRows(data: LoadedDataset, featureIdx: number[], validationFraction: number, seed: number): { train: Split; validation: Split } {
  const dim = featureIdx.length;
  const isValidation = data.ids.map((id) => createHash('sha256').update(`${seed}|${id}`).digest().readUInt32BE(0) / 2 ** 32 < validationFraction);
  const nValid = isValidation.filter(Boolean).length;
  const make = (n: number): Split => ({ x: new Float32Array(n * dim), y: new Float32Array(n) });
  const train = make(data.rows - nValid);
  const validation = make(nValid);
  const width = data.features.length;
  let t = 0;
  let v = 0;
  for (let r = 0; r < data.rows; r++) {
    const target = isValidation[r] ? validation : train;
    const i = isValidation[r] ? v++ : t++;
    for (let j = 0; j < dim; j++) target.x[i * dim + j] = data.x[r * width + featureIdx[j]!]!;
    target.y[i] = data.y ? data.y[r]! : 0;
  }
  return { train, validation };
}

/** Concatenate splits (pooled baselines). */
export function concatSplits(splits: Split[]): Split {
  const x = new Float32Array(splits.reduce((n, s) => n + s.x.length, 0));
  const y = new Float32Array(splits.reduce((n, s) => n + s.y.length, 0));
  let ox = 0;
  let oy = 0;
  for (const s of splits) {
    x.set(s.x, ox);
    y.set(s.y, oy);
    ox += s.x.length;
    oy += s.y.length;
  }
  return { x, y };
}

/**
 * Which part of a vertical job an aligned enterprise belongs to, by a keyed hash of its normalised id: the guest
 * assigns the shared rows with it, and baselines outside the federation reproduce the same split.
 */
export function holdoutOf(id: string, seed: number, testFraction: number, validationFraction: number): 'train' | 'validation' | 'test' {
  const u = createHash('sha256').update(`${seed}|${id}`).digest().readUInt32BE(0) / 2 ** 32;
  return u < testFraction ? 'test' : u < testFraction + validationFraction ? 'validation' : 'train';
}
