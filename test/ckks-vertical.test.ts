/**
 * The encrypted steps of vertical logistic regression with an arbiter holding the CKKS secret key: hosts encrypt
 * their partial scores, the guest forms the encrypted fore-gradient, every party computes its masked gradient
 * slots by the generalized-diagonal method (baby-step giant-step), and the arbiter decrypts only masked gradients,
 * returning the sums of their slots over residue classes. What a party recovers must be the plaintext gradient to
 * 1e-6 of its largest entry; the arbiter must refuse per-record ciphertexts; what it decrypts per slot must look
 * like the masks alone; and the WASM heap must not grow over many batches.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CkksEngine } from '../src/he/engine.js';
import { HorizontalVectors } from '../src/he/horizontal.js';
import { generateKeys, type ArbiterKeys } from '../src/he/key-ceremony.js';
import { nextPowerOfTwo, residueClassSums, runSteps, VERTICAL_MASK, VERTICAL_MAX_MASK, verticalGradientPlan, verticalRotationSteps } from '../src/he/packing.js';
import { DEFAULT_CKKS_PARAMS, VERTICAL_CKKS_PARAMS } from '../src/he/params.js';
import { wasmHeapBytes } from '../src/he/seal.js';
import { GRADIENT_INPUT_BUDGET_BYTES, VerticalGradient, type GradientInput } from '../src/he/vertical-gradient.js';
import { ckksCipher, plaintextCipher } from '../src/vertical/cipher.js';
import { ckksOpener, plaintextOpener } from '../src/vertical/lr/opener.js';
import { float64Bytes } from '../src/fl/vector-codec.js';
import { Rng } from '../src/random.js';
import { expectCode } from './helpers/errors.js';

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
  return Array.from({ length: p }, (_, j) => Float64Array.from({ length: size }, () => (j % 3 === 0 ? rng.normal(0, 1) : j % 3 === 1 ? (rng.bernoulli(0.3) ? 1 : 0) : rng.uniform(0, 5))));
}

function plainGradient(columns: Float64Array[], fore: Float64Array): Float64Array {
  return Float64Array.from(columns, (column) => column.reduce((a, x, i) => a + x * fore[i]!, 0));
}

/** S slot values of what maskedGradient encrypts before the mask: z_i = Σ_{k<P} X[(i+k) mod S][i mod P]·d[(i+k) mod S]. */
function plainSlots(columns: Float64Array[], fore: Float64Array, S: number): Float64Array {
  const P = nextPowerOfTwo(columns.length);
  const z = new Float64Array(S);
  for (let i = 0; i < S; i++) {
    const column = columns[i % P];
    if (!column) continue;
    for (let k = 0; k < P; k++) {
      const r = (i + k) % S;
      if (r < column.length) z[i]! += column[r]! * fore[r]!;
    }
  }
  return z;
}

/** One mask value per slot (S = 4096), uniform in ±magnitude. */
function randomMask(rng: Rng, magnitude: number, length = 4096): Float64Array {
  return Float64Array.from({ length }, () => rng.uniform(-magnitude, magnitude));
}

/** The host side: encrypt 0.25·u_k. */
function encryptPartial(scores: Float64Array): Uint8Array {
  return gradient.encryptSlots(
    Float64Array.from(scores, (u) => 0.25 * u),
    keys.publicKey,
  );
}

/** One host's batch of 4,096 records (`batch.fore` is d in the clear): its [[d]] and a party's 14 feature columns. */
function foreAndColumns(rng: Rng): { batch: Batch; fore: Uint8Array; columns: Float64Array[] } {
  const batch = makeBatch(rng, 4096, 1);
  const fore = gradient.foreGradient(batch.hostScores.map(encryptPartial), batch.weights, batch.offset);
  return { batch, fore, columns: makeColumns(rng, 4096, 14) };
}

