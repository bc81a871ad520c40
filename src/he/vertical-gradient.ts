/**
 * The encrypted steps of vertical (hetero) logistic regression with an arbiter that holds the secret key, on a
 * CkksEngine. The arbiter (the coordinator) holds the secret key; hosts and the guest hold its public and Galois
 * keys. Per mini-batch of B ≤ slotCount records (record i in slot i, slots ≥ B zero):
 *   host k:   [[0.25·u_k]]                                   encryptSlots                 scale 2^40, level 0
 *   guest:    [[d]] = w ⊙ Σ_k [[0.25·u_k]] + o, rescaled      foreGradient                 scale ≈ 2^50, level 1
 *   party:    [[z + m]], slot classes mod P sum to g_j         maskedGradient               scale ≈ 2^77, level 1
 *   arbiter:  Σ_{i≡j (mod P)} (z_i + m_i) for j < count        decryptGradient
 * with w the per-record weights and o = w ⊙ (0.25·u_g + 0.5 − y) the guest's plaintext offset. The ciphertexts of
 * these steps are serialised uncompressed: zstd saves 10 to 16% of the bytes of random residues and costs 1 to 2 ms
 * per ciphertext on each side, several times per batch. The layouts and scales are packing.ts's pure functions.
 */
import type { CipherText } from 'node-seal/implementation/cipher-text.js';
import type { GaloisKeys } from 'node-seal/implementation/galois-keys.js';
import type { PlainText } from 'node-seal/implementation/plain-text.js';
import type { CiphertextExpectation, CkksEngine } from './engine.js';
import {
  diagonalOrder,
  generalizedDiagonal,
  galoisElementForStep,
  gradientPlanWithBaby,
  planRotationSteps,
  requireFinite,
  nextPowerOfTwo,
  residueClassSums,
  runSteps,
  VERTICAL_DIAGONAL_SCALE_BITS,
  VERTICAL_MAX_MASK,
  VERTICAL_MAX_MASK_CLASS_SUM,
  verticalGradientPlan,
  verticalRotationSteps,
  verticalScaleBits,
  type GradientPlan,
} from './packing.js';
import { comprModeOf, invalidCiphertext, sameBytes } from './seal.js';
import { readPlaintext, writePlaintext } from './seal-format.js';
import { classSumTransform } from './class-sums.js';
import { mulPoly } from './threshold/ring.js';
import { sha256Hex } from '../bytes.js';

/**
 * What a host adds to a per-bin sum before the guest sees it: one value per slot whose class sums are zero
 * (zeroClassSumMask), for the real and for the imaginary part. The guest can decrypt both parts, whether its values
 * are complex ([[g + i·h]], encryptComplexSlots) or meant to be real (the host cannot tell), so each part needs its
 * own mask.
 */
export interface BinSumMask {
  real: Float64Array;
  imaginary: Float64Array;
}

/** (−1)^j·factor·values[j]: what undoes the sign CkksEngine.imaginaryUnit puts on odd slots. */
function alternateSigns(values: Float64Array, factor = 1): Float64Array {
  return values.map((v, j) => (j % 2 === 0 ? factor * v : -factor * v));
}

/** The vertical gradient of each engine, made on first use and freed with the engine. */
const gradients = new WeakMap<CkksEngine, VerticalGradient>();

export class VerticalGradient {
  /** The last fore-gradient loaded or produced, by SHA-256 of its bytes (see foreGradientCipher). */
  private foreCache?: { digest: string; cipher: CipherText };
  /** A public-key encryption of zero made ahead by prepareEncryption, for the key with this digest; used once. */
  private preparedZero?: { digest: string; cipher: CipherText };
  /** All-zero slots encoded at the top level and scale 2^scaleBits: what prepareEncryption encrypts. */
  private zeroPlain?: PlainText;

  private constructor(readonly engine: CkksEngine) {}

  /** The engine's vertical gradient: one per engine, so a fore-gradient the guest made stays loaded for its own gradient. */
  static of(engine: CkksEngine): VerticalGradient {
    let gradient = gradients.get(engine);
    if (!gradient) {
      const made = new VerticalGradient(engine);
      engine.onDispose(() => made.dispose());
      gradients.set(engine, made);
      gradient = made;
    }
    return gradient;
  }

  /**
   * The exact scales of the vertical pipeline under the engine's parameters (verticalScaleBits), or FC_CKKS_PARAMS
   * if they leave too little room.
   */
  private verticalScales(): { partial: number; weight: number; fore: number; diagonal: number; gradient: number } {
    const { weightBits, foreTopBits } = verticalScaleBits(this.engine.params);
    const last = Number(this.engine.chain[0]!.primes[this.engine.chain[0]!.primes.length - 1]!);
    // What SEAL's rescale computes: the product scale divided by the dropped prime (≈ 2^verticalForeScaleBits, not exactly).
    const fore = 2 ** foreTopBits / last;
    return { partial: this.engine.scale, weight: 2 ** weightBits, fore, diagonal: 2 ** VERTICAL_DIAGONAL_SCALE_BITS, gradient: fore * 2 ** VERTICAL_DIAGONAL_SCALE_BITS };
  }

  /**
   * The loaded Galois keys for these bytes (CkksEngine.galoisKeys), checked to hold the rotations `plan` uses (1 for
   * its baby steps, g for its giant steps).
   */
  private galoisKeysFor(bytes: Uint8Array, plan: GradientPlan): GaloisKeys {
    const keys = this.engine.galoisKeys(bytes);
    const missing = planRotationSteps(plan).filter((step) => !keys.hasKey(galoisElementForStep(this.engine.params.polyModulusDegree, step)));
    if (missing.length > 0) throw invalidCiphertext(`Galois keys lack the rotation keys for steps ${missing.join(', ')}`);
    return keys;
  }

