/**
 * What an auditor gets from `verifyLedger` on a copied ledger folder: an honest 200-entry ledger with blobs
 * verifies; every kind of tampering is detected and located by the sequence number of the first entry it touches;
 * a coordinator that rewrites its history with its own key passes every integrity check, and is caught only by the
 * signed tree heads participants kept as receipts; and a 10,000-entry ledger verifies.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { appendFileSync, cpSync, mkdirSync, readFileSync, rmSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ledger, encodeTreeHead, type LedgerEvent } from '../src/ledger/ledger.js';
import { formatVerifyReport, verifyLedger } from '../src/ledger/verify.js';
import { leafHash, rootFromLeafHashes } from '../src/ledger/merkle.js';
import { readLedger } from '../src/ledger/read.js';
import { crc32 } from '../src/ledger/records.js';
import { fileRecords } from './helpers/ledger-files.js';

// ---- fixtures (kept in this file: the ledger tests own only test/ledger*.test.ts) ----

const KINDS = [
  'job_submitted',
  'participant_consent',
  'data_bound',
  'keys_ready',
  'round_opened',
  'update_received',
  'aggregate_produced',
  'aggregate_opened',
  'round_closed',
  'model_published',
  'job_ended',
];
const made: string[] = [];
async function tempDir(name: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `fedcredit-ledger-${name}-`));
  made.push(dir);
  return dir;
}
const blobBytes = (i: number) =>
  new Uint8Array(
    createHash('sha256')
      .update(`payload ${i}`)
      .digest()
      .subarray(0, 8 + (i % 24)),
  );
/** Event i of a synthetic stream: 50 events per job, a distinct blob on every third event. */
function sampleEvent(i: number): LedgerEvent {
  return {
    kind: KINDS[i % KINDS.length]!,
    jobId: `job-${Math.floor(i / 50)}`,
    body: { i, participant: `bank-${i % 3}`, metrics: { loss: 1 / (i + 1), auc: null }, tags: ['a', i % 2 === 0] },
    blobs: i % 3 === 0 ? [{ name: 'update', bytes: blobBytes(i) }] : [],
  };
}

// ---- the honest ledger, and the receipts a participant kept ----

const N = 200;
let root: string;
let honest: string;
let keyFile: string;
let receipts: string;

beforeAll(async () => {
  root = await tempDir('verify');
  honest = join(root, 'honest');
  keyFile = join(root, 'keys', 'ledger.pem');
  receipts = join(root, 'participants');
  mkdirSync(join(receipts, 'bank-a', 'receipts'), { recursive: true });
  mkdirSync(join(receipts, 'bank-b'), { recursive: true });
  const ledger = await Ledger.open(honest, 'coordinator', keyFile);
  for (let i = 0; i < N; i++) {
    const { seq, treeHead } = await ledger.append(sampleEvent(i));
    expect(seq).toBe(i);
    // bank-a keeps every receipt as a hex line (what participant/own-record.ts writes); bank-b keeps raw .sth files.
    appendFileSync(join(receipts, 'bank-a', 'receipts', `${sampleEvent(i).jobId}.receipts`), Buffer.from(encodeTreeHead(treeHead)).toString('hex') + '\n');
    if (i % 40 === 39) writeFileSync(join(receipts, 'bank-b', `after-${i}.sth`), encodeTreeHead(treeHead));
  }
  await ledger.close();
});

afterAll(async () => {
  if (!process.env.FEDCREDIT_KEEP_TEST_DIRS) await Promise.all(made.map((d) => rm(d, { recursive: true, force: true })));
});

/** A fresh copy of the honest ledger folder to tamper with. */
let copies = 0;
function copy(): string {
  const dir = join(root, `copy-${copies++}`);
  cpSync(honest, dir, { recursive: true });
  return dir;
}

/** The seq of the first entry referencing a blob at or after `from`, and that blob's file. */
function blobOf(dir: string, from: number): { seq: number; file: string } {
  const e = readLedger(dir).entries.find((x) => x.seq >= from && x.entry.blobs.length > 0)!;
  return { seq: e.seq, file: join(dir, 'blobs', Buffer.from(e.entry.blobs[0]!.sha256).toString('hex')) };
}

