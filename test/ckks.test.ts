/**
 * CKKS secure sums: the coordinator adds encrypted, sample-weighted model updates it cannot read, and what the
 * participants decrypt must be the plaintext sum to well within what float32 model weights can tell apart. Bad
 * ciphertexts are refused with a clear code without breaking the engine, and the WASM heap does not leak over a
 * long job.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { CkksEngine } from '../src/he/engine.js';
import { HorizontalVectors } from '../src/he/horizontal.js';
import { generateKeys, type CkksKeyPair } from '../src/he/key-ceremony.js';
import { DEFAULT_CKKS_PARAMS } from '../src/he/params.js';
import { wasmHeapBytes } from '../src/he/seal.js';
import { VectorCodec, toFloat64 } from '../src/fl/vector-codec.js';
import { Rng } from '../src/random.js';
import type { EncryptedVector } from '../src/wire/messages.js';
import { expectCode } from './helpers/errors.js';

const digest = (b: Uint8Array): Uint8Array => createHash('sha256').update(b).digest();

/** |got − want| ≤ max(1e-4, 1e-6·|want|) for every value; returns the largest absolute and relative errors. */
function expectClose(got: Float64Array, want: Float64Array): { maxAbs: number; maxRel: number } {
  expect(got.length).toBe(want.length);
  let maxAbs = 0;
  let maxRel = 0;
  let worst = -1;
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i]! - want[i]!);
    if (!(err <= Math.max(1e-4, 1e-6 * Math.abs(want[i]!)))) worst = worst < 0 ? i : worst;
    maxAbs = Math.max(maxAbs, err);
    if (want[i] !== 0) maxRel = Math.max(maxRel, err / Math.abs(want[i]!));
  }
  expect(worst, worst >= 0 ? `value ${worst}: got ${got[worst]}, want ${want[worst]}` : '').toBe(-1);
  return { maxAbs, maxRel };
}

/**
 * A participant's update vector laid out as FedAvg sends it: [n·(w_k − w) for each parameter, n, n·loss], with n
 * (its training rows) in the thousands.
 */
function weightedUpdate(rng: Rng, params: number): { values: Float64Array; n: number } {
  const n = 1000 + rng.int(9000);
  const values = new Float64Array(params + 2);
  for (let i = 0; i < params; i++) values[i] = n * rng.normal(0, 0.05);
  values[params] = n;
  values[params + 1] = n * rng.uniform(0.3, 0.7);
  return { values, n };
}

function plainSum(vectors: Float64Array[]): Float64Array {
  const out = new Float64Array(vectors[0]!.length);
  for (const v of vectors) for (let i = 0; i < out.length; i++) out[i]! += v[i]!;
  return out;
}

let engine: CkksEngine;
let horizontal: HorizontalVectors;
let codec: VectorCodec;
let keys: CkksKeyPair;

beforeAll(async () => {
  engine = await CkksEngine.create();
  horizontal = new HorizontalVectors(engine);
  codec = VectorCodec.ckks(horizontal);
  keys = generateKeys(engine, 'lead');
});

// First in the file, so the heap is measured before other tests have grown it for their own reasons.
describe('memory over a long job', () => {
  it('one engine, 110 rounds of encrypt×3 + check + sum + open at 5,000 values: WASM heap does not grow, rss < 64 MB', () => {
    const rng = new Rng(2024);
    const length = 5000;
    const round = () => {
      const inputs = [0, 1, 2].map(() => weightedUpdate(rng, length - 2).values);
      const encrypted = inputs.map((v) => codec.encode(v, keys)); // symmetric, as participants encrypt
      encrypted.forEach((e, i) => codec.check(e, length, `party ${i}`));
      const sum = codec.sum(encrypted);
      const opened = codec.open(sum, length, 'the coordinator', keys); // check 'canonical' + decrypt, as participants do
      expectClose(opened, plainSum(inputs));
    };
    for (let r = 0; r < 10; r++) round();
    // rss is read after a full garbage collection: without one it held whatever garbage the JavaScript heap had
    // not yet collected, 5 to 55 MiB from run to run (measured), too close to the bound to say anything; after one
    // it grows by 0 to 6 MiB, while a leak of the rounds' ciphertexts would add over 100 MiB.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const heapBefore = wasmHeapBytes();
    gc();
    const rssBefore = process.memoryUsage().rss;
    const started = performance.now();
    for (let r = 0; r < 100; r++) round();
    const seconds = (performance.now() - started) / 1000;
    const heapAfter = wasmHeapBytes();
    gc();
    const rssAfter = process.memoryUsage().rss;
    console.log(
      `[ckks memory] WASM heap ${heapBefore} → ${heapAfter} bytes over 100 rounds; rss ${(rssBefore / 2 ** 20).toFixed(1)} → ${(rssAfter / 2 ** 20).toFixed(1)} MiB (${((rssAfter - rssBefore) / 2 ** 20).toFixed(1)} MiB); ${((seconds * 1000) / 100).toFixed(0)} ms/round`,
    );
    expect(heapBefore).toBeGreaterThan(0); // the heap is really being observed
    expect(heapAfter).toBe(heapBefore);
    expect(rssAfter - rssBefore).toBeLessThan(64 * 2 ** 20);
  });
});

