/**
 * Threshold CKKS (src/he/threshold): the collective keys work in SEAL as SEAL's own do, the shares of every party
 * decrypt and no proper subset does, flooding has the distribution it claims, and a party gives one share per
 * ciphertext and purpose.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { galoisElementForStep, residueClassSums, verticalRotationSteps } from '../src/he/packing.js';
import { classSumTransform } from '../src/he/class-sums.js';
import { THRESHOLD_CKKS_PARAMS, VERTICAL_CKKS_PARAMS, VERTICAL_THRESHOLD_CKKS_PARAMS } from '../src/he/params.js';
import { CkksEngine } from '../src/he/engine.js';
import { HorizontalVectors } from '../src/he/horizontal.js';
import { collectiveLevel } from '../src/he/packing.js';
import { ThresholdVectors } from '../src/he/threshold-vectors.js';
import { ErrorCode, FedcreditError } from '../src/errors.js';
import {
  Combiner,
  CommitThenReveal,
  CommonReferenceString,
  DecryptionParty,
  DecryptionProtocol,
  DecryptionShare,
  floodingSigma,
  floodingSlotError,
  freshSumNoiseBits,
  GaloisKeyGenProtocol,
  GaloisKeyShare,
  PublicKeyGenProtocol,
  PublicKeyShare,
  SecretKeyShare,
  ShamirShare,
  ThresholdContext,
  Thresholdizer,
  type CanonicalCiphertext,
  type DecryptionRule,
  shareCommitment,
  type IssuedShareRecord,
} from '../src/he/threshold/index.js';
import type { PolyTransform } from '../src/he/threshold/context.js';
import { writePlaintext } from '../src/he/seal-format.js';
import {
  addPoly,
  automorphism,
  centredCrt,
  nttOrbits,
  orbitSumNtt,
  centredFirstPrime,
  intt,
  mulPoly,
  mulScalarPoly,
  ntt,
  prefixPoly,
  sampleFlooding,
  subPoly,
  zeroPoly,
  type FloodingSample,
  type RingModulus,
} from '../src/he/threshold/ring.js';
import { verticalGradientNoiseBits } from '../src/he/vertical-threshold.js';
import { floodingWords, sampleFloodingPoly } from './helpers/flooding-model.js';
import { readCiphertext, readGaloisKeys, readPlaintext, writeCiphertext } from '../src/he/seal-format.js';

/** A ciphertext (c0, c1) at a data level, scale 1, as SEAL loads and re-saves it. */
function craftedCiphertext(context: ThresholdContext, level: number, c0: BigUint64Array, c1: BigUint64Array) {
  const info = context.levels[level]!;
  return context.canonicalCiphertext(writeCiphertext({ parmsId: info.parmsId, degree: context.degree, primeCount: info.ring.primes.length, scale: 1, isNttForm: true, polys: [c0, c1] }));
}

/** ThresholdContext.floodedProduct with `b` loaded into SEAL at the ciphertext's level, as a party's secret share is. */
function floodedProduct(context: ThresholdContext, ct: CanonicalCiphertext, b: BigUint64Array, flooding: FloodingSample, transform?: PolyTransform): BigUint64Array {
  const plain = context.nttPlaintext(ct.level, b);
  try {
    return context.floodedProduct(ct, plain, flooding, transform);
  } finally {
    plain.delete();
  }
}

