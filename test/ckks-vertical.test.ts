/**
 * The encrypted steps of vertical logistic regression with an arbiter holding the CKKS secret key: hosts encrypt
 * their partial scores, the guest forms the encrypted fore-gradient, every party computes its masked gradient by
 * the hybrid diagonal method, and the arbiter decrypts only masked gradients. What a party recovers must be the
 * plaintext gradient to 1e-6 of its largest entry; the arbiter must refuse per-record ciphertexts; and the WASM
 * heap must not grow over many batches.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CkksEngine,
  DEFAULT_CKKS_PARAMS,
  VERTICAL_CKKS_PARAMS,
  VERTICAL_MAX_MASK,
  wasmHeapBytes,
  type ArbiterKeys,
} from '../src/he/ckks.js';
import { FedcreditError } from '../src/errors.js';
import { Rng } from '../src/random.js';

/** One mini-batch: partial scores of the guest and hosts, labels, weights, and the plaintext fore-gradient. */
interface Batch {
  size: number;
  hostScores: Float64Array[];
  weights: Float64Array;
  offset: Float64Array;
  /** d = w ⊙ (0.25·(u_g + Σ_k u_k) + 0.5 − y), computed in the clear for reference. */
  fore: Float64Array;
}

function makeBatch(rng: Rng, size: number, hosts: number): Batch {
  const guestScore = Float64Array.from({ length: size }, () => rng.normal(0, 1.5));
  const hostScores = Array.from({ length: hosts }, () => Float64Array.from({ length: size }, () => rng.normal(0, 1.5)));
  const labels = Float64Array.from({ length: size }, () => (rng.bernoulli(0.2) ? 1 : 0));
  const positives = labels.reduce((a, b) => a + b, 0);
  // Balanced class weights times a per-record sample weight, normalised by their sum (w ≈ 1/B: 1e-4 .. 1e-3).
  const classWeight = [size / (2 * (size - positives)), size / (2 * Math.max(1, positives))];
  const weights = Float64Array.from({ length: size }, (_, i) => classWeight[labels[i]!]! * rng.uniform(0.5, 2));
  const total = weights.reduce((a, b) => a + b, 0);
  for (let i = 0; i < size; i++) weights[i]! /= total;
  const offset = new Float64Array(size);
  const fore = new Float64Array(size);
  for (let i = 0; i < size; i++) {
    offset[i] = weights[i]! * (0.25 * guestScore[i]! + 0.5 - labels[i]!);
    let score = guestScore[i]!;
    for (const u of hostScores) score += u[i]!;
    fore[i] = weights[i]! * (0.25 * score + 0.5 - labels[i]!);
  }
  return { size, hostScores, weights, offset, fore };
}

/** p feature columns of a mix of kinds: standardised, binary (one-hot-like), and a non-negative count scale. */
function makeColumns(rng: Rng, size: number, p: number): Float64Array[] {
  return Array.from({ length: p }, (_, j) =>
    Float64Array.from({ length: size }, () => (j % 3 === 0 ? rng.normal(0, 1) : j % 3 === 1 ? (rng.bernoulli(0.3) ? 1 : 0) : rng.uniform(0, 5))),
  );
}

function plainGradient(columns: Float64Array[], fore: Float64Array): Float64Array {
  return Float64Array.from(columns, (column) => column.reduce((a, x, i) => a + x * fore[i]!, 0));
}

function randomMask(rng: Rng, length: number, magnitude: number): Float64Array {
  return Float64Array.from({ length }, () => rng.uniform(-magnitude, magnitude));
}

/** The host side: encrypt 0.25·u_k. */
function encryptPartial(scores: Float64Array): Uint8Array {
  return engine.encryptSlots(Float64Array.from(scores, (u) => 0.25 * u), keys.publicKey);
}

/** A party's full round trip: masked gradient, the arbiter's decryption of p values, unmasking. */
function gradientRoundTrip(fore: Uint8Array, columns: Float64Array[], mask: Float64Array): Float64Array {
  const masked = engine.maskedGradient(fore, columns, mask, keys.galoisKeys);
  const opened = engine.decryptGradient(masked, columns.length, keys.secretKey);
  expect(opened.length).toBe(columns.length);
  return Float64Array.from(opened, (v, j) => v - mask[j]!);
}