/** A party's full round trip: masked gradient slots, the arbiter's p class sums, unmasking by the mask's class sums. */
function gradientRoundTrip(fore: Uint8Array, columns: Float64Array[], mask: Float64Array): Float64Array {
  const masked = gradient.maskedGradient(fore, columns, mask, keys.galoisKeys);
  const opened = gradient.decryptGradient(masked, columns.length, keys.secretKey);
  expect(opened.length).toBe(columns.length);
  const maskSums = residueClassSums(mask, columns.length);
  return Float64Array.from(opened, (v, j) => v - maskSums[j]!);
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

/** Cut bytes off the end and rewrite SEAL's header size to match, as a hostile sender could. */
function truncateWithHeader(bytes: Uint8Array, cut: number): Uint8Array {
  const t = Uint8Array.from(bytes.subarray(0, bytes.length - cut));
  new DataView(t.buffer).setBigUint64(8, BigInt(t.length), true);
  return t;
}

/** The parties' per-slot mask (2^20); the maximum 2^30 is tested separately. */
const MASK = VERTICAL_MASK;
/** maskedGradient for p = 14 (P = 16) before this packing (hybrid diagonals, 15 + 8 rotations, P-periodic mask), same machine. */
const BEFORE_P14_MS = 94.9;
/** The same with [[d]] on the top level (three primes: rotations of 3.5 ms, a rescale per giant step), same machine. */
const BEFORE_LEVEL1_P14_MS = 41.4;
const TOLERANCE = 1e-6;
/**
 * The arbiter adds S/P decrypted slots per gradient value, each with its own CKKS and float64 decoding error, so
 * the error of a sum grows with √(S/P): 1e-6 at P = 16 (256 slots per value), 4e-6 at P = 1 (all 4,096).
 */
function toleranceFor(p: number): number {
  const period = 2 ** Math.ceil(Math.log2(Math.max(1, p)));
  return TOLERANCE * Math.max(1, Math.sqrt(4096 / period) / 16);
}

let engine: CkksEngine;
let gradient: VerticalGradient;
let keys: ArbiterKeys;
let worstRelative = 0;
let worstJudged = 0;

beforeAll(async () => {
  engine = await CkksEngine.create(VERTICAL_CKKS_PARAMS);
  gradient = VerticalGradient.of(engine);
  const started = performance.now();
  keys = generateKeys(engine, 'arbiter');
  console.log(
    `[ckks vertical keys] generateKeys(arbiter) ${(performance.now() - started).toFixed(0)} ms; Galois keys (${verticalRotationSteps().length} rotations: ${verticalRotationSteps().join(', ')}; seeded, zstd) ${keys.galoisKeys.length} bytes (${(keys.galoisKeys.length / 2 ** 20).toFixed(2)} MiB; 8,357,534 bytes before, for 1, 2, …, 2048); public key ${keys.publicKey.length} bytes; secret key ${keys.secretKey.length} bytes`,
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
      const fore = time(timings.foreGradient, () => gradient.foreGradient(partials, b.weights, b.offset));
      for (const [columns, bucket] of [
        [hostColumns, timings.maskedGradient16],
        [guestColumns, timings.maskedGradient10],
      ] as const) {
        const mask = randomMask(rng, MASK);
        const masked = time(bucket, () => gradient.maskedGradient(fore, columns, mask, keys.galoisKeys));
        const opened = time(timings.decryptGradient, () => gradient.decryptGradient(masked, columns.length, keys.secretKey));
        const maskSums = residueClassSums(mask, columns.length);
        const got = Float64Array.from(opened, (v, j) => v - maskSums[j]!);
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
    const median = (xs: number[]) =>
      xs
        .slice()
        .sort((a, b) => a - b)
        [xs.length >> 1]!.toFixed(1);
    const rotations = (p: number) => {
      const plan = verticalGradientPlan(p);
      return `${plan.baby - 1}+${plan.giant - 1} rotations`;
    };
    console.log(
      `[ckks vertical timings] ms mean/median over 20 batches, B = 4096, N = 8192: encryptSlots ${mean(timings.encryptSlots)}/${median(timings.encryptSlots)}; ` +
        `foreGradient (2 hosts) ${mean(timings.foreGradient)}/${median(timings.foreGradient)}; maskedGradient p=16 (${rotations(16)}) ${mean(timings.maskedGradient16)}/${median(timings.maskedGradient16)} ` +
        `(first call, loading the Galois keys: ${firstMasked.toFixed(1)}); maskedGradient p=10 (${rotations(10)}) ${mean(timings.maskedGradient10)}/${median(timings.maskedGradient10)}; ` +
        `decryptGradient ${mean(timings.decryptGradient)}/${median(timings.decryptGradient)}`,
    );
    console.log(`[ckks vertical sizes] bytes: [[0.25·u_k]] ${sizes.partial}; [[d]] ${sizes.fore}; [[z + m]] ${sizes.masked}`);
    console.log(`[ckks vertical memory] WASM heap ${heapBefore} → ${heapAfter} bytes over 20 batches; rss ${(rssBefore / 2 ** 20).toFixed(1)} → ${(rssAfter / 2 ** 20).toFixed(1)} MiB`);
    expect(heapBefore).toBeGreaterThan(0);
    expect(heapAfter).toBe(heapBefore);
  });
});

describe('maskedGradient for p = 14 (the UCI guest: 13 features and the intercept), B = 4096', () => {
  it('timing before and after; rotations per call', () => {
    const rng = new Rng(14);
    const b = makeBatch(rng, 4096, 1);
    const partial = encryptPartial(b.hostScores[0]!);
    const columns = makeColumns(rng, 4096, 14);
    const plan = verticalGradientPlan(14);
    const times: number[] = [];
    const aheadTimes: number[] = [];
    for (let r = 0; r < 10; r++) {
      // A fresh [[d]] per call, as a host receives one per batch: another [[d]] made after it evicts it from the
      // engine's cache (the guest's own [[d]] is still loaded when it computes its gradient).
      const fore = gradient.foreGradient(
        [partial],
        Float64Array.from(b.weights, (w) => w * (1 + r * 1e-6)),
        b.offset,
      );
      gradient.foreGradient(
        [partial],
        Float64Array.from(b.weights, (w) => w * (1 - (r + 1) * 1e-6)),
        b.offset,
      );
      const mask = randomMask(rng, MASK);
      const started = performance.now();
      const masked = gradient.maskedGradient(fore, columns, mask, keys.galoisKeys);
      times.push(performance.now() - started);
      // What a party waits for once [[d]] arrives: its plaintexts were encoded while it waited.
      const input = gradient.gradientInput(columns, mask);
      while (input.encodeNext());
      const aheadStarted = performance.now();
      gradient.maskedGradientOf(fore, input, keys.galoisKeys);
      aheadTimes.push(performance.now() - aheadStarted);
      input.dispose();
      if (r === 0) {
        const maskSums = residueClassSums(mask, 14);
        const got = Float64Array.from(gradient.decryptGradient(masked, 14, keys.secretKey), (v, j) => v - maskSums[j]!);
        expect(gradientError(got, plainGradient(columns, b.fore), columns, b.fore).judged).toBeLessThan(TOLERANCE);
      }
    }
    times.sort((x, y) => x - y);
    const median = times[times.length >> 1]!;
    const aheadMedian = aheadTimes.sort((x, y) => x - y)[aheadTimes.length >> 1]!;
    console.log(
      `[ckks vertical p=14] maskedGradient median ${median.toFixed(1)} ms (min ${times[0]!.toFixed(1)}, max ${times[times.length - 1]!.toFixed(1)}) over 10 calls with a fresh [[d]]: ` +
        `P = 16, g = ${plan.baby}: ${plan.baby - 1} baby + ${plan.giant - 1} giant = ${plan.rotations} rotations at level 1, 16 plaintext products; ` +
        `${aheadMedian.toFixed(1)} ms with the 16 diagonals and the mask encoded ahead; ` +
        `before: ${BEFORE_P14_MS} ms (15 + 8 rotations), ${(BEFORE_P14_MS / median).toFixed(1)}x; ${BEFORE_LEVEL1_P14_MS} ms with [[d]] on the top level (3 + 3 rotations, 4 rescales)`,
    );
    expect(plan).toEqual({ period: 16, baby: 4, giant: 4, rotations: 6 });
  });

  it('the rotation plan for every P, and the Galois keys hold exactly the steps the plans use', () => {
    const plans = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096].map((p) => verticalGradientPlan(p));
    console.log(`[ckks vertical plans] ${plans.map((q) => `P=${q.period}: ${q.baby - 1}+${q.giant - 1}`).join('; ')}`);
    for (const plan of plans) {
      expect(plan.baby * plan.giant).toBe(plan.period);
      expect(plan.rotations).toBeLessThanOrEqual(2 * Math.sqrt(2 * plan.period)); // g and P/g within a factor 2 of √P
    }
    expect(verticalRotationSteps()).toEqual([1, 2, 4, 8, 16, 32, 64]);
    // Every p from 1 to 4096 runs on these keys (one call per P: the plan depends on P only).
    const rng = new Rng(15);
    const b = makeBatch(rng, 256, 1);
    const fore = gradient.foreGradient([encryptPartial(b.hostScores[0]!)], b.weights, b.offset);
    for (const p of [2, 5, 33, 100, 200]) {
      const columns = makeColumns(rng, 256, p);
      const got = gradientRoundTrip(fore, columns, randomMask(rng, MASK));
      expect(gradientError(got, plainGradient(columns, b.fore), columns, b.fore).judged, `p = ${p}`).toBeLessThan(toleranceFor(p));
    }
  });
});

