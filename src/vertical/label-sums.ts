/**
 * Per-bin sums of a per-row value the guest holds (its labels; in boosting, each row's gradient and hessian) over a
 * host's bins, without the values or the bins leaving their owners (docs/protocol-vertical.md, "Binning, WOE and
 * IV"; docs/protocol-boost.md). The guest encrypts its training labels under its own CKKS key,
 * 4,096 records per ciphertext in the shared row order. For each chunk the host turns [[y]] into the form the
 * vertical gradient takes ([[y]] · 1, rescaled to ≈ 2^50) and multiplies it with the one-hot columns of its bins, with
 * the same generalized-diagonal product as the gradient: the slots of residue class j (mod P) then sum to
 * Σ_r y_r·[bin(r) = j], the number of defaults in bin j. The chunks are added, a mask whose class sums are zero
 * hides every single slot, and the guest decrypts and sums the classes: it learns the count of defaults per bin,
 * never which record lies in which bin.
 */
import { randomFillSync } from 'node:crypto';
import type { CkksEngine } from '../he/engine.js';
import { nextPowerOfTwo } from '../he/packing.js';
import { VerticalGradient, type BatchColumns } from '../he/vertical-gradient.js';
import { ErrorCode, FedcreditError } from '../errors.js';

/** At most this many bin columns share one ciphertext (the diagonal product costs about one multiplication per column). */
export const BIN_COLUMNS_PER_CIPHERTEXT = 128;

/** A per-row value of the guest (its 0/1 labels, a gradient) in the shared row order, public-key encrypted in chunks of slotCount records. */
export function encryptRowValues(engine: CkksEngine, values: ArrayLike<number>, publicKey: Uint8Array): Uint8Array[] {
  const gradient = VerticalGradient.of(engine);
  const chunks: Uint8Array[] = [];
  for (let start = 0; start < values.length; start += engine.slotCount) {
    const end = Math.min(values.length, start + engine.slotCount);
    chunks.push(
      gradient.encryptSlots(
        Float64Array.from({ length: end - start }, (_, i) => values[start + i]!),
        publicKey,
      ),
    );
  }
  return chunks;
}

/** Features (by index) packed into ciphertexts of at most `budget` bin columns each, in order. */
export function columnGroups(binsPerFeature: readonly number[], budget = BIN_COLUMNS_PER_CIPHERTEXT): number[][] {
  const groups: number[][] = [];
  let current: number[] = [];
  let used = 0;
  binsPerFeature.forEach((bins, f) => {
    if (bins > budget) throw new RangeError(`feature ${f} has ${bins} bins; at most ${budget} fit in one ciphertext`);
    if (used + bins > budget && current.length > 0) {
      groups.push(current);
      current = [];
      used = 0;
    }
    current.push(f);
    used += bins;
  });
  if (current.length > 0) groups.push(current);
  return groups;
}

/** Half-width of a label-sum mask before centring: a slot's value (a count of at most 128 · chunks) is hidden up
 * to a statistical distance of about count / 2^28 (2^-11 for 4,096 chunks, i.e. 16M training rows). */
export const LABEL_SUM_MASK = 2 ** 28;

/**
 * A mask of one value per slot, uniform in ±LABEL_SUM_MASK before centring (within ±2^29 after it), whose sum
 * over every residue class modulo nextPowerOfTwo(count) is zero (up to rounding): it hides each slot and vanishes
 * from the class sums. maskedGradient takes masks up to 2^30; the rounding it adds stays far below a count's ½.
 */
export function zeroClassSumMask(slots: number, count: number): Float64Array {
  const P = nextPowerOfTwo(count);
  const random = new Uint32Array(slots);
  randomFillSync(random);
  const mask = Float64Array.from(random, (r) => (r / 2 ** 32 - 0.5) * 2 * LABEL_SUM_MASK);
  for (let j = 0; j < P; j++) {
    let sum = 0;
    for (let i = j; i < slots; i += P) sum += mask[i]!;
    const mean = sum / (slots / P);
    for (let i = j; i < slots; i += P) mask[i]! -= mean;
  }
  return mask;
}

/** Bytes of encoded diagonals a boosting host keeps for its whole training (beyond it, it encodes them per product). */
export const KEPT_DIAGONAL_BUDGET_BYTES = 512 * 2 ** 20;

/**
 * The host's side for one group of features: the encrypted, masked per-bin sums of the guest's value (default
 * counts for labels, g or h in boosting), one class per bin column (features in order, bins in order). `bins[f][r]`
 * is the bin of row r for feature f of the group; `binCounts[f]` the number of bins of that feature. Every slot of
 * the products is a sum of at most 128 values of magnitude ≤ 1 per chunk, which LABEL_SUM_MASK is sized for.
 *
 * Sums over a subset of the rows (a tree node) multiply the guest's [[value]] by the rows' 0/1 indicator (the
 * weights of the fore-gradient step) rather than the columns, so the columns' encoded diagonals are the same for
 * every node: with `keep`, each chunk's are encoded once and kept until dispose().
 */