  /**
   * loadCiphertext, and also require SEAL's own serialisation of it (see checkCiphertext 'canonical'): catches a
   * truncated ciphertext whose header was rewritten to match.
   */
  private loadCanonical(bytes: Uint8Array, expected: CiphertextExpectation): CipherText {
    const cipher = this.engine.loadCiphertext(bytes, expected);
    if (!sameBytes(cipher.saveArray(comprModeOf(this.engine.seal, bytes)), bytes)) {
      cipher.delete();
      throw invalidCiphertext(`ciphertext (${expected.what}) does not re-serialise to the bytes received (truncated, altered, or seeded)`);
    }
    return cipher;
  }

  /**
   * The fore-gradient behind these bytes, loaded and checked (scale ≈ 2^50, level 1, canonical serialisation), or
   * the one kept from the last call with the same bytes: the guest's own foreGradient result, or [[d]] used for
   * several gradients. This gradient owns it; callers must not delete or modify it.
   */
  private foreGradientCipher(bytes: Uint8Array, scale: number): CipherText {
    const digest = sha256Hex(bytes);
    if (this.foreCache?.digest === digest) return this.foreCache.cipher;
    const cipher = this.loadCanonical(bytes, { scale, level: 1, what: 'an encrypted fore-gradient' });
    this.keepForeGradient(digest, cipher);
    return cipher;
  }

  private keepForeGradient(digest: string, cipher: CipherText): void {
    this.foreCache?.cipher.delete();
    this.foreCache = { digest, cipher };
  }

  /**
   * Public-key encryption of up to slotCount values (zero padded) at scale 2^scaleBits, top level: a host's
   * partial score vector 0.25·u_k.
   */
  encryptSlots(values: Float64Array, publicKey: Uint8Array): Uint8Array {
    if (values.length > this.engine.slotCount) throw new RangeError(`encryptSlots takes at most ${this.engine.slotCount} values, got ${values.length}`);
    requireFinite(values, 'the vector to encrypt');
    const digest = this.engine.keyDigest(publicKey);
    const zero = this.preparedZero?.digest === digest ? this.preparedZero.cipher : undefined;
    if (!zero) return this.engine.encryptBlocks(values, publicKey, undefined, this.engine.seal.ComprModeType.none)[0]!;
    this.preparedZero = undefined;
    const { encoder, evaluator } = this.engine.tools();
    let plain: PlainText | undefined;
    try {
      plain = this.engine.encode(encoder, values, this.engine.scale);
      evaluator.addPlain(zero, plain, zero);
      return zero.saveArray(this.engine.seal.ComprModeType.none);
    } finally {
      plain?.delete();
      zero.delete();
    }
  }

  /**
   * Public-key encryption of real + i·imaginary (up to slotCount values each, zero padded) at scale 2^scaleBits, top
   * level: two per-row values in one ciphertext, the guest's g and h in boosting, so that every linear step on it
   * (a real plaintext product, a rotation, a sum) serves both at the cost of one. One encryption: the imaginary part
   * is encrypted, multiplied by the imaginary unit (CkksEngine.imaginaryUnit, a signed permutation of the
   * coefficients that adds no noise), and the real part added as a plaintext. The result is a fresh encryption under
   * the public key times that unit, itself a public key of the same secret. decryptGradientSlots(…, 'imaginary')
   * opens the imaginary part.
   */
  encryptComplexSlots(real: Float64Array, imaginary: Float64Array, publicKey: Uint8Array): Uint8Array {
    const S = this.engine.slotCount;
    if (real.length !== imaginary.length || real.length > S) throw new RangeError(`encryptComplexSlots takes two parts of the same length, at most ${S}: got ${real.length} and ${imaginary.length}`);
    requireFinite(real, 'the real part to encrypt');
    requireFinite(imaginary, 'the imaginary part to encrypt');
    const { encoder, evaluator } = this.engine.tools();
    const cipher = this.engine.seal.CipherText();
    let plain: PlainText | undefined;
    try {
      plain = this.engine.encode(encoder, alternateSigns(imaginary), this.engine.scale);
      this.engine.publicKeyEncryptor(publicKey).encrypt(plain, cipher);
      plain.delete();
      plain = undefined;
      plain = this.engine.encode(encoder, real, this.engine.scale);
      evaluator.multiplyPlain(cipher, this.engine.imaginaryUnit(0), cipher);
      evaluator.addPlain(cipher, plain, cipher);
      return cipher.saveArray(this.engine.seal.ComprModeType.none);
    } finally {
      plain?.delete();
      cipher.delete();
    }
  }

  /**
   * Do now the costly part of the next encryptSlots under `publicKey` (~6 of its ~7 ms at N = 8192): a public-key
   * encryption of zero, to which encryptSlots then adds the encoded values. That is what SEAL's encrypt does in one
   * call (encrypt zero, add the plaintext), so the ciphertext is the same fresh encryption. A host runs this while
   * it waits for [[d]], which takes the encryption off the critical path of the next batch. The encryption of zero
   * serves one encryptSlots and is deleted by it: two ciphertexts sharing one would give away the difference of
   * their values.
   */
  prepareEncryption(publicKey: Uint8Array): void {
    const digest = this.engine.keyDigest(publicKey);
    if (this.preparedZero?.digest === digest) return;
    this.preparedZero?.cipher.delete();
    this.preparedZero = undefined;
    const encryptor = this.engine.publicKeyEncryptor(publicKey);
    this.zeroPlain ??= this.engine.encode(this.engine.tools().encoder, new Float64Array(this.engine.slotCount), this.engine.scale);
    const cipher = this.engine.seal.CipherText();
    try {
      encryptor.encrypt(this.zeroPlain, cipher);
    } catch (err) {
      cipher.delete();
      throw err;
    }
    this.preparedZero = { digest, cipher };
  }