const same = (a: BigUint64Array, b: BigUint64Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

/** Horizontal-style aggregates: fresh encryptions at scale 2^80 on the top level of the default chain (100 bits). */
const AGGREGATE_SCALE = 2 ** 80;
/** Noise bound for a sum of up to 10 fresh encryptions under a 10-party key: measured max 2^9.7 (see docs/threshold-ckks.md). */
const aggregateRule: DecryptionRule = { name: 'aggregate', level: 0, scale: AGGREGATE_SCALE, noiseBits: 11 };

let ctx: ThresholdContext;
let verticalCtx: ThresholdContext;

beforeAll(async () => {
  ctx = await ThresholdContext.create();
  verticalCtx = await ThresholdContext.create(VERTICAL_CKKS_PARAMS);
});

afterAll(() => {
  ctx.dispose();
  verticalCtx.dispose();
});

const seed = () => new CommonReferenceString(randomBytes(32));

/** Every DecryptionParty a test makes, disposed after it (each keeps SEAL copies of its secret share). */
const decryptionParties: DecryptionParty[] = [];
afterEach(() => decryptionParties.splice(0).forEach((p) => p.dispose()));
function decryptionParty(...args: ConstructorParameters<typeof DecryptionParty>): DecryptionParty {
  const party = new DecryptionParty(...args);
  decryptionParties.push(party);
  return party;
}

/** The N-of-N key ceremony: n secret shares and the collective public key (SEAL bytes). */
function ceremony(context: ThresholdContext, n: number, crs: CommonReferenceString): { secrets: SecretKeyShare[]; publicKey: Uint8Array } {
  const ckg = new PublicKeyGenProtocol(context);
  const secrets = Array.from({ length: n }, () => SecretKeyShare.generate(context));
  const aggregate = ckg.allocateShare();
  for (const secret of secrets) {
    const share = ckg.allocateShare();
    ckg.generateShare(secret, crs, share);
    // Shares travel as bytes.
    ckg.aggregateShares(aggregate, PublicKeyShare.deserialize(context, share.serialize()), aggregate);
  }
  return { secrets, publicKey: ckg.generatePublicKey(aggregate, crs) };
}

/** SEAL public-key encryptions of each vector under `publicKey`, added by SEAL's Evaluator. */
function encryptSum(context: ThresholdContext, publicKey: Uint8Array, vectors: Float64Array[], scale: number): Uint8Array {
  const { seal } = context;
  const pk = seal.PublicKey();
  const encoder = seal.CKKSEncoder(context.context);
  const evaluator = seal.Evaluator(context.context);
  pk.loadArray(context.context, publicKey);
  const encryptor = seal.Encryptor(context.context, pk);
  const sum = seal.CipherText();
  try {
    vectors.forEach((v, i) => {
      const plain = encoder.encode(v, scale)!;
      const cipher = encryptor.encrypt(plain)!;
      if (i === 0) sum.copy(cipher);
      else evaluator.add(sum, cipher, sum);
      cipher.delete();
      plain.delete();
    });
    return sum.saveArray(seal.ComprModeType.none);
  } finally {
    sum.delete();
    encryptor.delete();
    evaluator.delete();
    encoder.delete();
    pk.delete();
  }
}

function decryptWith(context: ThresholdContext, parties: DecryptionParty[], ciphertext: Uint8Array, purpose: string, rule: string): Float64Array {
  const protocol = new DecryptionProtocol(context);
  const shares = parties.map((p) => DecryptionShare.deserialize(context, p.generateShare(ciphertext, purpose, rule).serialize()));
  const aggregate = protocol.allocateShare(shares[0]!.ciphertextDigest, purpose, shares[0]!.level);
  for (const share of shares) protocol.aggregateShares(aggregate, share, aggregate);
  return protocol.finalize(ciphertext, purpose, new Map([['the combiner', aggregate]]));
}

const randomVector = (length: number, magnitude: number) => Float64Array.from({ length }, () => (Math.random() * 2 - 1) * magnitude);

const maxError = (a: Float64Array, b: Float64Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

function expectRefused(run: () => unknown, pattern: RegExp): void {
  let caught: unknown;
  try {
    run();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(FedcreditError);
  expect((caught as FedcreditError).code).toBe(ErrorCode.DECRYPTION_REFUSED);
  expect((caught as FedcreditError).message).toMatch(pattern);
}

describe('ring arithmetic matches SEAL', () => {
  it("reproduces SEAL's own secret key, public key and Galois key from their bytes", () => {
    const context = verticalCtx;
    const ring = context.keyRing;
    const { seal } = context;
    const keygen = seal.KeyGenerator(context.context);
    const secretKey = keygen.secretKey();
    const publicKey = keygen.createPublicKey();
    const galois = keygen.createGaloisKeys(Int32Array.from([1, 64]));
    try {
      const s = readPlaintext(secretKey.saveArray(seal.ComprModeType.none)).coefficients;
      // The inverse NTT of SEAL's secret key is ternary and the same integer polynomial in every prime.
      const coefficients = intt(ring, s.slice());
      const centred = centredFirstPrime(ring, coefficients);
      expect(centred.every((c) => c >= -1n && c <= 1n)).toBe(true);
      expect(centred.filter((c) => c === 0n).length).toBeGreaterThan(ring.degree / 4);
      let mismatches = 0;
      ring.primes.forEach((q, j) => {
        for (let k = 0; k < ring.degree; k++) {
          const c = coefficients[j * ring.degree + k]!;
          if ((c === q - 1n ? -1n : c) !== centred[k]) mismatches++;
        }
      });
      expect(mismatches).toBe(0);

      // Public key: p0 + p1·s is SEAL's noise (|e| ≤ 6σ = 19.2).
      const [p0, p1] = readCiphertext(publicKey.saveArray(seal.ComprModeType.none)).polys as [BigUint64Array, BigUint64Array];
      const e = intt(ring, addPoly(ring, p0, mulPoly(ring, p1, s, zeroPoly(ring)), zeroPoly(ring)));
      const noise = centredFirstPrime(ring, e).map(Number);
      expect(Math.max(...noise.map(Math.abs))).toBeLessThanOrEqual(19);
      expect(Math.max(...noise.map(Math.abs))).toBeGreaterThan(5);

      // Galois key for g: c0_j + c1_j·s − [P]_{q_j}·[s(X^g)]_{q_j} is small in every prime, for each data prime j.
      const keys = readGaloisKeys(galois.saveArray(seal.ComprModeType.none));
      const rtg = new GaloisKeyGenProtocol(context);
      for (const step of [1, 64]) {
        const g = rtg.galoisElement(step);
        const rotatedSecret = ntt(ring, automorphism(ring, coefficients, g));
        const kswitch = keys.keys.get(g)!;
        expect(kswitch).toHaveLength(context.dataPrimeCount);
        kswitch.forEach((key, j) => {
          const [c0, c1] = key.polys as [BigUint64Array, BigUint64Array];
          const term = zeroPoly(ring);
          const n = ring.degree;
          const factor = context.specialPrime % ring.primes[j]!;
          for (let k = 0; k < n; k++) term[j * n + k] = (rotatedSecret[j * n + k]! * factor) % ring.primes[j]!;
          const err = intt(ring, subPoly(ring, addPoly(ring, c0, mulPoly(ring, c1, s, zeroPoly(ring)), zeroPoly(ring)), term));
          const values = centredFirstPrime(ring, err).map(Number);
          expect(Math.max(...values.map(Math.abs))).toBeLessThanOrEqual(19);
          // The same small polynomial in every prime (a proper RLWE error, not a residue of one prime).
          const last = ring.primes.length - 1;
          const q = ring.primes[last]!;
          for (let k = 0; k < 32; k++) {
            const w = err[last * n + k]!;
            expect(w > q / 2n ? Number(w - q) : Number(w)).toBe(values[k]);
          }
        });
      }
    } finally {
      galois.delete();
      publicKey.delete();
      secretKey.delete();
      keygen.delete();
    }
  });

  it("SEAL's product, transform and flooding of crafted ciphertexts (what a decryption share uses) give the same words as ring.ts", () => {
    for (const context of [ctx, verticalCtx]) {
      context.levels.forEach((info) => {
        const crs = new CommonReferenceString(randomBytes(32));
        const a = crs.polynomial(info.ring, 'a');
        const b = crs.polynomial(info.ring, 'b');
        const ct = craftedCiphertext(context, info.level, crs.polynomial(info.ring, 'c0'), a);
        // Flooding on a grid of 2^0 (σ = 2^40), 2^10 (the horizontal rule's 2^56.5) and 2^(bits of the level's smallest prime − 2).
        const smallest = Math.min(...info.ring.primes.map((q) => q.toString(2).length));
        for (const sigma of [2 ** 40, 2 ** 56.5, 2 ** (smallest + 44)]) {
          const flooding = sampleFlooding(info.ring, sigma, 20 * sigma);
          const noise = floodingWords(info.ring, flooding);
          const bySeal = floodedProduct(context, ct, b, flooding);
          const byRing = addPoly(info.ring, mulPoly(info.ring, a, b, zeroPoly(info.ring)), ntt(info.ring, noise.slice()));
          expect(same(bySeal, byRing), `level ${info.level}, σ = 2^${Math.log2(sigma).toFixed(1)}`).toBe(true);
          // and ring.intt undoes ring.ntt
          expect(same(intt(info.ring, ntt(info.ring, noise.slice())), noise)).toBe(true);
        }
      });
    }
  });

  it('sums NTT slots over their orbits exactly as the automorphisms of the coefficients add up (the class sums inside a decryption)', () => {
    for (const context of [ctx, verticalCtx]) {
      const info = context.levels[1]!;
      const a = sampleFloodingPoly(info.ring, 2 ** 40, 2 ** 45);
      // The class sum modulo P: Π_{step = P, 2P, …, S/2} (1 + σ_step), one automorphism of the coefficients and one
      // addition per step, is the sum over each NTT slot's orbit under the group σ_P generates (2P orbits of S/P
      // slots), which SEAL's table of σ on NTT slots gives.
      const slots = context.degree / 2;
      for (const period of [1, 16, slots / 2]) {
        const stepwise = a.slice();
        for (let step = period; step < slots; step *= 2) addPoly(info.ring, stepwise, automorphism(info.ring, stepwise, galoisElementForStep(context.degree, step)));
        const orbits = nttOrbits(context.degree, galoisElementForStep(context.degree, period));
        expect(orbits.count).toBe(2 * period);
        const byOrbits = orbitSumNtt(info.ring, ntt(info.ring, a.slice()), orbits);
        expect(Buffer.from(byOrbits.buffer).equals(Buffer.from(ntt(info.ring, stepwise).buffer))).toBe(true);
      }
    }
  });

  it("the class sum inside a decryption (classSumTransform on NTT slots) decodes to the slots' residue-class sums for every period 1 to S, and SEAL applies it to a share as ring.ts does", async () => {
    const jobCtx = await ThresholdContext.create(VERTICAL_THRESHOLD_CKKS_PARAMS);
    try {
      for (const context of [verticalCtx, jobCtx]) {
        const { seal } = context;
        const slots = context.degree / 2;
        const values = Float64Array.from({ length: slots }, () => 2 * Math.random() - 1);
        const encoder = seal.CKKSEncoder(context.context);
        try {
          const encoded = encoder.encode(values, 2 ** 40)!;
          const plain = readPlaintext(encoded.saveArray(seal.ComprModeType.none));
          encoded.delete();
          const ring = context.levelOf(plain.parmsId)!.ring;
          for (let period = 1; period <= slots; period *= 2) {
            const coefficients = plain.coefficients.slice();
            classSumTransform(context.degree, period)(ring, coefficients);
            const summed = seal.PlainText();
            summed.loadArray(context.context, writePlaintext({ ...plain, coefficients }));
            const opened = encoder.decode(summed) as Float64Array;
            summed.delete();
            const classSums = residueClassSums(values, period);
            const worst = Math.max(...Array.from(opened, (v, i) => Math.abs(v - classSums[i % period]!)));
            expect(worst, `N = ${context.degree}, period ${period}`).toBeLessThan(1e-6);
          }
        } finally {
          encoder.delete();
        }
        // A share's product with the transform: SEAL's words are ring.ts's T(a·b) + NTT(noise).
        const info = context.levels[1]!;
        const crs = new CommonReferenceString(randomBytes(32));
        const a = crs.polynomial(info.ring, 'a');
        const b = crs.polynomial(info.ring, 'b');
        const flooding = sampleFlooding(info.ring, 2 ** 50, 2 ** 55);
        const transform = classSumTransform(context.degree, 16);
        const bySeal = floodedProduct(context, craftedCiphertext(context, info.level, crs.polynomial(info.ring, 'c0'), a), b, flooding, transform);
        const product = mulPoly(info.ring, a, b, zeroPoly(info.ring));
        transform(info.ring, product);
        const byRing = addPoly(info.ring, product, ntt(info.ring, floodingWords(info.ring, flooding)));
        expect(same(bySeal, byRing)).toBe(true);
      }
    } finally {
      jobCtx.dispose();
    }
  });

  it('samples flooding of any width at integer resolution: low bits uniform, standard deviation as asked', async () => {
    const jobCtx = await ThresholdContext.create(VERTICAL_THRESHOLD_CKKS_PARAMS);
    // The last width is the vertical gradient rule's under a collective key of 3 (σ_f = 2^103.7, a grid of 2^58).
    const widths: [RingModulus, number][] = [
      ...[20, 56.5, 85.5].map((bits): [RingModulus, number] => [verticalCtx.levels[0]!.ring, bits]),
      [jobCtx.levels[1]!.ring, Math.log2(floodingSigma(jobCtx.degree, verticalGradientNoiseBits(jobCtx.degree, 3)))],
    ];
    jobCtx.dispose();
    for (const [ring, bits] of widths) {
      const sigma = 2 ** bits;
      const values = centredCrt(ring, sampleFloodingPoly(ring, sigma, 20 * sigma));
      const sd = Math.sqrt(values.reduce((a, v) => a + (Number(v) / sigma) ** 2, 0) / values.length);
      expect(Math.abs(sd - 1)).toBeLessThan(0.05);
      const residues = new Array<number>(16).fill(0);
      for (const v of values) residues[Number(((v % 16n) + 16n) % 16n)]! += 1;
      expect(Math.min(...residues)).toBeGreaterThan(0.7 * (ring.degree / 16));
      expect(Math.max(...residues)).toBeLessThan(1.3 * (ring.degree / 16));
    }
  });

  it('adds and subtracts on 32-bit halves exactly as BigInt does, at the edges of every prime', () => {
    const ring = verticalCtx.keyRing;
    const a = zeroPoly(ring);
    const b = zeroPoly(ring);
    ring.primes.forEach((q, j) => {
      const edges = [0n, 1n, q - 1n, q - 2n, q / 2n, (1n << 32n) - 1n, 1n << 32n, q - (1n << 32n)];
      for (let k = 0; k < ring.degree; k++) {
        a[j * ring.degree + k] = k < 64 ? edges[k % 8]! : BigInt(Math.floor(Math.random() * 2 ** 52)) % q;
        b[j * ring.degree + k] = k < 64 ? edges[(k >> 3) % 8]! : (q - 1n - BigInt(k)) % q;
      }
    });
    const sum = addPoly(ring, a, b, zeroPoly(ring));
    const difference = subPoly(ring, a, b, zeroPoly(ring));
    let wrong = 0;
    ring.primes.forEach((q, j) => {
      for (let k = 0; k < ring.degree; k++) {
        const x = a[j * ring.degree + k]!;
        const y = b[j * ring.degree + k]!;
        if (sum[j * ring.degree + k] !== (x + y) % q || difference[j * ring.degree + k] !== (x - y + q) % q) wrong++;
      }
    });
    expect(wrong).toBe(0);
  });

  it('derives the same common reference polynomial from the same seed, and another from another seed', () => {
    const bytes = randomBytes(32);
    const a = new CommonReferenceString(bytes).polynomial(ctx.keyRing, 'ckg');
    const b = new CommonReferenceString(Uint8Array.from(bytes)).polynomial(ctx.keyRing, 'ckg');
    const c = new CommonReferenceString(randomBytes(32)).polynomial(ctx.keyRing, 'ckg');
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
    expect(Buffer.from(a.buffer).equals(Buffer.from(c.buffer))).toBe(false);
    ctx.keyRing.primes.forEach((q, j) => expect(a.subarray(j * ctx.degree, (j + 1) * ctx.degree).every((v) => v < q)).toBe(true));
  });
});

describe('shares on the wire', () => {
  it('every share type round-trips through bytes, and a share of another kind or damaged is refused', () => {
    const crs = seed();
    const secret = SecretKeyShare.generate(ctx);

    expect(same(SecretKeyShare.deserialize(ctx, secret.serialize()).poly, secret.poly)).toBe(true);

    const ckg = new PublicKeyGenProtocol(ctx);
    const pkShare = ckg.allocateShare();
    ckg.generateShare(secret, crs, pkShare);
    const pkBytes = pkShare.serialize();
    expect(same(PublicKeyShare.deserialize(ctx, pkBytes).poly, pkShare.poly)).toBe(true);

    const rtg = new GaloisKeyGenProtocol(ctx);
    const [galoisShare] = rtg.generateShares(secret, [3], crs);
    const galoisBack = GaloisKeyShare.deserialize(ctx, galoisShare!.serialize());
    expect(galoisBack.galoisElement).toBe(galoisShare!.galoisElement);
    galoisBack.polys.forEach((p, j) => expect(same(p, galoisShare!.polys[j]!)).toBe(true));

    const { secrets, publicKey } = ceremony(ctx, 2, crs);
    const ct = encryptSum(ctx, publicKey, [randomVector(8, 1)], AGGREGATE_SCALE);
    const party = decryptionParty(ctx, secrets[0]!, { rules: [aggregateRule] });
    const decShare = party.generateShare(ct, 'job-1/round-1/aggregate', 'aggregate');
    const decBack = DecryptionShare.deserialize(ctx, decShare.serialize());
    expect([decBack.ciphertextDigest, decBack.purpose, decBack.level]).toEqual([decShare.ciphertextDigest, decShare.purpose, decShare.level]);
    expect(same(decBack.poly, decShare.poly)).toBe(true);

    const thresholdizer = new Thresholdizer(ctx, 2);
    const shamir = thresholdizer.allocateShare(3);
    thresholdizer.generateShare(thresholdizer.generateShamirPolynomial(secret), shamir);
    const shamirBack = ShamirShare.deserialize(ctx, shamir.serialize());
    expect(shamirBack.point).toBe(3);
    expect(same(shamirBack.poly, shamir.poly)).toBe(true);

    // A public key share is not a Galois key share; a truncated one, or one under the vertical parameters, is refused.
    expect(() => GaloisKeyShare.deserialize(ctx, pkBytes)).toThrow(/expected a galoisKey share, got a publicKey share/);
    expect(() => PublicKeyShare.deserialize(ctx, pkBytes.subarray(0, pkBytes.length - 8))).toThrow(/truncated/);
    expect(() => PublicKeyShare.deserialize(verticalCtx, pkBytes)).toThrow(/primes/);
    const unreduced = Uint8Array.from(pkBytes);
    unreduced.fill(0xff, unreduced.length - 8);
    expect(() => PublicKeyShare.deserialize(ctx, unreduced)).toThrow(/not reduced/);
  });
});

describe('N-of-N: collective key, sum, collective decryption', () => {
  for (const n of [3, 10]) {
    it(`${n} parties: SEAL encrypts under the collective key, sums, and the ${n} shares decrypt the sum within CKKS precision`, () => {
      const crs = seed();
      const { secrets, publicKey } = ceremony(ctx, n, crs);
      const vectors = Array.from({ length: n }, () => randomVector(ctx.degree / 2, 100));
      const expected = vectors.reduce((acc, v) => acc.map((x, i) => x + v[i]!), new Float64Array(ctx.degree / 2));
      const sum = encryptSum(ctx, publicKey, vectors, AGGREGATE_SCALE);
      const parties = secrets.map((s) => decryptionParty(ctx, s, { rules: [aggregateRule] }));
      const decrypted = decryptWith(ctx, parties, sum, 'job-1/round-1/aggregate', 'aggregate');
      // Flooding of σ_f = 2^(39 + 6.5 + 11) per party: predicted slot error √n·σ_f·√(N/2)/Δ, bounded here by 8×.
      const predicted = floodingSlotError(ctx.degree, floodingSigma(ctx.degree, aggregateRule.noiseBits), n, AGGREGATE_SCALE);
      const error = maxError(decrypted, expected);
      expect(error).toBeLessThan(8 * predicted);
      expect(error).toBeLessThan(1e-3);
    });
  }

  it('the noise of a sum of fresh encryptions under a 10-party key stays below freshSumNoiseBits, the bound the flooding hides', () => {
    const n = 10;
    const { secrets, publicKey } = ceremony(ctx, n, seed());
    const { seal } = ctx;
    const encoder = seal.CKKSEncoder(ctx.context);
    const values = randomVector(ctx.degree / 2, 100);
    const plain = encoder.encode(values, AGGREGATE_SCALE)!;
    const exact = readPlaintext(plain.saveArray(seal.ComprModeType.none)).coefficients;
    plain.delete();
    encoder.delete();
    // n encryptions of the same values, so the exact plaintext of the sum is n times the encoded one.
    const sum = ctx.canonicalCiphertext(
      encryptSum(
        ctx,
        publicKey,
        Array.from({ length: n }, () => values),
        AGGREGATE_SCALE,
      ),
    );
    const ring = ctx.levels[0]!.ring;
    const s = zeroPoly(ctx.keyRing);
    for (const secret of secrets) addPoly(ctx.keyRing, s, secret.poly);
    const decrypted = addPoly(ring, sum.data.polys[0]!, mulPoly(ring, sum.data.polys[1]!, prefixPoly(ctx.keyRing, s, ring.primes.length), zeroPoly(ring)), zeroPoly(ring));
    const expected = mulScalarPoly(
      ring,
      exact,
      ring.primes.map(() => BigInt(n)),
      zeroPoly(ring),
    );
    const noise = centredFirstPrime(ring, intt(ring, subPoly(ring, decrypted, expected, zeroPoly(ring)))).map(Number);
    const max = Math.max(...noise.map(Math.abs));
    const rms = Math.sqrt(noise.reduce((a, e) => a + e * e, 0) / noise.length);
    const bound = freshSumNoiseBits(ctx.degree, n, n);
    expect(Math.log2(max)).toBeLessThan(bound);
    // The model behind the bound: rms = √(c·(N·n/18 + 1/6)), here about 213.
    expect(rms / Math.sqrt(n * ((ctx.degree * n) / 18 + 1 / 6))).toBeGreaterThan(0.8);
    expect(rms / Math.sqrt(n * ((ctx.degree * n) / 18 + 1 / 6))).toBeLessThan(1.2);
    expect(aggregateRule.noiseBits).toBeGreaterThanOrEqual(bound);
  });

  it("at level 1, where a horizontal job's sums but the moments travel, SEAL's public-key encryption has the same fresh noise (below freshSumNoiseBits)", async () => {
    const n = 10;
    const tctx = await ThresholdContext.create(THRESHOLD_CKKS_PARAMS);
    const engine = await CkksEngine.create(THRESHOLD_CKKS_PARAMS);
    try {
      const { secrets, publicKey } = ceremony(tctx, n, seed());
      const values = randomVector(tctx.degree / 2, 100);
      const layout = { level: collectiveLevel(THRESHOLD_CKKS_PARAMS, 'update'), uncompressed: true };
      expect(layout.level).toBe(1);
      // The job's own path: HorizontalVectors encrypts at the layout's level, the coordinator's sum adds n of them.
      const horizontal = new HorizontalVectors(engine);
      const blocks = Array.from({ length: n }, () => horizontal.encryptVector(values, publicKey, undefined, layout));
      const sum = tctx.canonicalCiphertext(horizontal.sumVectors(blocks, layout)[0]!);
      expect(sum.level).toBe(1);
      const ring = tctx.levels[1]!.ring;
      const { seal } = tctx;
      const encoder = seal.CKKSEncoder(tctx.context);
      const plain = encoder.encode(values, AGGREGATE_SCALE)!;
      // The level-0 plaintext's words restricted to level 1's primes (a prefix) are the exact level-1 plaintext.
      const exact = prefixPoly(tctx.levels[0]!.ring, readPlaintext(plain.saveArray(seal.ComprModeType.none)).coefficients, ring.primes.length);
      plain.delete();
      encoder.delete();
      const s = zeroPoly(tctx.keyRing);
      for (const secret of secrets) addPoly(tctx.keyRing, s, secret.poly);
      const decrypted = addPoly(ring, sum.data.polys[0]!, mulPoly(ring, sum.data.polys[1]!, prefixPoly(tctx.keyRing, s, ring.primes.length), zeroPoly(ring)), zeroPoly(ring));
      const expected = mulScalarPoly(
        ring,
        exact,
        ring.primes.map(() => BigInt(n)),
        zeroPoly(ring),
      );
      const noise = centredFirstPrime(ring, intt(ring, subPoly(ring, decrypted, expected, zeroPoly(ring)))).map(Number);
      const max = Math.max(...noise.map(Math.abs));
      const rms = Math.sqrt(noise.reduce((a, e) => a + e * e, 0) / noise.length);
      expect(Math.log2(max)).toBeLessThan(freshSumNoiseBits(tctx.degree, n, n));
      expect(rms / Math.sqrt(n * ((tctx.degree * n) / 18 + 1 / 6))).toBeGreaterThan(0.8);
      expect(rms / Math.sqrt(n * ((tctx.degree * n) / 18 + 1 / 6))).toBeLessThan(1.2);
    } finally {
      engine.dispose();
      tctx.dispose();
    }
  });

  it("a party's shares at the two levels of a horizontal job, interleaved, decrypt (its share is loaded into SEAL once per level), and a disposed party gives none", async () => {
    const n = 3;
    const tctx = await ThresholdContext.create(THRESHOLD_CKKS_PARAMS);
    const engine = await CkksEngine.create(THRESHOLD_CKKS_PARAMS);
    try {
      const { secrets, publicKey } = ceremony(tctx, n, seed());
      const vectors = new ThresholdVectors(tctx, n);
      const parties = secrets.map((s) => decryptionParty(tctx, s, { rules: vectors.rules }));
      const horizontal = new HorizontalVectors(engine);
      for (const [round, level] of [
        [1, 0],
        [2, 1],
        [3, 0],
        [4, 1],
      ] as const) {
        const values = randomVector(tctx.degree / 2, 100);
        const [block] = horizontal.encryptVector(values, publicKey, undefined, { level, uncompressed: true });
        expect(tctx.canonicalCiphertext(block!).level).toBe(level);
        expect(maxError(decryptWith(tctx, parties, block!, `job-1/round-${round}/aggregate`, vectors.rules[level]!.name), values)).toBeLessThan(1e-3);
      }
      parties[0]!.dispose();
      const [late] = horizontal.encryptVector(randomVector(tctx.degree / 2, 100), publicKey, undefined, { level: 0, uncompressed: true });
      expect(() => parties[0]!.generateShare(late!, 'job-1/round-5/aggregate', vectors.rules[0]!.name)).toThrow(/disposed: its secret share is deleted/);
    } finally {
      engine.dispose();
      tctx.dispose();
    }
  });

  it('no proper subset of the shares decrypts: leaving out any one party leaves values unrelated to the plaintext', () => {
    const n = 3;
    const { secrets, publicKey } = ceremony(ctx, n, seed());
    const values = randomVector(ctx.degree / 2, 100);
    const ct = encryptSum(ctx, publicKey, [values], AGGREGATE_SCALE);
    const parties = secrets.map((s) => decryptionParty(ctx, s, { rules: [aggregateRule] }));
    const shares = parties.map((p) => p.generateShare(ct, 'job-1/round-1/aggregate', 'aggregate'));
    const protocol = new DecryptionProtocol(ctx);
    const combine = (subset: DecryptionShare[]) => {
      const aggregate = protocol.allocateShare(subset[0]!.ciphertextDigest, subset[0]!.purpose, subset[0]!.level);
      for (const share of subset) protocol.aggregateShares(aggregate, share, aggregate);
      return protocol.finalize(ct, subset[0]!.purpose, new Map([['the combiner', aggregate]]));
    };
    expect(maxError(combine(shares), values)).toBeLessThan(1e-3);
    const subsets = [[0], [1], [2], [0, 1], [0, 2], [1, 2]];
    for (const subset of subsets) {
      const decoded = combine(subset.map((i) => shares[i]!));
      const errors = Array.from(decoded, (v, i) => Math.abs(v - values[i]!)).sort((a, b) => a - b);
      // The median slot is off by more than 10^4 times the largest plaintext value...
      expect(errors[errors.length >> 1]).toBeGreaterThan(1e6);
      // ...and the decoded slots do not correlate with the plaintext.
      const mean = (xs: ArrayLike<number>) => Array.from(xs).reduce((a, b) => a + b, 0) / xs.length;
      const mv = mean(values);
      const md = mean(decoded);
      let cov = 0;
      let vv = 0;
      let dd = 0;
      for (let i = 0; i < values.length; i++) {
        cov += (values[i]! - mv) * (decoded[i]! - md);
        vv += (values[i]! - mv) ** 2;
        dd += (decoded[i]! - md) ** 2;
      }
      expect(Math.abs(cov / Math.sqrt(vv * dd))).toBeLessThan(0.1);
    }
  });

  it("the flooding noise of a share is centred, of the stated σ, within the sum of uniforms' support, and the result carries it", () => {
    const { secrets, publicKey } = ceremony(ctx, 3, seed());
    const ct = encryptSum(ctx, publicKey, [randomVector(ctx.degree / 2, 1)], AGGREGATE_SCALE);
    const party = decryptionParty(ctx, secrets[0]!, { rules: [aggregateRule] });
    const sigma = party.floodingSigma('aggregate');
    expect(sigma).toBe(2 ** 39 * Math.sqrt(ctx.degree) * 2 ** 11);
    const share = party.generateShare(ct, 'job-1/round-1/aggregate', 'aggregate');
    const ring = ctx.levels[0]!.ring;
    const c1poly = ctx.canonicalCiphertext(ct).data.polys[1]!;
    const flood = intt(ring, subPoly(ring, share.poly, mulPoly(ring, c1poly, prefixPoly(ctx.keyRing, secrets[0]!.poly, ring.primes.length), zeroPoly(ring)), zeroPoly(ring)));
    // Rebuilt from every prime: a flooding that were not the same integer modulo each prime would open here as a
    // value of the size of the modulus, far beyond 20σ.
    const integers = centredCrt(ring, flood);
    const values = integers.map((v) => Number(v) / sigma);
    // The flooding is drawn afresh on every run, so each bound below fails a correct sampler with probability below
    // 1e-7 (binomial and chi-square tails for n = 8192; a variance bound of 5% was 3.2 standard errors, a false
    // failure in 1 run of 700).
    // Its low bits are uniform (σ·z in double precision alone would leave them zero, showing e_ct's low bits): each of
    // the 64 residue counts is Binomial(8192, 1/64), 128 ± 11.2, and all fall within 0.4 and 1.6 times 128.
    const residues = new Array<number>(64).fill(0);
    for (const v of integers) residues[Number(((v % 64n) + 64n) % 64n)]! += 1;
    expect(Math.min(...residues)).toBeGreaterThan(0.4 * (ring.degree / 64));
    expect(Math.max(...residues)).toBeLessThan(1.6 * (ring.degree / 64));
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length;
    // 8192 samples of unit variance: mean within 5.5 standard errors (1/√n), variance within 5.3 (√(2/n): 8.3%).
    expect(Math.abs(mean)).toBeLessThan(5.5 / Math.sqrt(values.length));
    expect(Math.abs(variance - 1)).toBeLessThan(5.3 * Math.sqrt(2 / values.length));
    // A sum of 8 uniforms of variance σ²/8 each reaches √24·σ = 4.9σ at most (src/he/threshold/ring.ts, floodingDigits).
    expect(Math.max(...values.map(Math.abs))).toBeLessThan(4.95);
    // Kurtosis 3 − 6/(5·8) = 2.85 (the sum of 8 uniforms), not 1.8 (a single uniform): within 0.5, over 9 standard
    // errors (√(24/n) = 0.054 for a normal, less for this lighter-tailed law).
    const kurtosis = values.reduce((a, b) => a + (b - mean) ** 4, 0) / values.length / variance ** 2;
    expect(Math.abs(kurtosis - 2.85)).toBeLessThan(0.5);
  });
});

describe('a party that deviates in the key ceremony', () => {
  it('without commitments the last party can cancel the others and hold the key alone; commit-then-reveal refuses its share, naming it', () => {
    const crs = seed();
    const ckg = new PublicKeyGenProtocol(ctx);
    const [alice, bob, mallory] = [0, 1, 2].map(() => SecretKeyShare.generate(ctx)) as [SecretKeyShare, SecretKeyShare, SecretKeyShare];
    const honest = [alice, bob].map((s) => {
      const share = ckg.allocateShare();
      ckg.generateShare(s, crs, share);
      return share;
    });
    // Mallory waits for the honest shares, then sends (−a·s_m + e_m) − Σ honest.
    const own = ckg.allocateShare();
    ckg.generateShare(mallory, crs, own);
    const rogue = ckg.allocateShare();
    subPoly(ctx.keyRing, own.poly, addPoly(ctx.keyRing, honest[0]!.poly, honest[1]!.poly, zeroPoly(ctx.keyRing)), rogue.poly);
    const aggregate = ckg.allocateShare();
    for (const share of [...honest, rogue]) ckg.aggregateShares(aggregate, share, aggregate);
    const publicKey = ckg.generatePublicKey(aggregate, crs);
    // Mallory alone decrypts what the others encrypt under the "collective" key, with SEAL's Decryptor and s_m.
    const values = randomVector(64, 10);
    const ct = encryptSum(ctx, publicKey, [values], 2 ** 40);
    const { seal } = ctx;
    const key = seal.SecretKey();
    const cipher = seal.CipherText();
    const encoder = seal.CKKSEncoder(ctx.context);
    try {
      key.loadArray(ctx.context, writePlaintext({ parmsId: ctx.keyParmsId, scale: 1, coefficients: mallory.poly }));
      const decryptor = seal.Decryptor(ctx.context, key);
      cipher.loadArray(ctx.context, ct);
      const plain = decryptor.decrypt(cipher)!;
      expect(maxError((encoder.decode(plain) as Float64Array).subarray(0, 64), values)).toBeLessThan(1e-4);
      plain.delete();
      decryptor.delete();
    } finally {
      encoder.delete();
      cipher.delete();
      key.delete();
    }

    // With commit-then-reveal Mallory must commit before any share is revealed; its rogue share then fails.
    const transcript = randomBytes(32);
    const step = new CommitThenReveal(['alice', 'bob', 'mallory'], transcript);
    step.commit('alice', shareCommitment(transcript, 'alice', honest[0]!.serialize()));
    step.commit('bob', shareCommitment(transcript, 'bob', honest[1]!.serialize()));
    expect(() => step.reveal('alice', honest[0]!.serialize())).toThrow(/before every party committed \(missing: mallory\)/);
    step.commit('mallory', shareCommitment(transcript, 'mallory', own.serialize()));
    step.reveal('alice', honest[0]!.serialize());
    step.reveal('bob', honest[1]!.serialize());
    expect(() => step.reveal('mallory', rogue.serialize())).toThrow(/the share mallory revealed does not match the commitment it made/);
    // Replaying Alice's commitment as Mallory's does not work either: the commitment names its sender.
    const replay = new CommitThenReveal(['alice', 'mallory'], transcript);
    replay.commit('alice', shareCommitment(transcript, 'alice', honest[0]!.serialize()));
    replay.commit('mallory', shareCommitment(transcript, 'alice', honest[0]!.serialize()));
    expect(() => replay.reveal('mallory', honest[0]!.serialize())).toThrow(/does not match/);
    expect(() => step.commit('eve', new Uint8Array(32))).toThrow(/eve is not a party/);
  });
});

describe('collective Galois keys', () => {
  it('SEAL rotates under the collective Galois keys by every step the vertical gradient uses, and the parties decrypt the rotation', () => {
    const context = verticalCtx;
    const crs = seed();
    const n = 3;
    const { secrets, publicKey } = ceremony(context, n, crs);
    const steps = verticalRotationSteps(context.degree / 2);
    expect(steps).toEqual([1, 2, 4, 8, 16, 32, 64]);
    const rtg = new GaloisKeyGenProtocol(context);
    const aggregates = steps.map((step) => rtg.allocateShare(rtg.galoisElement(step)));
    for (const secret of secrets) {
      rtg.generateShares(secret, steps, crs).forEach((share, i) => rtg.aggregateShares(aggregates[i]!, GaloisKeyShare.deserialize(context, share.serialize()), aggregates[i]!));
    }
    const galoisBytes = rtg.generateGaloisKeys(aggregates, crs);

    const scale = 2 ** 90;
    const rule: DecryptionRule = { name: 'rotated', level: 0, scale, noiseBits: 12 };
    const parties = secrets.map((s) => decryptionParty(context, s, { rules: [rule] }));
    const values = randomVector(context.degree / 2, 10);
    const ct = encryptSum(context, publicKey, [values], scale);
    const { seal } = context;
    const keys = seal.GaloisKeys();
    const evaluator = seal.Evaluator(context.context);
    const cipher = seal.CipherText();
    const rotated = seal.CipherText();
    try {
      keys.loadArray(context.context, galoisBytes);
      cipher.loadArray(context.context, ct);
      for (const step of steps) {
        evaluator.rotateVector(cipher, step, keys, rotated);
        const decrypted = decryptWith(context, parties, rotated.saveArray(seal.ComprModeType.none), `rotate ${step}`, 'rotated');
        const expected = Float64Array.from(values, (_, i) => values[(i + step) % values.length]!);
        expect(maxError(decrypted, expected)).toBeLessThan(1e-4);
      }
    } finally {
      rotated.delete();
      cipher.delete();
      evaluator.delete();
      keys.delete();
    }
  });
});

describe('t-of-n', () => {
  it('any 2 of 3 parties decrypt after Shamir re-sharing; one party alone, or a quorum using another quorum’s coefficients, does not', () => {
    const n = 3;
    const t = 2;
    const crs = seed();
    const { secrets, publicKey } = ceremony(ctx, n, crs);
    const points = [1, 2, 3];
    const thresholdizer = new Thresholdizer(ctx, t);
    // Each party shares its s_i; party j adds what it receives.
    const received = points.map((p) => thresholdizer.allocateShare(p));
    for (const secret of secrets) {
      const polynomial = thresholdizer.generateShamirPolynomial(secret);
      points.forEach((p, j) => {
        const share = thresholdizer.allocateShare(p);
        thresholdizer.generateShare(polynomial, share);
        thresholdizer.aggregateShares(received[j]!, ShamirShare.deserialize(ctx, share.serialize()), received[j]!);
      });
    }
    const combiner = new Combiner(ctx, t);
    const values = randomVector(ctx.degree / 2, 100);
    for (const quorum of [
      [1, 2],
      [1, 3],
      [2, 3],
    ]) {
      const ct = encryptSum(ctx, publicKey, [values], AGGREGATE_SCALE);
      const parties = quorum.map((p) => decryptionParty(ctx, combiner.generateAdditiveShare(received[p - 1]!, quorum), { rules: [aggregateRule] }));
      expect(maxError(decryptWith(ctx, parties, ct, `quorum ${quorum.join('+')}`, 'aggregate'), values)).toBeLessThan(1e-3);
    }
    // Party 1 alone with its σ_1 (λ = 1): far off.
    const ct = encryptSum(ctx, publicKey, [values], AGGREGATE_SCALE);
    const alone = decryptionParty(ctx, SecretKeyShare.fromPoly(ctx, received[0]!.poly), { rules: [aggregateRule] });
    const aloneResult = decryptWith(ctx, [alone], ct, 'alone', 'aggregate');
    expect(maxError(aloneResult, values)).toBeGreaterThan(1e6);
    // Parties 1 and 2 with the coefficients of quorum {1, 3}: far off.
    const wrong = [
      decryptionParty(ctx, combiner.generateAdditiveShare(received[0]!, [1, 3]), { rules: [aggregateRule] }),
      decryptionParty(ctx, SecretKeyShare.fromPoly(ctx, mulScalarPoly(ctx.keyRing, received[1]!.poly, combiner.lagrangeCoefficient(2, [1, 2]), zeroPoly(ctx.keyRing))), { rules: [aggregateRule] }),
    ];
    expect(maxError(decryptWith(ctx, wrong, ct, 'mixed quorum', 'aggregate'), values)).toBeGreaterThan(1e6);
    expect(() => combiner.lagrangeCoefficient(1, [1, 2, 3])).toThrow(/exactly 2 parties/);
  });

  it('a ciphertext decrypted for one quorum is decrypted once more, under the same purpose, for another quorum, and never a third time', () => {
    const n = 4;
    const t = 3;
    const { secrets, publicKey } = ceremony(ctx, n, seed());
    const points = [1, 2, 3, 4];
    const names = ['p1', 'p2', 'p3', 'p4'];
    const thresholdizer = new Thresholdizer(ctx, t);
    const received = points.map((p) => thresholdizer.allocateShare(p));
    for (const secret of secrets) {
      const polynomial = thresholdizer.generateShamirPolynomial(secret);
      points.forEach((p, j) => {
        const share = thresholdizer.allocateShare(p);
        thresholdizer.generateShare(polynomial, share);
        thresholdizer.aggregateShares(received[j]!, share, received[j]!);
      });
    }
    const combiner = new Combiner(ctx, t);
    const values = randomVector(ctx.degree / 2, 100);
    const ct = encryptSum(ctx, publicKey, [values], AGGREGATE_SCALE);
    const purpose = 'job-1/round 2/update/aggregate 00 block 0';
    const records: IssuedShareRecord[][] = points.map(() => []);
    // Party p (1-based) for `quorum`, carrying every share it gave before (as participant/threshold-party.ts does).
    const holder = (p: number, quorum: number[]) =>
      decryptionParty(ctx, combiner.generateAdditiveShare(received[p - 1]!, quorum), {
        rules: [aggregateRule],
        quorum: quorum.map((q) => names[q - 1]!),
        issued: records[p - 1],
        onIssue: (r) => records[p - 1]!.push(r),
      });
    const first = [1, 2, 3];
    // Parties 1 and 2 give their shares for the first quorum; party 3 is lost before its own.
    for (const p of [1, 2]) holder(p, first).generateShare(ct, purpose, 'aggregate');
    expect(records[0]).toEqual([expect.objectContaining({ purpose, quorum: ['p1', 'p2', 'p3'] })]);
    const second = [1, 2, 4];
    expectRefused(() => holder(1, first).generateShare(ct, purpose, 'aggregate'), /already decrypted for .* for this quorum \[p1, p2, p3\]/);
    expectRefused(() => holder(1, second).generateShare(ct, 'another purpose', 'aggregate'), /one decryption share per ciphertext \(under t-of-n one more, under the same purpose/);
    const reopened = decryptWith(
      ctx,
      second.map((p) => holder(p, second)),
      ct,
      purpose,
      'aggregate',
    );
    expect(maxError(reopened, values)).toBeLessThan(1e-3);
    expect(records[0]!.map((r) => r.quorum)).toEqual([
      ['p1', 'p2', 'p3'],
      ['p1', 'p2', 'p4'],
    ]);
    // A third quorum, and a party without a quorum (N-of-N), are refused.
    expectRefused(() => holder(1, [1, 3, 4]).generateShare(ct, purpose, 'aggregate'), /and for a second quorum/);
    const additive = decryptionParty(ctx, secrets[0]!, { rules: [aggregateRule], issued: records[0]!.slice(0, 1) });
    expectRefused(() => additive.generateShare(ct, purpose, 'aggregate'), /one decryption share per ciphertext/);
    // After a restart with its records, the party still knows it gave two.
    expectRefused(
      () => decryptionParty(ctx, secrets[0]!, { rules: [aggregateRule], quorum: ['p1', 'p3', 'p4'], issued: records[0] }).generateShare(ct, purpose, 'aggregate'),
      /and for a second quorum/,
    );
  });
});

describe('decryption rules a deviating requester cannot break silently', () => {
  it('one share per ciphertext and per purpose, only allowed classes, and the memory survives a restart', () => {
    const { secrets, publicKey } = ceremony(ctx, 2, seed());
    const records: IssuedShareRecord[] = [];
    const options = { rules: [aggregateRule], onIssue: (r: IssuedShareRecord) => records.push(r) };
    const party = decryptionParty(ctx, secrets[0]!, options);
    const ct = encryptSum(ctx, publicKey, [randomVector(16, 1)], AGGREGATE_SCALE);
    const other = encryptSum(ctx, publicKey, [randomVector(16, 1)], AGGREGATE_SCALE);
    const share = party.generateShare(ct, 'job-1/round-1/aggregate', 'aggregate');
    expect(share.ciphertextDigest).toMatch(/^[0-9a-f]{64}$/);
    expect(share.purpose).toBe('job-1/round-1/aggregate');
    expect(records).toEqual([{ ciphertextDigest: share.ciphertextDigest, purpose: 'job-1/round-1/aggregate', rule: 'aggregate' }]);

    // The same ciphertext again, under the same or another purpose, or recompressed: refused.
    expectRefused(() => party.generateShare(ct, 'job-1/round-1/aggregate', 'aggregate'), /already decrypted for "job-1\/round-1\/aggregate"/);
    expectRefused(() => party.generateShare(ct, 'job-1/round-2/aggregate', 'aggregate'), /one decryption share per ciphertext/);
    const { seal } = ctx;
    const cipher = seal.CipherText();
    cipher.loadArray(ctx.context, ct);
    const compressed = cipher.saveArray(seal.ComprModeType.zstd);
    cipher.delete();
    expect(compressed.length).toBeLessThan(ct.length);
    expectRefused(() => party.generateShare(compressed, 'job-1/round-3/aggregate', 'aggregate'), /one decryption share per ciphertext/);
    // Another ciphertext under a purpose already used: refused.
    expectRefused(() => party.generateShare(other, 'job-1/round-1/aggregate', 'aggregate'), /one decryption share per purpose/);

    // A class the job does not define, a level or a scale the class does not allow: refused.
    expectRefused(() => party.generateShare(other, 'job-1/round-4/update', 'update'), /no decryption of class "update"/);
    // (Level 1 of the default chain is one 60-bit prime: room for flooding at 2^-30 only, of a noise below 2^1.)
    const strict = decryptionParty(ctx, secrets[0]!, {
      statisticalSecurity: 30,
      rules: [
        { ...aggregateRule, name: 'level-one', level: 1, noiseBits: 1 },
        { ...aggregateRule, name: 'scale-40', scale: 2 ** 40 },
      ],
    });
    expectRefused(() => strict.generateShare(other, 'p1', 'level-one'), /at level 0, class "level-one" is decrypted only at level 1/);
    expectRefused(() => strict.generateShare(other, 'p2', 'scale-40'), /scale 2\^80\.00, class "scale-40" is decrypted only at 2\^40\.00/);
    expect(records).toHaveLength(1);

    // After a restart with the records kept, the party still refuses.
    const restarted = decryptionParty(ctx, secrets[0]!, { rules: [aggregateRule], issued: records });
    expectRefused(() => restarted.generateShare(ct, 'job-1/round-9/aggregate', 'aggregate'), /one decryption share per ciphertext/);
    // A record that cannot be kept means no share.
    const failing = decryptionParty(ctx, secrets[0]!, {
      rules: [aggregateRule],
      onIssue: () => {
        throw new Error('disk full');
      },
    });
    expect(() => failing.generateShare(other, 'job-1/round-2/aggregate', 'aggregate')).toThrow(/disk full/);
    expect(failing.issued()).toEqual([]);

    // The combiner will not mix shares of two ciphertexts, nor finish with the wrong ciphertext.
    const protocol = new DecryptionProtocol(ctx);
    const otherShare = decryptionParty(ctx, secrets[1]!, { rules: [aggregateRule] }).generateShare(other, 'job-1/round-2/aggregate', 'aggregate');
    const aggregate = protocol.allocateShare(share.ciphertextDigest, share.purpose, 0);
    expect(() => protocol.aggregateShares(aggregate, otherShare, aggregate)).toThrow(/different ciphertexts or purposes/);
    protocol.aggregateShares(aggregate, share, aggregate);
    expect(() => protocol.finalize(other, share.purpose, new Map([['the combiner', aggregate]]))).toThrow(/the combiner's decryption share is not for this request/);
  });

  it('refuses a rule whose flooding would not fit the modulus', () => {
    const secret = SecretKeyShare.generate(ctx);
    expect(() => decryptionParty(ctx, secret, { rules: [{ name: 'noisy', level: 0, scale: 2 ** 40, noiseBits: 40 }] })).toThrow(/does not fit the 100-bit modulus/);
  });
});