describe('an honest ledger', () => {
  it('verifies: 200 entries, signatures, chain, blobs, and the Merkle root of its records', async () => {
    const report = await verifyLedger(honest);
    expect(report.failure).toBeUndefined();
    expect(report.ok).toBe(true);
    expect(report.entries).toBe(N);
    expect(report.jobs).toEqual(['job-0', 'job-1', 'job-2', 'job-3']);
    expect(report.blobsChecked).toBe(Math.ceil(N / 3));
    // The tree head is the RFC 6962 root over the SignedEntry bytes exactly as framed in entries.log.
    const { records, trailing } = fileRecords(join(honest, 'entries.log'));
    expect(trailing).toBe(0);
    expect(report.treeHead).toEqual({ size: N, root: Buffer.from(rootFromLeafHashes(records.map((r) => leafHash(r.payload)))).toString('hex') });
    const text = formatVerifyReport(report);
    expect(text).toMatch(/: OK/);
    expect(text).toContain('200 entries (0..199)');
    expect(text.split('\n').length).toBeLessThan(25);
  });

  it('verifies with every receipt the participants kept', async () => {
    const report = await verifyLedger(honest, { receiptsDir: receipts });
    expect(report.ok).toBe(true);
    expect(report.receiptsChecked).toBe(N + N / 40);
    expect(report.warnings).toEqual([]);
  });

  it('has a valid CRC-32 on every record (the documented framing)', () => {
    for (const r of fileRecords(join(honest, 'entries.log')).records) {
      const buf = readFileSync(join(honest, 'entries.log'));
      expect(buf.readUInt32BE(r.offset + r.length - 4)).toBe(crc32(r.payload));
    }
  });
});

