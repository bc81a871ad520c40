/**
 * The ledger writer's promises to the coordinator and to whoever restarts it: an append is on disk (fsynced) when
 * it resolves; concurrent appends get consecutive sequence numbers in call order and a valid chain; a crash in the
 * middle of a write leaves a torn tail that is reported, kept aside and recovered from; reopening continues the
 * chain; the signing key is private to its owner; and what is written is exactly the documented format.
 */
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, readdirSync, statSync, truncateSync, writeFileSync, existsSync } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import { Ledger, LedgerError, decodeTreeHead, encodeTreeHead, verifyTreeHead, type LedgerEvent } from '../src/ledger/ledger.js';
import { loadOrCreateSigningKey, sign, verifySignature } from '../src/ledger/keys.js';
import { verifyLedger } from '../src/ledger/verify.js';
import { readLedger } from '../src/ledger/read.js';
import { canonicalJson } from '../src/ledger/canonical.js';
import { consistencyProof, inclusionProof, leafHash, rootFromLeafHashes, verifyConsistency, verifyInclusion } from '../src/ledger/merkle.js';
import { crc32, crc32Reference } from '../src/ledger/records.js';
import { decodeMessage } from '../src/wire/proto.js';
import { fileRecords } from './helpers/ledger-files.js';

// ---- fixtures (kept in this file: the ledger tests own only test/ledger*.test.ts) ----