  /**
   * The guest's encrypted fore-gradient [[d]] = w ⊙ Σ_k [[0.25·u_k]] + o, formed at scale 2^90 on the top level and
   * rescaled once: ≈ 2^50 at level 1. Each partial must be a public-key encryption (SEAL's canonical
   * serialisation) at scale 2^40 on the top level. `weights` (w, encoded at 2^50) and `offset` (o = w ⊙ (0.25·u_g +
   * 0.5 − y), encoded at 2^90) have one value per record of the batch. The result stays loaded, so the guest's own
   * maskedGradient on these bytes does not deserialise them again.
   */
  foreGradient(partials: Uint8Array[], weights: Float64Array, offset: Float64Array): Uint8Array {
    const rescaled = this.foreGradientOf(partials, weights, offset);
    try {
      const bytes = rescaled.saveArray(this.engine.seal.ComprModeType.none);
      this.keepForeGradient(sha256Hex(bytes), rescaled);
      return bytes;
    } catch (err) {
      rescaled.delete();
      throw err;
    }
  }

  /** foreGradient's ciphertext, owned by the caller (to delete). */
  private foreGradientOf(partials: Uint8Array[], weights: Float64Array, offset: Float64Array): CipherText {
    const scales = this.verticalScales();
    if (partials.length === 0) throw new RangeError('foreGradient needs at least one host partial');
    if (weights.length > this.engine.slotCount || weights.length === 0) throw new RangeError(`foreGradient takes 1 to ${this.engine.slotCount} weights, got ${weights.length}`);
    if (offset.length !== weights.length) throw new RangeError(`offset has ${offset.length} values but weights have ${weights.length}`);
    requireFinite(weights, 'weights');
    requireFinite(offset, 'offset');
    if (weights.every((w) => w === 0)) throw new RangeError('every weight is zero');
    const expected: CiphertextExpectation = { scale: scales.partial, level: 0, what: 'a fresh public-key encryption of a partial score' };
    const { encoder, evaluator } = this.engine.tools();
    const acc: CipherText | undefined = this.loadCanonical(partials[0]!, expected);
    let weightPlain: PlainText | undefined;
    let offsetPlain: PlainText | undefined;
    let rescaled: CipherText | undefined = this.engine.seal.CipherText();
    try {
      for (let k = 1; k < partials.length; k++) {
        const next = this.loadCanonical(partials[k]!, expected);
        try {
          evaluator.add(acc, next, acc);
        } finally {
          next.delete();
        }
      }
      weightPlain = this.engine.encode(encoder, weights, scales.weight);
      evaluator.multiplyPlain(acc, weightPlain, acc);
      offsetPlain = this.engine.encode(encoder, offset, acc.scale);
      evaluator.addPlain(acc, offsetPlain, acc);
      evaluator.rescaleToNext(acc, rescaled);
      const result = rescaled;
      rescaled = undefined;
      return result;
    } finally {
      offsetPlain?.delete();
      weightPlain?.delete();
      rescaled?.delete();
      acc.delete();
    }
  }

  /**
   * A batch's feature columns (p columns of B values each), checked, ready to have their diagonals encoded ahead
   * of [[d]] (they depend only on the columns) and, once keep() is called, kept for later gradients of the same
   * batch. See maskedGradient for the layout; `baby` fixes the plan's baby steps (gradientPlanWithBaby), as
   * maskedBinSums needs.
   */
  batchColumns(columns: Float64Array[], baby?: number): BatchColumns {
    const scales = this.verticalScales();
    const S = this.engine.slotCount;
    const p = columns.length;
    if (p === 0 || p > S) throw new RangeError(`maskedGradient takes 1 to ${S} feature columns, got ${p}`);
    const B = columns[0]!.length;
    if (B === 0 || B > S) throw new RangeError(`a batch holds 1 to ${S} records, got ${B}`);
    columns.forEach((column, j) => {
      if (column.length !== B) throw new RangeError(`feature column ${j} has ${column.length} values, column 0 has ${B}`);
      requireFinite(column, `feature column ${j}`);
    });
    // A plaintext at level 1 holds N = 2·slots coefficients for each of that level's primes, 8 bytes each.
    const plainBytes = 2 * S * this.engine.chain[1]!.primes.length * 8;
    const plan = baby === undefined ? verticalGradientPlan(p, S) : gradientPlanWithBaby(p, baby, S);
    return new DiagonalColumns(columns, plan, scales.diagonal, this.levelOneEncoder(), S, plainBytes);
  }

  /**
   * A party's plaintext side of one masked gradient: its batch's columns (batchColumns) and its per-slot mask,
   * checked; the mask and the diagonals not yet encoded can be encoded ahead of [[d]] (GradientInput.encodeNext).
   * Takes plain columns for a one-off gradient. See maskedGradient for the arguments.
   */
  gradientInput(columns: BatchColumns | Float64Array[], mask: Float64Array): GradientInput {
    const batch = Array.isArray(columns) ? this.batchColumns(columns) : columns;
    if (!(batch instanceof DiagonalColumns)) throw new RangeError('gradientInput takes what batchColumns returned');
    try {
      this.checkMask(mask, batch.plan.period);
    } catch (err) {
      if (batch !== columns) batch.dispose();
      throw err;
    }
    return new DiagonalInput(batch, mask, this.verticalScales().gradient, this.levelOneEncoder());
  }

