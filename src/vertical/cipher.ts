/**
 * The encrypted quantities of a vertical logistic regression, behind one interface so the same protocol runs with
 * CKKS or, for comparison only, in the clear. See docs/protocol-vertical.md for the packing.
 */
import { randomFillSync } from 'node:crypto';
import type { CkksEngine } from '../he/ckks.js';
import { float64Bytes, toFloat64 } from '../fl/vector-codec.js';

export interface VerticalCipher {
  readonly scheme: 'ckks' | 'plaintext';
  /** A host's 0.25 * partial scores of one batch, encrypted under the arbiter's key. */
  encryptPartial(values: Float64Array): Uint8Array;
  /** The guest's encrypted fore-gradient weights ⊙ (Σ partials) + offset. */
  foreGradient(partials: Uint8Array[], weights: Float64Array, offset: Float64Array): Uint8Array;
  /** Enc(Xᵀd + mask) for a party's batch columns. */
  maskedGradient(foreGradient: Uint8Array, columns: Float64Array[], mask: Float64Array): Uint8Array;
}

export function ckksCipher(engine: CkksEngine, publicKey: Uint8Array, galoisKeys: Uint8Array): VerticalCipher {
  return {
    scheme: 'ckks',
    encryptPartial: (values) => engine.encryptSlots(values, publicKey),
    foreGradient: (partials, weights, offset) => engine.foreGradient(partials, weights, offset),
    maskedGradient: (d, columns, mask) => engine.maskedGradient(d, columns, mask, galoisKeys),
  };
}

/** The same protocol with every vector in the clear: for measuring what encryption costs, never for real data. */
export const plaintextCipher: VerticalCipher = {
  scheme: 'plaintext',
  encryptPartial: (values) => float64Bytes(values),
  foreGradient(partials, weights, offset) {
    const sum = new Float64Array(weights.length);
    for (const p of partials) {
      const v = toFloat64(p);
      for (let i = 0; i < Math.min(v.length, sum.length); i++) sum[i]! += v[i]!;
    }
    for (let i = 0; i < sum.length; i++) sum[i] = weights[i]! * sum[i]! + offset[i]!;
    return float64Bytes(sum);
  },
  maskedGradient(d, columns, mask) {
    const fore = toFloat64(d);
    const out = new Float64Array(mask.length);
    out.set(mask);
    columns.forEach((col, j) => {
      let g = 0;
      for (let i = 0; i < col.length; i++) g += col[i]! * fore[i]!;
      out[j]! += g;
    });
    return float64Bytes(out);
  },
};

/** Standard deviation of the noise the arbiter adds to what it decrypts (noise flooding, see below). */
const FLOODING_SIGMA = 2 ** -22;

/**
 * The arbiter's side: decrypt a masked gradient, keeping only its first `count` values. CKKS decryptions carry the
 * scheme's own noise, and handing exact decryptions to a party is the opening of Li and Micciancio's key-recovery
 * attack on CKKS; fresh Gaussian noise (σ = 2^-22, below the gradients' own CKKS error budget) drowns it.
 */
export function arbiterDecrypt(scheme: 'ckks' | 'plaintext', engine: CkksEngine | undefined, secretKey: Uint8Array | undefined, masked: Uint8Array, count: number): Float64Array {
  if (scheme === 'plaintext') return toFloat64(masked).slice(0, count);
  const values = engine!.decryptGradient(masked, count, secretKey!);
  const u = new Uint32Array(2 * values.length);
  randomFillSync(u);
  for (let i = 0; i < values.length; i++) {
    // Box-Muller from two uniform 32-bit draws.
    const r = Math.sqrt(-2 * Math.log((u[2 * i]! + 1) / 2 ** 32));
    values[i]! += FLOODING_SIGMA * r * Math.cos((2 * Math.PI * u[2 * i + 1]!) / 2 ** 32);
  }
  return values;
}