describe('decrypted, unmasked gradient equals the plaintext gradient within 1e-6 of max(max|g|, rms(X)·‖d‖₂)', () => {
  for (const B of [4096, 1000]) {
    for (const hosts of [1, 2, 3]) {
      it(`B = ${B}, ${hosts} host${hosts > 1 ? 's' : ''}, parties with p = 1, 10, 13, 16, 20, 64`, () => {
        const rng = new Rng(B * 10 + hosts);
        const b = makeBatch(rng, B, hosts);
        const fore = gradient.foreGradient(b.hostScores.map(encryptPartial), b.weights, b.offset);
        const report: string[] = [];
        for (const p of [1, 10, 13, 16, 20, 64]) {
          const columns = makeColumns(rng, B, p);
          const want = plainGradient(columns, b.fore);
          const got = gradientRoundTrip(fore, columns, randomMask(rng, MASK));
          const { rel, judged, abs, scale, typical } = gradientError(got, want, columns, b.fore);
          worstRelative = Math.max(worstRelative, rel);
          worstJudged = Math.max(worstJudged, judged);
          report.push(
            `p=${p}: ${rel.toExponential(2)} of max|g| / ${judged.toExponential(2)} judged (abs ${abs.toExponential(2)}, max|g| ${scale.toExponential(2)}, rms(X)·‖d‖ ${typical.toExponential(2)})`,
          );
          expect(judged, `p = ${p}`).toBeLessThan(toleranceFor(p));
          // The plain relative error as well, wherever some g_j is of typical size (all but the odd p = 1 draw).
          if (scale >= typical) expect(rel, `p = ${p}`).toBeLessThan(toleranceFor(p));
        }
        console.log(`[ckks vertical accuracy B=${B} hosts=${hosts}] ${report.join('; ')}`);
      });
    }
  }

  it('what the mask costs in precision: below 3e-14·|m| absolute (3e-8 at the 2^20 the parties use, rms 6e-9 for P = 1); 2^21 still works; uniform 2^30 masks are refused, their class sums would not decode', () => {
    const rng = new Rng(5);
    const b = makeBatch(rng, 4096, 2);
    const fore = gradient.foreGradient(b.hostScores.map(encryptPartial), b.weights, b.offset);
    const report: string[] = [];
    for (const p of [1, 13, 64]) {
      const columns = makeColumns(rng, 4096, p);
      const S = engine.slotCount;
      const classes = S / nextPowerOfTwo(p);
      // The CKKS computation is deterministic given [[d]] and X, so the difference to a zero mask is the mask's own error.
      const unmasked = gradientRoundTrip(fore, columns, new Float64Array(S));
      // A uniform 2^30 mask's class sums (sd 2^30·sqrt(S/3P)) exceed the 2^31 the decrypted class sums may reach.
      expect(() => gradient.maskedGradient(fore, columns, randomMask(rng, VERTICAL_MAX_MASK), keys.galoisKeys)).toThrow(/class sums modulo \d+ must be at most 2\^31/);
      for (const magnitude of [MASK, 2 * MASK]) {
        let worst = 0;
        for (let t = 0; t < 3; t++) {
          const got = gradientRoundTrip(fore, columns, randomMask(rng, magnitude));
          for (let j = 0; j < p; j++) worst = Math.max(worst, Math.abs(got[j]! - unmasked[j]!));
        }
        report.push(`p=${p} (S/P = ${classes}), |m| ≤ 2^${Math.log2(magnitude)}: ${worst.toExponential(2)}`);
        expect(worst, `p = ${p}, mask 2^${Math.log2(magnitude)}`).toBeLessThan(3e-14 * magnitude);
      }
    }
    console.log(`[ckks vertical mask error] max |g(masked) − g(unmasked)| over 3 masks: ${report.join('; ')}`);
  });

  it('what the arbiter decrypts: the p class sums, made inside the decryption, in every slot; even a raw decryption would show only masked values', () => {
    const rng = new Rng(7);
    const b = makeBatch(rng, 4096, 1);
    const fore = gradient.foreGradient(b.hostScores.map(encryptPartial), b.weights, b.offset);
    const S = engine.slotCount;
    const report: string[] = [];
    for (const p of [13, 64]) {
      const columns = makeColumns(rng, 4096, p); // p = 13: P = 16, classes 13, 14, 15 hold padding columns
      const mask = randomMask(rng, MASK);
      const masked = gradient.maskedGradient(fore, columns, mask, keys.galoisKeys);
      // The arbiter's view: every slot i holds the sum of class i mod P (CKKS noise ~1e-8 on values ~2^25), so with
      // the party's mask (a coalition of the two) it gives g_j and nothing finer.
      const P = nextPowerOfTwo(p);
      const view = gradient.decryptGradientSlots(masked, p, keys.secretKey);
      const classMasks = residueClassSums(mask, P);
      let spread = 0;
      for (let i = 0; i < S; i++) spread = Math.max(spread, Math.abs(view[i]! - view[i % P]!));
      expect(spread).toBeLessThan(1e-6);
      for (let j = p; j < P; j++) expect(Math.abs(view[j]! - classMasks[j]!), `padding class ${j}`).toBeLessThan(1e-6);
      // A raw decryption (count = S: what the arbiter no longer makes) shows z_i + m_i.
      const seen = gradient.decryptGradientSlots(masked, S, keys.secretKey);
      const z = plainSlots(columns, b.fore, S);
      expect(seen.length).toBe(S);
      // What the encryption carries: z_i + m_i in every slot, z_i a partial sum over P records (< 2^-4). The slot
      // error is mostly the key switching of the P − 1 rotations, so it depends on the Galois keys drawn: over 250
      // key sets its maximum over the slots was at most 1.4e-8 for P = 16 but 4.5e-8 for P = 64 (median 1e-8), a
      // log-normal spread that crosses 1e-7 with probability about 4e-4 per run and 3e-7 with about 5e-7.
      let zMax = 0;
      let zSum = 0;
      for (let i = 0; i < S; i++) {
        expect(Math.abs(seen[i]! - mask[i]! - z[i]!), `slot ${i}`).toBeLessThan(3e-7);
        zMax = Math.max(zMax, Math.abs(z[i]!));
        zSum += Math.abs(z[i]!);
      }
      expect(zMax).toBeLessThan(2 ** -4);
      // No slot shows an unmasked value: every one is a mask's width away from z_i (P(|m_i| < 1e-3) = 1e-9).
      for (let i = 0; i < S; i++) expect(Math.abs(seen[i]! - z[i]!), `slot ${i}`).toBeGreaterThan(1e-3);
      // The decrypted slots do not correlate with z (|r| ~ 1/sqrt(S) = 0.016 by chance alone)...
      const mean = (xs: Float64Array) => xs.reduce((a, v) => a + v, 0) / xs.length;
      const ms = mean(seen);
      const mz = mean(z);
      let sxy = 0;
      let sxx = 0;
      let syy = 0;
      for (let i = 0; i < S; i++) {
        sxy += (seen[i]! - ms) * (z[i]! - mz);
        sxx += (seen[i]! - ms) ** 2;
        syy += (z[i]! - mz) ** 2;
      }
      const correlation = sxy / Math.sqrt(sxx * syy);
      expect(Math.abs(correlation)).toBeLessThan(4 / Math.sqrt(S));
      // ...and are distributed as the masks: Kolmogorov–Smirnov distance to uniform on ±2^20 below the 1% critical value.
      const sorted = Float64Array.from(seen).sort();
      let ks = 0;
      for (let i = 0; i < S; i++) {
        const cdf = Math.min(1, Math.max(0, (sorted[i]! + MASK) / (2 * MASK)));
        ks = Math.max(ks, Math.abs(cdf - i / S), Math.abs(cdf - (i + 1) / S));
      }
      expect(ks).toBeLessThan(1.63 / Math.sqrt(S));
      // Statistical distance between (z_i + m_i)_i and (m_i)_i: at most Σ_i |z_i| / (2·2^20).
      const distance = zSum / (2 * MASK);
      expect(distance).toBeLessThan(2 ** -14);
      // The class sums the arbiter returns are g plus the class sums of the masks, within this file's accuracy bound.
      // (Each sum adds S/P slot errors of random sign; an absolute 3e-8 was exceeded by chance: 3.5e-8 for p = 13.)
      const sums = gradient.decryptGradient(masked, p, keys.secretKey);
      const maskSums = residueClassSums(mask, p);
      const unmasked = Float64Array.from(sums, (v, j) => v - maskSums[j]!);
      expect(gradientError(unmasked, plainGradient(columns, b.fore), columns, b.fore).judged, `p = ${p}`).toBeLessThan(toleranceFor(p));
      report.push(
        `p=${p}: class-sum copies within ${spread.toExponential(1)}, max|z_i| ${zMax.toExponential(2)} (per-slot distance ≤ 2^${Math.log2(zMax / (2 * MASK)).toFixed(1)}), Σ|z_i|/2^21 = 2^${Math.log2(distance).toFixed(1)}, corr(seen, z) ${correlation.toFixed(4)}, KS to U(±2^20) ${ks.toFixed(4)}`,
      );
    }
    console.log(`[ckks vertical arbiter view] ${report.join('; ')}`);
  });

  it("the class sums made inside the arbiter's decryption are its raw decryption's slots summed in the clear, for every period", () => {
    const rng = new Rng(9);
    const { fore } = foreAndColumns(rng);
    const S = engine.slotCount;
    const masked = gradient.maskedGradient(fore, makeColumns(rng, 4096, 13), randomMask(rng, MASK), keys.galoisKeys);
    const raw = gradient.decryptGradientSlots(masked, S, keys.secretKey);
    // Both come from the same decryption, so they differ by the floating-point rounding of the sums and decodings
    // only (measured at most 7.5e-9 on class sums up to 2^25, 2·10^−18 of Σ|slot|); a wrong automorphism or slot
    // order would be off by a mask's width (2^20).
    const rounding = 1e-14 * raw.reduce((a, v) => a + Math.abs(v), 0);
    const report: string[] = [];
    for (const count of [1, 2, 3, 13, 64, 2048]) {
      const P = nextPowerOfTwo(count);
      const view = gradient.decryptGradientSlots(masked, count, keys.secretKey);
      const clear = residueClassSums(raw, P);
      let worst = 0;
      for (let i = 0; i < S; i++) worst = Math.max(worst, Math.abs(view[i]! - clear[i % P]!));
      expect(worst, `count ${count} (P = ${P})`).toBeLessThan(rounding);
      expect(gradient.decryptGradient(masked, count, keys.secretKey)).toEqual(view.slice(0, count));
      report.push(`P=${P}: ${worst.toExponential(1)}`);
    }
    console.log(`[ckks vertical class sums in the decryption] max |inside − clear| (bound ${rounding.toExponential(1)}): ${report.join(', ')}`);
  });

  it("count is what limits the arbiter's answer: count = slotCount would hand the party every z_i (the coordinator must pin count to p)", () => {
    const rng = new Rng(8);
    const { batch, fore, columns } = foreAndColumns(rng);
    const mask = randomMask(rng, MASK);
    const masked = gradient.maskedGradient(fore, columns, mask, keys.galoisKeys);
    const every = gradient.decryptGradient(masked, 4096, keys.secretKey);
    const z = plainSlots(columns, batch.fore, 4096);
    let worst = 0;
    for (let i = 0; i < 4096; i++) worst = Math.max(worst, Math.abs(every[i]! - mask[i]! - z[i]!));
    expect(worst).toBeLessThan(1e-7);
  });

  it('a batch whose feature values are all zero: the gradient is zero (no diagonal to multiply by)', () => {
    const rng = new Rng(6);
    const b = makeBatch(rng, 300, 1);
    const fore = gradient.foreGradient(b.hostScores.map(encryptPartial), b.weights, b.offset);
    for (const p of [1, 3]) {
      const got = gradientRoundTrip(
        fore,
        Array.from({ length: p }, () => new Float64Array(300)),
        randomMask(rng, MASK),
      );
      for (const g of got) expect(Math.abs(g)).toBeLessThan(1e-7);
    }
    // One zero column among others changes nothing.
    const columns = makeColumns(rng, 300, 5);
    columns[2]!.fill(0);
    expect(gradientError(gradientRoundTrip(fore, columns, randomMask(rng, MASK)), plainGradient(columns, b.fore), columns, b.fore).judged).toBeLessThan(TOLERANCE);
  });
});