const made: string[] = [];
async function tempDir(name: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `fedcredit-ledger-${name}-`));
  made.push(dir);
  return dir;
}
afterAll(async () => {
  if (!process.env.FEDCREDIT_KEEP_TEST_DIRS) await Promise.all(made.map((d) => rm(d, { recursive: true, force: true })));
});
const open_ = (dir: string) => Ledger.open(join(dir, 'ledger'), 'coordinator', join(dir, 'keys', 'ledger.pem'));
const event = (i: number, blob = false): LedgerEvent => ({
  kind: 'update_received',
  jobId: 'job-1',
  body: { round: i, participant: `bank-${i % 3}` },
  blobs: blob ? [{ name: 'update', bytes: new Uint8Array(createHash('sha256').update(`u${i}`).digest()) }] : [],
});
const sha = (b: Uint8Array) => new Uint8Array(createHash('sha256').update(b).digest());
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('the format on disk', () => {
  it('is the documented one: framing, SignedEntry/LedgerEntry, chain, canonical body, content-addressed blobs, signers.json', async () => {
    const dir = await tempDir('format');
    const ledger = await open_(dir);
    await ledger.append({ kind: 'job_submitted', jobId: 'job-9', body: { z: 1, a: { y: [1, 'two', null, true], b: 0.1 } } });
    const blob = randomBytes(100);
    await ledger.append({ kind: 'update_received', jobId: 'job-9', body: { round: 1 }, blobs: [{ name: 'update', bytes: blob }] });
    await ledger.close();

    const ldir = join(dir, 'ledger');
    const signers = JSON.parse(readFileSync(join(ldir, 'signers.json'), 'utf8'));
    const pub = Buffer.from(signers.coordinator, 'hex');
    expect(pub.length).toBe(32);
    expect(hex(pub)).toBe(hex(loadOrCreateSigningKey(join(dir, 'keys', 'ledger.pem')).publicKeyRaw));

    const { buf, records, trailing } = fileRecords(join(ldir, 'entries.log'));
    expect(records).toHaveLength(2);
    expect(trailing).toBe(0);
    let prev: Uint8Array = new Uint8Array(32);
    records.forEach((r, seq) => {
      expect(buf.readUInt32BE(r.offset + r.length - 4)).toBe(zlib.crc32(r.payload));
      const signed = decodeMessage<{ entry: Uint8Array; signature: Uint8Array }>('SignedEntry', r.payload);
      expect(verifySignature(pub, signed.entry, signed.signature)).toBe(true);
      const e = decodeMessage<Record<string, any>>('LedgerEntry', signed.entry);
      expect(e.seq).toBe(seq);
      expect(e.author).toBe('coordinator');
      expect(hex(e.prevHash)).toBe(hex(prev));
      expect(e.jobId).toBe('job-9');
      prev = sha(r.payload);
      if (seq === 0) {
        expect(e.kind).toBe('job_submitted');
        expect(e.bodyJson).toBe('{"a":{"b":0.1,"y":[1,"two",null,true]},"z":1}');
        expect(e.blobs).toEqual([]);
      } else {
        expect(e.blobs).toHaveLength(1);
        expect(e.blobs[0].name).toBe('update');
        expect(e.blobs[0].size).toBe(100);
        expect(hex(e.blobs[0].sha256)).toBe(hex(sha(blob)));
        expect(readFileSync(join(ldir, 'blobs', hex(sha(blob))))).toEqual(blob);
      }
    });
    expect((await verifyLedger(ldir)).ok).toBe(true);
  });

  it('canonical JSON sorts keys recursively, prints numbers as JavaScript does, and refuses what JSON cannot hold', () => {
    expect(canonicalJson({ b: { d: 1, c: [{ y: 1, x: 2 }] }, a: -0, e: 1e21, f: 1.5e-7, u: undefined })).toBe('{"a":0,"b":{"c":[{"x":2,"y":1}],"d":1},"e":1e+21,"f":1.5e-7}');
    expect(canonicalJson({ s: 'é"\n' })).toBe(JSON.stringify({ s: 'é"\n' }));
    expect(() => canonicalJson({ digest: new Uint8Array(4) })).toThrow(/body\.digest: binary data is not allowed.*hex-encode/);
    expect(() => canonicalJson({ x: [1, NaN] })).toThrow(/body\.x\[1\]: NaN/);
    expect(() => canonicalJson({ when: new Date() })).toThrow(/Date object/);
    expect(() => canonicalJson({ n: 1n })).toThrow(/bigint/);
  });

  it('a tree head round-trips through the TreeHead message and its signature covers size, root and time', async () => {
    const dir = await tempDir('sth');
    const ledger = await open_(dir);
    for (let i = 0; i < 5; i++) await ledger.append(event(i));
    const head = ledger.treeHead();
    await ledger.close();
    const signers = readLedger(join(dir, 'ledger')).signers;
    const decoded = decodeTreeHead(encodeTreeHead(head));
    expect(decoded).toEqual({ ...head, root: new Uint8Array(head.root), signature: new Uint8Array(head.signature) });
    expect(verifyTreeHead(decoded, signers)).toBe(true);
    expect(verifyTreeHead({ ...decoded, size: 4 }, signers)).toBe(false);
    expect(verifyTreeHead({ ...decoded, unixMs: decoded.unixMs + 1 }, signers)).toBe(false);
    const root = new Uint8Array(decoded.root);
    root[0]! ^= 1;
    expect(verifyTreeHead({ ...decoded, root }, signers)).toBe(false);
    expect(verifyTreeHead({ ...decoded, signer: 'someone' }, signers)).toBe(false);
  });

  it('falls back to an equivalent CRC-32 where zlib.crc32 is absent', () => {
    for (const n of [0, 1, 7, 1000]) {
      const data = randomBytes(n);
      expect(crc32Reference(data)).toBe(zlib.crc32(data));
      expect(crc32(data)).toBe(zlib.crc32(data));
    }
    expect(crc32Reference(Buffer.from('123456789'))).toBe(0xcbf43926); // the CRC-32 check value
  });
});

