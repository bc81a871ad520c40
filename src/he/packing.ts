/**
 * Packing maths of the CKKS engine as pure functions: slot layouts, the vertical gradient's generalized diagonals
 * and their baby-step giant-step plan, rotation steps and Galois elements, chunking of vectors into ciphertexts,
 * and the vertical pipeline's scale bookkeeping. Nothing here imports SEAL (or a file that does), so the plaintext
 * twin of the vertical cipher and anything that needs only layouts loads no WASM (test/he-packing.test.ts walks the
 * imports to keep it so).
 */
import { ErrorCode, FedcreditError } from '../errors.js';
import type { CkksParams } from './params.js';

/**
 * Scale (bits) of the fore-gradient [[d]] after the guest's rescale: the second level's modulus less the products'
 * room (the diagonal's scale and VERTICAL_VALUE_BITS + 1 above the point), so the products use level 1 to the full.
 * On VERTICAL_CKKS_PARAMS (level 1 of 110 bits) that is 2^50: the rescale adds about 2^11 in absolute terms at
 * that scale to every slot, 2^-39, far below the diagonals' own rounding (see VERTICAL_DIAGONAL_SCALE_BITS); at
 * 2^40 it would be 1.3e-9 per record, ~4e-6 of a typical gradient. On VERTICAL_THRESHOLD_CKKS_PARAMS (180 bits)
 * it is 2^120, which is what lets a flooded collective decryption keep the gradient's precision
 * (docs/threshold-ckks.md, "Vertical jobs under a collective key").
 */
export function verticalForeScaleBits(params: CkksParams): number {
  const levelOneBits = params.coeffModulusBits.slice(0, -2).reduce((a, b) => a + b, 0);
  return levelOneBits - VERTICAL_DIAGONAL_SCALE_BITS - (VERTICAL_VALUE_BITS + 1);
}

/**
 * Scale (bits) at which a party encodes its feature diagonals in maskedGradient. Encoding rounds the plaintext
 * polynomial to integers, which perturbs every slot by about sqrt(N/24)/2^bits ≈ 18.5/2^bits: at 2^20 that is
 * 1.8e-5 per feature value and the gradient is off by ~1.6e-5 relative; at 2^27 the error is ~1.4e-7 relative,
 * and 2^27 is the largest scale that, times the fore-gradient's 2^50, still leaves room for a 2^30 mask
 * (|z + m| < 2^32) in the 110 bits of level 1.
 */
export const VERTICAL_DIAGONAL_SCALE_BITS = 27;

/** Values of a masked gradient must stay below 2^32 in magnitude: what the modulus leaves above its scale. */
const VERTICAL_VALUE_BITS = 32;

/** Fewest bits of the fore-gradient's scale and of the per-record weights' that keep [[d]] at ~2^-39 relative. */
const VERTICAL_MIN_FORE_SCALE_BITS = 50;
const VERTICAL_MIN_WEIGHT_SCALE_BITS = 40;

/**
 * Largest per-slot mask magnitude maskedGradient accepts (|z + m| < 2^32 then holds for any |z| < 2^30). The
 * decryptor sums each residue class's S/P slots inside the decryption before it decodes, so what must decode is a class
 * sum: VERTICAL_MAX_MASK_CLASS_SUM bounds those of the mask. The per-bin sums' masks (label-sums.ts) use the whole
 * 2^30, as their class sums are zero; a gradient's uniform masks use VERTICAL_MASK, for a larger one costs the
 * party's g precision in proportion.
 */
export const VERTICAL_MAX_MASK = 2 ** 30;

/**
 * Largest class sum of a mask (modulo the ciphertext's P) that maskedGradient accepts: with |g_j| < 2^30 a class
 * sum of z + m then stays below the 2^32 the modulus leaves above the scale (intermediate sums of the rotations may
 * exceed it: the arithmetic is exact modulo q, only the decrypted value must fit). Uniform masks in ±2^20 have class
 * sums of standard deviation 2^20·sqrt(S/(3P)), at most 2^25.2 for S = 4,096: 2^31 is 60 of those away.
 */
export const VERTICAL_MAX_MASK_CLASS_SUM = 2 ** 31;

