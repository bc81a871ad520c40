/**
 * The encrypted quantities of a vertical logistic regression, behind one interface so the same protocol runs with
 * CKKS or, for comparison only, in the clear. See docs/protocol-vertical.md for the packing.
 *
 * A party's gradient travels as S per-slot values z_i + m_i whose residue classes modulo P (the next power of two
 * ≥ its column count p) sum to Xᵀd: the arbiter decrypts every slot and returns the p class sums, and the party
 * subtracts the same class sums of its mask (unmask). Both schemes do the same arithmetic, so their costs compare.
 */
import { gradientSlot, nextPowerOfTwo, residueClassSums, VERTICAL_MASK } from '../he/packing.js';
import type { BatchColumns, GradientInput, VerticalGradient } from '../he/vertical-gradient.js';
import { float64Bytes, toFloat64 } from '../fl/vector-codec.js';
import { ErrorCode, FedcreditError } from '../errors.js';

/** Slots of a plaintext-scheme masked gradient: the CKKS slot count (N = 8192), which also bounds the batch. */
export const PLAINTEXT_SLOTS = 4096;

export interface VerticalCipher {
  readonly scheme: 'ckks' | 'plaintext';
  /** Values of a masked gradient: a mask has one value per slot. */
  readonly slots: number;
  /** Magnitude of the uniform per-slot masks parties draw (VERTICAL_MASK, 2^20; see src/he/packing.ts for why). */
  readonly maskMagnitude: number;
  /** A host's 0.25 * partial scores of one batch, encrypted under the arbiter's key. */
  encryptPartial(values: Float64Array): Uint8Array;
  /**
   * Do the costly part of the next encryptPartial now, while the host waits (CKKS: a public-key encryption of zero,
   * used by one encryptPartial only; nothing for the plaintext scheme).
   */
  prepareEncryption(): void;
  /** The guest's encrypted fore-gradient weights ⊙ (Σ partials) + offset. */
  foreGradient(partials: Uint8Array[], weights: Float64Array, offset: Float64Array): Uint8Array;
  /**
   * A party's feature columns of one batch, checked. Their plaintexts are encoded through gradientInput and, after
   * keep(), kept for the same batch in later epochs (keptBytes says what that holds); dispose() when done.
   */
  batchColumns(columns: Float64Array[]): BatchColumns;
  /**
   * A batch's columns and a mask (`slots` values) for one masked gradient, checked. Its plaintexts can be encoded
   * ahead, one per encodeNext() call, while the party waits for [[d]]; dispose() when done (which disposes the
   * columns too, unless they are kept).
   */
  gradientInput(columns: BatchColumns, mask: Float64Array): PreparedGradient;
  /**
   * Enc(z + mask) for a party's batch columns: `slots` values whose classes modulo P sum to Xᵀd, computed in
   * steps of a few milliseconds (run them with runSteps, or pause between them).
   */
  maskedGradient(foreGradient: Uint8Array, input: PreparedGradient): Generator<void, Uint8Array, void>;
  /** Xᵀd from the arbiter's class sums (one per column) and the mask the party used. */
  unmask(classSums: Float64Array, mask: Float64Array): Float64Array;
}

/** What gradientInput returns: work that can be done before [[d]] arrives (encodeNext says whether more is left). */
export interface PreparedGradient {
  encodeNext(): boolean;
  dispose(): void;
}

/** Xᵀd = (arbiter's class sums of z + m) − (class sums of m), for the columns the sums were asked for. */
function unmask(classSums: Float64Array, mask: Float64Array): Float64Array {
  const maskSums = residueClassSums(mask, classSums.length);
  return classSums.map((v, j) => v - maskSums[j]!);
}

/**
 * CKKS under the job's gradient key: the arbiter's (scheme ckks) or the collective one (ckks-threshold), whose
 * decryption's flooding is sized for feature values up to `maxFeature` (VERTICAL_MAX_FEATURE): a batch with a larger
 * value is refused before anything is encrypted.
 */