/** max_j |got_j − want_j| / max_j |want_j|. */
function relativeError(got: Float64Array, want: Float64Array): { rel: number; abs: number; scale: number } {
  let abs = 0;
  let scale = 0;
  for (let j = 0; j < want.length; j++) {
    abs = Math.max(abs, Math.abs(got[j]! - want[j]!));
    scale = Math.max(scale, Math.abs(want[j]!));
  }
  return { rel: abs / scale, abs, scale };
}

/**
 * How a gradient is judged. CKKS errors here are absolute: each g_j is off by about 1.4e-7·rms(X_j)·‖d‖₂ (the
 * feature diagonals are rounded at scale 2^27) whatever g_j is, and rms(X_j)·‖d‖₂ is the typical size of g_j for
 * features unrelated to the residuals. So the error is measured against max(max_j |g_j|, max_j rms(X_j)·‖d‖₂):
 * that is the plain "relative to max|g|" unless every g_j of the batch happens to be far below its typical size
 * (likely with p = 1), where a relative error says nothing about the arithmetic. Both are reported.
 */
function gradientError(got: Float64Array, want: Float64Array, columns: Float64Array[], fore: Float64Array): { rel: number; judged: number; abs: number; scale: number; typical: number } {
  const { rel, abs, scale } = relativeError(got, want);
  const foreNorm = Math.sqrt(fore.reduce((a, d) => a + d * d, 0));
  const typical = Math.max(...columns.map((c) => Math.sqrt(c.reduce((a, x) => a + x * x, 0) / c.length))) * foreNorm;
  return { rel, judged: abs / Math.max(scale, typical), abs, scale, typical };
}

function expectCode(fn: () => unknown, code: string, pattern?: RegExp): FedcreditError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught, `a FedcreditError ${code} should be thrown`).toBeInstanceOf(FedcreditError);
  expect((caught as FedcreditError).code).toBe(code);
  if (pattern) expect((caught as FedcreditError).message).toMatch(pattern);
  return caught as FedcreditError;
}

/** Cut bytes off the end and rewrite SEAL's header size to match, as a hostile sender could. */
function truncateWithHeader(bytes: Uint8Array, cut: number): Uint8Array {
  const t = Uint8Array.from(bytes.subarray(0, bytes.length - cut));
  new DataView(t.buffer).setBigUint64(8, BigInt(t.length), true);
  return t;
}

/** Masks of this size hide gradients of ~1e-2 well and cost nothing in precision; 2^30 is tested separately. */
const MASK = 2 ** 20;
const TOLERANCE = 1e-6;

let engine: CkksEngine;
let keys: ArbiterKeys;
let worstRelative = 0;
let worstJudged = 0;

beforeAll(async () => {
  engine = await CkksEngine.create(VERTICAL_CKKS_PARAMS);
  const started = performance.now();
  keys = engine.generateArbiterKeys();
  console.log(
    `[ckks vertical keys] generateArbiterKeys ${(performance.now() - started).toFixed(0)} ms; Galois keys (12 rotations: 1, 2, …, 2048; seeded, zstd) ${keys.galoisKeys.length} bytes (${(keys.galoisKeys.length / 2 ** 20).toFixed(2)} MiB); public key ${keys.publicKey.length} bytes; secret key ${keys.secretKey.length} bytes`,
  );
});

afterAll(() => {
  console.log(
    `[ckks vertical accuracy] worst error over all gradient checks (2^20 masks): ${worstRelative.toExponential(2)} of max|g|; ${worstJudged.toExponential(2)} of max(max|g|, rms(X)·‖d‖₂) (tolerance ${TOLERANCE})`,
  );
  engine?.dispose();
});