/**
 * Magnitude of the per-slot masks parties use: m_i uniform in ±2^20, independent for each of the S = 4096 slots.
 *
 * Hiding: a slot holds z_i, a partial sum of X·d over P records, |z_i| < 2^-4 for features clipped at 5 (d
 * carries the guest's 1/Σweights; 1.2e-2 and 2.5e-2 at most in the tests for P = 16 and 64). The statistical
 * distance between z_i + m_i and m_i alone is |z_i|/2^21: below 2^-25 per slot. Over a whole ciphertext it is at
 * most Σ_i |z_i|/2^21 ≤ Σ_{j<p} Σ_r |X[r][j]·d[r]| / 2^21 ≤ 5p·Σ_r|d_r| / 2^21: with Σ|d| ≤ 1 (Σ weights = 1,
 * |0.25·u + 0.5 − y| of order 1) that is 2^-14.9 for p = 14, and 2^-19 to 2^-18 on the tests' batches. The class
 * sums g_j + Σ_i m_i, all the arbiter sees, hide g_j better still (a sum of S/P uniforms).
 *
 * Precision: encoding and decoding values of 2^20 at scale 2^77 in double precision leave ~1e-16·|m| per slot,
 * and a class sum adds S/P of them: measured rms 6e-9 absolute for P = 1 (4096 slots per class), 2e-9 for
 * P = 16, 1e-9 for P = 64, largest of many draws 9e-9 (the test bounds it by 3e-14·|m|); the float64 sums
 * themselves are compensated (residueClassSums) and add an ulp of |g_j + Σ m| (≤ 2^-27 ≈ 7e-9). A larger mask
 * hides better and costs precision in proportion (2^30: ~1e-5).
 */
export const VERTICAL_MASK = 2 ** 20;

/** The next power of two ≥ n (n ≥ 1). */
export function nextPowerOfTwo(n: number): number {
  let P = 1;
  while (P < n) P *= 2;
  return P;
}

/**
 * The sums of `values` over residue classes modulo P = nextPowerOfTwo(count): out[j] = Σ_{i ≡ j (mod P)} values[i]
 * for j < count, each summed with Neumaier's compensation (error ~1 ulp of the result, independent of how many
 * values there are). This is what the arbiter returns for a masked gradient (the values are its S decrypted slots)
 * and what a party subtracts (the values are its S slot masks).
 */
export function residueClassSums(values: Float64Array, count: number): Float64Array {
  if (!Number.isInteger(count) || count < 1 || count > values.length) throw new RangeError(`count must be an integer from 1 to ${values.length}, got ${count}`);
  const P = nextPowerOfTwo(count);
  if (values.length % P !== 0) throw new RangeError(`${values.length} values do not split into residue classes modulo ${P}`);
  const out = new Float64Array(count);
  for (let j = 0; j < count; j++) {
    let sum = 0;
    let compensation = 0;
    for (let i = j; i < values.length; i += P) {
      const v = values[i]!;
      const t = sum + v;
      compensation += Math.abs(sum) >= Math.abs(v) ? sum - t + v : v - t + sum;
      sum = t;
    }
    out[j] = sum + compensation;
  }
  return out;
}

/**
 * How maskedGradient computes z = Σ_{k<P} diag_k ⊙ rot([[d]], k) for p columns, by baby-step giant-step with k =
 * baby·a + b: `baby` − 1 rotations of [[d]] by 1, then `giant` − 1 rotations by `baby` of the accumulator
 * (Horner's rule), all at level 1. Both use only the Galois keys for steps 1 and `baby`.
 */
export interface GradientPlan {
  /** P: the next power of two ≥ p; the arbiter sums slots over residue classes modulo P. */
  period: number;
  /** g: baby steps (rotations of [[d]] by 0, 1, …, g − 1). */
  baby: number;
  /** P/g: giant steps (the accumulator is rotated by g between them). */
  giant: number;
  /** (g − 1) + (P/g − 1). */
  rotations: number;
}

/**
 * The baby-step giant-step split of maskedGradient for `columns` feature columns (1 ≤ columns ≤ slotCount): the
 * fewest rotations (all on the same level, so all cost the same), and of equal counts the fewer baby steps (fewer
 * rotated copies of [[d]] held at once).
 */