export function ckksCipher(gradient: VerticalGradient, publicKey: Uint8Array, galoisKeys: Uint8Array, maxFeature = Number.POSITIVE_INFINITY): VerticalCipher {
  return {
    scheme: 'ckks',
    slots: gradient.engine.slotCount,
    maskMagnitude: VERTICAL_MASK,
    encryptPartial: (values) => gradient.encryptSlots(values, publicKey),
    prepareEncryption: () => gradient.prepareEncryption(publicKey),
    foreGradient: (partials, weights, offset) => gradient.foreGradient(partials, weights, offset),
    batchColumns(columns) {
      for (const column of columns)
        for (const v of column)
          if (Math.abs(v) > maxFeature)
            throw new FedcreditError(
              ErrorCode.JOB_INVALID,
              `a feature value of ${v} exceeds ${maxFeature} in magnitude, which the collective key's decryption is sized for`,
              'set training.clip to at most 32 (default 5) so every standardised feature stays within it',
            );
      return gradient.batchColumns(columns);
    },
    gradientInput: (columns, mask) => gradient.gradientInput(columns, mask),
    maskedGradient: (d, input) => gradient.maskedGradientSteps(d, input as GradientInput, galoisKeys),
    unmask,
  };
}

/** The plaintext scheme has nothing to encode: keeping a batch keeps its columns. */
class PlainColumns implements BatchColumns {
  kept = false;
  readonly keptBytes: number;

  constructor(readonly columns: Float64Array[]) {
    this.keptBytes = columns.length * (columns[0]?.length ?? 0) * 8;
  }

  keep(): void {
    this.kept = true;
  }

  dispose(): void {}
}

class PlainGradientInput implements PreparedGradient {
  constructor(
    readonly columns: Float64Array[],
    readonly mask: Float64Array,
  ) {}

  encodeNext(): boolean {
    return false;
  }

  dispose(): void {}
}

/** The same protocol with every vector in the clear: for measuring what encryption costs, never for real data. */
export const plaintextCipher: VerticalCipher = {
  scheme: 'plaintext',
  slots: PLAINTEXT_SLOTS,
  maskMagnitude: VERTICAL_MASK,
  encryptPartial: (values) => float64Bytes(values),
  prepareEncryption: () => undefined,
  foreGradient(partials, weights, offset) {
    const sum = new Float64Array(weights.length);
    for (const p of partials) {
      const v = toFloat64(p);
      for (let i = 0; i < Math.min(v.length, sum.length); i++) sum[i]! += v[i]!;
    }
    for (let i = 0; i < sum.length; i++) sum[i] = weights[i]! * sum[i]! + offset[i]!;
    return float64Bytes(sum);
  },
  batchColumns(columns) {
    const S = PLAINTEXT_SLOTS;
    const B = columns[0]?.length ?? 0;
    if (columns.length === 0 || columns.length > S || B > S) throw new RangeError(`a masked gradient takes 1 to ${S} columns of at most ${S} records`);
    return new PlainColumns(columns);
  },
  gradientInput(columns, mask) {
    const S = PLAINTEXT_SLOTS;
    if (!(columns instanceof PlainColumns)) throw new RangeError('gradientInput takes what batchColumns returned');
    if (mask.length !== S) throw new RangeError(`the mask needs one value per slot (${S}), got ${mask.length}`);
    return new PlainGradientInput(columns.columns, mask);
  },
  /**
   * The CKKS layout in the clear: record r's product with column c lands in its gradientSlot, so the slots of
   * class c sum to g_c; then the per-slot mask.
   */
  *maskedGradient(d, input) {
    if (!(input instanceof PlainGradientInput)) throw new RangeError('maskedGradient takes what gradientInput returned');
    const { columns, mask } = input;
    const S = PLAINTEXT_SLOTS;
    const fore = toFloat64(d);
    if (columns[0]!.length > fore.length) throw new RangeError(`a masked gradient takes columns of at most ${fore.length} records`);
    const P = nextPowerOfTwo(columns.length);
    const z = new Float64Array(S);
    columns.forEach((column, c) => {
      for (let r = 0; r < column.length; r++) z[gradientSlot(r, c, P, S)]! += column[r]! * fore[r]!;
    });
    for (let i = 0; i < S; i++) z[i]! += mask[i]!;
    return float64Bytes(z);
  },
  unmask,
};
