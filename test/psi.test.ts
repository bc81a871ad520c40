import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { USCC_CHARSET, uscc } from '../src/data/uscc.js';
import { closePsiWorkers, hashIds, matchBlinded, permutation, POINT_BYTES, PsiKey } from '../src/psi/ecdh.js';
import { normaliseId, prepareIds, type PreparedIds } from '../src/psi/ids.js';
import { Rng } from '../src/random.js';
import * as sme from '../src/synth/sme.js';

afterAll(closePsiWorkers);

const EXAMPLE_USCC = '91350100M000100Y43';

/** `count` distinct USCCs of enterprises registered after 2015 ('MA' bodies) in a few Shanghai districts. */
function generateUsccs(count: number, rng: Rng): string[] {
  const divisions = ['310115', '310112', '310114'];
  const ids = new Set<string>();
  while (ids.size < count) {
    let orgBody = 'MA';
    for (let i = 0; i < 6; i++) orgBody += USCC_CHARSET[rng.int(USCC_CHARSET.length)];
    ids.add(uscc({ authority: '9', entityType: '1', division: divisions[rng.int(divisions.length)], orgBody }));
  }
  return [...ids];
}

function shuffled<T>(items: readonly T[], rng: Rng): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

function pointAt(packed: Buffer, i: number): Buffer {
  return packed.subarray(i * POINT_BYTES, (i + 1) * POINT_BYTES);
}

/** Packed points in the order `order` gives: out[k] = packed[order[k]]. */
function gather(packed: Buffer, order: ArrayLike<number>): Buffer {
  const out = Buffer.alloc(order.length * POINT_BYTES);
  for (let k = 0; k < order.length; k++) pointAt(packed, order[k]).copy(out, k * POINT_BYTES);
  return out;
}

function pointSet(packed: Buffer): Set<string> {
  const set = new Set<string>();
  for (let i = 0; i < packed.length / POINT_BYTES; i++) set.add(pointAt(packed, i).toString('hex'));
  return set;
}

/** Uniformly random u-coordinates (top bit clear, as hashIds makes them). */
function randomPoints(n: number): Buffer {
  const points = randomBytes(n * POINT_BYTES);
  for (let i = 0; i < n; i++) points[i * POINT_BYTES + 31] &= 0x7f;
  return points;
}

interface PsiRun {
  shared: string[];
  nonShared: string[];
  salt: Buffer;
  guest: PreparedIds;
  host: PreparedIds;
  /** What crosses the wire: guest -> host, host -> guest (twice). */
  guestA: Buffer;
  guestAB: Buffer;
  hostBShuffled: Buffer;
  /** The ids each party ends with, in the guest's order. */
  guestShared: string[];
  hostShared: string[];
}

/** The whole DH flow between a guest (key a) and a host (key b), in process. */
async function runPsi(): Promise<PsiRun> {
  const rng = new Rng(20240611);
  const all = generateUsccs(13_000, rng);
  const shared = all.slice(0, 5_000);
  const guestOnly = all.slice(5_000, 10_000);
  const hostOnly = all.slice(10_000);
  const salt = randomBytes(32);
  const a = PsiKey.generate();
  const b = PsiKey.generate();

  // Guest: hash and blind its ids with a; sends guestA.
  const guest = prepareIds(shuffled([...shared, ...guestOnly], rng), 'uscc');
  const guestA = await a.blind(hashIds(salt, guest.ids));
  // Host: hash and blind its ids with b, shuffle; sends hostBShuffled, and guestAB (the guest's list blinded again).
  const host = prepareIds(shuffled([...shared, ...hostOnly], rng), 'uscc');
  const hostPermutation = permutation(host.ids.length, randomBytes(32));
  const hostBShuffled = gather(await b.blind(hashIds(salt, host.ids)), hostPermutation);
  const guestAB = await b.blind(guestA);
  // Guest: blind the host's list with a, match, and tell the host which shuffled positions matched.
  const matches = matchBlinded(guestAB, await a.blind(hostBShuffled));
  const guestShared: string[] = [];
  const matchedPositions: number[] = [];
  matches.forEach((position, i) => {
    if (position < 0) return;
    guestShared.push(guest.ids[i]);
    matchedPositions.push(position);
  });
  const hostShared = matchedPositions.map((position) => host.ids[hostPermutation[position]]);
  return { shared, nonShared: [...guestOnly, ...hostOnly], salt, guest, host, guestA, guestAB, hostBShuffled, guestShared, hostShared };
}

