/**
 * The one capability that turns a vertical job's encrypted sums into numbers: the arbiter opens a party's masked
 * gradient, the guest opens the per-bin label sums it encrypted under its own key. Both are a single-key CKKS
 * decryption under encryption.scheme ckks; under ckks-threshold the arbiter opens a gradient with a decryption share
 * from every party (./threshold-opener.ts), behind this interface, without the steps noticing.
 */
import { randomFillSync } from 'node:crypto';
import type { CkksEngine } from '../../he/engine.js';
import { residueClassSums } from '../../he/packing.js';
import { VerticalGradient } from '../../he/vertical-gradient.js';
import { toFloat64 } from '../../fl/vector-codec.js';
import { ErrorCode, FedcreditError } from '../../errors.js';
import { openLabelSums } from '../label-sums.js';
import { PLAINTEXT_SLOTS } from '../cipher.js';

/** Whose masked gradient an opening is for, and its label (gradientLabel: job, step, attempt, party). */
export interface GradientRequest {
  party: string;
  purpose: string;
}

export interface Opener {
  /**
   * The `count` class sums of a masked gradient of `count` columns (the decrypted slots summed over each residue
   * class modulo the next power of two ≥ count), with fresh noise that hides the decryption's own.
   *
   * `count` must be the asking party's own number of columns: the class sums for a larger count are finer sums of
   * the party's slots z_i, each a partial sum over P records of its features times the guest's fore-gradient, and
   * count = S would return every z_i (see docs/protocol-vertical.md, "What the arbiter decrypts").
   */
  openGradient(masked: Uint8Array, count: number, request: GradientRequest): Float64Array;
  /** The default count of each of the `count` bin columns of a host's masked per-bin label sums (src/vertical/label-sums.ts). */
  openLabelSums(ciphertext: Uint8Array, count: number): number[];
}

/** Standard deviation of the noise the arbiter adds to what it decrypts (noise flooding, see below). */
const FLOODING_SIGMA = 2 ** -22;

/**
 * Opening with one CKKS secret key. CKKS decryptions carry the scheme's own noise, and handing exact decryptions to
 * a party is the opening of Li and Micciancio's key-recovery attack on CKKS; fresh Gaussian noise (σ = 2^-22 per
 * returned gradient value, below the gradients' own CKKS error budget) drowns it.
 */
export function ckksOpener(engine: CkksEngine, secretKey: Uint8Array): Opener {
  return {
    openGradient(masked, count) {
      const values = VerticalGradient.of(engine).decryptGradient(masked, count, secretKey);
      const u = new Uint32Array(2 * values.length);
      randomFillSync(u);
      for (let i = 0; i < values.length; i++) {
        // Box-Muller from two uniform 32-bit draws.
        const r = Math.sqrt(-2 * Math.log((u[2 * i]! + 1) / 2 ** 32));
        values[i]! += FLOODING_SIGMA * r * Math.cos((2 * Math.PI * u[2 * i + 1]!) / 2 ** 32);
      }
      return values;
    },
    openLabelSums: (ciphertext, count) => openLabelSums(engine, ciphertext, count, secretKey),
  };
}

/** The plaintext scheme's arbiter (comparison and debugging only): the masked gradient's slots are in the clear. */
export const plaintextOpener: Opener = {
  openGradient(masked, count) {
    const values = toFloat64(masked);
    if (values.length !== PLAINTEXT_SLOTS) throw new RangeError(`a masked gradient holds ${PLAINTEXT_SLOTS} values, got ${values.length}`);
    return residueClassSums(values, count);
  },
  openLabelSums() {
    throw new FedcreditError(ErrorCode.PROTOCOL, 'per-bin label sums are CKKS ciphertexts; the plaintext scheme has none', 'run the job with encryption.scheme ckks');
  },
};
