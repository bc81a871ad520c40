import type { LoadedDataset } from './csv.js';
import type { BlockReader, RowStore } from './row-store.js';
import { ID_HASH_BYTES, idHash, idDigest } from './id-buckets.js';
import { sha256Concat } from '../bytes.js';

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
  const isValidation = data.ids.map((id) => splitPoint(idHash(id), seed) < validationFraction);
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

/** Where a row falls in [0, 1) for the job's seed, from its id's hash: the same in every run, whatever the row order. */
function splitPoint(hash: Uint8Array, seed: number): number {
  return sha256Concat([`${seed}|`, hash]).readUInt32BE(0) / 2 ** 32;
}

/**
 * The same split as splitRows over rows kept on disk: one bit per row says which part it is in, and each part is
 * read a block at a time with the job's columns picked out, so memory does not grow with the rows.
 */
export class StoredSplit {
  private reader?: BlockReader;

  private constructor(
    private readonly store: RowStore,
    private readonly featureIdx: number[],
    private readonly validation: Uint8Array,
    readonly validationRows: number,
  ) {}

  /** Reads every id's hash once, giving the event loop a turn after each megabyte (65,536 ids). */
  static async create(store: RowStore, featureIdx: number[], validationFraction: number, seed: number): Promise<StoredSplit> {
    const validation = new Uint8Array(Math.ceil(store.rows / 8));
    let r = 0;
    let nValid = 0;
    for (const piece of store.idHashes()) {
      for (let o = 0; o < piece.length; o += ID_HASH_BYTES, r++) {
        if (splitPoint(piece.subarray(o, o + ID_HASH_BYTES), seed) >= validationFraction) continue;
        validation[r >> 3]! |= 1 << (r & 7);
        nValid++;
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    return new StoredSplit(store, featureIdx, validation, nValid);
  }

  get trainRows(): number {
    return this.store.rows - this.validationRows;
  }

  get blockCount(): number {
    return this.store.blockCount;
  }

  /** The rows of one part in block b, the job's columns only, in fresh arrays the caller may keep. */
  block(part: 'train' | 'validation', b: number): Split {
    this.reader ??= this.store.reader();
    const block = this.reader.read(b);
    const dim = this.featureIdx.length;
    const width = this.store.features.length;
    const wanted = part === 'validation' ? 1 : 0;
    let n = 0;
    for (let i = 0; i < block.rows; i++) if (this.bit(block.start + i) === wanted) n++;
    const out: Split = { x: new Float32Array(n * dim), y: new Float32Array(n) };
    let k = 0;
    for (let i = 0; i < block.rows; i++) {
      if (this.bit(block.start + i) !== wanted) continue;
      for (let j = 0; j < dim; j++) out.x[k * dim + j] = block.x[i * width + this.featureIdx[j]!]!;
      out.y[k] = block.y ? block.y[i]! : 0;
      k++;
    }
    return out;
  }

  close(): void {
    this.reader?.close();
    this.reader = undefined;
  }

  private bit(r: number): number {
    return (this.validation[r >> 3]! >> (r & 7)) & 1;
  }
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
  return holdoutOfDigest(idDigest(id), seed, testFraction, validationFraction);
}

/** holdoutOf for an id given by its digest (idDigest of the normalised id), as the PSI keeps it. */
export function holdoutOfDigest(digest: Uint8Array, seed: number, testFraction: number, validationFraction: number): 'train' | 'validation' | 'test' {
  const u = sha256Concat([`${seed}|`, digest]).readUInt32BE(0) / 2 ** 32;
  return u < testFraction ? 'test' : u < testFraction + validationFraction ? 'validation' : 'train';
}