describe('homomorphic sum of three sample-weighted updates of 10,000 values', () => {
  for (const mode of ['public-key', 'symmetric'] as const) {
    it(`${mode} encryption: decrypted sum equals the plaintext sum within 1e-6 relative / 1e-4 absolute`, () => {
      const rng = new Rng(mode === 'public-key' ? 11 : 12);
      const parties = [0, 1, 2].map(() => weightedUpdate(rng, 9998));
      let opened: Float64Array;
      let encrypted: { blocks: Uint8Array[] }[];
      if (mode === 'public-key') {
        // The engine primitive (the codec's contributions are always symmetric): anyone with the public key.
        encrypted = parties.map((p) => ({ blocks: horizontal.encryptVector(p.values, keys.publicKey) }));
        for (const e of encrypted) {
          expect(e.blocks.length).toBe(3);
          e.blocks.forEach((b) => horizontal.checkCiphertext(b, 'canonical'));
        }
        opened = horizontal.decryptVector(horizontal.sumVectors(encrypted.map((e) => e.blocks)), 10_000, keys.secretKey);
      } else {
        const vectors = parties.map((p) => codec.encode(p.values, keys));
        for (const e of vectors) {
          expect(e.blocks.length).toBe(3); // 10,000 values in 4,096-slot ciphertexts
          codec.check(e, 10_000, 'party');
        }
        const sum = codec.sum(vectors);
        codec.check(sum, 10_000, 'the coordinator', 'canonical');
        opened = codec.decode(sum, keys);
        encrypted = vectors;
      }
      const want = plainSum(parties.map((p) => p.values));
      const { maxAbs, maxRel } = expectClose(opened, want);
      // The total sample count, which FedAvg divides by, comes back exact after rounding.
      expect(Math.round(opened[9998]!)).toBe(parties.reduce((a, p) => a + p.n, 0));
      const bytesEach = encrypted[0]!.blocks.reduce((a, b) => a + b.length, 0);
      console.log(`[ckks ${mode}] max abs error ${maxAbs.toExponential(2)}, max rel error ${maxRel.toExponential(2)}; ${bytesEach} bytes per encrypted vector`);
    });
  }

  it("a participant cannot decrypt with another job's secret key (the sum is really encrypted)", () => {
    const other = generateKeys(engine, 'lead');
    const values = Float64Array.from({ length: 100 }, (_, i) => 1000 + i);
    const opened = codec.decode(codec.encode(values, keys), other);
    let close = 0;
    for (let i = 0; i < values.length; i++) if (Math.abs(opened[i]! - values[i]!) < 1) close++;
    expect(close).toBe(0);
  });
});