describe('ECDH PSI between a guest and a host', () => {
  let run: PsiRun;
  beforeAll(async () => {
    run = await runPsi();
  });

  it('prepares every generated id', () => {
    const { guest, host } = run;
    expect(guest.ids).toHaveLength(10_000);
    expect(host.ids).toHaveLength(8_000);
    expect(guest.invalid.count + guest.duplicates.count + host.invalid.count + host.duplicates.count).toBe(0);
  });

  it('gives both parties exactly the shared ids, row by row', () => {
    const { guestShared, hostShared, shared } = run;
    expect(new Set(guestShared)).toEqual(new Set(shared));
    expect(guestShared).toHaveLength(5_000);
    expect(hostShared).toEqual(guestShared);
  });

  it('never sends a plain id hash over the wire', () => {
    const { guestA, guestAB, hostBShuffled, salt, nonShared, shared } = run;
    const wire = [...pointSet(guestA), ...pointSet(guestAB), ...pointSet(hostBShuffled)];
    expect(wire).toHaveLength(10_000 + 10_000 + 8_000);
    const wireSet = new Set(wire);
    const leaked = [...pointSet(hashIds(salt, nonShared))].filter((h) => wireSet.has(h));
    expect(leaked).toEqual([]);
    const sharedHashes = [...pointSet(hashIds(salt, shared))].filter((h) => wireSet.has(h));
    expect(sharedHashes).toEqual([]);
  });
});

describe('PsiKey', () => {
  it('blinds commutatively', async () => {
    const points = randomPoints(500);
    const a = PsiKey.generate();
    const b = PsiKey.generate();
    const ab = await b.blind(await a.blind(points));
    const ba = await a.blind(await b.blind(points));
    expect(ab.equals(ba)).toBe(true);
    expect(pointSet(ab).size).toBe(500);
  });

  it('is deterministic per key, also after exporting and re-importing the secret', async () => {
    const points = randomPoints(200);
    const a = PsiKey.generate();
    const first = await a.blind(points);
    expect((await a.blind(points)).equals(first)).toBe(true);
    const secret = a.exportSecret();
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const restored = PsiKey.fromSecret(secret);
    expect(restored.exportSecret()).toBe(secret);
    expect((await restored.blind(points)).equals(first)).toBe(true);
  });

  it('blinds differently per key and per salt', async () => {
    const ids = Array.from({ length: 100 }, (_, i) => `id-${i}`);
    const salt = randomBytes(32);
    const points = hashIds(salt, ids);
    const a = await PsiKey.generate().blind(points);
    const b = await PsiKey.generate().blind(points);
    const c = await PsiKey.fromSecret(PsiKey.generate().exportSecret()).blind(hashIds(randomBytes(32), ids));
    const aSet = pointSet(a);
    expect([...pointSet(b)].filter((p) => aSet.has(p))).toEqual([]);
    expect([...pointSet(c)].filter((p) => aSet.has(p))).toEqual([]);
    expect([...pointSet(hashIds(randomBytes(32), ids))].filter((p) => pointSet(points).has(p))).toEqual([]);
  });

  it('gives byte-identical results on the worker pool and inline', async () => {
    const n = 5_000;
    const points = randomPoints(n);
    const before = Buffer.from(points);
    const secret = PsiKey.generate().exportSecret();
    // 3 threads: uneven chunks (1667, 1667, 1666 points).
    const onWorkers = await PsiKey.fromSecret(secret, { threads: 3 }).blind(points);
    const inlineKey = PsiKey.fromSecret(secret);
    const inline: Buffer[] = [];
    for (let i = 0; i < n; i += 1_000) inline.push(await inlineKey.blind(points.subarray(i * POINT_BYTES, (i + 1_000) * POINT_BYTES)));
    expect(onWorkers.equals(Buffer.concat(inline))).toBe(true);
    expect(points.equals(before)).toBe(true);
  });

  it('refuses a buffer that is not a whole number of points', async () => {
    const key = PsiKey.generate();
    await expect(key.blind(Buffer.alloc(33))).rejects.toThrow(/length of 33 bytes/);
    await expect(key.blind(Buffer.alloc(2048 * 32 + 5))).rejects.toThrow(RangeError);
    expect(() => matchBlinded(Buffer.alloc(64), Buffer.alloc(31))).toThrow(/length of 31 bytes/);
  });

  it('names the low-order point a peer sent, inline and on workers', async () => {
    const key = PsiKey.generate();
    const small = randomPoints(10);
    small.fill(0, 7 * POINT_BYTES, 8 * POINT_BYTES); // u = 0
    await expect(key.blind(small)).rejects.toThrow(/point 7 .*peer sent a low-order point/);
    const large = randomPoints(3_000);
    large.fill(0, 2_500 * POINT_BYTES, 2_501 * POINT_BYTES);
    large[2_500 * POINT_BYTES] = 1; // u = 1
    await expect(key.blind(large)).rejects.toThrow(/point 2500 .*peer sent a low-order point/);
  });

  it('refuses a malformed secret', () => {
    expect(() => PsiKey.fromSecret('abc')).toThrow(RangeError);
    expect(() => PsiKey.fromSecret(randomBytes(32).toString('base64'))).toThrow(RangeError);
    expect(() => PsiKey.generate({ threads: 0 })).toThrow(RangeError);
  });
});