  /** Encodes at the top level, then reduces to level 1 where [[d]] and the products live. */
  private levelOneEncoder(): (values: Float64Array, scale: number) => PlainText {
    const { encoder, evaluator } = this.engine.tools();
    return (values, scale) => {
      const plain = this.engine.encode(encoder, values, scale);
      evaluator.plainModSwitchToNext(plain, plain);
      return plain;
    };
  }

  /**
   * A party's encrypted, masked gradient slots [[z + m]] for its p feature columns (each of length B, the batch
   * size), with P the next power of two ≥ p:
   *   z = Σ_{k<P} diag_k ⊙ rot([[d]], k),   diag_k[i] = X[(i+k) mod S][i mod P]   (0 for rows ≥ B, columns ≥ p),
   * so that the slots of each residue class modulo P sum to the gradient: Σ_{i ≡ j (mod P)} z_i = g_j =
   * Σ_r X[r][j]·d[r] (record r meets column j in exactly one slot i ≡ j, i = r − k). Nothing sums the classes
   * here: the arbiter does it inside its decryption, before it decodes (decryptGradientSlots), so the parties'
   * Galois keys need no steps beyond P's.
   *
   * The sum runs baby-step giant-step (verticalGradientPlan): with k = g·a + b,
   *   z = Σ_{a<P/g} rot(inner_a, g·a),   inner_a = Σ_{b<g} rot(diag_{g·a+b}, −g·a) ⊙ rot([[d]], b),
   * the plaintext diagonals rotated for free before encoding. rot([[d]], b) for b < g costs g − 1 rotations by 1,
   * and the sum over a runs by Horner's rule, acc ← rot(acc, g) + inner_a: P/g − 1 rotations by g, all at level 1
   * (products at ≈ 2^50 · 2^27 = 2^77, no rescale). For p = 14 (P = 16, g = 4) that is 6 rotations.
   *
   * Then `mask` is added: exactly slotCount values, one independent mask per slot (VERTICAL_MASK: uniform in
   * ±2^20; at most VERTICAL_MAX_MASK), so that each class sum the arbiter decrypts carries a sum of S/P masks. The party subtracts the class sums of
   * its mask (residueClassSums) from what the arbiter returns.
   *
   * The result is at level 1, scale ≈ 2^77: the only kind of ciphertext decryptGradient accepts. Values must
   * satisfy |z_i| < 2^30, which holds for any realistic features and weights; the party's error is about 1e-7
   * relative to max|g| plus the mask's rounding (see VERTICAL_MASK).
   */
  maskedGradient(foreGradient: Uint8Array, columns: Float64Array[], mask: Float64Array, galoisKeys: Uint8Array): Uint8Array {
    const input = this.gradientInput(columns, mask);
    try {
      return this.maskedGradientOf(foreGradient, input, galoisKeys);
    } finally {
      input.dispose();
    }
  }

  /** maskedGradient from a gradientInput (encoded ahead or not); the input can be disposed afterwards. */
  maskedGradientOf(foreGradient: Uint8Array, gradientInput: GradientInput, galoisKeys: Uint8Array): Uint8Array {
    return runSteps(this.maskedGradientSteps(foreGradient, gradientInput, galoisKeys));
  }

  /**
   * maskedGradientOf in steps of one rotation or one product (at most ~2 ms each), so that a party can let its
   * event loop run between them: a party that has just sent a ciphertext must answer the HTTP/2 flow-control
   * updates for it while it computes. Run it to the end (its `finally` frees the SEAL objects it holds).
   */
  *maskedGradientSteps(foreGradient: Uint8Array, gradientInput: GradientInput, galoisKeys: Uint8Array): Generator<void, Uint8Array, void> {
    const scales = this.verticalScales();
    if (!(gradientInput instanceof DiagonalInput)) throw new RangeError('maskedGradientOf takes what gradientInput returned');
    const input = gradientInput;
    input.start();
    const { baby: g, giant: A } = input.plan;
    const gk = this.galoisKeysFor(galoisKeys, input.plan);
    const { evaluator } = this.engine.tools();
    // babies[b] = rot([[d]], b). babies[0] is a copy of the cached fore-gradient: another call between two steps
    // may replace (and delete) the cached one.
    const babies: CipherText[] = [this.foreGradientCipher(foreGradient, scales.fore).clone()];
    let inner = this.engine.seal.CipherText();
    const product = this.engine.seal.CipherText();
    let acc = this.engine.seal.CipherText();
    let spare = this.engine.seal.CipherText();
    let plain: PlainText | undefined;
    try {
      for (let b = 1; b < g; b++) {
        yield;
        const rotated = this.engine.seal.CipherText();
        babies.push(rotated);
        evaluator.rotateVector(babies[b - 1]!, 1, gk, rotated);
      }
      let accSet = false;
      for (let a = A - 1; a >= 0; a--) {
        let innerSet = false;
        for (let b = 0; b < g; b++) {
          yield;
          const k = g * a + b;
          const diagonal = input.columns.get(k);
          // A zero diagonal contributes nothing; SEAL refuses a product with a zero plaintext (transparent result).
          if (!diagonal) continue;
          if (!innerSet) {
            evaluator.multiplyPlain(babies[b]!, diagonal, inner);
            innerSet = true;
          } else {
            evaluator.multiplyPlain(babies[b]!, diagonal, product);
            evaluator.add(inner, product, inner);
          }
          input.columns.release(k);
        }
        // Horner: acc ← rot(acc, g) + inner_a.
        if (accSet) {
          yield;
          evaluator.rotateVector(acc, g, gk, spare);
          [acc, spare] = [spare, acc];
        }
        if (innerSet) {
          if (accSet) {
            evaluator.add(acc, inner, acc);
          } else {
            [acc, inner] = [inner, acc];
            accSet = true;
          }
        }
      }
      if (!accSet) {
        // Every feature value of the batch is zero, so g = 0; there is no nonzero diagonal to multiply by. The
        // constant polynomial 1 (the value 2^-27 in every slot) gives a valid product, off by 2^-27·Σ_i d_i.
        plain = this.levelOneEncoder()(new Float64Array(this.engine.slotCount).fill(1 / scales.diagonal), scales.diagonal);
        evaluator.multiplyPlain(babies[0]!, plain, acc);
        plain.delete();
        plain = undefined;
      }
      evaluator.addPlain(acc, input.maskPlain(), acc);
      return acc.saveArray(this.engine.seal.ComprModeType.none);
    } finally {
      plain?.delete();
      for (const cipher of babies) cipher.delete();
      spare.delete();
      acc.delete();
      product.delete();
      inner.delete();
    }
  }