describe('VectorCodec.check refuses bad vectors and leaves the engine working', () => {
  const length = 10_000;
  let good: EncryptedVector;

  beforeAll(() => {
    good = codec.encode(weightedUpdate(new Rng(7), length - 2).values, keys);
    codec.check(good, length, 'bank-a');
  });

  /** After a rejection the WASM module still encrypts, sums and decrypts correctly. */
  function engineStillWorks(): void {
    const a = Float64Array.from({ length: 5000 }, (_, i) => i * 0.25 - 300);
    const b = Float64Array.from({ length: 5000 }, (_, i) => 1e4 - i);
    const sum = codec.sum([codec.encode(a, keys), codec.encode(b, keys)]);
    codec.check(sum, 5000, 'the coordinator', 'canonical');
    expectClose(codec.decode(sum, keys), plainSum([a, b]));
  }

  /** The good vector with block `i` replaced and its digest recomputed, so only the block itself is wrong. */
  function withBlock(i: number, block: Uint8Array): EncryptedVector {
    const blocks = good.blocks.slice();
    blocks[i] = block;
    return { ...good, blocks, blockSha256: blocks.map(digest) };
  }

  it('a truncated ciphertext block', () => {
    const b = good.blocks[1]!;
    expectCode(() => codec.check(withBlock(1, b.subarray(0, b.length - 100)), length, 'bank-a'), 'FC_CIPHERTEXT_INVALID', /declares \d+ bytes but \d+ arrived/);
    expectCode(() => codec.check(withBlock(1, b.subarray(0, 10)), length, 'bank-a'), 'FC_CIPHERTEXT_INVALID', /shorter than SEAL's 16-byte header/);
    engineStillWorks();
  });

  it('a truncated block whose header is rewritten to match its new length reaches SEAL and is refused there', () => {
    const b = good.blocks[0]!;
    for (const keep of [20, 1000, Math.floor(b.length / 2), b.length - 1000]) {
      const t = Uint8Array.from(b.subarray(0, keep));
      new DataView(t.buffer).setBigUint64(8, BigInt(keep), true);
      expectCode(() => codec.check(withBlock(0, t), length, 'bank-a'), 'FC_CIPHERTEXT_INVALID', /does not deserialise/);
      engineStillWorks();
    }
  });

  it('garbage bytes, with and without a plausible SEAL header', () => {
    const rng = new Rng(99);
    const garbage = Uint8Array.from({ length: good.blocks[0]!.length }, () => rng.int(256));
    expectCode(() => codec.check(withBlock(0, garbage), length, 'bank-a'), 'FC_CIPHERTEXT_INVALID', /magic number/);
    engineStillWorks();
    const headed = Uint8Array.from(garbage);
    headed.set(good.blocks[0]!.subarray(0, 16)); // a real header: magic, version, compression, size
    expectCode(() => codec.check(withBlock(0, headed), length, 'bank-a'), 'FC_CIPHERTEXT_INVALID', /does not deserialise/);
    engineStillWorks();
  });

  it("a header naming an unknown compression mode (byte 5 of SEAL's header)", () => {
    const b = Uint8Array.from(good.blocks[0]!);
    expect(b[5]).toBeLessThanOrEqual(2);
    b[5] = 7;
    expectCode(() => codec.check(withBlock(0, b), length, 'bank-a'), 'FC_CIPHERTEXT_INVALID', /unknown compression mode 7/);
    engineStillWorks();
  });

  it('a digest that does not match its block', () => {
    const tampered = Uint8Array.from(good.blocks[2]!);
    tampered[5000]! ^= 1;
    expectCode(() => codec.check({ ...good, blocks: [good.blocks[0]!, good.blocks[1]!, tampered] }, length, 'bank-a'), 'FC_CIPHERTEXT_INVALID', /block 2 from bank-a does not match its SHA-256/);
    engineStillWorks();
  });

  it('a block from another CKKS parameter set: FC_CKKS_PARAMS, and FC_CIPHERTEXT_INVALID when the fingerprint is forged', async () => {
    const otherParams = [
      { polyModulusDegree: 8192, coeffModulusBits: [60, 40, 40, 60], scaleBits: 40 }, // other modulus chain
      { polyModulusDegree: 8192, coeffModulusBits: [60, 40, 60], scaleBits: 30 }, // same chain, other scale
    ];
    for (const params of otherParams) {
      const other = await CkksEngine.create(params);
      try {
        const otherCodec = VectorCodec.ckks(new HorizontalVectors(other));
        const otherKeys = generateKeys(other, 'lead');
        const foreign = otherCodec.encode(weightedUpdate(new Rng(3), length - 2).values, otherKeys);
        expect(foreign.blocks.length).toBe(good.blocks.length);
        expectCode(() => codec.check(foreign, length, 'bank-c'), 'FC_CKKS_PARAMS', /bank-c encrypted under CKKS parameters that differ/);
        engineStillWorks();
        const forged = { ...foreign, paramsFingerprint: engine.fingerprint };
        expectCode(() => codec.check(forged, length, 'bank-c'), 'FC_CIPHERTEXT_INVALID');
        engineStillWorks();
        // One foreign block among good ones is caught too.
        expectCode(() => codec.check(withBlock(1, foreign.blocks[1]!), length, 'bank-c'), 'FC_CIPHERTEXT_INVALID');
        engineStillWorks();
      } finally {
        other.dispose();
      }
    }
  });

  it('a vector of the wrong length', () => {
    expectCode(() => codec.check(good, length + 1, 'bank-a'), 'FC_CIPHERTEXT_INVALID', /bank-a sent a vector of 10000 values, the job expects 10001/);
    expectCode(() => codec.check({ ...good, length: 9000 }, length, 'bank-a'), 'FC_CIPHERTEXT_INVALID', /9000 values/);
    engineStillWorks();
  });

  it('the wrong number of blocks', () => {
    const two = { ...good, blocks: good.blocks.slice(0, 2), blockSha256: good.blockSha256.slice(0, 2) };
    expectCode(() => codec.check(two, length, 'bank-a'), 'FC_CIPHERTEXT_INVALID', /sent 2 blocks, the job expects 3/);
    const four = { ...good, blocks: [...good.blocks, good.blocks[0]!], blockSha256: [...good.blockSha256, good.blockSha256[0]!] };
    expectCode(() => codec.check(four, length, 'bank-a'), 'FC_CIPHERTEXT_INVALID', /sent 4 blocks, the job expects 3/);
    const missingDigest = { ...good, blockSha256: good.blockSha256.slice(0, 2) };
    expectCode(() => codec.check(missingDigest, length, 'bank-a'), 'FC_CIPHERTEXT_INVALID');
    engineStillWorks();
  });

  it('a plaintext vector sent to a CKKS job', () => {
    const plain = VectorCodec.plaintext().encode(new Float64Array(length));
    expectCode(() => codec.check({ ...plain, paramsFingerprint: engine.fingerprint }, length, 'bank-a'), 'FC_CIPHERTEXT_INVALID', /plaintext vector to a ckks job/);
    engineStillWorks();
  });

  it('plaintext mode refuses NaN and ±Infinity, and a block of the wrong size', () => {
    const plainCodec = VectorCodec.plaintext();
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      const values = Float64Array.from({ length }, (_, i) => i / 7);
      values[4100] = bad; // in the second block
      const v = plainCodec.encode(values);
      expectCode(() => plainCodec.check(v, length, 'bank-b'), 'FC_CIPHERTEXT_INVALID', new RegExp(`plaintext block 1 from bank-b holds a non-finite value \\(${bad}\\) at position 4`));
    }
    const ok = plainCodec.encode(Float64Array.from({ length }, (_, i) => i / 7));
    plainCodec.check(ok, length, 'bank-b');
    const short = ok.blocks[2]!.subarray(0, ok.blocks[2]!.length - 8);
    const blocks = [ok.blocks[0]!, ok.blocks[1]!, short];
    expectCode(() => plainCodec.check({ ...ok, blocks, blockSha256: blocks.map(digest) }, length, 'bank-b'), 'FC_CIPHERTEXT_INVALID', /has \d+ bytes, expected \d+/);
    // And the good plaintext vectors still sum exactly.
    const sum = plainCodec.decode(plainCodec.sum([ok, ok]));
    expect(sum[7]).toBe(2 * (7 / 7));
    expect(Array.from(toFloat64(ok.blocks[0]!).subarray(0, 3))).toEqual([0, 1 / 7, 2 / 7]);
    engineStillWorks();
  });
});

