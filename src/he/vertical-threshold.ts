/**
 * Collective decryption of a vertical job's masked gradients (encryption.scheme ckks-threshold in a vertical-lr job):
 * the gradient key is the sum of one secret share per party (the arbiter, the guest, every host), so no party and no
 * coalition short of all of them decrypts. Each shareholder gives one flooded decryption share per masked gradient
 * (src/he/threshold/decrypt.ts) of the gradient with its residue classes summed (class-sums.ts); the arbiter,
 * which holds a share too, adds them and opens the class sums, as it decrypts them alone under the single key. The
 * parameters (VERTICAL_THRESHOLD_CKKS_PARAMS) put the masked gradient at scale 2^147, so the flooding that hides its
 * noise to 2^−40 costs about 10^−11 per class sum (docs/threshold-ckks.md, "Vertical jobs under a collective key").
 */
import { VERTICAL_DIAGONAL_SCALE_BITS, verticalScaleBits } from './packing.js';
import { DEFAULT_STATISTICAL_SECURITY, floodingSigma, floodingSlotError, type DecryptionRule } from './threshold/decrypt.js';
import type { ThresholdContext } from './threshold/context.js';

/** The one class of ciphertext a vertical shareholder decrypts. */
export const VERTICAL_GRADIENT_RULE = 'vertical-masked-gradient';

/**
 * Largest |feature value| a party may put in a masked gradient under a collective key: the flooding is sized for
 * it (verticalGradientNoiseBits). Standardised features are clipped at `clip` (default 5), WOE values stay far
 * below it; a larger value would make the gradient's noise exceed what the flooding hides.
 */
export const VERTICAL_MAX_FEATURE = 32;

/**
 * b: log2 of a bound on ‖e_ct‖_∞ of a masked gradient with its classes summed (classSumTransform), what every
 * shareholder decrypts, under a key of `parties` shares, for any column count and period and features bounded by
 * VERTICAL_MAX_FEATURE. The fore-gradient's noise after its rescale is
 * the rounding r0 + r1·s, of standard deviation σ_d = √(N·n/18 + 1/6) per coefficient (measured 2^5.73 for n = 3,
 * N = 16384: the model gives 2^5.70). A product with a diagonal encoded at Δ_p = 2^27 multiplies it by about
 * Δ_p·max|x|, and the P products of maskedGradient add up: rms(e_ct) ≤ c·√P·Δ_p·max|x|·σ_d with c = 2^2.3 measured
 * (uniform features in ±5, P = 16 and 64: rms 2^38.7 and 2^40.4 against 2^36.4 and 2^37.4 without c). The class sum
 * adds S/P images of e_ct under Galois automorphisms, which permute its coefficients up to sign but fix some (the
 * constant coefficient, for one): their copies add up coherently, so ‖Σ‖_∞ ≤ (S/P)·‖e_ct‖_∞ and no better (measured,
 * P = 16: max 2^41.2 before the sum, 2^48.9 after, 2^7.7 for S/P = 2^9). (S/P)·√P is largest at P = 1: the bound
 * takes S·c·Δ_p·max|x|·σ_d with c = 16 and 8 standard deviations (a coefficient of e_ct exceeds it with probability
 * about 10^−15). The sums are made inside the decryption, without key switching, which adds nothing to it.
 */
export function verticalGradientNoiseBits(degree: number, parties: number): number {
  const sigmaFore = Math.sqrt((degree * parties) / 18 + 1 / 6);
  const slots = degree / 2;
  return Math.log2(8 * 16 * slots * 2 ** VERTICAL_DIAGONAL_SCALE_BITS * VERTICAL_MAX_FEATURE * sigmaFore);
}

/** The exact scale of a masked gradient under the context's parameters (what VerticalGradient.maskedGradient makes). */
export function verticalGradientScale(context: ThresholdContext): number {
  const { foreTopBits } = verticalScaleBits(context.params);
  const top = context.levels[0]!.ring.primes;
  return (2 ** foreTopBits / Number(top[top.length - 1]!)) * 2 ** VERTICAL_DIAGONAL_SCALE_BITS;
}

/** The rule every shareholder of a vertical job applies: level 1, the masked gradient's scale, the noise bound above. */
export function verticalGradientRule(context: ThresholdContext, parties: number): DecryptionRule {
  return { name: VERTICAL_GRADIENT_RULE, level: 1, scale: verticalGradientScale(context), noiseBits: verticalGradientNoiseBits(context.degree, parties) };
}

/** The standard deviation of the flooding's error in each opened slot of a masked gradient: in each class sum, as they are made inside the decryption. */
export function verticalOpenedSlotError(context: ThresholdContext, parties: number): number {
  const rule = verticalGradientRule(context, parties);
  return floodingSlotError(context.degree, floodingSigma(context.degree, rule.noiseBits, DEFAULT_STATISTICAL_SECURITY), parties, rule.scale);
}

/**
 * The purpose label of one masked gradient's decryption: the job, the step and its attempt, and whose gradient it
 * is. Every shareholder gives one share per label, and the party the label names gives it only for the ciphertext
 * it sent itself.
 */
export function gradientLabel(jobId: string, step: number, attempt: number, party: string): string {
  return `${jobId}/step ${step}/attempt ${attempt}/gradient of ${party}`;
}