  /**
   * The decrypted slots of a masked gradient, with its residue classes modulo P = nextPowerOfTwo(count) summed inside
   * the decryption: every slot i holds Σ_{i' ≡ i (mod P)} (z_i' + m_i'), so the decryptor sees p class sums (each
   * g_j plus the class sum of the party's masks), repeated S/P times, and never a slot z_i + m_i. Summing after
   * decoding instead would show it every z_i + m_i: with the party's masks (a coalition of the two) every partial
   * sum z_i of P records, from which the batch's fore-gradient, and the labels, follow. With count = slotCount
   * (P = S) nothing is summed: the raw decryption, which the guest's per-bin sums use (their masks' class sums are
   * zero, and the values hidden are the guest's own).
   *
   * The sum is classSumTransform (class-sums.ts) applied to the decrypted polynomial c0 + c1·s on its NTT slots
   * before it is decoded: what log2(S/P) rotate-and-add steps of the ciphertext would decrypt to, without their key
   * switching (and its noise) and without rotation keys.
   *
   * Refuses, with FC_CIPHERTEXT_INVALID, every ciphertext that is not at level 1 and scale ≈ 2^77 (what
   * maskedGradient produces), so a fresh per-record ciphertext such as [[0.25·u_k]] or [[d]] is never decrypted.
   * `part` 'imaginary' returns the imaginary parts instead (the guest's h sums in boosting, encryptComplexSlots).
   */
  decryptGradientSlots(masked: Uint8Array, count: number, secretKey: Uint8Array, part: 'real' | 'imaginary' = 'real'): Float64Array {
    const scales = this.verticalScales();
    const S = this.engine.slotCount;
    if (!Number.isInteger(count) || count < 1 || count > S) throw new RangeError(`count must be an integer from 1 to ${S}, got ${count}`);
    const cipher = this.loadCanonical(masked, {
      scale: scales.gradient,
      level: 1,
      what: 'a masked gradient',
      why: '; the arbiter decrypts only masked gradients, never a per-record ciphertext such as [[u]] or [[d]]',
    });
    const { encoder, evaluator } = this.engine.tools();
    let plain: PlainText | undefined;
    try {
      const P = nextPowerOfTwo(count);
      // SEAL decodes real parts; the imaginary part b of a + i·b is minus the real part of i·(a + i·b). With a class
      // sum, the unit X^(N/2) multiplies the sums after T: σ of a rotation by 1 (P = 1) maps it to −X^(N/2).
      if (part === 'imaginary' && P === S) evaluator.multiplyPlain(cipher, this.engine.imaginaryUnit(1), cipher);
      plain = this.engine.decryptor(secretKey).decrypt(cipher) as PlainText;
      if (P < S) this.sumClassesOfDecryption(plain, P, part === 'imaginary');
      const slots = encoder.decode(plain);
      // Re((−1)^j·i·(a_j + i·b_j)) = −(−1)^j·b_j.
      return part === 'imaginary' ? alternateSigns(slots, -1) : slots;
    } finally {
      plain?.delete();
      cipher.delete();
    }
  }

  /**
   * T(c0 + c1·s) in place for a decryption at level 1 (NTT form), T the class sum modulo `period`; then times the
   * imaginary unit if `imaginary`.
   */
  private sumClassesOfDecryption(plain: PlainText, period: number, imaginary: boolean): void {
    const { seal, context } = this.engine;
    const level = this.engine.chain[1]!;
    const ring = { degree: 2 * this.engine.slotCount, primes: Array.from(level.primes) };
    const decrypted = readPlaintext(plain.saveArray(seal.ComprModeType.none), 'a decrypted masked gradient');
    classSumTransform(ring.degree, period)(ring, decrypted.coefficients);
    if (imaginary) mulPoly(ring, decrypted.coefficients, readPlaintext(this.engine.imaginaryUnit(1).saveArray(seal.ComprModeType.none), 'the imaginary unit').coefficients);
    plain.loadArray(context, writePlaintext(decrypted));
  }

  /**
   * The arbiter's side: decrypt a masked gradient of `count` columns (1 ≤ count ≤ slotCount) and return, for each
   * column j < count, the sum of the slots i ≡ j modulo P = the next power of two ≥ count, made inside the
   * decryption (decryptGradientSlots): g_j plus the sum of the party's masks on those slots.
   *
   * `count` must be the party's own number of columns: class sums modulo a larger P would be finer sums of z, up
   * to every z_i itself for count = slotCount (see docs/protocol-vertical.md, "What the arbiter decrypts").
   */
  decryptGradient(masked: Uint8Array, count: number, secretKey: Uint8Array): Float64Array {
    return this.decryptGradientSlots(masked, count, secretKey).slice(0, count);
  }