describe('durability', () => {
  afterEach(() => vi.restoreAllMocks());

  it('when an append resolves, the log on disk holds exactly its record and all before it', async () => {
    const dir = await tempDir('size');
    const ledger = await open_(dir);
    const log = join(dir, 'ledger', 'entries.log');
    let expected = 0;
    for (let i = 0; i < 30; i++) {
      const { seq } = await ledger.append(event(i, i % 2 === 0));
      const { record, records, trailing } = fileRecords(log);
      expected += record(seq).length;
      expect(records).toHaveLength(seq + 1);
      expect(trailing).toBe(0);
      expect(statSync(log).size).toBe(expected);
    }
    await ledger.close();
  });

  it('an append resolves only after every byte it wrote (blobs and record) was fsynced', async () => {
    const dir = await tempDir('fsync');
    const ledger = await open_(dir);
    const probe = await open(join(dir, 'probe'), 'w');
    const proto = Object.getPrototypeOf(probe) as { write: (...a: unknown[]) => Promise<unknown>; sync: () => Promise<void>; datasync: () => Promise<void> };
    await probe.close();
    const unsynced = new Set<number>(); // fds written to since their last fsync
    const write = proto.write;
    const syncFn = proto.sync;
    vi.spyOn(proto, 'write').mockImplementation(async function (this: { fd: number }, ...args: unknown[]) {
      const out = await write.apply(this, args);
      unsynced.add(this.fd);
      return out;
    });
    vi.spyOn(proto, 'sync').mockImplementation(async function (this: { fd: number }) {
      await syncFn.apply(this);
      unsynced.delete(this.fd);
    });
    const seen: number[] = [];
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        ledger.append(event(i, true)).then(() => {
          expect([...unsynced], `append ${i} resolved with unsynced writes`).toEqual([]);
          seen.push(i);
        }),
      ),
    );
    expect(seen).toHaveLength(20);
    vi.restoreAllMocks();
    await ledger.close();
  });

  it('50 concurrent appends get seqs 0..49 in call order, a valid chain, and receipts that prove their entry', async () => {
    const dir = await tempDir('concurrent');
    const ledger = await open_(dir);
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => ledger.append(event(i, i % 5 === 0))));
    expect(results.map((r) => r.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    await ledger.close();
    const ldir = join(dir, 'ledger');
    const read = readLedger(ldir);
    expect(read.entries.map((e) => e.body.round)).toEqual(Array.from({ length: 50 }, (_, i) => i)); // call order kept
    expect((await verifyLedger(ldir)).ok).toBe(true);
    // Each receipt is the signed head over entries 0..seq: the entry is provably in it, and later heads extend it.
    const leaves = read.entries.map((e) => leafHash(e.signed));
    for (const { seq, treeHead } of results) {
      expect(treeHead.size).toBe(seq + 1);
      expect(verifyTreeHead(treeHead, read.signers)).toBe(true);
      expect(hex(treeHead.root)).toBe(hex(rootFromLeafHashes(leaves.slice(0, seq + 1))));
      expect(verifyInclusion(leaves[seq]!, seq, treeHead.size, inclusionProof(leaves, seq, treeHead.size), treeHead.root)).toBe(true);
      const last = results[49]!.treeHead;
      expect(verifyConsistency(treeHead.size, last.size, treeHead.root, last.root, consistencyProof(leaves, treeHead.size, last.size))).toBe(true);
    }
  });

  it('a body the ledger cannot record is refused before it takes a seq', async () => {
    const dir = await tempDir('refuse');
    const ledger = await open_(dir);
    await expect(ledger.append({ kind: 'x', jobId: 'j', body: { digest: Buffer.from('ab') } })).rejects.toMatchObject({ problem: 'invalid_event' });
    await expect(ledger.append({ kind: '', jobId: 'j', body: {} })).rejects.toBeInstanceOf(LedgerError);
    expect((await ledger.append(event(0))).seq).toBe(0);
    await ledger.close();
    await expect(ledger.append(event(1))).rejects.toMatchObject({ problem: 'closed' });
  });
});