export function verticalGradientPlan(columns: number, slotCount = 4096): GradientPlan {
  if (!Number.isInteger(columns) || columns < 1 || columns > slotCount) throw new RangeError(`a party has 1 to ${slotCount} feature columns, got ${columns}`);
  const period = nextPowerOfTwo(columns);
  let best: GradientPlan | undefined;
  for (let baby = 1; baby <= period; baby *= 2) {
    const giant = period / baby;
    const rotations = baby - 1 + giant - 1;
    if (!best || rotations < best.rotations) best = { period, baby, giant, rotations };
  }
  return best!;
}

/**
 * The plan for `columns` columns with `baby` baby steps (a power of two), capped at the period: what a kernel that
 * shares its baby-step rotations over several column groups uses for each group (VerticalGradient.maskedBinSums).
 */
export function gradientPlanWithBaby(columns: number, baby: number, slotCount = 4096): GradientPlan {
  const { period } = verticalGradientPlan(columns, slotCount);
  if (!Number.isInteger(Math.log2(baby)) || baby < 1) throw new RangeError(`baby steps must be a power of two, got ${baby}`);
  const b = Math.min(baby, period);
  return { period, baby: b, giant: period / b, rotations: b - 1 + period / b - 1 };
}

/**
 * The baby steps g for per-bin sums over `chunks` ciphertexts of rows and column groups of `periods`, k = g·a + b:
 * each chunk's value is rotated for its baby steps b below min(g, P) (shared by every group), and each group's
 * accumulator P/min(g, P) − 1 times by g once the chunks are summed (rotation is linear), so the fewest rotations
 * minimise chunks·(min(g, widest P)/R − 1) + Σ_groups (P/min(g, P) − 1). With rows repeated R times (`repeats`: one
 * chunk of a node's last rows, BinSums, rowRepeats) only the diagonals k ≡ 0 (mod R) are nonzero, so g is a multiple
 * of R and the baby steps are b = 0, R, …, one rotation by R each. g stays within the steps the arbiter's Galois keys
 * hold (at most 64 at 4096 slots; verticalRotationSteps) wherever a group has giant steps; unrepeated rows stay
 * within them in any case.
 */
export function sharedBabySteps(chunks: number, periods: readonly number[], slotCount = 4096, repeats = 1): number {
  const largest = Math.max(...verticalRotationSteps(slotCount));
  const widest = Math.max(...periods);
  let best = repeats;
  let bestRotations = Infinity;
  for (let g = repeats; g <= Math.max(largest, widest); g *= 2) {
    const giants = periods.reduce((s, P) => s + P / Math.min(g, P) - 1, 0);
    if (g > largest && (giants > 0 || repeats === 1)) break;
    const rotations = chunks * (Math.max(1, Math.min(g, widest) / repeats) - 1) + giants;
    if (rotations < bestRotations) {
      best = g;
      bestRotations = rotations;
    }
  }
  return best;
}

/**
 * Every rotation step maskedGradient uses for 1 to slotCount columns: 1 (baby steps) and each plan's g (giant
 * steps), all powers of two; for 4096 slots {1, 2, 4, 8, 16, 32, 64}. The arbiter's keys (key-ceremony.ts) hold exactly these.
 */
export function verticalRotationSteps(slotCount = 4096): number[] {
  const steps = new Set<number>();
  for (let P = 1; P <= slotCount; P *= 2) {
    for (const step of planRotationSteps(verticalGradientPlan(P, slotCount))) steps.add(step);
  }
  return [...steps].sort((a, b) => a - b);
}

/**
 * The rotation steps of a collective gradient key (ckks-threshold): those of maskedGradient (verticalRotationSteps).
 * The class sums need no key: every shareholder makes them inside its decryption share (classSumTransform).
 */
export function verticalCollectiveRotationSteps(slotCount: number): number[] {
  return verticalRotationSteps(slotCount);
}

/**
 * The steps of a collective gradient key made between 2026-12-06 and 2026-12-07, when every shareholder summed the
 * classes by key-switched rotations: verticalRotationSteps and every power of two below slotCount (for 8,192 slots,
 * 128 to 4,096 beside 1 to 64). `audit replay` recognises such a ledger's key shares by their count.
 */