  /**
   * Masked per-class sums of several per-row value vectors (the guest's fresh encryptions of g and h, say) over
   * several column groups at once, over many chunks of rows: for value v and group G, the ciphertext
   *   z_{v,G} = Σ_c Σ_{k<P} diag_{c,G,k} ⊙ rot([[w_c ⊙ v_c]], k)   (+ masks[v][G])
   * whose slots of residue class j (mod P_G) sum to Σ_r w_r·v_r·X_G[r][j] over every chunk's rows: what
   * maskedGradient of each chunk's fore-gradient (weights w_c, offset 0), summed over the chunks, would give, with the
   * same level and scale, for a fraction of its rotations. With k = g·a + b (every group's plan built with the same
   * baby steps g, capped at its period):
   *   z_{v,G} = Σ_a rot(Σ_c inner_{c,a}, g·a),   inner_{c,a} = Σ_b rot(diag_{c,G,g·a+b}, −g·a) ⊙ rot([[w_c ⊙ v_c]], b)
   * since rotation is linear: each chunk's value is weighted (one product and rescale, foreGradient) and rotated
   * up to g − 1 times (only for the b that some nonzero diagonal has), once for every group; each group's inner sums run over all the chunks, then P/g − 1 rotations by
   * g once (Horner's rule). Each diagonal is encoded once and multiplies every value. The products are at level 1,
   * scale ≈ 2^77, as maskedGradient's: |z + m| < 2^32 must hold.
   *
   * `chunks` yields, per chunk of rows, the values' fresh encryptions (scale 2^40, top level, like encryptSlots),
   * the rows' weights (not all zero) and each group's columns (batchColumns with the same baby), which are disposed
   * after use unless kept. A null mask leaves that sum unmasked: a part that sumBinSums adds to others and masks.
   * Returns [value][group].
   */
  maskedBinSums(
    chunks: Iterable<{ values: Uint8Array[]; weights: Float64Array; columns: (group: number) => BatchColumns }>,
    masks: (BinSumMask | null)[][],
    galoisKeys: Uint8Array,
    publicKey?: Uint8Array,
  ): Uint8Array[][] {
    if (!publicKey && masks.some((row) => row.some((mask) => mask !== null))) throw new RangeError('masked per-bin sums need the public key that re-randomises them');
    const groups = masks[0]?.length ?? 0;
    if (masks.length === 0 || groups === 0 || masks.some((m) => m.length !== groups)) throw new RangeError('maskedBinSums needs a mask for every value and group');
    for (const row of masks) for (const mask of row) if (mask) this.checkBinSumMask(mask);
    const { evaluator } = this.engine.tools();
    const plans: (GradientPlan | undefined)[] = new Array(groups);
    let keys: GaloisKeys | undefined;
    // inner[v][G][a]: Σ over the chunks so far of inner_{c,a}.
    const inner: (CipherText | undefined)[][][] = masks.map(() => Array.from({ length: groups }, () => []));
    const product = this.engine.seal.CipherText();
    const held: CipherText[] = [];
    try {
      for (const chunk of chunks) {
        if (chunk.values.length !== masks.length) throw new RangeError(`a chunk holds ${chunk.values.length} values, the masks ${masks.length}`);
        const batches: DiagonalColumns[] = [];
        const babies: CipherText[][] = [];
        try {
          for (let G = 0; G < groups; G++) {
            const batch = chunk.columns(G);
            if (!(batch instanceof DiagonalColumns)) throw new RangeError('maskedBinSums takes what batchColumns returned');
            batches.push(batch);
            const known = plans[G];
            if (known && (known.period !== batch.plan.period || known.baby !== batch.plan.baby)) throw new RangeError(`group ${G} changed its plan between chunks`);
            if (!known) {
              keys = this.galoisKeysFor(galoisKeys, batch.plan);
              plans[G] = batch.plan;
            }
          }
          const g = Math.max(...batches.map((b) => b.plan.baby));
          if (batches.some((b) => b.plan.baby !== Math.min(g, b.plan.period))) throw new RangeError('every group of maskedBinSums needs the same baby steps');
          for (const value of chunk.values) babies.push([this.foreGradientOf([value], chunk.weights, new Float64Array(chunk.weights.length))]);
          // rot(value, b), rotated when a nonzero diagonal first needs it, from the nearest b' < b by the largest
          // power-of-two steps the keys hold: rows repeated R times (BinSums) leave only the diagonals k ≡ 0 (mod R)
          // nonzero, so their baby steps are b = 0, R, 2R, … and cost one rotation by R each.
          const largestStep = Math.max(...verticalRotationSteps(this.engine.slotCount));
          const rotatedBy = (rotated: CipherText[], b: number): CipherText => {
            let from = b;
            while (!rotated[from]) from--;
            while (from < b) {
              let step = 1;
              while (step * 2 <= Math.min(b - from, largestStep)) step *= 2;
              const next = this.engine.seal.CipherText();
              rotated[from + step] = next;
              evaluator.rotateVector(rotated[from]!, step, keys!, next);
              from += step;
            }
            return rotated[b]!;
          };
          batches.forEach((batch, G) => {
            const { baby, giant } = batch.plan;
            for (let a = 0; a < giant; a++) {
              for (let b = 0; b < baby; b++) {
                const k = baby * a + b;
                const diagonal = batch.get(k);
                if (!diagonal) continue;
                babies.forEach((rotated, v) => {
                  const sum = inner[v]![G]![a];
                  if (!sum) {
                    const first = this.engine.seal.CipherText();
                    held.push(first);
                    evaluator.multiplyPlain(rotatedBy(rotated, b), diagonal, first);
                    inner[v]![G]![a] = first;
                  } else {
                    evaluator.multiplyPlain(rotatedBy(rotated, b), diagonal, product);
                    evaluator.add(sum, product, sum);
                  }
                });
                batch.release(k);
              }
            }
          });
        } finally {
          for (const rotated of babies) for (const cipher of rotated) cipher?.delete();
          for (const batch of batches) if (!batch.kept) batch.dispose();
        }
      }
      return inner.map((perGroup, v) =>
        perGroup.map((sums, G) => {
          const plan = plans[G];
          if (!plan) throw new RangeError('maskedBinSums over no chunks');
          // Horner: acc ← rot(acc, g) + Σ_c inner_{c,a}, a from P/g − 1 down.
          let acc: CipherText | undefined;
          for (let a = plan.giant - 1; a >= 0; a--) {
            const sum = sums[a];
            if (acc) {
              const rotated = this.engine.seal.CipherText();
              held.push(rotated);
              evaluator.rotateVector(acc, plan.baby, keys!, rotated);
              acc = rotated;
              if (sum) evaluator.add(acc, sum, acc);
            } else {
              acc = sum;
            }
          }
          if (!acc) throw new RangeError(`every diagonal of group ${G} is zero: no row has a value in its columns`);
          const mask = masks[v]![G];
          if (mask) this.addBinSumMask(acc, mask, publicKey!);
          return acc.saveArray(this.engine.seal.ComprModeType.none);
        }),
      );
    } finally {
      product.delete();
      for (const cipher of held) cipher.delete();
    }
  }