describe('tampering is detected and located by seq', () => {
  it.each([0, 37, 150, 199])('one byte changed inside entry %i → that entry fails', async (seq) => {
    const dir = copy();
    const log = join(dir, 'entries.log');
    const { buf, record } = fileRecords(log);
    const r = record(seq);
    buf[r.offset + 4 + Math.floor((r.length - 8) / 2)]! ^= 0x01;
    writeFileSync(log, buf);
    const report = await verifyLedger(dir);
    expect(report.ok).toBe(false);
    expect(report.failure?.seq).toBe(seq);
    expect(['changed', 'bad_signature']).toContain(report.failure?.problem);
    expect(report.entries).toBe(seq); // everything before it verified
    expect(formatVerifyReport(report)).toContain(`FAILED at entry ${seq}`);
  });

  it('one byte changed and the CRC recomputed (someone who knows the framing) → bad_signature at that entry', async () => {
    const dir = copy();
    const log = join(dir, 'entries.log');
    const { buf, record } = fileRecords(log);
    const r = record(90);
    // Change a character of the body JSON, where the entry stays decodable.
    const at = buf.indexOf(Buffer.from('"participant":"bank-'), r.offset) + 20;
    buf[at] = buf[at] === 0x30 ? 0x31 : 0x30;
    buf.writeUInt32BE(crc32(buf.subarray(r.offset + 4, r.offset + r.length - 4)), r.offset + r.length - 4);
    writeFileSync(log, buf);
    const report = await verifyLedger(dir);
    expect(report.failure).toMatchObject({ seq: 90, problem: 'bad_signature' });
  });

  it('an entry removed → missing at its seq', async () => {
    const dir = copy();
    const log = join(dir, 'entries.log');
    const { buf, record } = fileRecords(log);
    const r = record(120);
    writeFileSync(log, Buffer.concat([buf.subarray(0, r.offset), buf.subarray(r.offset + r.length)]));
    const report = await verifyLedger(dir);
    expect(report.failure).toMatchObject({ seq: 120, problem: 'missing' });
    expect(report.failure?.detail).toContain('entry 120 is missing');
  });

  it('several entries removed → missing, naming the gap', async () => {
    const dir = copy();
    const log = join(dir, 'entries.log');
    const { buf, record } = fileRecords(log);
    writeFileSync(log, Buffer.concat([buf.subarray(0, record(10).offset), buf.subarray(record(13).offset)]));
    const report = await verifyLedger(dir);
    expect(report.failure).toMatchObject({ seq: 10, problem: 'missing' });
    expect(report.failure?.detail).toContain('entries 10..12 are missing');
  });

  it('two adjacent entries swapped → reordered at the first of them', async () => {
    const dir = copy();
    const log = join(dir, 'entries.log');
    const { buf, record } = fileRecords(log);
    const [a, b] = [record(80), record(81)];
    const slice = (r: typeof a) => buf.subarray(r.offset, r.offset + r.length);
    writeFileSync(log, Buffer.concat([buf.subarray(0, a.offset), slice(b), slice(a), buf.subarray(b.offset + b.length)]));
    const report = await verifyLedger(dir);
    expect(report.failure).toMatchObject({ seq: 80, problem: 'reordered' });
  });

  it('an entry duplicated → reordered where the copy sits', async () => {
    const dir = copy();
    const log = join(dir, 'entries.log');
    const { buf, record } = fileRecords(log);
    const r = record(60);
    writeFileSync(log, Buffer.concat([buf.subarray(0, r.offset + r.length), buf.subarray(r.offset, r.offset + r.length), buf.subarray(r.offset + r.length)]));
    expect((await verifyLedger(dir)).failure).toMatchObject({ seq: 61, problem: 'reordered' });
  });

  it('a blob altered → blob_mismatch at the entry referencing it', async () => {
    const dir = copy();
    const { seq, file } = blobOf(dir, 100);
    const bytes = readFileSync(file);
    bytes[0]! ^= 0xff;
    writeFileSync(file, bytes);
    const report = await verifyLedger(dir);
    expect(report.failure).toMatchObject({ seq, problem: 'blob_mismatch' });
    expect(seq).toBeGreaterThanOrEqual(100);
    // The message sets the SHA-256 the blob has against the one its entry recorded (its name), not "that SHA-256".
    const name = file.split('/').pop()!;
    expect(report.failure?.detail).toMatch(
      new RegExp(`holds \\d+ bytes with SHA-256 [0-9a-f]{16}…; entry ${seq} recorded \\d+ bytes with SHA-256 ${name.slice(0, 16)}… \\(the blob's name\\): the blob was changed after it was written`),
    );
    expect(report.failure?.detail).not.toContain(`SHA-256 ${name.slice(0, 16)}…;`);
  });

  it('a blob deleted → blob_missing at the entry referencing it', async () => {
    const dir = copy();
    const { seq, file } = blobOf(dir, 30);
    unlinkSync(file);
    expect((await verifyLedger(dir)).failure).toMatchObject({ seq, problem: 'blob_missing' });
  });

  it('an author removed from signers.json → unknown_signer at entry 0', async () => {
    const dir = copy();
    writeFileSync(join(dir, 'signers.json'), JSON.stringify({ someone_else: '00'.repeat(32) }));
    expect((await verifyLedger(dir)).failure).toMatchObject({ seq: 0, problem: 'unknown_signer' });
  });

  it('a different key put in signers.json → bad_signature at entry 0', async () => {
    const dir = copy();
    const signers = JSON.parse(readFileSync(join(dir, 'signers.json'), 'utf8'));
    signers.coordinator = signers.coordinator.replace(/^../, (h: string) => (h === 'ff' ? '00' : 'ff'));
    writeFileSync(join(dir, 'signers.json'), JSON.stringify(signers));
    expect((await verifyLedger(dir)).failure).toMatchObject({ seq: 0, problem: 'bad_signature' });
  });

  it('a damaged length field → changed at that entry, not mistaken for a torn tail', async () => {
    const dir = copy();
    const log = join(dir, 'entries.log');
    const { buf, record } = fileRecords(log);
    buf.writeUInt32BE(0x00ffffff, record(42).offset);
    writeFileSync(log, buf);
    expect((await verifyLedger(dir)).failure).toMatchObject({ seq: 42, problem: 'changed' });
  });
});