describe('the VerticalCipher contract the participant and the arbiter use, CKKS and plaintext alike', () => {
  it('a party draws a mask per slot, the arbiter returns p class sums (plus σ = 2^-22 noise for CKKS), unmask gives Xᵀd', () => {
    const rng = new Rng(21);
    const b = makeBatch(rng, 3000, 2);
    const columns = makeColumns(rng, 3000, 14);
    const want = plainGradient(columns, b.fore);
    const ckks = ckksCipher(gradient, keys.publicKey, keys.galoisKeys);
    for (const cipher of [ckks, plaintextCipher]) {
      expect(cipher.slots).toBe(4096);
      expect(cipher.maskMagnitude).toBe(2 ** 20);
      const partials = b.hostScores.map((u) => cipher.encryptPartial(Float64Array.from(u, (v) => 0.25 * v)));
      const fore = cipher.foreGradient(partials, b.weights, b.offset);
      const mask = randomMask(rng, cipher.maskMagnitude, cipher.slots);
      const input = cipher.gradientInput(cipher.batchColumns(columns), mask);
      while (input.encodeNext());
      const masked = runSteps(cipher.maskedGradient(fore, input));
      input.dispose();
      const sums = (cipher.scheme === 'ckks' ? ckksOpener(engine, keys.secretKey) : plaintextOpener).openGradient(masked, 14, { party: 'bank', purpose: 'test gradient' });
      expect(sums.length).toBe(14);
      const got = cipher.unmask(sums, mask);
      const { abs } = gradientError(got, want, columns, b.fore);
      // CKKS: the flooding noise (6σ) and the CKKS error; plaintext: float64 rounding of the masked sums only.
      expect(abs, cipher.scheme).toBeLessThan(cipher.scheme === 'ckks' ? 6 * 2 ** -22 + 3e-8 : 1e-8);
      console.log(`[vertical cipher ${cipher.scheme}] max |g − Xᵀd| ${abs.toExponential(2)} (max|g| ${Math.max(...want.map(Math.abs)).toExponential(2)})`);
    }
    // The plaintext arbiter refuses a gradient that is not one value per slot.
    expect(() => plaintextOpener.openGradient(float64Bytes(new Float64Array(14)), 14, { party: 'bank', purpose: 'test gradient' })).toThrow(/holds 4096 values, got 14/);
    expect(() => plaintextCipher.gradientInput(plaintextCipher.batchColumns(columns), new Float64Array(14))).toThrow(/one value per slot/);
  });

  it('plaintexts encoded ahead of [[d]] (all, some or none) give the same ciphertext; an input serves one gradient; at most GRADIENT_INPUT_BUDGET_BYTES are held', () => {
    const rng = new Rng(22);
    const { fore, columns } = foreAndColumns(rng);
    const mask = randomMask(rng, MASK);
    const direct = gradient.maskedGradient(fore, columns, mask, keys.galoisKeys);
    const heap = wasmHeapBytes();
    for (const ahead of [Infinity, 5, 0]) {
      const input = gradient.gradientInput(columns, mask);
      let calls = 0;
      while (calls < ahead && input.encodeNext()) calls++;
      expect(Buffer.from(gradient.maskedGradientOf(fore, input, keys.galoisKeys)).equals(Buffer.from(direct)), `${ahead} ahead`).toBe(true);
      expect(input.encodeNext()).toBe(false);
      expect(() => gradient.maskedGradientOf(fore, input, keys.galoisKeys)).toThrow(/serves one maskedGradientOf call/);
      input.dispose();
    }
    expect(wasmHeapBytes()).toBe(heap);
    // 14 columns: the mask and 16 diagonals (2.1 MiB); 200 columns (P = 256): the mask and 63 diagonals (8 MiB), the rest on demand.
    for (const [p, expected] of [
      [14, 17],
      [200, GRADIENT_INPUT_BUDGET_BYTES / (8192 * 2 * 8)],
    ] as const) {
      const input = gradient.gradientInput(makeColumns(rng, 4096, p), mask);
      let calls = 1;
      while (input.encodeNext()) calls++;
      expect(calls, `p = ${p}`).toBe(expected);
      input.dispose();
    }
    expect(() => gradient.maskedGradientOf(fore, plaintextCipher.gradientInput(plaintextCipher.batchColumns(columns), mask) as unknown as GradientInput, keys.galoisKeys)).toThrow(
      /takes what gradientInput returned/,
    );
    expect(() => gradient.gradientInput(plaintextCipher.batchColumns(columns), mask)).toThrow(/takes what batchColumns returned/);
  });

  it('kept batch columns serve every later gradient of the batch with the same ciphertext, encode no diagonal again, and free their heap on dispose', () => {
    const rng = new Rng(23);
    const { fore, columns } = foreAndColumns(rng);
    const masks = [randomMask(rng, MASK), randomMask(rng, MASK), randomMask(rng, MASK)];
    const direct = masks.map((mask) => gradient.maskedGradient(fore, columns, mask, keys.galoisKeys));
    // Every plaintext the engine encodes goes through its one encode method.
    const encode = vi.spyOn(engine as unknown as { encode: (...args: unknown[]) => unknown }, 'encode');
    const cycle = () => {
      const batch = gradient.batchColumns(columns);
      expect(batch.keptBytes).toBe(16 * 8192 * 2 * 8);
      batch.keep();
      masks.forEach((mask, i) => {
        encode.mockClear();
        const input = gradient.gradientInput(batch, mask);
        while (input.encodeNext());
        expect(Buffer.from(gradient.maskedGradientOf(fore, input, keys.galoisKeys)).equals(Buffer.from(direct[i]!)), `gradient ${i}`).toBe(true);
        // The first gradient encodes the mask and the 16 diagonals; later ones only their own mask.
        expect(encode.mock.calls.length, `gradient ${i}`).toBe(i === 0 ? 17 : 1);
        input.dispose();
      });
      batch.dispose();
      const late = gradient.gradientInput(batch, masks[0]!);
      expect(() => gradient.maskedGradientOf(fore, late, keys.galoisKeys)).toThrow(/disposed/);
      late.dispose();
    };
    cycle();
    // 2 MiB of diagonals per cycle: a leak would grow the heap.
    const heap = wasmHeapBytes();
    for (let i = 0; i < 8; i++) cycle();
    expect(wasmHeapBytes()).toBe(heap);
    encode.mockRestore();
  });

  it('an encryption prepared ahead gives a fresh partial the guest accepts and the right gradient, serves one encryption only, and frees its heap', () => {
    const rng = new Rng(24);
    const b = makeBatch(rng, 4096, 1);
    const columns = makeColumns(rng, 4096, 14);
    const ckks = ckksCipher(gradient, keys.publicKey, keys.galoisKeys);
    const u = Float64Array.from(b.hostScores[0]!, (v) => 0.25 * v);
    // The full encryption (encode, encrypt zero, add) runs through encryptBlocks; a prepared one does not.
    const full = vi.spyOn(engine as unknown as { encryptBlocks: (...args: unknown[]) => unknown }, 'encryptBlocks');
    ckks.prepareEncryption();
    ckks.prepareEncryption(); // a second call keeps the one prepared
    const prepared = ckks.encryptPartial(u);
    expect(full).not.toHaveBeenCalled();
    const fresh = ckks.encryptPartial(u);
    expect(full).toHaveBeenCalledTimes(1);
    ckks.prepareEncryption();
    const preparedAgain = ckks.encryptPartial(u);
    expect(full).toHaveBeenCalledTimes(1);
    full.mockRestore();
    // Same size and form, each with randomness of its own: a reused encryption of zero would repeat its bytes.
    expect(prepared.length).toBe(fresh.length);
    expect(Buffer.from(prepared).equals(Buffer.from(fresh))).toBe(false);
    expect(Buffer.from(prepared).equals(Buffer.from(preparedAgain))).toBe(false);
    const mask = randomMask(rng, MASK);
    const want = plainGradient(columns, b.fore);
    for (const partial of [prepared, fresh]) {
      const got = gradientRoundTrip(gradient.foreGradient([partial], b.weights, b.offset), columns, mask);
      expect(gradientError(got, want, columns, b.fore).judged).toBeLessThan(TOLERANCE);
    }
    // Eight more prepared and used: no growth of the WASM heap.
    const heap = wasmHeapBytes();
    for (let i = 0; i < 8; i++) {
      ckks.prepareEncryption();
      ckks.encryptPartial(u);
    }
    expect(wasmHeapBytes()).toBe(heap);
  });

  it('residueClassSums: compensated class sums modulo the next power of two ≥ count', () => {
    // 2^40, 4094 × 1e-4, −2^40: each 1e-4 is below half an ulp of 2^40, so a plain running sum returns 0.
    const values = Float64Array.from({ length: 4096 }, (_, i) => (i === 0 ? 2 ** 40 : i === 4095 ? -(2 ** 40) : 1e-4));
    expect(values.reduce((a, v) => a + v, 0)).toBe(0);
    expect(residueClassSums(values, 1)[0]).toBeCloseTo(0.4094, 12);
    expect(
      Array.from(
        residueClassSums(
          Float64Array.from({ length: 16 }, (_, i) => i),
          3,
        ),
      ),
    ).toEqual([0 + 4 + 8 + 12, 1 + 5 + 9 + 13, 2 + 6 + 10 + 14]);
    expect(() => residueClassSums(new Float64Array(10), 4)).toThrow(/do not split/);
    expect(() => residueClassSums(new Float64Array(16), 0)).toThrow(RangeError);
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
    fore = gradient.foreGradient([partial, encryptPartial(batch.hostScores[1]!)], batch.weights, batch.offset);
    masked = gradient.maskedGradient(fore, makeColumns(new Rng(9), 4096, 4), randomMask(new Rng(10), MASK), keys.galoisKeys);
  });

  it('decryptGradient refuses a fresh [[0.25·u_k]] and the fore-gradient [[d]]: the arbiter never opens per-record values', () => {
    const fresh = expectCode(
      () => gradient.decryptGradient(partial, 4096, keys.secretKey),
      'FC_CIPHERTEXT_INVALID',
      /not a masked gradient at scale 2\^77\.00 at level 1 \(size 2, scale 2\^40, level 0\)/,
    );
    expect(fresh.message).toMatch(/never a per-record ciphertext such as \[\[u\]\] or \[\[d\]\]/);
    expectCode(() => gradient.decryptGradient(fore, 10, keys.secretKey), 'FC_CIPHERTEXT_INVALID', /not a masked gradient .*\(size 2, scale 2\^50\.00, level 1\)/);
    // A horizontal-style symmetric encryption is refused too, and so is a cut masked gradient.
    const symmetric = new HorizontalVectors(engine).encryptVector(new Float64Array(10), keys.publicKey, keys.secretKey)[0]!;
    expectCode(() => gradient.decryptGradient(symmetric, 10, keys.secretKey), 'FC_CIPHERTEXT_INVALID', /not a masked gradient/);
    for (const cut of [3, 100]) expectCode(() => gradient.decryptGradient(truncateWithHeader(masked, cut), 4, keys.secretKey), 'FC_CIPHERTEXT_INVALID');
    expect(gradient.decryptGradient(masked, 4, keys.secretKey).length).toBe(4);
    expect(() => gradient.decryptGradient(masked, 0, keys.secretKey)).toThrow(RangeError);
    expect(() => gradient.decryptGradient(masked, 4097, keys.secretKey)).toThrow(RangeError);
  });

  it('foreGradient takes only fresh public-key partials at scale 2^40 on the top level', () => {
    const seeded = new HorizontalVectors(engine).encryptVector(batch.hostScores[0]!, keys.publicKey, keys.secretKey)[0]!; // symmetric, seeded
    expectCode(() => gradient.foreGradient([partial, seeded], batch.weights, batch.offset), 'FC_CIPHERTEXT_INVALID', /does not re-serialise/);
    expectCode(
      () => gradient.foreGradient([fore], batch.weights, batch.offset),
      'FC_CIPHERTEXT_INVALID',
      /not a fresh public-key encryption of a partial score at scale 2\^40 at level 0 \(size 2, scale 2\^50\.00, level 1\)/,
    );
    expectCode(() => gradient.foreGradient([masked], batch.weights, batch.offset), 'FC_CIPHERTEXT_INVALID', /level 1\)/);
    for (const cut of [3, 1000]) expectCode(() => gradient.foreGradient([truncateWithHeader(partial, cut)], batch.weights, batch.offset), 'FC_CIPHERTEXT_INVALID');
    expect(() => gradient.foreGradient([], batch.weights, batch.offset)).toThrow(RangeError);
    expect(() => gradient.foreGradient([partial], batch.weights, batch.offset.subarray(1))).toThrow(RangeError);
    expect(() => gradient.foreGradient([partial], new Float64Array(4096), batch.offset)).toThrow(/every weight is zero/);
  });

  it('maskedGradient takes only a fore-gradient at scale ≈ 2^50 on level 1, and checks its plaintext inputs', () => {
    const columns = makeColumns(new Rng(11), 4096, 3);
    const mask = randomMask(new Rng(12), MASK);
    expectCode(
      () => gradient.maskedGradient(partial, columns, mask, keys.galoisKeys),
      'FC_CIPHERTEXT_INVALID',
      /not an encrypted fore-gradient at scale 2\^50\.00 at level 1 \(size 2, scale 2\^40, level 0\)/,
    );
    expectCode(() => gradient.maskedGradient(masked, columns, mask, keys.galoisKeys), 'FC_CIPHERTEXT_INVALID', /not an encrypted fore-gradient/);
    expectCode(() => gradient.maskedGradient(truncateWithHeader(fore, 50), columns, mask, keys.galoisKeys), 'FC_CIPHERTEXT_INVALID');
    expectCode(() => gradient.maskedGradient(fore, columns, mask, keys.galoisKeys.subarray(0, 1000)), 'FC_CIPHERTEXT_INVALID', /Galois keys header declares/);
    expectCode(() => gradient.maskedGradient(fore, columns, mask, truncateWithHeader(keys.galoisKeys, 5000)), 'FC_CIPHERTEXT_INVALID', /Galois keys do not deserialise/);
    // One mask value per slot: a mask of p values (one per column) is refused, so is one beyond 2^30.
    expect(() => gradient.maskedGradient(fore, columns, mask.subarray(0, 3), keys.galoisKeys)).toThrow(/needs one value per slot \(4096\), got 3/);
    expect(() => gradient.maskedGradient(fore, columns, mask.subarray(0, 4095), keys.galoisKeys)).toThrow(/needs one value per slot/);
    const big = Float64Array.from(mask);
    big[4000] = 2 ** 31;
    expect(() => gradient.maskedGradient(fore, columns, big, keys.galoisKeys)).toThrow(/at most 2\^30/);
    const infinite = Float64Array.from(mask);
    infinite[5] = Number.POSITIVE_INFINITY;
    expect(() => gradient.maskedGradient(fore, columns, infinite, keys.galoisKeys)).toThrow(/the mask holds a non-finite value/);
    expect(() => gradient.maskedGradient(fore, [columns[0]!, columns[1]!.subarray(1)], mask, keys.galoisKeys)).toThrow(/feature column 1 has 4095 values/);
    const nan = Float64Array.from(columns[2]!);
    nan[17] = Number.NaN;
    expect(() => gradient.maskedGradient(fore, [columns[0]!, columns[1]!, nan], mask, keys.galoisKeys)).toThrow(/non-finite value \(NaN\) at position 17/);
    // The engine still works after all that.
    const b = makeBatch(new Rng(13), 4096, 1);
    const f = gradient.foreGradient(b.hostScores.map(encryptPartial), b.weights, b.offset);
    expect(gradientError(gradientRoundTrip(f, columns, mask), plainGradient(columns, b.fore), columns, b.fore).judged).toBeLessThan(TOLERANCE);
  });

  it('encryptSlots takes at most slotCount finite values', () => {
    expect(() => gradient.encryptSlots(new Float64Array(4097), keys.publicKey)).toThrow(RangeError);
    expect(() => gradient.encryptSlots(Float64Array.of(1, Number.POSITIVE_INFINITY), keys.publicKey)).toThrow(/non-finite/);
  });

  it('the default (horizontal) parameters cannot run the vertical steps: FC_CKKS_PARAMS', async () => {
    const horizontal = await CkksEngine.create(DEFAULT_CKKS_PARAMS);
    try {
      expectCode(() => generateKeys(horizontal, 'arbiter'), 'FC_CKKS_PARAMS', /cannot run vertical logistic regression/);
      expectCode(() => VerticalGradient.of(horizontal).decryptGradient(masked, 4, keys.secretKey), 'FC_CKKS_PARAMS');
    } finally {
      horizontal.dispose();
    }
  });
});