export function legacyClassSumRotationSteps(slotCount: number): number[] {
  const steps = new Set(verticalRotationSteps(slotCount));
  for (let step = 1; step < slotCount; step *= 2) steps.add(step);
  return [...steps].sort((a, b) => a - b);
}

/** The rotation steps a plan uses: 1 for its baby steps (if any), g for its giant steps (if any). */
export function planRotationSteps(plan: GradientPlan): number[] {
  const steps: number[] = [];
  if (plan.baby > 1) steps.push(1);
  if (plan.giant > 1) steps.push(plan.baby);
  return steps;
}

/** SEAL's Galois element for a CKKS rotation by `step` slots (GaloisTool::get_elt_from_step): 3^step mod 2N, negative steps via N/2 − |step|. */
export function galoisElementForStep(degree: number, step: number): number {
  const slots = degree / 2;
  if (!Number.isInteger(step) || step === 0 || Math.abs(step) >= slots) throw new RangeError(`a rotation step must be a nonzero integer below ${slots} in magnitude, got ${step}`);
  const exponent = step > 0 ? step : slots + step;
  let element = 1;
  for (let i = 0; i < exponent; i++) element = (element * 3) % (2 * degree);
  return element;
}

/** Ciphertexts a vector of `length` values takes at `slots` values each: slot-full blocks, at least one. */
export function blockCount(length: number, slots: number): number {
  return Math.max(1, Math.ceil(length / slots));
}

/**
 * The scale bits of the vertical pipeline under `params`, or FC_CKKS_PARAMS if they leave too little room: at least
 * two data levels, 33 bits above the fore-gradient's scale 2^90 on the top level, and 33 bits above the products'
 * scale (2^50 · 2^27) on level 1. `weightBits` is the scale of w, chosen so that w · [[0.25·u]], rescaled by the last
 * data prime, lands at 2^50; `foreTopBits` is the fore-gradient's scale before that rescale.
 */
export function verticalScaleBits(params: CkksParams): { weightBits: number; foreTopBits: number; foreBits: number } {
  const bits = params.coeffModulusBits;
  const dataBits = bits.slice(0, -1);
  const topBits = dataBits.reduce((a, b) => a + b, 0);
  const lastBits = dataBits[dataBits.length - 1]!;
  const foreBits = verticalForeScaleBits(params);
  const weightBits = foreBits + lastBits - params.scaleBits;
  const foreTopBits = params.scaleBits + weightBits;
  const productBits = foreBits + VERTICAL_DIAGONAL_SCALE_BITS;
  if (
    dataBits.length < 2 ||
    foreBits < VERTICAL_MIN_FORE_SCALE_BITS ||
    weightBits < VERTICAL_MIN_WEIGHT_SCALE_BITS ||
    topBits - foreTopBits < VERTICAL_VALUE_BITS + 1 ||
    topBits - lastBits - productBits < VERTICAL_VALUE_BITS + 1
  ) {
    throw new FedcreditError(
      ErrorCode.CKKS_PARAMS,
      `CKKS parameters ${bits.join(',')} with scale 2^${params.scaleBits} cannot run vertical logistic regression (the fore-gradient, at 2^${foreBits} after its rescale, needs at least 2^${VERTICAL_MIN_FORE_SCALE_BITS}, the per-record weights at 2^${weightBits} at least 2^${VERTICAL_MIN_WEIGHT_SCALE_BITS}, and the second level room for products at 2^${foreBits}·2^${VERTICAL_DIAGONAL_SCALE_BITS} below 2^${VERTICAL_VALUE_BITS + 1})`,
      'use VERTICAL_CKKS_PARAMS (N=8192, [60,50,40,60], scale 2^40) or, under a collective key, VERTICAL_THRESHOLD_CKKS_PARAMS',
    );
  }
  return { weightBits, foreTopBits, foreBits };
}

/**
 * The slot where the masked gradient holds record r's product with column c: (r − k) mod S for k = (r − c) mod P,
 * the slot of diag_k ⊙ rot([[d]], k) that holds it (see VerticalGradient.maskedGradient), so that the slots of
 * residue class c modulo P sum to g_c.
 */
export function gradientSlot(record: number, column: number, period: number, slots: number): number {
  const k = (record - column) & (period - 1);
  return record >= k ? record - k : record - k + slots;
}