  /**
   * The sum of maskedBinSums parts (unmasked sums over disjoint sets of chunks, level 1, scale ≈ 2^77) plus `mask`:
   * what maskedBinSums over all their chunks gives, from parts computed on several threads or in passes of their own
   * plans; with a null mask, an unmasked part again.
   */
  sumBinSums(parts: Uint8Array[], mask: BinSumMask | null, publicKey?: Uint8Array): Uint8Array {
    const scales = this.verticalScales();
    if (parts.length === 0) throw new RangeError('sumBinSums needs at least one part');
    if (mask && !publicKey) throw new RangeError('masked per-bin sums need the public key that re-randomises them');
    if (mask) this.checkBinSumMask(mask);
    const expected: CiphertextExpectation = { scale: scales.gradient, level: 1, what: 'a part of per-bin sums' };
    const { evaluator } = this.engine.tools();
    const acc = this.loadCanonical(parts[0]!, expected);
    try {
      for (const bytes of parts.slice(1)) {
        const next = this.loadCanonical(bytes, expected);
        try {
          evaluator.add(acc, next, acc);
        } finally {
          next.delete();
        }
      }
      if (mask) this.addBinSumMask(acc, mask, publicKey!);
      return acc.saveArray(this.engine.seal.ComprModeType.none);
    } finally {
      acc.delete();
    }
  }

  private checkBinSumMask(mask: BinSumMask): void {
    this.checkMask(mask.real);
    this.checkMask(mask.imaginary);
  }

  /**
   * Add a per-bin-sum mask to a sum at level 1 (scale ≈ 2^77), its imaginary part times i, and a fresh public-key
   * encryption of zero under the guest's key: without it, the sum's second polynomial would be a function of the
   * guest's own ciphertexts and keys and of the host's diagonals only (masks go into the first), from which the
   * guest could solve for the host's bins; with it, that polynomial is a fresh RLWE sample.
   */
  private addBinSumMask(acc: CipherText, mask: BinSumMask, publicKey: Uint8Array): void {
    const { gradient } = this.verticalScales();
    const { evaluator } = this.engine.tools();
    const encode = this.levelOneEncoder();
    const real = encode(mask.real, gradient);
    const zero = this.engine.seal.CipherText();
    try {
      evaluator.addPlain(acc, real, acc);
      // The zero plaintext at level 1 and the sum's scale: SEAL encrypts at the plaintext's level.
      real.setZero();
      this.engine.publicKeyEncryptor(publicKey).encrypt(real, zero);
      evaluator.add(acc, zero, acc);
    } finally {
      zero.delete();
      real.delete();
    }
    // With u = the imaginary unit's plaintext (slot j times (−1)^j·i): −u·(u·acc + m') = acc − u·m', and for
    // m'_j = (−1)^j·m_j that is acc − i·m: the imaginary mask enters negated, which changes nothing (it is centred).
    const unit = this.engine.imaginaryUnit(1);
    const imaginary = encode(alternateSigns(mask.imaginary), gradient);
    try {
      evaluator.multiplyPlain(acc, unit, acc);
      evaluator.addPlain(acc, imaginary, acc);
      evaluator.multiplyPlain(acc, unit, acc);
      evaluator.negate(acc, acc);
    } finally {
      imaginary.delete();
    }
  }

  /**
   * A per-slot mask: slotCount finite values, each at most VERTICAL_MAX_MASK in magnitude, and, given the
   * ciphertext's period P, class sums modulo P of at most VERTICAL_MAX_MASK_CLASS_SUM (what the decryptor decodes).
   */
  private checkMask(mask: Float64Array, period?: number): void {
    const S = this.engine.slotCount;
    if (mask.length !== S) throw new RangeError(`the mask needs one value per slot (${S}), got ${mask.length}`);
    requireFinite(mask, 'the mask');
    let maskMax = 0;
    for (const m of mask) maskMax = Math.max(maskMax, Math.abs(m));
    if (maskMax > VERTICAL_MAX_MASK) throw new RangeError(`mask values must be at most 2^30 in magnitude, got ${maskMax}`);
    if (period === undefined) return;
    const sums = residueClassSums(mask, period);
    const largest = sums.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
    if (largest > VERTICAL_MAX_MASK_CLASS_SUM)
      throw new RangeError(`the mask's class sums modulo ${period} must be at most 2^31 in magnitude (the decrypted sums must fit the modulus), got ${largest}: use masks of VERTICAL_MASK`);
  }