describe('a torn final write', () => {
  it('is reported by the verifier, kept aside by open(), and the next append takes its seq', async () => {
    const dir = await tempDir('torn');
    const ledger = await open_(dir);
    for (let i = 0; i < 20; i++) await ledger.append(event(i, i === 19));
    await ledger.close();
    const ldir = join(dir, 'ledger');
    const log = join(ldir, 'entries.log');
    const { buf, record } = fileRecords(log);
    const last = record(19);
    const cut = last.offset + Math.floor(last.length / 2);
    truncateSync(log, cut);

    const report = await verifyLedger(ldir);
    expect(report.ok).toBe(false);
    expect(report.failure).toMatchObject({ seq: 19, problem: 'torn' });
    expect(report.entries).toBe(19); // entries 0..18 intact and verified
    expect(report.failure?.detail).toContain('Entries 0..18 are whole and verified');

    const reopened = await open_(dir);
    expect(reopened.tornTail).toMatchObject({ seq: 19, bytes: cut - last.offset });
    expect(reopened.size).toBe(19);
    const tornFiles = readdirSync(ldir).filter((f) => /^torn-\d+\.bin$/.test(f));
    expect(tornFiles).toHaveLength(1);
    expect(readFileSync(join(ldir, tornFiles[0]!))).toEqual(buf.subarray(last.offset, cut)); // the torn bytes, preserved
    expect(statSync(log).size).toBe(last.offset); // the log cut back to the last whole record
    expect((await reopened.append(event(100))).seq).toBe(19);
    await reopened.close();

    const after = await verifyLedger(ldir);
    expect(after.ok).toBe(true);
    expect(after.entries).toBe(20);
    expect(after.warnings.join('\n')).toMatch(/torn-\d+\.bin: \d+ bytes of an incomplete entry/);
  });

  it('an incomplete entry that a participant already holds a receipt for is not a crash: receipt_mismatch', async () => {
    const dir = await tempDir('torn-receipt');
    const ledger = await open_(dir);
    const heads = [];
    for (let i = 0; i < 10; i++) heads.push((await ledger.append(event(i))).treeHead);
    await ledger.close();
    const ldir = join(dir, 'ledger');
    const log = join(ldir, 'entries.log');
    const last = fileRecords(log).record(9);
    truncateSync(log, last.offset + 10);
    const early = join(dir, 'early');
    const all = join(dir, 'all');
    for (const d of [early, all]) mkdirSync(d);
    writeFileSync(
      join(early, 'p.receipts'),
      heads
        .slice(0, 9)
        .map((h) => hex(encodeTreeHead(h)))
        .join('\n'),
    );
    writeFileSync(join(all, 'p.receipts'), heads.map((h) => hex(encodeTreeHead(h))).join('\n'));
    // Receipts up to entry 8 only: entry 9 was never acknowledged, so a crash mid-write explains it.
    expect((await verifyLedger(ldir, { receiptsDir: early })).failure).toMatchObject({ seq: 9, problem: 'torn' });
    // A receipt over entries 0..9 was issued after entry 9 was durably written: its loss is not a crash.
    const report = await verifyLedger(ldir, { receiptsDir: all });
    expect(report.failure).toMatchObject({ seq: 9, problem: 'receipt_mismatch' });
    expect(report.failure?.detail).toContain('entry 9 is incomplete, yet receipt p.receipts:10');
  });

  it('a record cut inside its length field (< 8 bytes) is torn too', async () => {
    const dir = await tempDir('torn-short');
    const ledger = await open_(dir);
    for (let i = 0; i < 5; i++) await ledger.append(event(i));
    await ledger.close();
    const log = join(dir, 'ledger', 'entries.log');
    truncateSync(log, fileRecords(log).record(4).offset + 3);
    expect((await verifyLedger(join(dir, 'ledger'))).failure).toMatchObject({ seq: 4, problem: 'torn' });
    const reopened = await open_(dir);
    expect(reopened.tornTail).toMatchObject({ seq: 4, bytes: 3 });
    await reopened.close();
  });
});

describe('reopening', () => {
  it('continues the chain: close, reopen, append, verify', async () => {
    const dir = await tempDir('reopen');
    let ledger = await open_(dir);
    for (let i = 0; i < 10; i++) await ledger.append(event(i, i % 3 === 0));
    const before = ledger.treeHead();
    await ledger.close();

    ledger = await open_(dir);
    expect(ledger.size).toBe(10);
    expect(ledger.tornTail).toBeUndefined();
    expect(hex(ledger.treeHead().root)).toBe(hex(before.root)); // the rebuilt tree is the same tree
    const results = [];
    for (let i = 10; i < 15; i++) results.push(await ledger.append(event(i, i % 3 === 0)));
    expect(results.map((r) => r.seq)).toEqual([10, 11, 12, 13, 14]);
    await ledger.close();

    const ldir = join(dir, 'ledger');
    const report = await verifyLedger(ldir);
    expect(report.ok).toBe(true);
    expect(report.entries).toBe(15);
    const leaves = readLedger(ldir).entries.map((e) => leafHash(e.signed));
    expect(verifyConsistency(10, 15, before.root, results[4]!.treeHead.root, consistencyProof(leaves, 10, 15))).toBe(true);
  });

  it('refuses to extend a damaged ledger, naming the entry', async () => {
    const dir = await tempDir('damaged');
    const ledger = await open_(dir);
    for (let i = 0; i < 8; i++) await ledger.append(event(i));
    await ledger.close();
    const log = join(dir, 'ledger', 'entries.log');
    const { buf, record } = fileRecords(log);
    buf[record(5).offset + 20]! ^= 0x40;
    writeFileSync(log, buf);
    await expect(open_(dir)).rejects.toMatchObject({ problem: 'changed', seq: 5, message: expect.stringContaining('fedcredit audit verify') });
  });

  it('one writer at a time: a second open of the same folder is refused until the first closes', async () => {
    const dir = await tempDir('lock');
    const first = await open_(dir);
    await expect(open_(dir)).rejects.toMatchObject({ problem: 'locked' });
    await first.close();
    const second = await open_(dir);
    await second.close();
  });

  it('a stale lock from a crashed process is taken over', async () => {
    const dir = await tempDir('stale');
    const ledger = await open_(dir);
    await ledger.close();
    writeFileSync(join(dir, 'ledger', 'writer.lock'), JSON.stringify({ pid: 2 ** 22 + 12345, host: (await import('node:os')).hostname(), since: 'earlier' }));
    const again = await open_(dir);
    await again.append(event(0));
    await again.close();
    expect(existsSync(join(dir, 'ledger', 'writer.lock'))).toBe(false);
  });

  it('refuses a different key for an author signers.json already lists', async () => {
    const dir = await tempDir('conflict');
    const ledger = await open_(dir);
    await ledger.append(event(0));
    await ledger.close();
    await expect(Ledger.open(join(dir, 'ledger'), 'coordinator', join(dir, 'other-key.pem'))).rejects.toMatchObject({ problem: 'signer_conflict' });
    // Another author with its own key is merged in.
    const other = await Ledger.open(join(dir, 'ledger'), 'auditor-node', join(dir, 'other-key.pem'));
    await other.append(event(1));
    await other.close();
    expect(Object.keys(JSON.parse(readFileSync(join(dir, 'ledger', 'signers.json'), 'utf8')))).toEqual(['auditor-node', 'coordinator']);
    expect((await verifyLedger(join(dir, 'ledger'))).ok).toBe(true);
  });
});

