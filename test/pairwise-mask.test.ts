/**
 * Zero-sum pairwise masks (src/he/pairwise-mask.ts): the sum over the whole contributor set opens to the plain sum,
 * while one contribution (what a coordinator substituting the aggregate would hand a reporter) or a sum over a strict
 * subset opens to noise, and masked contributions pass the coordinator's checks unchanged.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { CkksEngine } from '../src/he/engine.js';
import { HorizontalVectors } from '../src/he/horizontal.js';
import { generateKeys, type CkksKeyPair } from '../src/he/key-ceremony.js';
import { PairwiseMask, type MaskTranscript } from '../src/fl/pairwise-mask.js';
import { generateBoxKeyPair, type BoxKeyPair } from '../src/crypto/sealed-box.js';
import { Rng } from '../src/random.js';
import { expectCode } from './helpers/errors.js';

const orgs = ['bank', 'power', 'tax'];
let engine: CkksEngine;
let vectors: HorizontalVectors;
let keys: CkksKeyPair;
const boxes = new Map<string, BoxKeyPair>(orgs.map((o) => [o, generateBoxKeyPair()]));

const transcript = (contributors: string[], attempt = 0): MaskTranscript => ({ jobId: 'job-1', purpose: 'update', round: 3, attempt, contributors });

function maskOf(org: string, t: MaskTranscript): PairwiseMask {
  const box = boxes.get(org)!;
  const peers = t.contributors.filter((o) => o !== org).map((o) => ({ organisation: o, boxPublicKey: boxes.get(o)!.publicKey }));
  return new PairwiseMask(org, box.privateKey, box.publicKey, peers, t);
}

/** Each organisation's update: a vector of `length` values in [-1, 1]. */
function updates(length: number): Map<string, Float64Array> {
  const rng = new Rng(7);
  return new Map(orgs.map((o) => [o, Float64Array.from({ length }, () => rng.next() * 2 - 1)]));
}

const maxAbsDiff = (a: Float64Array, b: Float64Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

beforeAll(async () => {
  engine = await CkksEngine.create();
  vectors = new HorizontalVectors(engine);
  keys = generateKeys(engine, 'lead');
});

describe('pairwise masks on the horizontal secure sum', () => {
  it('the sum over the whole set opens to the plain sum, within CKKS error (two blocks, each masked from its own counter)', () => {
    const n = engine.slotCount + 10;
    const x = updates(n);
    const t = transcript(orgs);
    const masked = orgs.map((o) => vectors.encryptVector(x.get(o)!, keys.publicKey, keys.secretKey, undefined, maskOf(o, t)));
    const plain = orgs.map((o) => vectors.encryptVector(x.get(o)!, keys.publicKey, keys.secretKey));
    const opened = vectors.decryptVector(vectors.sumVectors(masked), n, keys.secretKey);
    const unmasked = vectors.decryptVector(vectors.sumVectors(plain), n, keys.secretKey);
    const expected = Float64Array.from({ length: n }, (_, i) => orgs.reduce((s, o) => s + x.get(o)![i]!, 0));
    expect(maxAbsDiff(opened, expected)).toBeLessThan(1e-6);
    expect(maxAbsDiff(opened, unmasked)).toBeLessThan(1e-6);
  });

  it('one contribution substituted for the aggregate, or a sum over a strict subset, opens to noise far from any update', () => {
    const n = 500;
    const x = updates(n);
    const t = transcript(orgs);
    const masked = new Map(orgs.map((o) => [o, vectors.encryptVector(x.get(o)!, keys.publicKey, keys.secretKey, undefined, maskOf(o, t))]));
    const single = vectors.decryptVector(masked.get('power')!, n, keys.secretKey);
    expect(maxAbsDiff(single, x.get('power')!)).toBeGreaterThan(1e6);
    // Most values are far from the victim's: not just a few slots.
    expect(single.filter((v, i) => Math.abs(v - x.get('power')![i]!) > 1e3).length).toBeGreaterThan(n * 0.9);
    const pair = vectors.decryptVector(vectors.sumVectors([masked.get('bank')!, masked.get('power')!]), n, keys.secretKey);
    const pairSum = Float64Array.from({ length: n }, (_, i) => x.get('bank')![i]! + x.get('power')![i]!);
    expect(maxAbsDiff(pair, pairSum)).toBeGreaterThan(1e6);
  });

  it('masks of different transcripts (another attempt, another set) do not cancel: a coordinator cannot mix sums', () => {
    const n = 100;
    const x = updates(n);
    const first = transcript(orgs, 0);
    const second = transcript(orgs, 1);
    const mixed = [
      vectors.encryptVector(x.get('bank')!, keys.publicKey, keys.secretKey, undefined, maskOf('bank', first)),
      vectors.encryptVector(x.get('power')!, keys.publicKey, keys.secretKey, undefined, maskOf('power', second)),
      vectors.encryptVector(x.get('tax')!, keys.publicKey, keys.secretKey, undefined, maskOf('tax', second)),
    ];
    const expected = Float64Array.from({ length: n }, (_, i) => orgs.reduce((s, o) => s + x.get(o)![i]!, 0));
    expect(maxAbsDiff(vectors.decryptVector(vectors.sumVectors(mixed), n, keys.secretKey), expected)).toBeGreaterThan(1e6);
  });

  it("masked contributions pass the coordinator's checks (seeded form, level, scale) and its running sum opens to the plain sum", () => {
    const n = 300;
    const x = updates(n);
    const t = transcript(orgs);
    const sum = vectors.runningSum(vectors.blocksFor(n));
    try {
      for (const o of orgs) {
        const blocks = vectors.encryptVector(x.get(o)!, keys.publicKey, keys.secretKey, undefined, maskOf(o, t));
        for (const b of blocks) vectors.checkCiphertext(b, 'seeded');
        sum.add(blocks);
      }
      const result = sum.result();
      for (const b of result) vectors.checkCiphertext(b, 'canonical');
      const expected = Float64Array.from({ length: n }, (_, i) => orgs.reduce((s, o) => s + x.get(o)![i]!, 0));
      expect(maxAbsDiff(vectors.decryptVector(result, n, keys.secretKey, 'canonical'), expected)).toBeLessThan(1e-6);
    } finally {
      sum.dispose();
    }
  });

  it('a mask is refused when the peers it is given are not exactly the other contributors', () => {
    const box = boxes.get('bank')!;
    const t = transcript(orgs);
    expectCode(() => new PairwiseMask('bank', box.privateKey, box.publicKey, [{ organisation: 'power', boxPublicKey: boxes.get('power')!.publicKey }], t), 'FC_PROTOCOL');
    expectCode(() => new PairwiseMask('bank', box.privateKey, box.publicKey, [], transcript(['power', 'tax'])), 'FC_PROTOCOL');
  });
});