  /** Free what this gradient holds on the WASM heap (run by the engine's dispose). */
  private dispose(): void {
    this.foreCache?.cipher.delete();
    this.foreCache = undefined;
    this.preparedZero?.cipher.delete();
    this.preparedZero = undefined;
    this.zeroPlain?.delete();
    this.zeroPlain = undefined;
  }
}

/**
 * Bytes of encoded diagonals a GradientInput keeps ahead of [[d]]: a plaintext at level 1 is N × 2 primes × 8
 * bytes (128 KiB at N = 8192), so 8 MiB holds 64 of them, every diagonal for up to 63 columns (P = 64) plus the
 * mask. Past that, maskedGradient encodes the rest when it needs them, one at a time.
 */
export const GRADIENT_INPUT_BUDGET_BYTES = 8 * 2 ** 20;

/**
 * A batch's feature columns, checked, with their generalized diagonals (VerticalGradient.batchColumns), encoded ahead
 * through a GradientInput: all of them once keep() was called, else within GRADIENT_INPUT_BUDGET_BYTES. Kept
 * columns hold every diagonal they encoded until dispose(), so that the same batch in a later epoch encodes
 * nothing; columns not kept free each diagonal once a product has used it. They own SEAL objects on the WASM heap
 * until dispose().
 */
export interface BatchColumns {
  /** Bytes on the WASM heap that keeping every diagonal takes (an upper bound: all-zero diagonals take none). */
  readonly keptBytes: number;
  readonly kept: boolean;
  keep(): void;
  dispose(): void;
}

/**
 * One masked gradient's plaintext side (VerticalGradient.gradientInput): a batch's columns and a mask. encodeNext encodes
 * the mask, then the columns' diagonals ahead of [[d]]. dispose() frees the mask, and the columns unless they
 * are kept.
 */
export interface GradientInput {
  readonly plan: GradientPlan;
  encodeNext(): boolean;
  dispose(): void;
}

class DiagonalColumns implements BatchColumns {
  /** Encoded diagonals by k = g·a + b; null for a diagonal that is all zero. */
  private readonly plains = new Map<number, PlainText | null>();
  /** The next diagonal encodeNext looks at, in maskedGradient's order (a from P/g − 1 down, b up). */
  private cursor = 0;
  private readonly maxAhead: number;
  private disposed = false;
  kept = false;
  readonly keptBytes: number;

  constructor(
    private readonly columns: Float64Array[],
    readonly plan: GradientPlan,
    private readonly scale: number,
    private readonly encodeAtLevelOne: (values: Float64Array, scale: number) => PlainText,
    readonly slots: number,
    plainBytes: number,
  ) {
    // One plaintext of the budget is the mask's.
    this.maxAhead = Math.max(0, Math.floor(GRADIENT_INPUT_BUDGET_BYTES / plainBytes) - 1);
    this.keptBytes = plan.period * plainBytes;
  }

  keep(): void {
    this.kept = true;
  }

  encodeNext(): boolean {
    if (this.disposed) return false;
    const limit = this.kept ? this.plan.period : Math.min(this.plan.period, this.maxAhead);
    while (this.cursor < limit) {
      const k = diagonalOrder(this.plan, this.cursor++);
      if (this.plains.has(k)) continue;
      this.plains.set(k, this.encodeDiagonal(k));
      break;
    }
    return this.cursor < limit;
  }

  /** Diagonal k, encoded ahead or now; undefined when it is all zero. Hand it back with release(k). */
  get(k: number): PlainText | undefined {
    if (this.disposed) throw new RangeError('these batch columns were disposed');
    let plain = this.plains.get(k);
    if (plain === undefined) {
      plain = this.encodeDiagonal(k);
      this.plains.set(k, plain);
    }
    return plain ?? undefined;
  }

  /** A product is done with diagonal k: freed now unless the columns are kept. */
  release(k: number): void {
    if (this.kept) return;
    this.plains.get(k)?.delete();
    this.plains.delete(k);
  }

  /** Diagonal k (packing.ts generalizedDiagonal) encoded at level 1; null when it is all zero. */
  private encodeDiagonal(k: number): PlainText | null {
    const diagonal = generalizedDiagonal(this.columns, this.plan, k, this.slots);
    return diagonal ? this.encodeAtLevelOne(diagonal, this.scale) : null;
  }

  dispose(): void {
    this.disposed = true;
    for (const plain of this.plains.values()) plain?.delete();
    this.plains.clear();
  }
}

class DiagonalInput implements GradientInput {
  private mask?: PlainText;
  private started = false;
  private disposed = false;

  constructor(
    readonly columns: DiagonalColumns,
    private readonly maskValues: Float64Array,
    private readonly scale: number,
    private readonly encodeAtLevelOne: (values: Float64Array, scale: number) => PlainText,
  ) {}

  get plan(): GradientPlan {
    return this.columns.plan;
  }

  encodeNext(): boolean {
    if (this.disposed || this.started) return false;
    if (!this.mask) {
      this.maskPlain();
      return true;
    }
    return this.columns.encodeNext();
  }

  /** maskedGradientOf begins: an input serves one gradient, and nothing more is encoded ahead. */
  start(): void {
    if (this.disposed || this.started) throw new RangeError('a gradient input serves one maskedGradientOf call, before dispose()');
    this.started = true;
  }

  /** The mask encoded at the products' scale on level 1 (kept until dispose). */
  maskPlain(): PlainText {
    if (this.disposed) throw new RangeError('this gradient input was disposed');
    this.mask ??= this.encodeAtLevelOne(this.maskValues, this.scale);
    return this.mask;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.mask?.delete();
    this.mask = undefined;
    if (!this.columns.kept) this.columns.dispose();
  }
}