// First in the file, so the heap is measured before other tests grow it for their own reasons.
describe('memory and cost over a training run', () => {
  it('20 batches (B = 4096, two hosts, p = 16 and p = 10) after warm-up: WASM heap does not grow; per-operation timings', () => {
    const rng = new Rng(31);
    const B = 4096;
    const hostColumns = makeColumns(rng, B, 16);
    const guestColumns = makeColumns(rng, B, 10);
    const timings = { encryptSlots: [] as number[], foreGradient: [] as number[], maskedGradient16: [] as number[], maskedGradient10: [] as number[], decryptGradient: [] as number[] };
    const sizes = { partial: 0, fore: 0, masked: 0 };
    const time = <T>(bucket: number[], fn: () => T): T => {
      const t = performance.now();
      const result = fn();
      bucket.push(performance.now() - t);
      return result;
    };
    const batch = () => {
      const b = makeBatch(rng, B, 2);
      const partials = b.hostScores.map((u) => time(timings.encryptSlots, () => encryptPartial(u)));
      const fore = time(timings.foreGradient, () => engine.foreGradient(partials, b.weights, b.offset));
      for (const [columns, bucket] of [[hostColumns, timings.maskedGradient16], [guestColumns, timings.maskedGradient10]] as const) {
        const mask = randomMask(rng, columns.length, MASK);
        const masked = time(bucket, () => engine.maskedGradient(fore, columns, mask, keys.galoisKeys));
        const opened = time(timings.decryptGradient, () => engine.decryptGradient(masked, columns.length, keys.secretKey));
        const got = Float64Array.from(opened, (v, j) => v - mask[j]!);
        const { rel, judged } = gradientError(got, plainGradient(columns, b.fore), columns, b.fore);
        worstRelative = Math.max(worstRelative, rel);
        worstJudged = Math.max(worstJudged, judged);
        expect(judged).toBeLessThan(TOLERANCE);
        sizes.masked = masked.length;
      }
      sizes.partial = partials[0]!.length;
      sizes.fore = fore.length;
    };
    for (let r = 0; r < 3; r++) batch();
    const firstMasked = timings.maskedGradient16[0]!;
    for (const bucket of Object.values(timings)) bucket.length = 0;
    const heapBefore = wasmHeapBytes();
    const rssBefore = process.memoryUsage().rss;
    for (let r = 0; r < 20; r++) batch();
    const heapAfter = wasmHeapBytes();
    const rssAfter = process.memoryUsage().rss;
    const mean = (xs: number[]) => (xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(1);
    const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[xs.length >> 1]!.toFixed(1);
    console.log(
      `[ckks vertical timings] ms mean/median over 20 batches, B = 4096, N = 8192: encryptSlots ${mean(timings.encryptSlots)}/${median(timings.encryptSlots)}; ` +
        `foreGradient (2 hosts) ${mean(timings.foreGradient)}/${median(timings.foreGradient)}; maskedGradient p=16 (15+8 rotations) ${mean(timings.maskedGradient16)}/${median(timings.maskedGradient16)} ` +
        `(first call, loading the Galois keys: ${firstMasked.toFixed(1)}); maskedGradient p=10 (15+8 rotations) ${mean(timings.maskedGradient10)}/${median(timings.maskedGradient10)}; ` +
        `decryptGradient ${mean(timings.decryptGradient)}/${median(timings.decryptGradient)}`,
    );
    console.log(`[ckks vertical sizes] bytes: [[0.25·u_k]] ${sizes.partial}; [[d]] ${sizes.fore}; [[g + m]] ${sizes.masked}`);
    console.log(
      `[ckks vertical memory] WASM heap ${heapBefore} → ${heapAfter} bytes over 20 batches; rss ${(rssBefore / 2 ** 20).toFixed(1)} → ${(rssAfter / 2 ** 20).toFixed(1)} MiB`,
    );
    expect(heapBefore).toBeGreaterThan(0);
    expect(heapAfter).toBe(heapBefore);
  });
});

describe('decrypted, unmasked gradient equals the plaintext gradient within 1e-6 of max(max|g|, rms(X)·‖d‖₂)', () => {
  for (const B of [4096, 1000]) {
    for (const hosts of [1, 2, 3]) {
      it(`B = ${B}, ${hosts} host${hosts > 1 ? 's' : ''}, parties with p = 1, 10, 13, 16, 20`, () => {
        const rng = new Rng(B * 10 + hosts);
        const b = makeBatch(rng, B, hosts);
        const fore = engine.foreGradient(b.hostScores.map(encryptPartial), b.weights, b.offset);
        const report: string[] = [];
        for (const p of [1, 10, 13, 16, 20]) {
          const columns = makeColumns(rng, B, p);
          const want = plainGradient(columns, b.fore);
          const got = gradientRoundTrip(fore, columns, randomMask(rng, p, MASK));
          const { rel, judged, abs, scale, typical } = gradientError(got, want, columns, b.fore);
          worstRelative = Math.max(worstRelative, rel);
          worstJudged = Math.max(worstJudged, judged);
          report.push(`p=${p}: ${rel.toExponential(2)} of max|g| / ${judged.toExponential(2)} judged (abs ${abs.toExponential(2)}, max|g| ${scale.toExponential(2)}, rms(X)·‖d‖ ${typical.toExponential(2)})`);
          expect(judged, `p = ${p}`).toBeLessThan(TOLERANCE);
          // The plain relative error as well, wherever some g_j is of typical size (all but the odd p = 1 draw).
          if (scale >= typical) expect(rel, `p = ${p}`).toBeLessThan(TOLERANCE);
        }
        console.log(`[ckks vertical accuracy B=${B} hosts=${hosts}] ${report.join('; ')}`);
      });
    }
  }

  it('masks as long as the slot count (P-periodic) and the maximum 2^30 mask: the error is ~1 ulp of the mask', () => {
    const rng = new Rng(5);
    const b = makeBatch(rng, 2500, 2);
    const fore = engine.foreGradient(b.hostScores.map(encryptPartial), b.weights, b.offset);
    const columns = makeColumns(rng, 2500, 13); // P = 16
    const want = plainGradient(columns, b.fore);
    const first = randomMask(rng, 16, VERTICAL_MAX_MASK);
    const full = Float64Array.from({ length: engine.slotCount }, (_, i) => first[i % 16]!);
    const got = gradientRoundTrip(fore, columns, full);
    const { rel, abs, scale, typical } = gradientError(got, want, columns, b.fore);
    console.log(`[ckks vertical accuracy, 2^30 mask] abs error ${abs.toExponential(2)} (${rel.toExponential(2)} of max|g|); a float64 ulp at 2^30 is ${(2 ** -22).toExponential(2)}`);
    expect(abs).toBeLessThan(4e-16 * VERTICAL_MAX_MASK + TOLERANCE * Math.max(scale, typical));
  });

  it('what the arbiter can see in all 4096 slots: every copy of g_j carries the same mask, padding slots are masked', () => {
    const rng = new Rng(7);
    const b = makeBatch(rng, 4096, 1);
    const fore = engine.foreGradient(b.hostScores.map(encryptPartial), b.weights, b.offset);
    const columns = makeColumns(rng, 4096, 13); // P = 16: slots 13, 14, 15 hold the zero gradient of padding columns
    const mask = randomMask(rng, 13, MASK);
    const all = engine.decryptGradient(engine.maskedGradient(fore, columns, mask, keys.galoisKeys), 4096, keys.secretKey);
    const want = plainGradient(columns, b.fore);
    for (let j = 0; j < 13; j++) expect(Math.abs(all[j]! - mask[j]! - want[j]!)).toBeLessThan(1e-7);
    for (let j = 13; j < 16; j++) expect(Math.abs(all[j]!)).toBeGreaterThan(1); // noise of the mask's size, not ≈ 0
    let spread = 0;
    for (let j = 16; j < 4096; j++) spread = Math.max(spread, Math.abs(all[j]! - all[j % 16]!));
    expect(spread).toBeLessThan(1e-7); // copies agree: averaging them tells the arbiter nothing more
  });

  it('a batch whose feature values are all zero: the gradient is zero (no diagonal to multiply by)', () => {
    const rng = new Rng(6);
    const b = makeBatch(rng, 300, 1);
    const fore = engine.foreGradient(b.hostScores.map(encryptPartial), b.weights, b.offset);
    for (const p of [1, 3]) {
      const got = gradientRoundTrip(fore, Array.from({ length: p }, () => new Float64Array(300)), randomMask(rng, p, MASK));
      for (const g of got) expect(Math.abs(g)).toBeLessThan(1e-7);
    }
    // One zero column among others changes nothing.
    const columns = makeColumns(rng, 300, 5);
    columns[2]!.fill(0);
    expect(gradientError(gradientRoundTrip(fore, columns, randomMask(rng, 5, MASK)), plainGradient(columns, b.fore), columns, b.fore).judged).toBeLessThan(TOLERANCE);
  });
});

describe('what each step accepts', () => {
  let batch: Batch;
  let partial: Uint8Array;
  let fore: Uint8Array;
  let masked: Uint8Array;

  beforeAll(() => {
    batch = makeBatch(new Rng(8), 4096, 2);
    partial = encryptPartial(batch.hostScores[0]!);
    fore = engine.foreGradient([partial, encryptPartial(batch.hostScores[1]!)], batch.weights, batch.offset);
    masked = engine.maskedGradient(fore, makeColumns(new Rng(9), 4096, 4), randomMask(new Rng(10), 4, MASK), keys.galoisKeys);
  });

  it('decryptGradient refuses a fresh [[0.25·u_k]] and the fore-gradient [[d]]: the arbiter never opens per-record values', () => {
    const fresh = expectCode(() => engine.decryptGradient(partial, 4096, keys.secretKey), 'FC_CIPHERTEXT_INVALID', /not a masked gradient at scale 2\^67\.00 at level 1 \(size 2, scale 2\^40, level 0\)/);
    expect(fresh.message).toMatch(/never a per-record ciphertext such as \[\[u\]\] or \[\[d\]\]/);
    expectCode(() => engine.decryptGradient(fore, 10, keys.secretKey), 'FC_CIPHERTEXT_INVALID', /not a masked gradient .*\(size 2, scale 2\^80, level 0\)/);
    // A horizontal-style symmetric encryption is refused too, and so is a cut masked gradient.
    const symmetric = engine.encryptVector(new Float64Array(10), keys.publicKey, keys.secretKey)[0]!;
    expectCode(() => engine.decryptGradient(symmetric, 10, keys.secretKey), 'FC_CIPHERTEXT_INVALID', /not a masked gradient/);
    for (const cut of [3, 100]) expectCode(() => engine.decryptGradient(truncateWithHeader(masked, cut), 4, keys.secretKey), 'FC_CIPHERTEXT_INVALID');
    expect(engine.decryptGradient(masked, 4, keys.secretKey).length).toBe(4);
    expect(() => engine.decryptGradient(masked, 0, keys.secretKey)).toThrow(RangeError);
    expect(() => engine.decryptGradient(masked, 4097, keys.secretKey)).toThrow(RangeError);
  });

  it('foreGradient takes only fresh public-key partials at scale 2^40 on the top level', () => {
    const seeded = engine.encryptVector(batch.hostScores[0]!, keys.publicKey, keys.secretKey)[0]!; // symmetric, seeded
    expectCode(() => engine.foreGradient([partial, seeded], batch.weights, batch.offset), 'FC_CIPHERTEXT_INVALID', /does not re-serialise/);
    expectCode(() => engine.foreGradient([fore], batch.weights, batch.offset), 'FC_CIPHERTEXT_INVALID', /not a fresh public-key encryption of a partial score at scale 2\^40 at level 0 \(size 2, scale 2\^80, level 0\)/);
    expectCode(() => engine.foreGradient([masked], batch.weights, batch.offset), 'FC_CIPHERTEXT_INVALID', /level 1\)/);
    for (const cut of [3, 1000]) expectCode(() => engine.foreGradient([truncateWithHeader(partial, cut)], batch.weights, batch.offset), 'FC_CIPHERTEXT_INVALID');
    expect(() => engine.foreGradient([], batch.weights, batch.offset)).toThrow(RangeError);
    expect(() => engine.foreGradient([partial], batch.weights, batch.offset.subarray(1))).toThrow(RangeError);
    expect(() => engine.foreGradient([partial], new Float64Array(4096), batch.offset)).toThrow(/every weight is zero/);
  });

  it('maskedGradient takes only a fore-gradient at scale 2^80 on the top level, and checks its plaintext inputs', () => {
    const columns = makeColumns(new Rng(11), 4096, 3);
    const mask = randomMask(new Rng(12), 3, MASK);
    expectCode(() => engine.maskedGradient(partial, columns, mask, keys.galoisKeys), 'FC_CIPHERTEXT_INVALID', /not an encrypted fore-gradient at scale 2\^80 at level 0 \(size 2, scale 2\^40, level 0\)/);
    expectCode(() => engine.maskedGradient(masked, columns, mask, keys.galoisKeys), 'FC_CIPHERTEXT_INVALID', /not an encrypted fore-gradient/);
    expectCode(() => engine.maskedGradient(truncateWithHeader(fore, 50), columns, mask, keys.galoisKeys), 'FC_CIPHERTEXT_INVALID');
    expectCode(() => engine.maskedGradient(fore, columns, mask, keys.galoisKeys.subarray(0, 1000)), 'FC_CIPHERTEXT_INVALID', /Galois keys header declares/);
    expectCode(() => engine.maskedGradient(fore, columns, mask, truncateWithHeader(keys.galoisKeys, 5000)), 'FC_CIPHERTEXT_INVALID', /Galois keys do not deserialise/);
    expect(() => engine.maskedGradient(fore, columns, mask.subarray(0, 2), keys.galoisKeys)).toThrow(/needs 3 to 4096 values/);
    expect(() => engine.maskedGradient(fore, columns, Float64Array.of(1, 2, 2 ** 31), keys.galoisKeys)).toThrow(/at most 2\^30/);
    expect(() => engine.maskedGradient(fore, columns, Float64Array.of(1, 2, 3, 4, 1, 2, 3, 5), keys.galoisKeys)).toThrow(/mask value 7 differs from mask value 3/);
    expect(() => engine.maskedGradient(fore, [columns[0]!, columns[1]!.subarray(1)], mask, keys.galoisKeys)).toThrow(/feature column 1 has 4095 values/);
    const nan = Float64Array.from(columns[2]!);
    nan[17] = Number.NaN;
    expect(() => engine.maskedGradient(fore, [columns[0]!, columns[1]!, nan], mask, keys.galoisKeys)).toThrow(/non-finite value \(NaN\) at position 17/);
    // The engine still works after all that.
    const b = makeBatch(new Rng(13), 4096, 1);
    const f = engine.foreGradient(b.hostScores.map(encryptPartial), b.weights, b.offset);
    expect(gradientError(gradientRoundTrip(f, columns, mask), plainGradient(columns, b.fore), columns, b.fore).judged).toBeLessThan(TOLERANCE);
  });

  it('encryptSlots takes at most slotCount finite values', () => {
    expect(() => engine.encryptSlots(new Float64Array(4097), keys.publicKey)).toThrow(RangeError);
    expect(() => engine.encryptSlots(Float64Array.of(1, Number.POSITIVE_INFINITY), keys.publicKey)).toThrow(/non-finite/);
  });

  it('the default (horizontal) parameters cannot run the vertical steps: FC_CKKS_PARAMS', async () => {
    const horizontal = await CkksEngine.create(DEFAULT_CKKS_PARAMS);
    try {
      expectCode(() => horizontal.generateArbiterKeys(), 'FC_CKKS_PARAMS', /cannot run vertical logistic regression/);
      expectCode(() => horizontal.decryptGradient(masked, 4, keys.secretKey), 'FC_CKKS_PARAMS');
    } finally {
      horizontal.dispose();
    }
  });
});