describe('the signing key', () => {
  it('is created with mode 0600 and reloaded as the same key', async () => {
    const dir = await tempDir('key');
    const file = join(dir, 'keys', 'ledger.pem');
    const key = loadOrCreateSigningKey(file);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    expect(hex(loadOrCreateSigningKey(file).publicKeyRaw)).toBe(hex(key.publicKeyRaw));
    const sig = sign(key.privateKey, Buffer.from('hello'));
    expect(verifySignature(key.publicKeyRaw, Buffer.from('hello'), sig)).toBe(true);
    expect(verifySignature(key.publicKeyRaw, Buffer.from('hellO'), sig)).toBe(false);
    expect(readdirSync(join(dir, 'keys'))).toEqual(['ledger.pem']); // no temporary file left behind
  });

  it('a key file readable by group or others (0644) is refused with a clear message', async () => {
    const dir = await tempDir('key-perm');
    const file = join(dir, 'ledger.pem');
    loadOrCreateSigningKey(file);
    chmodSync(file, 0o644);
    let err: unknown;
    try {
      loadOrCreateSigningKey(file);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(LedgerError);
    expect((err as LedgerError).problem).toBe('key_insecure');
    expect((err as Error).message).toContain('mode is 0644');
    expect((err as Error).message).toContain(`chmod 600 ${file}`);
    await expect(Ledger.open(join(dir, 'ledger'), 'coordinator', file)).rejects.toMatchObject({ problem: 'key_insecure' });
    chmodSync(file, 0o600);
    await (await Ledger.open(join(dir, 'ledger'), 'coordinator', file)).close();
  });
});

describe('receipts against a reopened ledger (no rollback)', () => {
  it('a receipt the ledger extends passes with a consistency proof the participant can check; a cut or rewritten ledger is refused, naming the sizes', async () => {
    const dir = await tempDir('rollback');
    let ledger = await open_(dir);
    for (let i = 0; i < 6; i++) await ledger.append(event(i));
    const { treeHead: receipt } = await ledger.append(event(6, true));
    for (let i = 7; i < 12; i++) await ledger.append(event(i));
    const now = ledger.treeHead();
    const check = ledger.checkReceipt(receipt);
    expect(check.ok).toBe(true);
    if (check.ok) expect(verifyConsistency(receipt.size, now.size, receipt.root, now.root, check.proof)).toBe(true);
    await ledger.close();

    // Cut the last 5 entries off (whole records): the ledger is valid on its own but shorter than a receipt of size 12.
    const log = join(dir, 'ledger', 'entries.log');
    const { record } = fileRecords(log);
    truncateSync(log, record(7).offset);
    ledger = await open_(dir);
    expect(ledger.size).toBe(7);
    const shorter = ledger.checkReceipt(now);
    expect(shorter.ok).toBe(false);
    if (!shorter.ok) {
      expect(shorter.problem).toBe('shorter');
      expect(shorter.detail).toContain('covers 12 entries');
      expect(shorter.detail).toContain('holds 7');
    }
    // The receipt of size 7 still matches; a rewritten entry 8 after the cut does not match a receipt of size 9.
    expect(ledger.checkReceipt(receipt).ok).toBe(true);
    await ledger.append({ kind: 'job_resumed', jobId: 'job-1', body: { forged: true } });
    await ledger.append(event(8));
    const rewritten = ledger.checkReceipt({
      ...now,
      size: 9,
      root: rootFromLeafHashes(
        fileRecords(log)
          .records.slice(0, 9)
          .map((r) => leafHash(r.payload)),
      ).map((b) => b ^ 1),
    });
    expect(rewritten.ok).toBe(false);
    if (!rewritten.ok) expect(rewritten.problem).toBe('foreign'); // its signature no longer covers the changed root
    await ledger.close();

    // A receipt signed by another ledger's key is foreign, not proof of a rollback.
    const other = await open_(await tempDir('rollback-other'));
    for (let i = 0; i < 3; i++) await other.append(event(i));
    const reopened = await open_(dir);
    const foreign = reopened.checkReceipt(other.treeHead());
    expect(foreign.ok === false && foreign.problem).toBe('foreign');
    await other.close();
    await reopened.close();
  });

  it('a validly signed receipt whose root differs from the ledger at its size is inconsistent', async () => {
    const dir = await tempDir('rollback-rewrite');
    const key = join(dir, 'keys', 'ledger.pem');
    const first = await Ledger.open(join(dir, 'a'), 'coordinator', key);
    for (let i = 0; i < 5; i++) await first.append(event(i));
    const receipt = first.treeHead();
    await first.close();
    // The same key writes another history of the same length: consistent in size, not in content.
    const second = await Ledger.open(join(dir, 'b'), 'coordinator', key);
    for (let i = 0; i < 5; i++) await second.append(event(i + 100));
    const verdict = second.checkReceipt(receipt);
    expect(verdict.ok === false && verdict.problem).toBe('inconsistent');
    if (!verdict.ok) expect(verdict.detail).toContain('covers 5 entries');
    await second.close();
  });

  it('held appends wait unwritten until released, and are refused when the ledger must not be extended', async () => {
    const dir = await tempDir('hold');
    const ledger = await open_(dir);
    await ledger.append(event(0));
    ledger.holdAppends();
    let done = false;
    const held = ledger.append(event(1)).then((r) => {
      done = true;
      return r;
    });
    await new Promise((r) => setTimeout(r, 50));
    expect(done).toBe(false);
    expect(ledger.size).toBe(1);
    ledger.releaseAppends();
    expect((await held).seq).toBe(1);

    ledger.holdAppends();
    const refused = ledger.append(event(2));
    ledger.refuseAppends(new LedgerError('receipt_mismatch', 'rolled back'));
    await expect(refused).rejects.toThrow(/rolled back/);
    await expect(ledger.append(event(3))).rejects.toThrow(/rolled back/);
    expect(ledger.size).toBe(2);
    await ledger.close();
  });
});

describe('blobs at open', () => {
  it('refuses to open a ledger whose blob is missing or altered, naming the entry and the hash', async () => {
    const dir = await tempDir('blob-open');
    let ledger = await open_(dir);
    await ledger.append(event(0));
    await ledger.append(event(1, true));
    await ledger.close();
    const ref = readLedger(join(dir, 'ledger')).entries[1]!.entry.blobs[0]!;
    const file = join(dir, 'ledger', 'blobs', hex(ref.sha256));
    const bytes = readFileSync(file);

    writeFileSync(file, Buffer.concat([bytes.subarray(1), Buffer.from([bytes[0]! ^ 0xff])]));
    let err = await open_(dir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LedgerError);
    expect((err as LedgerError).problem).toBe('blob_mismatch');
    expect((err as LedgerError).seq).toBe(1);
    expect((err as Error).message).toContain(hex(ref.sha256));

    (await import('node:fs')).unlinkSync(file);
    err = await open_(dir).catch((e: unknown) => e);
    expect((err as LedgerError).problem).toBe('blob_missing');
    expect((err as Error).message).toMatch(new RegExp(`entry 1 .*${hex(ref.sha256)}`));

    writeFileSync(file, bytes);
    ledger = await open_(dir);
    expect(ledger.size).toBe(2);
    await ledger.close();
  });
});