/** The diagonal k (= g·a + b) that the i-th step of the gradient's encoding order uses: a from P/g − 1 down, b up. */
export function diagonalOrder(plan: GradientPlan, i: number): number {
  const { baby: g, giant: A } = plan;
  return g * (A - 1 - Math.floor(i / g)) + (i % g);
}

/**
 * rot(diag_k, −g·a) for k = g·a + b over `slots` slots: slot i holds X[(i + b) mod S][(i − g·a) mod P], i.e. row r
 * sits in slot (r − b) mod S with column (r − k) mod P; null when every value is zero.
 */
export function generalizedDiagonal(columns: Float64Array[], plan: GradientPlan, k: number, slots: number): Float64Array | null {
  const S = slots;
  const P = plan.period;
  const b = k % plan.baby;
  const p = columns.length;
  const B = columns[0]!.length;
  const diagonal = new Float64Array(S);
  let nonzero = false;
  for (let r = 0; r < B; r++) {
    const column = (r - k) & (P - 1);
    if (column < p) {
      const x = columns[column]![r]!;
      if (x !== 0) {
        diagonal[r >= b ? r - b : r - b + S] = x;
        nonzero = true;
      }
    }
  }
  return nonzero ? diagonal : null;
}

export function requireFinite(values: Float64Array, what: string): void {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i]!)) throw new RangeError(`${what} holds a non-finite value (${values[i]}) at position ${i}`);
  }
}

/** Run a computation in steps (such as VerticalGradient.maskedGradientSteps) to its end, without pausing. */
export function runSteps<T>(steps: Generator<void, T, void>): T {
  for (;;) {
    const next = steps.next();
    if (next.done) return next.value;
  }
}

/** Bits a sum other than the moments keeps above the scale at level 1 (2^30: about 10^9, n·Δw with room to spare). */
const LEVEL_1_ROOM_BITS = 30;

/**
 * The data level a sum of `purpose` travels and opens at under a collective key with `params`. The moments (sums
 * of squares of raw features) need the whole modulus: 160 bits at level 0 of the default chain, 79 of them above
 * the scale 2^80. Every other sum (counts, n·Δw updates, evaluation counts) goes to level 1, the last data prime
 * dropped, when that leaves at least 2^30 above the scale (the default chain: its two 60-bit primes, about 38 bits
 * above it); there a contribution, the aggregate and each decryption share are 2/3 of their level-0 size. Public-key
 * encryption at level 1 is SEAL's level-0 encryption divided by the dropped prime, so its noise is the same
 * rounding (freshSumNoiseBits) and the flooding is unchanged.
 */
export function collectiveLevel(params: CkksParams, purpose: string): number {
  return purpose !== 'moments' && params.coeffModulusBits.length >= 3 && roomBits(params, 1) >= LEVEL_1_ROOM_BITS ? 1 : 0;
}

/** log2 of a bound below which a sum's |values| stay decodable at data `level` (Q_level / 2 / scale; a b-bit prime exceeds 2^(b−1)). */
export function roomBits(params: CkksParams, level: number): number {
  const primes = params.coeffModulusBits.slice(0, -1 - level);
  return primes.reduce((bits, b) => bits + b - 1, 0) - 1 - params.scaleBits;
}

/** Most participants whose contributions collectiveBound leaves room for: 2^7. */
const MAX_SUMMANDS_BITS = 7;

/**
 * The largest |value| a contribution may carry at `level`, so that the sum of up to 128 contributions stays
 * decodable: beyond it the sum would wrap around the modulus and open to garbage.
 */
export function collectiveBound(params: CkksParams, level: number): number {
  return 2 ** (roomBits(params, level) - MAX_SUMMANDS_BITS);
}

/**
 * Where a sum's ciphertexts live: the data level (0 = the whole modulus; 1 after dropping the last prime) and
 * whether they travel uncompressed. Under a collective key every word is uniform mod its prime, which zstd barely
 * shrinks (a few percent) at a CPU cost larger than SEAL's encryption, so collective sums travel uncompressed.
 */
export interface SumLayout {
  level: number;
  uncompressed: boolean;
}

/** Fresh encryptions on the whole modulus, zstd-compressed: the single-key sums. */
export const TOP_LEVEL_ZSTD: SumLayout = { level: 0, uncompressed: false };