describe('receipts catch a rewritten history that integrity checks cannot', () => {
  it('a dishonest coordinator re-signs history from entry 50 with its own key: valid on its own, caught by receipts at entry 50', async () => {
    // It keeps entries 0..49, rewrites entry 50's body, and validly re-chains and re-signs 51..199.
    const forged = copy();
    const log = join(forged, 'entries.log');
    truncateSync(log, fileRecords(log).record(50).offset);
    const ledger = await Ledger.open(forged, 'coordinator', keyFile);
    for (let i = 50; i < N; i++) {
      const e = sampleEvent(i);
      if (i === 50) e.body = { ...e.body, participant: 'bank-that-never-contributed' };
      expect((await ledger.append(e)).seq).toBe(i);
    }
    await ledger.close();

    const alone = await verifyLedger(forged);
    expect(alone.ok).toBe(true); // consistent and signed: integrity checks alone cannot see the rewrite
    expect(alone.entries).toBe(N);
    expect(alone.treeHead.root).not.toBe((await verifyLedger(honest)).treeHead.root);

    const withReceipts = await verifyLedger(forged, { receiptsDir: receipts });
    expect(withReceipts.ok).toBe(false);
    expect(withReceipts.failure).toMatchObject({ seq: 50, problem: 'receipt_mismatch' });
    expect(withReceipts.failure?.detail).toContain('job-1.receipts:1 (tree head of size 51');
    expect(withReceipts.failure?.detail).toContain('history up to entry 50 was rewritten after this receipt was issued');
    expect(withReceipts.failure?.detail).toContain('rewrite is within entries 50..50');
    expect(formatVerifyReport(withReceipts)).toContain('FAILED at entry 50: receipt_mismatch');
  });

  it('the last entries cut off (undetectable alone) → receipt_mismatch naming the removed entries', async () => {
    const dir = copy();
    const log = join(dir, 'entries.log');
    truncateSync(log, fileRecords(log).record(190).offset);
    expect((await verifyLedger(dir)).ok).toBe(true);
    const report = await verifyLedger(dir, { receiptsDir: receipts });
    expect(report.failure).toMatchObject({ seq: 190, problem: 'receipt_mismatch' });
    expect(report.failure?.detail).toContain('entries 190..190 were removed');
  });

  it('a forged receipt (not signed by a listed key) → receipt_mismatch', async () => {
    const fake = await tempDir('fake-receipts');
    const bytes = readFileSync(join(receipts, 'bank-b', 'after-79.sth'));
    bytes[bytes.length - 1]! ^= 1; // the last byte is inside the signature
    writeFileSync(join(fake, 'x.sth'), bytes);
    const report = await verifyLedger(honest, { receiptsDir: fake });
    expect(report.failure).toMatchObject({ seq: 79, problem: 'receipt_mismatch' });
    expect(report.failure?.detail).toContain('x.sth');
  });

  it('an unreadable receipt line is reported as a note, not a failure', async () => {
    const fake = await tempDir('bad-receipts');
    writeFileSync(join(fake, 'j.receipts'), 'zz-not-hex\n');
    const report = await verifyLedger(honest, { receiptsDir: fake });
    expect(report.ok).toBe(true);
    expect(report.warnings.join('\n')).toContain('j.receipts:1');
  });
});

describe('a large ledger', () => {
  it('10,000 entries with small bodies verify', async () => {
    const dir = join(await tempDir('10k'), 'ledger');
    const ledger = await Ledger.open(dir, 'coordinator', join(dir, '..', 'key.pem'));
    const t0 = performance.now();
    for (let i = 0; i < 10_000; i += 500) {
      await Promise.all(Array.from({ length: 500 }, (_, j) => ledger.append({ kind: 'update_received', jobId: `job-${(i + j) % 7}`, body: { round: i + j, participant: `bank-${j % 5}` } })));
    }
    const built = performance.now() - t0;
    await ledger.close();
    const t1 = performance.now();
    const report = await verifyLedger(dir);
    const verified = performance.now() - t1;
    console.log(`10,000-entry ledger: appended in ${(built / 1000).toFixed(2)} s (500 concurrent appends at a time), verified in ${(verified / 1000).toFixed(2)} s`);
    expect(report.ok).toBe(true);
    expect(report.entries).toBe(10_000);
    rmSync(dir, { recursive: true, force: true });
  });
});