describe('hashIds', () => {
  it('is SHA-256(salt || 0 || utf8 id) with the top bit cleared', () => {
    const salt = randomBytes(32);
    const hashes = hashIds(salt, ['A', '统一']);
    expect(hashes).toHaveLength(2 * POINT_BYTES);
    const expected = createHash('sha256').update(Buffer.concat([salt, Buffer.from([0]), Buffer.from('统一', 'utf8')])).digest();
    expected[31] &= 0x7f;
    expect(pointAt(hashes, 1).equals(expected)).toBe(true);
    expect(pointAt(hashes, 0)[31] & 0x80).toBe(0);
  });
});

describe('permutation', () => {
  it('is a permutation, fixed by its seed', () => {
    const seed = randomBytes(32);
    const p = permutation(10_000, seed);
    expect([...p].sort((x, y) => x - y)).toEqual(Array.from({ length: 10_000 }, (_, i) => i));
    expect(permutation(10_000, seed)).toEqual(p);
    expect(permutation(10_000, randomBytes(32))).not.toEqual(p);
    expect(permutation(0, seed)).toHaveLength(0);
    expect(() => permutation(5, randomBytes(16))).toThrow(RangeError);
  });

  it('draws the 6 permutations of 3 items about equally often', () => {
    const counts = new Map<string, number>();
    const trials = 6_000;
    for (let t = 0; t < trials; t++) {
      const seed = createHash('sha256').update(`seed ${t}`).digest();
      const key = permutation(3, seed).join('');
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    expect(counts.size).toBe(6);
    const expected = trials / 6;
    const chiSquare = [...counts.values()].reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
    expect(chiSquare).toBeLessThan(20.5); // 5 degrees of freedom, p = 0.001
  });
});

describe('matchBlinded', () => {
  it('finds each guest value in the host list, the first of repeated ones, and -1 for the rest', () => {
    const host = randomPoints(1_000);
    pointAt(host, 10).copy(host, 900 * POINT_BYTES); // host 900 repeats host 10
    const guest = Buffer.concat([pointAt(host, 10), randomPoints(1), pointAt(host, 999), pointAt(host, 0)]);
    expect([...matchBlinded(guest, host)]).toEqual([10, -1, 999, 0]);
    expect([...matchBlinded(guest, Buffer.alloc(0))]).toEqual([-1, -1, -1, -1]);
    expect(matchBlinded(Buffer.alloc(0), host)).toHaveLength(0);
  });
});

describe('prepareIds', () => {
  it('normalises case, whitespace and full-width characters', () => {
    expect(normaliseId('  9135 0100m000100y43\t')).toBe(EXAMPLE_USCC);
    expect(normaliseId('９１３５０１００Ｍ０００１００Ｙ４３')).toBe(EXAMPLE_USCC);
    const prepared = prepareIds([' 91350100m000100y43 '], 'uscc');
    expect(prepared.ids).toEqual([EXAMPLE_USCC]);
    expect(prepared.invalid.count).toBe(0);
  });

  it('drops invalid ids and later duplicates, keeping the rows of the rest', () => {
    const other = uscc('91310115MA1K3YJ02');
    const badCheck = EXAMPLE_USCC.slice(0, 17) + '4';
    const raw = [badCheck, EXAMPLE_USCC, '', other, EXAMPLE_USCC.toLowerCase(), '9131011', 'X'.repeat(18), EXAMPLE_USCC, '25115'];
    const prepared = prepareIds(raw, 'uscc');
    expect(prepared.ids).toEqual([EXAMPLE_USCC, other]);
    expect([...prepared.rows]).toEqual([1, 3]);
    expect(prepared.duplicates).toEqual({ count: 2, examples: [EXAMPLE_USCC] });
    expect(prepared.invalid.count).toBe(5);
    expect(prepared.invalid.examples).toEqual(['9135…', '(empty)', '913…']);
    expect(prepared.invalid.examples.join(' ')).not.toContain(badCheck.slice(0, 5));
  });

  it("accepts any non-empty id with format 'any'", () => {
    const prepared = prepareIds(['25115', ' 25115', '  ', 'abc', 'ABC', '00042'], 'any');
    expect(prepared.ids).toEqual(['25115', 'ABC', '00042']);
    expect([...prepared.rows]).toEqual([0, 3, 5]);
    expect(prepared.invalid).toEqual({ count: 1, examples: ['(empty)'] });
    expect(prepared.duplicates).toEqual({ count: 2, examples: ['25115', 'ABC'] });
    expect(prepareIds(['25115'], 'uscc').invalid.count).toBe(1);
  });

  it('is the same USCC code as the synthetic-data module re-exports', () => {
    expect(sme.uscc).toBe(uscc);
    expect(sme.isValidUscc(EXAMPLE_USCC)).toBe(true);
  });
});