describe('CkksEngine.create', () => {
  it('refuses parameters above the 128-bit security bound with FC_CKKS_PARAMS', async () => {
    await expect(CkksEngine.create({ polyModulusDegree: 8192, coeffModulusBits: [60, 60, 60, 60], scaleBits: 40 })).rejects.toMatchObject({
      name: 'FedcreditError',
      code: 'FC_CKKS_PARAMS',
      message: expect.stringMatching(/240 are not 128-bit secure \(at most 218 bits/),
    });
    await expect(CkksEngine.create({ polyModulusDegree: 4096, coeffModulusBits: [40, 40, 40], scaleBits: 30 })).rejects.toMatchObject({ code: 'FC_CKKS_PARAMS' });
    await expect(CkksEngine.create({ polyModulusDegree: 8192, coeffModulusBits: [60], scaleBits: 40 })).rejects.toMatchObject({ code: 'FC_CKKS_PARAMS' });
  });

  it('accepts the defaults, with 4,096 slots and a fingerprint that names the parameters', async () => {
    expect(engine.params).toEqual(DEFAULT_CKKS_PARAMS);
    expect(engine.slotCount).toBe(4096);
    const again = await CkksEngine.create({ ...DEFAULT_CKKS_PARAMS });
    try {
      expect(Buffer.from(again.fingerprint).equals(Buffer.from(engine.fingerprint))).toBe(true);
      // One SEAL context per parameter set and process: disposing the second engine leaves the first working.
      expect(again.context).toBe(engine.context);
    } finally {
      again.dispose();
    }
    engineStillWorksTop();
  });
});

/** The same health check for describe blocks outside the VectorCodec one. */
function engineStillWorksTop(): void {
  const a = Float64Array.from({ length: 10 }, (_, i) => i);
  const sum = codec.sum([codec.encode(a, keys), codec.encode(a, keys)]);
  expectClose(codec.decode(sum, keys), plainSum([a, a]));
}

describe('truncations SEAL alone does not notice (header rewritten to the new length)', () => {
  /** Cut `cut` bytes off the end and rewrite the header's size field to match, as a hostile sender could. */
  function truncateWithHeader(block: Uint8Array, cut: number): Uint8Array {
    const t = Uint8Array.from(block.subarray(0, block.length - cut));
    new DataView(t.buffer).setBigUint64(8, BigInt(t.length), true);
    return t;
  }

  it('a contribution must be a seeded symmetric encryption: a public-key block, whole or cut, is refused', () => {
    const values = Float64Array.from({ length: 4096 }, (_, i) => 50 + i * 1e-3);
    const publicKeyBlock = horizontal.encryptVector(values, keys.publicKey)[0]!;
    expectCode(() => horizontal.checkCiphertext(publicKeyBlock, 'seeded'), 'FC_CIPHERTEXT_INVALID', /not a seeded symmetric encryption/);
    for (const cut of [2, 5, 17, 64]) expectCode(() => horizontal.checkCiphertext(truncateWithHeader(publicKeyBlock, cut), 'seeded'), 'FC_CIPHERTEXT_INVALID');
  });

  it('an aggregate must re-serialise to exactly the bytes received: every cut is refused', () => {
    const a = codec.encode(
      Float64Array.from({ length: 4096 }, (_, i) => i),
      keys,
    );
    const aggregate = codec.sum([
      a,
      codec.encode(
        Float64Array.from({ length: 4096 }, () => 1),
        keys,
      ),
    ]).blocks[0]!;
    horizontal.checkCiphertext(aggregate, 'canonical');
    for (const cut of [2, 5, 17, 64]) expectCode(() => horizontal.checkCiphertext(truncateWithHeader(aggregate, cut), 'canonical'), 'FC_CIPHERTEXT_INVALID');
  });

  it('open (what a participant does with an aggregate) runs the same canonical test: cuts and a seeded block are refused', () => {
    const a = Float64Array.from({ length: 4096 }, (_, i) => i);
    const b = Float64Array.from({ length: 4096 }, () => 1);
    const sum = codec.sum([codec.encode(a, keys), codec.encode(b, keys)]);
    expectClose(codec.open(sum, 4096, 'the coordinator', keys), plainSum([a, b]));
    const withBlock = (block: Uint8Array): EncryptedVector => ({ ...sum, blocks: [block], blockSha256: [digest(block)] });
    for (const cut of [2, 5, 17, 64]) expectCode(() => codec.open(withBlock(truncateWithHeader(sum.blocks[0]!, cut)), 4096, 'the coordinator', keys), 'FC_CIPHERTEXT_INVALID');
    expectCode(() => codec.open(codec.encode(a, keys), 4096, 'the coordinator', keys), 'FC_CIPHERTEXT_INVALID', /does not re-serialise/);
    expectCode(() => codec.open(sum, 4000, 'the coordinator', keys), 'FC_CIPHERTEXT_INVALID', /the job expects 4000/);
    engineStillWorksTop();
  });
});

describe("the coordinator's intake (VectorCodec.startSum): check and add each contribution once, as it arrives", () => {
  const length = 5000; // two ciphertexts
  const rng = new Rng(31);
  const inputs = [0, 1, 2].map(() => weightedUpdate(rng, length - 2).values);
  const bytesOf = (v: EncryptedVector) => Buffer.concat(v.blocks);

  it('in any arrival order, the same bytes as sum() over the contributors in canonical order', () => {
    const vectors = inputs.map((v) => codec.encode(v, keys));
    const expected = codec.sum(vectors);
    const intake = codec.startSum(length);
    try {
      for (const i of [2, 0, 1]) intake.add(vectors[i]!, `bank-${i}`);
      const sum = intake.result(['bank-0', 'bank-1', 'bank-2']);
      expect(bytesOf(sum).equals(bytesOf(expected))).toBe(true);
      expect(sum.blockSha256).toEqual(expected.blockSha256);
    } finally {
      intake.dispose();
    }
  });

  it('a contribution whose second block fails its check is refused and leaves the sum as it was, first or not', () => {
    const vectors = inputs.map((v) => codec.encode(v, keys));
    const publicKeyBlock = horizontal.encryptVector(inputs[1]!.subarray(4096), keys.publicKey)[0]!;
    const bad: EncryptedVector = { ...vectors[1]!, blocks: [vectors[1]!.blocks[0]!, publicKeyBlock], blockSha256: [vectors[1]!.blockSha256[0]!, digest(publicKeyBlock)] };
    const expected = codec.sum([vectors[0]!, vectors[2]!]);
    for (const order of [
      [1, 0, 2],
      [0, 1, 2],
    ]) {
      const intake = codec.startSum(length);
      try {
        for (const i of order) {
          if (i === 1) expectCode(() => intake.add(bad, 'bank-1'), 'FC_CIPHERTEXT_INVALID', /not a seeded symmetric encryption/);
          else intake.add(vectors[i]!, `bank-${i}`);
        }
        expect(bytesOf(intake.result(['bank-0', 'bank-2'])).equals(bytesOf(expected))).toBe(true);
      } finally {
        intake.dispose();
      }
    }
  });

  it('remove takes a contribution back out (a sender dropped after its check), also the first one added', () => {
    const vectors = inputs.map((v) => codec.encode(v, keys));
    for (const removed of [0, 1]) {
      const intake = codec.startSum(length);
      try {
        vectors.forEach((v, i) => intake.add(v, `bank-${i}`));
        intake.remove(`bank-${removed}`);
        const kept = [0, 1, 2].filter((i) => i !== removed);
        const sum = intake.result(kept.map((i) => `bank-${i}`));
        expect(bytesOf(sum).equals(bytesOf(codec.sum(kept.map((i) => vectors[i]!))))).toBe(true);
        expectClose(codec.open(sum, length, 'the coordinator', keys), plainSum(kept.map((i) => inputs[i]!)));
      } finally {
        intake.dispose();
      }
    }
  });

  it('plaintext mode: checks as check() does and adds in the order given, as sum() does', () => {
    const plain = VectorCodec.plaintext();
    const vectors = inputs.map((v) => plain.encode(v));
    const intake = plain.startSum(length);
    for (const i of [2, 0, 1]) intake.add(vectors[i]!, `bank-${i}`);
    const nan = plain.encode(Float64Array.from(inputs[0]!, (x, i) => (i === 7 ? Number.NaN : x)));
    expectCode(() => intake.add(nan, 'bank-3'), 'FC_CIPHERTEXT_INVALID', /non-finite/);
    expect(bytesOf(intake.result(['bank-0', 'bank-1', 'bank-2'])).equals(bytesOf(plain.sum(vectors)))).toBe(true);
    intake.dispose();
  });

  it('many rounds of intake leave the WASM heap where it was', () => {
    const vectors = inputs.map((v) => codec.encode(v, keys));
    const round = () => {
      const intake = codec.startSum(length);
      try {
        vectors.forEach((v, i) => intake.add(v, `bank-${i}`));
        intake.result(['bank-0', 'bank-1', 'bank-2']);
      } finally {
        intake.dispose();
      }
    };
    for (let r = 0; r < 5; r++) round();
    const before = wasmHeapBytes();
    for (let r = 0; r < 50; r++) round();
    expect(wasmHeapBytes()).toBe(before);
  });
});
