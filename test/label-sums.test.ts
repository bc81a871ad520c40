import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CkksEngine } from '../src/he/engine.js';
import { generateKeys } from '../src/he/key-ceremony.js';
import { nextPowerOfTwo, residueClassSums } from '../src/he/packing.js';
import { VERTICAL_CKKS_PARAMS } from '../src/he/params.js';
import { VerticalGradient } from '../src/he/vertical-gradient.js';
import { BinSums, columnGroups, encryptRowValues, hostBinSums, nodeFromBase, openBinSums, openLabelSums, repeatRows, rowRepeats, zeroClassSumMask } from '../src/vertical/label-sums.js';
import { Rng } from '../src/random.js';
import { readCiphertext } from '../src/he/seal-format.js';

describe('per-bin label sums under the guest key (WOE for host features)', () => {
  let engine: CkksEngine;
  beforeAll(async () => {
    engine = await CkksEngine.create(VERTICAL_CKKS_PARAMS);
  });
  afterAll(() => engine.dispose());

  it('the guest learns exactly the default count of every host bin over several chunks', async () => {
    const rng = new Rng(7, 1);
    const rows = 9_500; // three chunks, the last one partial
    const y = Float64Array.from({ length: rows }, () => (rng.next() < 0.22 ? 1 : 0));
    const binCounts = [5, 12, 3];
    const bins = binCounts.map((k) => Uint16Array.from({ length: rows }, () => Math.floor(rng.next() * k)));
    const keys = generateKeys(engine, 'arbiter');
    const chunks = encryptRowValues(engine, y, keys.publicKey);
    expect(chunks).toHaveLength(3);
    const cipher = (await hostBinSums(engine, chunks, keys, [{ bins, binCounts }]))[0]!;
    const got = openLabelSums(engine, cipher, 20, keys.secretKey);
    const want = binCounts.flatMap((k, f) => Array.from({ length: k }, (_, b) => bins[f]!.reduce((s, v, r) => s + (v === b ? y[r]! : 0), 0)));
    expect(got).toEqual(want);
    // What the guest decrypts slot by slot is masked: no slot is a small count.
    const slots = VerticalGradient.of(engine).decryptGradientSlots(cipher, engine.slotCount, keys.secretKey);
    const small = slots.filter((v) => Math.abs(v) < 64).length;
    expect(small).toBeLessThan(5);
  });

  it('a guest that hides a probe in the imaginary part of its labels reads it back from no slot: both parts are masked', async () => {
    const rng = new Rng(13, 3);
    const rows = 4096;
    const binCount = 10;
    const bins = Uint16Array.from({ length: rows }, () => Math.floor(rng.next() * binCount));
    const y = Float64Array.from({ length: rows }, () => (rng.next() < 0.2 ? 1 : 0));
    // The deviating guest: its labels as the real part, so the counts open as usual, and four rows weighted by their
    // index in the imaginary part: an unmasked slot would name its row and, by its class, the row's bin.
    const probe = new Float64Array(rows);
    for (const r of [5, 77, 1234, 4000]) probe[r] = 1 + r / 2 ** 13;
    const keys = generateKeys(engine, 'arbiter');
    const cipher = (await hostBinSums(engine, encryptRowValues(engine, y, keys.publicKey, probe), keys, [{ bins: [bins], binCounts: [binCount] }]))[0]!;
    const want = Array.from({ length: binCount }, (_, b) => bins.reduce((s, v, r) => s + (v === b ? y[r]! : 0), 0));
    expect(openLabelSums(engine, cipher, binCount, keys.secretKey)).toEqual(want);
    const imaginary = VerticalGradient.of(engine).decryptGradientSlots(cipher, engine.slotCount, keys.secretKey, 'imaginary');
    expect(imaginary.filter((v) => Math.abs(v) < 2 ** 10).length).toBeLessThan(5);
  });

  it('class sums made inside the decryption, of either part, are the raw decryption summed in the clear (P = 1 included, where the imaginary unit does not commute with the sum)', async () => {
    const rng = new Rng(19, 5);
    const rows = 4096;
    const bins = Uint16Array.from({ length: rows }, () => Math.floor(rng.next() * 10));
    const y = Float64Array.from({ length: rows }, () => (rng.next() < 0.2 ? 1 : 0));
    const h = Float64Array.from({ length: rows }, () => rng.next());
    const keys = generateKeys(engine, 'arbiter');
    const cipher = (await hostBinSums(engine, encryptRowValues(engine, y, keys.publicKey, h), keys, [{ bins: [bins], binCounts: [10] }]))[0]!;
    const gradient = VerticalGradient.of(engine);
    const S = engine.slotCount;
    for (const part of ['real', 'imaginary'] as const) {
      const raw = gradient.decryptGradientSlots(cipher, S, keys.secretKey, part);
      // One decryption either way: floating-point rounding only (measured at most 1.7e-6 beside slots of up to 2^29,
      // 10^−18 of Σ|slot|); a wrong sign or slot would be off by a mask's width.
      const rounding = 1e-14 * raw.reduce((a, v) => a + Math.abs(v), 0);
      for (const count of [1, 2, 10, 2048]) {
        const P = nextPowerOfTwo(count);
        const view = gradient.decryptGradientSlots(cipher, count, keys.secretKey, part);
        const clear = residueClassSums(raw, P);
        let worst = 0;
        for (let i = 0; i < S; i++) worst = Math.max(worst, Math.abs(view[i]! - clear[i % P]!));
        expect(worst, `${part}, count ${count}`).toBeLessThan(rounding);
      }
    }
  });

  it("a reply's second polynomial is re-randomised: two replies to the same ciphertexts share nothing a guest could solve the host's bins from", async () => {
    const rng = new Rng(17, 4);
    const rows = 4096;
    const bins = Uint16Array.from({ length: rows }, () => Math.floor(rng.next() * 8));
    const y = Float64Array.from({ length: rows }, () => (rng.next() < 0.2 ? 1 : 0));
    const keys = generateKeys(engine, 'arbiter');
    const chunks = encryptRowValues(engine, y, keys.publicKey);
    const reply = async () => readCiphertext((await hostBinSums(engine, chunks, keys, [{ bins: [bins], binCounts: [8] }]))[0]!);
    const [first, second] = [await reply(), await reply()];
    // Without the fresh encryption of zero, c1 was a function of the guest's ciphertexts and keys and the host's
    // diagonals alone: byte for byte the same in both replies. Now hardly a word of it repeats.
    let same = 0;
    for (let i = 0; i < first.polys[1]!.length; i++) if (first.polys[1]![i] === second.polys[1]![i]) same++;
    expect(same).toBeLessThan(first.polys[1]!.length / 1000);
  });

  it("nodes' per-bin sums of g and h, packed as g + i·h, over every group, in one pass, are the plain sums (kept diagonals or not, on worker threads or not)", async () => {
    const rng = new Rng(11, 2);
    const rows = 12_000;
    const g = Float64Array.from({ length: rows }, () => 2 * rng.next() - 1);
    const h = Float64Array.from({ length: rows }, () => 0.25 * rng.next());
    // 128 bins, 64 + 64, and 3 (P = 4, below the shared baby steps): three groups.
    const binCounts = [128, 64, 64, 3];
    const bins = binCounts.map((k) => Uint16Array.from({ length: rows }, () => Math.floor(rng.next() * k)));
    const groups = columnGroups(binCounts);
    expect(groups).toEqual([[0], [1, 2], [3]]);
    const binGroups = groups.map((group) => ({ bins: group.map((f) => bins[f]!), binCounts: group.map((f) => binCounts[f]!) }));
    // Two nodes: about 60% of the rows (two chunks of the guest's values, the last one partial) and the rest (one).
    const all = Array.from({ length: rows }, (_, r) => r);
    const picked = all.map(() => rng.next() < 0.6);
    const nodes = [Uint32Array.from(all.filter((r) => picked[r])), Uint32Array.from(all.filter((r) => !picked[r]))];
    // A third node of one chunk: the first 1,000 rows of the second.
    nodes.push(nodes[1]!.slice(0, 1_000));
    const keys = generateKeys(engine, 'arbiter');
    const encrypted = nodes.map((node) => [
      encryptRowValues(
        engine,
        Float64Array.from(node, (r) => g[r]!),
        keys.publicKey,
        Float64Array.from(node, (r) => h[r]!),
      ),
    ]);
    expect(encrypted.map((e) => e[0]!.length)).toEqual([2, 2, 1]);
    // On this thread, without and with kept diagonals, and shared by two worker threads (each its own SEAL context).
    for (const options of [{ keep: false }, { keep: true }, { keep: true, threads: 2 }]) {
      const kernel = new BinSums(engine, binGroups, options);
      try {
        expect(kernel.baby).toBeGreaterThan(4);
        // The first node twice when kept: the second time multiplies the diagonals the first one kept; the other
        // node's rows must not use them.
        const check = (n: number, sums: Uint8Array[][]) => {
          expect(sums).toHaveLength(1);
          (
            [
              [g, 'real'],
              [h, 'imaginary'],
            ] as const
          ).forEach(([value, part]) => {
            groups.forEach((group, G) => {
              const got = openBinSums(engine, sums[0]![G]!, kernel.counts[G]!, keys.secretKey, part);
              const want = group.flatMap((f) => Array.from({ length: binCounts[f]! }, (_, b) => nodes[n]!.reduce((s, r) => s + (bins[f]![r] === b ? value[r]! : 0), 0)));
              expect(got).toHaveLength(want.length);
              // The mask's and the diagonals' rounding leave about 3e-5 (as the one-group kernel); a wrong row or bin is off by far more.
              want.forEach((w, j) => expect(Math.abs(got[j]! - w)).toBeLessThan(1e-4));
              // Slot by slot, both parts are masked: no slot is a partial sum of a few values.
              const slots = VerticalGradient.of(engine).decryptGradientSlots(sums[0]![G]!, engine.slotCount, keys.secretKey, part);
              expect(slots.filter((v) => Math.abs(v) < 2 ** 10).length).toBeLessThan(5);
            });
          });
        };
        for (const n of options.keep ? [0, 0, 1] : [0, 1]) check(n, await kernel.sums(encrypted[n]!, keys, nodes[n]));
        // A tree level's nodes in one call: on worker threads, their chunks go to the threads in turn, so after the
        // first node (one chunk) the others' chunks change threads; the kept diagonals must not be mixed up.
        const order = [2, 0, 1];
        const level = await kernel.nodeSums(
          order.map((n) => ({ values: encrypted[n]!, rows: nodes[n] })),
          keys,
        );
        level.forEach((sums, i) => check(order[i]!, sums));
        // Nodes summed from a base's chunks (in boosting, the tree's root), the base's other rows weighted 0: a third
        // of the first node's rows, and the first node itself. On worker threads a base's chunk goes to the thread
        // that kept its diagonals.
        const third = nodes[0]!.filter((_, i) => i % 3 === 0);
        nodes.push(third);
        try {
          const fromBase = await kernel.nodeSums([nodeFromBase(encrypted[0]!, third, nodes[0]!), nodeFromBase(encrypted[0]!, nodes[0]!, nodes[0]!)], keys);
          check(3, fromBase[0]!);
          check(0, fromBase[1]!);
        } finally {
          nodes.pop();
        }
        expect(() => nodeFromBase(encrypted[0]!, nodes[2]!, nodes[0]!)).toThrow(/not one of the base rows/);
        // Small nodes with each row repeated R times (rowRepeats) in one ciphertext, and a node of two chunks whose
        // last one repeats its rows (its own pass, added to the first chunk's), in one call with a node of unrepeated
        // rows: R = 32 exceeds the last group's period (4), R = 4 does not.
        const small = nodes[1]!.slice(0, 100);
        const repeated = [
          { rows: nodes[2]!, repeats: 4 },
          { rows: small, repeats: 32 },
          { rows: nodes[1]!, repeats: rowRepeats(nodes[1]!.length, kernel.periods, engine.slotCount) },
        ];
        expect(nodes[1]!.length).toBeGreaterThan(engine.slotCount);
        expect(repeated[2]!.repeats).toBeGreaterThan(1);
        expect(kernel.periods).toEqual([128, 128, 4]);
        for (const { rows, repeats } of repeated) expect(rowRepeats(rows.length, kernel.periods, engine.slotCount)).toBe(repeats);
        nodes.push(small);
        try {
          const sums = await kernel.nodeSums(
            [
              ...repeated.map(({ rows, repeats }) => ({
                values: [
                  encryptRowValues(
                    engine,
                    repeatRows(
                      Float64Array.from(rows, (r) => g[r]!),
                      repeats,
                      engine.slotCount,
                    ),
                    keys.publicKey,
                    repeatRows(
                      Float64Array.from(rows, (r) => h[r]!),
                      repeats,
                      engine.slotCount,
                    ),
                  ),
                ],
                rows,
                repeats,
              })),
              { values: encrypted[1]!, rows: nodes[1] },
            ],
            keys,
          );
          check(2, sums[0]!);
          check(3, sums[1]!);
          check(1, sums[2]!);
          check(1, sums[3]!);
        } finally {
          nodes.pop();
        }
      } finally {
        await kernel.dispose();
      }
    }
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
