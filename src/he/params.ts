/**
 * CKKS parameter sets and their fingerprint: plain data, no SEAL, so configuration and anything that only names
 * parameters loads no WASM.
 */
import { sha256 } from '../bytes.js';

export interface CkksParams {
  polyModulusDegree: number;
  coeffModulusBits: number[];
  scaleBits: number;
}

/**
 * N = 8192 with a 160-bit modulus chain {60, 40, 60}: within SEAL's 218-bit bound for 128-bit security at
 * N = 8192 (HomomorphicEncryption.org standard). 4096 slots per ciphertext; the 40-bit scale leaves 20 bits
 * above the scale in the 60-bit data prime and 40 more in the second prime for sums of sample-weighted updates.
 */
export const DEFAULT_CKKS_PARAMS: CkksParams = { polyModulusDegree: 8192, coeffModulusBits: [60, 40, 60], scaleBits: 40 };

/**
 * Parameters for vertical logistic regression: N = 8192 with a 210-bit chain {60, 50, 40, 60} (≤ 218, 128-bit
 * secure). The guest forms the fore-gradient at scale 2^90 on the top level (150 bits) and rescales it once by the
 * last 40-bit prime: [[d]] travels at level 1 (60 + 50 = 110 bits) and scale ≈ 2^50, so every rotation and product
 * of maskedGradient runs on two primes instead of three (a rotation costs 2.1 ms instead of 3.5) and needs no
 * rescale. A feature diagonal at scale 2^27 makes products at ≈ 2^77, which leaves 33 bits (values below 2^32).
 */
export const VERTICAL_CKKS_PARAMS: CkksParams = { polyModulusDegree: 8192, coeffModulusBits: [60, 50, 40, 60], scaleBits: 40 };

/**
 * Parameters for horizontal jobs under a threshold key (encryption.scheme ckks-threshold): N = 8192 with a 218-bit
 * chain {60, 60, 40, 58} (the 128-bit bound at N = 8192), scale 2^80. Fresh ciphertexts live at level 0 on 160
 * bits: 80 bits for the fraction, which the noise flooding of collective decryption eats into (about 2^−16 absolute
 * error per slot with 3 parties, docs/threshold-ckks.md), and 79 bits above the scale for sums such as the moments'
 * squares. Nothing is rescaled.
 */
export const THRESHOLD_CKKS_PARAMS: CkksParams = { polyModulusDegree: 8192, coeffModulusBits: [60, 60, 40, 58], scaleBits: 80 };

/**
 * Parameters for vertical logistic regression under a collective key (encryption.scheme ckks-threshold): N = 16384
 * with a 300-bit chain {60, 60, 60, 60, 60} (≤ 438, 128-bit secure at N = 16384), scale 2^110 for the hosts'
 * partial scores. Level 1 has 180 bits, so the fore-gradient travels at 2^120 (verticalForeScaleBits) and the
 * masked gradient at 2^147: the flooding that hides its noise in a collective decryption (2^−40 statistical
 * distance) then costs about 10^−15 per slot instead of 10^4 at N = 8192 (docs/threshold-ckks.md, "Vertical jobs
 * under a collective key"). 8192 slots per ciphertext; every operation costs about three times N = 8192's.
 */
export const VERTICAL_THRESHOLD_CKKS_PARAMS: CkksParams = { polyModulusDegree: 16384, coeffModulusBits: [60, 60, 60, 60, 60], scaleBits: 110 };

/** A vertical job's gradient-key parameters for its encryption.scheme (the collective key needs the larger ring). */
export function verticalCkksParams(scheme: string): CkksParams {
  return scheme === 'ckks-threshold' ? VERTICAL_THRESHOLD_CKKS_PARAMS : VERTICAL_CKKS_PARAMS;
}

export function paramsFingerprint(params: CkksParams): Uint8Array {
  const canonical = `ckks;N=${params.polyModulusDegree};q=${params.coeffModulusBits.join(',')};scale=${params.scaleBits}`;
  return sha256(canonical);
}
