import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { USCC_CHARSET, uscc } from '../src/data/uscc.js';
import { BlindedIndex, closePsiWorkers, hashIds, POINT_BYTES, PsiKey } from '../src/psi/ecdh.js';
import { normaliseId, PreparedIdSet, prepareIds, type IdFormat } from '../src/psi/ids.js';
import { GuestPsi, HostPsi, NOT_HELD, receiveStream, sendStream, type PsiLink } from '../src/psi/stream.js';
import { Rng } from '../src/random.js';
import type { FedcreditError } from '../src/errors.js';
import { blindInPlace, x25519Backend } from '../src/psi/x25519.js';
import * as sme from '../src/synth/sme.js';

const dirs: string[] = [];
const tmp = (name: string) => {
  const dir = mkdtempSync(join(tmpdir(), 'fedcredit-psi-'));
  dirs.push(dir);
  return join(dir, name);
};
afterAll(async () => {
  await closePsiWorkers();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const EXAMPLE_USCC = '91350100M000100Y43';

/** `count` distinct USCCs of enterprises registered after 2015 ('MA' bodies) in a few Shanghai districts. */
function generateUsccs(count: number, rng: Rng): string[] {
  const divisions = ['310115', '310112', '310114'];
  const ids = new Set<string>();
  while (ids.size < count) {
    let orgBody = 'MA';
    for (let i = 0; i < 6; i++) orgBody += rng.pick([...USCC_CHARSET]);
    ids.add(uscc({ authority: '9', entityType: '1', division: rng.pick(divisions), orgBody }));
  }
  return [...ids];
}

function shuffled<T>(items: readonly T[], rng: Rng): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

function pointAt(packed: Buffer, i: number): Buffer {
  return packed.subarray(i * POINT_BYTES, (i + 1) * POINT_BYTES);
}

function pointSet(packed: Buffer): Set<string> {
  const set = new Set<string>();
  for (let i = 0; i < packed.length / POINT_BYTES; i++) set.add(pointAt(packed, i).toString('hex'));
  return set;
}

/** Uniformly random u-coordinates (top bit clear, as hashIds makes them). */
function randomPoints(n: number): Buffer {
  const points = randomBytes(n * POINT_BYTES);
  for (let i = 0; i < n; i++) points[i * POINT_BYTES + 31]! &= 0x7f;
  return points;
}

type Sent = { kind: string; bytes: Buffer }[];

/**
 * Two ends of an in-memory channel: what one sends under a kind, the other receives under it, as a Buffer that may
 * sit in Node's shared pool (as payloads do off the wire). `sent[i]` records everything end i sent.
 */
function linkPair(): { ends: [PsiLink, PsiLink]; sent: [Sent, Sent] } {
  type Slot = { value?: Buffer; waiter?: (b: Buffer) => void };
  const boxes = [new Map<string, Slot>(), new Map<string, Slot>()];
  const sent: [Sent, Sent] = [[], []];
  const end = (mine: number): PsiLink => ({
    async send(kind, bytes) {
      const copy = Buffer.from(bytes);
      sent[mine]!.push({ kind, bytes: copy });
      const box = boxes[1 - mine]!;
      const slot = box.get(kind);
      if (slot?.waiter) {
        box.delete(kind);
        slot.waiter(copy);
      } else box.set(kind, { value: copy });
    },
    checkpoint() {},
    receive(kind) {
      const box = boxes[mine]!;
      const slot = box.get(kind);
      if (slot?.value) {
        box.delete(kind);
        return Promise.resolve(slot.value);
      }
      return new Promise((resolve) => box.set(kind, { waiter: resolve }));
    },
  });
  return { ends: [end(0), end(1)], sent };
}

const prepare = (ids: readonly string[], format: IdFormat = 'uscc') => PreparedIdSet.prepare(() => ids.map((id, row) => [id, row] as const), format, tmp('ids'));

interface PsiRun {
  shared: string[];
  nonShared: string[];
  salt: Buffer;
  guest: PreparedIdSet;
  host: PreparedIdSet;
  /** Everything each side sent. */
  wire: Sent;
  /** The ids each party ends with, in the shared order. */
  guestShared: string[];
  hostShared: string[];
}

/** The streamed DH flow between a guest (key a) and a host (key b), in process. */
async function runPsi(): Promise<PsiRun> {
  const rng = new Rng(20240611);
  const all = generateUsccs(13_000, rng);
  const shared = all.slice(0, 5_000);
  const guestOnly = all.slice(5_000, 10_000);
  const hostOnly = all.slice(10_000);
  const salt = randomBytes(32);
  const guestIds = shuffled([...shared, ...guestOnly], rng);
  const hostIds = shuffled([...shared, ...hostOnly], rng);
  const guest = await prepare(guestIds);
  const host = await prepare(hostIds);
  const link = linkPair();
  const [guestPsi, hostPsi] = await Promise.all([GuestPsi.run(PsiKey.generate(), salt, guest, [link.ends[0]], tmp('guest')), HostPsi.run(PsiKey.generate(), salt, host, link.ends[1], tmp('host'))]);
  const guestShared: string[] = [];
  const positions: number[] = [];
  for (const m of guestPsi.matches()) {
    if (m.positions[0]! < 0) continue;
    guestShared.push(guestIds[m.row]!);
    positions.push(m.positions[0]!);
  }
  const hostRows: number[] = [];
  await Promise.all([
    hostPsi.receiveAlignment(link.ends[1], (_, rows) => hostRows.push(...rows)),
    GuestPsi.sendAlignment(link.ends[0], [positions.length], [new Uint8Array(Uint32Array.from(positions).buffer)]),
  ]);
  return { shared, nonShared: [...guestOnly, ...hostOnly], salt, guest, host, wire: [...link.sent[0], ...link.sent[1]], guestShared, hostShared: hostRows.map((r) => hostIds[r]!) };
}

describe('ECDH PSI between a guest and a host', () => {
  let run: PsiRun;
  beforeAll(async () => {
    run = await runPsi();
  });

  it('prepares every generated id', () => {
    const { guest, host } = run;
    expect(guest.count).toBe(10_000);
    expect(host.count).toBe(8_000);
    expect(guest.invalid.count + guest.duplicates.count + host.invalid.count + host.duplicates.count).toBe(0);
  });

  it('gives both parties exactly the shared ids, row by row', () => {
    const { guestShared, hostShared, shared } = run;
    expect(new Set(guestShared)).toEqual(new Set(shared));
    expect(guestShared).toHaveLength(5_000);
    expect(hostShared).toEqual(guestShared);
  });

  it('never sends a plain id hash over the wire', () => {
    const { wire, salt, nonShared, shared } = run;
    const points = (kind: string) => wire.filter((m) => m.kind.startsWith(`${kind}#`) && m.bytes[0] === 1).map((m) => m.bytes.subarray(1));
    const sent = ['psi.guest_blinded', 'psi.guest_double', 'psi.host_blinded'].flatMap((kind) => points(kind).flatMap((b) => [...pointSet(b)]));
    expect(sent).toHaveLength(10_000 + 10_000 + 8_000);
    const wireSet = new Set(sent);
    const leaked = [...pointSet(hashIds(salt, nonShared))].filter((h) => wireSet.has(h));
    expect(leaked).toEqual([]);
    const sharedHashes = [...pointSet(hashIds(salt, shared))].filter((h) => wireSet.has(h));
    expect(sharedHashes).toEqual([]);
  });

  it("sends the host's list in the order of its blinded values, which says nothing of the host's file", () => {
    const hostList = Buffer.concat(run.wire.filter((m) => m.kind.startsWith('psi.host_blinded#') && m.bytes[0] === 1).map((m) => m.bytes.subarray(1)));
    for (let i = 1; i < hostList.length / POINT_BYTES; i++) expect(Buffer.compare(pointAt(hostList, i - 1), pointAt(hostList, i))).toBeLessThan(0);
  });
});

describe('streamed PSI with several hosts', () => {
  it("gives the guest each host's position of every id it holds, and each host its rows in the shared order", async () => {
    const idList = (from: number, n: number) => Array.from({ length: n }, (_, i) => `E${String(from + i).padStart(8, '0')}`);
    const salt = randomBytes(32);
    // 40,000 guest ids: more than one chunk (32,768 points) of a stream.
    const guestIds = idList(0, 40_000);
    const hostIds = [idList(20_000, 30_000).reverse(), idList(30_000, 3_000)];
    const guest = await prepare(guestIds, 'any');
    const hosts = await Promise.all(hostIds.map((ids) => prepare(ids, 'any')));
    const links = hosts.map(() => linkPair());
    const [guestPsi, ...hostPsis] = await Promise.all([
      GuestPsi.run(
        PsiKey.generate(),
        salt,
        guest,
        links.map((l) => l.ends[0]),
        tmp('guest'),
      ),
      ...hosts.map((h, i) => HostPsi.run(PsiKey.generate(), salt, h, links[i]!.ends[1], tmp('host'))),
    ]);
    expect(guestPsi.hostIds).toEqual([30_000, 3_000]);
    expect(guestPsi.sharedWithGuest).toEqual([20_000, 3_000]);
    const positions: number[][] = [[], []];
    const guestRows: number[] = [];
    for (const m of guestPsi.matches()) {
      const n = Number(guestIds[m.row]!.slice(1));
      expect(Array.from(m.positions, (p) => p >= 0)).toEqual([n >= 20_000, n >= 30_000 && n < 33_000]);
      guestRows.push(m.row);
      m.positions.forEach((p, h) => positions[h]!.push(p));
    }
    expect(new Set(guestRows).size).toBe(40_000);
    const heldBy = hostIds.map((ids) => new Set(ids));
    await Promise.all(
      hostPsis.map(async (psi, h) => {
        const rows: number[] = [];
        const [counts] = await Promise.all([
          psi.receiveAlignment(links[h]!.ends[1], (_, r) => rows.push(...r)),
          GuestPsi.sendAlignment(links[h]!.ends[0], [40_000], [new Uint8Array(Uint32Array.from(positions[h]!, (p) => (p < 0 ? NOT_HELD : p)).buffer)]),
        ]);
        expect(counts).toEqual([40_000]);
        rows.forEach((r, i) => {
          const id = guestIds[guestRows[i]!]!;
          expect(r < 0 ? null : hostIds[h]![r]).toBe(heldBy[h]!.has(id) ? id : null);
        });
      }),
    );
  }, 120_000);

  it('a stream keeps at most its window of chunks unacknowledged, and delivers every chunk in order', async () => {
    const { ends } = linkPair();
    let produced = 0;
    let consumed = 0;
    let ahead = 0;
    const chunks = function* () {
      for (let i = 0; i < 20; i++) {
        produced++;
        ahead = Math.max(ahead, produced - consumed);
        yield new Uint8Array([i, i]);
      }
    };
    const got: number[] = [];
    await Promise.all([
      sendStream(ends[0], 'psi.guest_blinded', chunks()),
      (async () => {
        for await (const c of receiveStream(ends[1], 'psi.guest_blinded')) {
          await new Promise((r) => setTimeout(r, 2));
          got.push(c[0]!);
          consumed++;
        }
      })(),
    ]);
    expect(got).toEqual(Array.from({ length: 20 }, (_, i) => i));
    // The window (4) plus the chunk being consumed and the one being produced.
    expect(ahead).toBeLessThanOrEqual(6);
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

  it('runs on libsodium where sodium-native is installed, and gives the bytes OpenSSL gives, inline and on workers', async () => {
    // sodium-native ships prebuilt binaries for this platform: if it stopped loading, PSI would silently slow down.
    expect(x25519Backend()).toBe('libsodium');
    const secret = PsiKey.generate().exportSecret();
    const key = PsiKey.fromSecret(secret, { threads: 2 });
    for (const n of [500, 5_000]) {
      const points = randomPoints(n);
      const sodium = await key.blind(points, 'libsodium');
      const openssl = await key.blind(points, 'openssl');
      expect(sodium.equals(openssl)).toBe(true);
      expect(sodium.equals(points)).toBe(false);
    }
    // RFC 7748 test vector (section 5.2): the top bit of u is ignored and the scalar clamped by both.
    const scalar = Buffer.from('a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4', 'hex');
    const expected = 'c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552';
    for (const backend of ['libsodium', 'openssl'] as const) {
      const u = Buffer.from('e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c', 'hex');
      expect(blindInPlace(scalar, u, backend)).toBe(-1);
      expect(u.toString('hex')).toBe(expected);
    }
  });

  it('finds the same low-order point with either backend', () => {
    const scalar = randomBytes(32);
    for (const backend of ['libsodium', 'openssl'] as const) {
      const points = randomPoints(20);
      const untouched = Buffer.from(points.subarray(12 * POINT_BYTES));
      points.fill(0, 11 * POINT_BYTES, 12 * POINT_BYTES);
      points[11 * POINT_BYTES] = 1; // u = 1
      expect(blindInPlace(scalar, points, backend)).toBe(11);
      expect(points.subarray(12 * POINT_BYTES).equals(untouched)).toBe(true);
    }
  });

  it('takes FEDCREDIT_X25519, and names the accepted values when it is wrong', () => {
    const before = process.env.FEDCREDIT_X25519;
    try {
      process.env.FEDCREDIT_X25519 = 'openssl';
      expect(x25519Backend()).toBe('openssl');
      process.env.FEDCREDIT_X25519 = 'libsodium';
      expect(x25519Backend()).toBe('libsodium');
      process.env.FEDCREDIT_X25519 = 'fast';
      const err = (() => {
        try {
          x25519Backend();
        } catch (e) {
          return e as FedcreditError;
        }
      })();
      expect(err?.code).toBe('FC_CONFIG_INVALID');
      expect(err?.message).toMatch(/FEDCREDIT_X25519 is "fast"/);
      expect(err?.hint).toMatch(/set it to libsodium or openssl/);
    } finally {
      if (before === undefined) delete process.env.FEDCREDIT_X25519;
      else process.env.FEDCREDIT_X25519 = before;
    }
  });

  it('refuses a malformed secret', () => {
    expect(() => PsiKey.fromSecret('abc')).toThrow(RangeError);
    expect(() => PsiKey.fromSecret(randomBytes(32).toString('base64'))).toThrow(RangeError);
    expect(() => PsiKey.generate({ threads: 0 })).toThrow(RangeError);
  });
});

describe('hashIds', () => {
  it('is SHA-256(salt || 0 || SHA-256(utf8 id)) with the top bit cleared', () => {
    const salt = randomBytes(32);
    const hashes = hashIds(salt, ['A', '统一']);
    expect(hashes).toHaveLength(2 * POINT_BYTES);
    const digest = createHash('sha256').update(Buffer.from('统一', 'utf8')).digest();
    const expected = createHash('sha256')
      .update(Buffer.concat([salt, Buffer.from([0]), digest]))
      .digest();
    expected[31]! &= 0x7f;
    expect(pointAt(hashes, 1).equals(expected)).toBe(true);
    expect(pointAt(hashes, 0)[31]! & 0x80).toBe(0);
  });
});

describe('BlindedIndex', () => {
  it('finds each value among the records, the first of repeated ones, and -1 for the rest', () => {
    const host = randomPoints(1_000);
    pointAt(host, 10).copy(host, 900 * POINT_BYTES); // host 900 repeats host 10
    const index = new BlindedIndex(host);
    const guest = Buffer.concat([pointAt(host, 10), randomPoints(1), pointAt(host, 999), pointAt(host, 0)]);
    expect([0, 1, 2, 3].map((i) => index.find(guest, i * POINT_BYTES))).toEqual([10, -1, 999, 0]);
    expect(new BlindedIndex(Buffer.alloc(0)).find(guest, 0)).toBe(-1);
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

  it('on disk, keeps the same ids and counts as in memory, each with its first row', async () => {
    const raw = ['25115', ' 25115', '  ', 'abc', 'ABC', '00042', EXAMPLE_USCC, EXAMPLE_USCC.toLowerCase()];
    const inMemory = prepareIds(raw, 'any');
    const onDisk = await prepare(raw, 'any');
    expect(onDisk.count).toBe(inMemory.ids.length);
    expect(onDisk.invalid).toEqual(inMemory.invalid);
    expect(onDisk.duplicates).toEqual({ count: inMemory.duplicates.count, examples: [] });
    expect([...onDisk.records()].map((r) => r.row).sort((a, b) => a - b)).toEqual([...inMemory.rows]);
    expect(readdirSync(onDisk.dir)).toEqual(['ids.bin']);
  });

  it('is the same USCC code as the synthetic-data module re-exports', () => {
    expect(sme.uscc).toBe(uscc);
    expect(sme.isValidUscc(EXAMPLE_USCC)).toBe(true);
  });
});
