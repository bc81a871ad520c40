import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CkksEngine } from '../src/he/engine.js';
import { generateKeys } from '../src/he/key-ceremony.js';
import { residueClassSums } from '../src/he/packing.js';
import { VERTICAL_CKKS_PARAMS } from '../src/he/params.js';
import { VerticalGradient } from '../src/he/vertical-gradient.js';
import { columnGroups, encryptRowValues, hostBinSums, openLabelSums, zeroClassSumMask } from '../src/vertical/label-sums.js';
import { Rng } from '../src/random.js';

describe('per-bin label sums under the guest key (WOE for host features)', () => {
  let engine: CkksEngine;
  beforeAll(async () => {
    engine = await CkksEngine.create(VERTICAL_CKKS_PARAMS);
  });
  afterAll(() => engine.dispose());

  it('the guest learns exactly the default count of every host bin over several chunks', () => {
    const rng = new Rng(7, 1);
    const rows = 9_500; // three chunks, the last one partial
    const y = Float64Array.from({ length: rows }, () => (rng.next() < 0.22 ? 1 : 0));
    const binCounts = [5, 12, 3];
    const bins = binCounts.map((k) => Uint16Array.from({ length: rows }, () => Math.floor(rng.next() * k)));
    const keys = generateKeys(engine, 'arbiter');
    const chunks = encryptRowValues(engine, y, keys.publicKey);
    expect(chunks).toHaveLength(3);
    const cipher = hostBinSums(engine, chunks, keys.galoisKeys, bins, binCounts);
    const got = openLabelSums(engine, cipher, 20, keys.secretKey);
    const want = binCounts.flatMap((k, f) => Array.from({ length: k }, (_, b) => bins[f]!.reduce((s, v, r) => s + (v === b ? y[r]! : 0), 0)));
    expect(got).toEqual(want);
    // What the guest decrypts slot by slot is masked: no slot is a small count.
    const slots = VerticalGradient.of(engine).decryptGradientSlots(cipher, keys.secretKey);
    const small = slots.filter((v) => Math.abs(v) < 64).length;
    expect(small).toBeLessThan(5);
  });

  it('the mask vanishes from every residue class and hides each slot', () => {
    const mask = zeroClassSumMask(4096, 20);
    const sums = residueClassSums(mask, 20);
    for (const s of sums) expect(Math.abs(s)).toBeLessThan(1e-6);
    const spread = Math.max(...mask) - Math.min(...mask);
    expect(spread).toBeGreaterThan(2 ** 28);
    expect(Math.max(...mask.map(Math.abs))).toBeLessThanOrEqual(2 ** 30);
  });

  it('packs features into ciphertexts of at most 128 bin columns', () => {
    expect(columnGroups([22, 22, 22, 22, 22, 22, 22])).toEqual([
      [0, 1, 2, 3, 4],
      [5, 6],
    ]);
    expect(() => columnGroups([200])).toThrow(/200 bins/);
  });
});