export class BinSums {
  private readonly kept = new Map<number, BatchColumns>();
  private readonly rows: number;
  readonly count: number;

  constructor(
    private readonly engine: CkksEngine,
    private readonly bins: readonly Uint16Array[],
    private readonly binCounts: readonly number[],
    private readonly keep = false,
  ) {
    this.rows = bins[0]?.length ?? 0;
    this.count = binCounts.reduce((a, b) => a + b, 0);
  }

  /** Whether keeping every chunk's diagonals for `groups` groups of `rows` rows fits KEPT_DIAGONAL_BUDGET_BYTES. */
  static keepable(engine: CkksEngine, rows: number, groups: number): boolean {
    const plainBytes = 2 * engine.slotCount * engine.chain[1]!.primes.length * 8;
    return Math.ceil(rows / engine.slotCount) * groups * BIN_COLUMNS_PER_CIPHERTEXT * plainBytes <= KEPT_DIAGONAL_BUDGET_BYTES;
  }

  private columns(c: number): BatchColumns {
    const held = this.kept.get(c);
    if (held) return held;
    const S = this.engine.slotCount;
    const start = c * S;
    const B = Math.min(this.rows, start + S) - start;
    const columns: Float64Array[] = [];
    this.bins.forEach((assigned, f) => {
      for (let b = 0; b < this.binCounts[f]!; b++) {
        const column = new Float64Array(B);
        for (let i = 0; i < B; i++) if (assigned[start + i] === b) column[i] = 1;
        columns.push(column);
      }
    });
    const batch = VerticalGradient.of(this.engine).batchColumns(columns);
    if (this.keep) {
      batch.keep();
      this.kept.set(c, batch);
    }
    return batch;
  }

  /** The masked sums of the rows of `inRows` (a 0/1 flag per row; all rows without it). */
  sums(valueChunks: Uint8Array[], galoisKeys: Uint8Array, inRows?: Uint8Array): Uint8Array {
    const gradient = VerticalGradient.of(this.engine);
    const S = this.engine.slotCount;
    if (valueChunks.length !== Math.ceil(this.rows / S)) {
      throw new FedcreditError(ErrorCode.PROTOCOL, `the guest sent ${valueChunks.length} per-row ciphertexts for ${this.rows} rows`, 'restart the job: the parties disagree on the rows');
    }
    const sums: Uint8Array[] = [];
    for (let c = 0; c < valueChunks.length; c++) {
      const start = c * S;
      const B = Math.min(this.rows, start + S) - start;
      const weights = inRows ? Float64Array.from(inRows.subarray(start, start + B)) : new Float64Array(B).fill(1);
      if (!weights.some((w) => w !== 0)) continue;
      const fore = gradient.foreGradient([valueChunks[c]!], weights, new Float64Array(B));
      // One mask suffices: it is added once, to the first chunk summed, and the sum of the chunks is what the guest sees.
      const mask = sums.length === 0 ? zeroClassSumMask(S, this.count) : new Float64Array(S);
      const input = gradient.gradientInput(this.columns(c), mask);
      try {
        sums.push(gradient.maskedGradientOf(fore, input, galoisKeys));
      } finally {
        input.dispose();
      }
    }
    if (sums.length === 0) throw new RangeError('per-bin sums over no rows');
    return sums.length === 1 ? sums[0]! : gradient.sumMaskedGradients(sums);
  }

  dispose(): void {
    for (const batch of this.kept.values()) batch.dispose();
    this.kept.clear();
  }
}

/** The host's per-bin sums over all rows for one group of features (BinSums, nothing kept). */
export function hostBinSums(engine: CkksEngine, valueChunks: Uint8Array[], galoisKeys: Uint8Array, bins: readonly Uint16Array[], binCounts: readonly number[]): Uint8Array {
  return new BinSums(engine, bins, binCounts).sums(valueChunks, galoisKeys);
}

/** The guest's side: the sum of each of the `count` bin columns (decrypted, classes summed). */
export function openBinSums(engine: CkksEngine, ciphertext: Uint8Array, count: number, secretKey: Uint8Array): Float64Array {
  return VerticalGradient.of(engine).decryptGradient(ciphertext, count, secretKey);
}

/** The guest's side for labels: the default count of each of the `count` bin columns (decrypted, classes summed, rounded). */
export function openLabelSums(engine: CkksEngine, ciphertext: Uint8Array, count: number, secretKey: Uint8Array): number[] {
  const sums = openBinSums(engine, ciphertext, count, secretKey);
  return Array.from(sums, (v) => {
    const n = Math.round(v);
    // Each class sum is an integer count; an error near one half means the CKKS noise or the mask was not as designed.
    if (Math.abs(v - n) > 0.25 || n < 0)
      throw new FedcreditError(ErrorCode.PROTOCOL, `a per-bin label sum decrypted to ${v}, not a count`, "restart the job; if it recurs, report it with both parties' logs");
    return n;
  });
}
