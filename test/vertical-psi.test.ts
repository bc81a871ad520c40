/**
 * Vertical alignment over real processes, with every byte the participants send captured by a wire tap: the
 * parties end with exactly the shared enterprises, and nothing sent reveals an id (shared or not) or its hash.
 * Also the alignment's bad inputs: ids that differ only in case or spacing, bad check digits, a host that shares
 * nothing, and a host that leaves mid-job.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { uscc, USCC_CHARSET } from '../src/data/uscc.js';
import { hashIds } from '../src/psi/ecdh.js';
import { readLedger } from '../src/ledger/read.js';
import { Rng } from '../src/random.js';
import type { DatasetSpec } from '../src/data/schema.js';
import { TestFederation } from './helpers/federation.js';
import { occurrences } from './helpers/tap.js';
import { egressSummary, formatEgress } from '../src/cli/egress.js';
import { participantJobDir, verticalJob } from './helpers/vertical.js';

function usccIds(n: number, rng: Rng): string[] {
  const out = new Set<string>();
  const letters = USCC_CHARSET;
  while (out.size < n) {
    let body = '91';
    for (let i = 0; i < 6; i++) body += String(rng.int(10));
    for (let i = 0; i < 9; i++) body += letters[rng.int(letters.length)];
    out.add(uscc(body));
  }
  return [...out];
}

const rng = new Rng(2026);
const all = usccIds(10_000 + 3_000 + 4_000, rng);
const shared = all.slice(0, 5_000);
const guestOnly = all.slice(5_000, 10_000);
const hostOnly = all.slice(10_000, 13_000);
const strangers = all.slice(13_000);
const dir = mkdtempSync(join(tmpdir(), 'fedcredit-psi-data-'));

function writeParty(file: string, ids: string[], withLabel: boolean, extraLines: string[] = []): void {
  const r = new Rng(file.length);
  const lines = ids.map((id) => {
    const x = r.normal();
    const y = r.next() < 1 / (1 + Math.exp(-(x - 1))) ? 1 : 0;
    return withLabel ? `${id},${y},${x.toFixed(4)},${r.normal().toFixed(4)}` : `${id},${(x * 0.5 + r.normal()).toFixed(4)},${r.normal().toFixed(4)}`;
  });
  writeFileSync(file, [withLabel ? 'id,y,f1,f2' : 'id,h1,h2', ...lines, ...extraLines].join('\n') + '\n');
}

const spec = (file: string, label: boolean): DatasetSpec => ({
  path: join(dir, file),
  delimiter: ',',
  id_column: 'id',
  ...(label ? { label_column: 'y' } : {}),
  features: (label ? ['f1', 'f2'] : ['h1', 'h2']).map((name) => ({ name, type: 'number', missing: 'impute' })),
  duplicate_ids: 'reject',
  missing_values: [''],
});

// The host's file also holds 50 ids that repeat others but for case and spaces, and 30 with a wrong check digit.
const sloppy = hostOnly.slice(0, 50).map((id) => `${id.slice(0, 9).toLowerCase()} ${id.slice(9)},0.1,0.2`);
const badDigit = strangers.slice(0, 30).map((id) => `${id.slice(0, 17)}${id[17] === '0' ? '1' : '0'},0.1,0.2`);
writeParty(join(dir, 'bank.csv'), [...shared, ...guestOnly], true);
writeParty(join(dir, 'tax.csv'), [...hostOnly, ...shared].reverse(), false, [...sloppy, ...badDigit]);
writeParty(join(dir, 'power.csv'), strangers, false);
// A utility whose id column holds meter numbers, not credit codes.
writeParty(
  join(dir, 'utility.csv'),
  Array.from({ length: 200 }, (_, i) => `M${100_000 + i}`),
  false,
);

describe('vertical alignment (PSI) over the wire', () => {
  let fed: TestFederation;
  const capture = mkdtempSync(join(tmpdir(), 'fedcredit-capture-'));
  beforeAll(async () => {
    fed = await TestFederation.start(
      [
        { name: 'bank', data: spec('bank.csv', true) },
        { name: 'tax-bureau', data: spec('tax.csv', false) },
        { name: 'power-company', data: { ...spec('power.csv', false) } },
        { name: 'utility', data: spec('utility.csv', false) },
      ],
      { env: { FEDCREDIT_WIRE_CAPTURE: capture } },
    );
  });
  afterAll(async () => fed?.stop());

  const job = (overrides: Parameters<typeof verticalJob>[0] = {}) => verticalJob({ alignment: { id_format: 'uscc', min_intersection: 1000 }, training: { epochs: 1, batch_size: 1024 }, ...overrides });

  it('a host that shares no enterprise with the guest stops the job with the intersection named', async () => {
    const { last } = await fed.run(job({ hosts: ['power-company'] }));
    expect(last.state).toBe('failed');
    expect(last.message).toMatch(/share 0 enterprises, below the job's alignment.min_intersection of 1000/);
  });

  it('a host none of whose ids is a valid credit code refuses the job at the offer, naming the format, masked examples and the fix', async () => {
    const { jobId, last } = await fed.run(job({ hosts: ['utility'] }));
    expect(last.state).toBe('failed');
    expect(last.message).toMatch(/utility did not accept the job: refused \(alignment\.id_format\): none of utility's first 200 ids is a valid uscc id \(e\.g\. M10…\)/);
    expect(last.message).toContain('need alignment.id_format: any in the job file');
    // Refused before any key was made: no step ran.
    const kinds = readLedger(fed.ledgerDir)
      .entries.filter((e) => e.entry.jobId === jobId)
      .map((e) => e.entry.kind);
    expect(kinds).not.toContain('psi_completed');
    expect(kinds).not.toContain('keys_ready');
    // The host's own record keeps the text that left it, masked examples included.
    const sent = readFileSync(join(fed.dir, 'fedcredit-state', 'utility', 'egress.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { direction: string; job: string; kind: string; what: string })
      .filter((l) => l.direction === 'sent' && l.job === jobId && l.kind === 'jobRefused');
    expect(sent).toHaveLength(1);
    expect(sent[0]!.what).toMatch(/none of utility's first 200 ids is a valid uscc id \(e\.g\. M10…\)/);
  });

  it('each side ends with exactly the 5,000 shared ids, and no id or id hash crosses the wire', async () => {
    const { jobId, last } = await fed.run(job());
    expect(last.state, last.message).toBe('succeeded');
    const ledger = readLedger(fed.ledgerDir).entries.filter((e) => e.entry.jobId === jobId);
    const psi = ledger.find((e) => e.entry.kind === 'psi_completed')!.body as Record<string, unknown>;
    expect(psi.intersection).toBe(5_000);
    expect(psi.guest_ids).toBe(10_000);
    expect(psi.host_ids).toEqual({ 'tax-bureau': 8_000 });
    expect(psi.invalid_ids).toEqual({ bank: 0, 'tax-bureau': 30 });
    expect(psi.duplicate_ids).toEqual({ bank: 0, 'tax-bureau': 50 });
    const reports = psi.id_reports as Record<string, string>;
    expect(reports['tax-bureau']).toMatch(/^8000 valid ids, 30 invalid \(uscc format; e\.g\. [0-9A-Z]{4}…/);
    expect(reports['tax-bureau']).toMatch(/50 duplicates after normalisation$/);

    const alignedIds = (org: string) =>
      readFileSync(join(participantJobDir(fed.dir, org, jobId), 'aligned-ids.csv'), 'utf8')
        .trim()
        .split('\n')
        .slice(1);
    const bankRows = alignedIds('bank');
    const taxRows = alignedIds('tax-bureau');
    expect(new Set(bankRows.map((l) => l.split(',')[0]))).toEqual(new Set(shared));
    // Same enterprises in the same order with the same train/validation/test part on both sides.
    expect(taxRows).toEqual(bankRows);

    // The tax bureau's own account of what left it: blinded ids and ciphertexts, each kind named and counted.
    const egress = egressSummary(join(fed.dir, 'fedcredit-state', 'tax-bureau'), jobId);
    const row = (kind: string) => egress.find((r) => r.kind === kind);
    // 8,000 ids fit one chunk of a stream, then its end marker.
    expect(row('psi.host_blinded')).toMatchObject({ to: 'bank', messages: 2 });
    expect(row('psi.host_blinded')!.bytes).toBeGreaterThan(8_000 * 32);
    expect(row('psi.guest_double')).toMatchObject({ to: 'bank', messages: 2 });
    expect(row('psi.alignment.ack')!.what).toMatch(/acknowledgements that chunks of psi.alignment arrived/);
    expect(row('train.partial')!.what).toMatch(/CKKS ciphertext/);
    expect(row('decryptRequest')!.to).toBe('coordinator');
    expect(row('psi.guest_blinded')).toBeUndefined();
    expect(formatEgress(jobId, egress)).toMatch(/total [\d,]+ bytes in \d+ messages/);

    // Everything both participants sent, as it went to gRPC below TLS (the transport's wire tap).
    const sent = Buffer.concat(['bank', 'tax-bureau'].map((org) => readFileSync(join(capture, `${fed.cluster.process(org)!.pid}.bin`))));
    expect(sent.length).toBeGreaterThan(5_000 * 32);
    const ids = all.map((id) => Buffer.from(id, 'latin1'));
    expect(occurrences(sent, ids)).toHaveLength(0);
    const salt = Buffer.from((ledger.find((e) => e.entry.kind === 'keys_ready')!.body as { psi_salt: string }).psi_salt, 'hex');
    const hashes = hashIds(salt, all);
    const plainHashes = Array.from({ length: all.length }, (_, i) => hashes.subarray(32 * i, 32 * i + 32));
    expect(occurrences(sent, plainHashes)).toHaveLength(0);
  });

  it('a host that leaves mid-job and does not return within the grace period fails the job; no model is published', async () => {
    const client = fed.cluster;
    const logFile = join(fed.dir, 'logs', 'tax-bureau.log');
    const before = readFileSync(logFile, 'utf8').length;
    const running = fed.run(job({ training: { epochs: 200, batch_size: 512, patience: 0, grace_period_s: 2 } }));
    let killed = false;
    const deadline = Date.now() + 60_000;
    while (!killed && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      const log = readFileSync(logFile, 'utf8').slice(before);
      if ((log.match(/"name":"batch"/g) ?? []).length >= 3) {
        await client.kill('tax-bureau');
        killed = true;
      }
    }
    expect(killed).toBe(true);
    const { jobId, last } = await running;
    expect(last.state).toBe('failed');
    expect(last.message).toMatch(/tax-bureau left during the batch step and did not return within the grace period of 2s; no model is published/);
    const kinds = readLedger(fed.ledgerDir)
      .entries.filter((e) => e.entry.jobId === jobId)
      .map((e) => e.entry.kind);
    expect(kinds).toContain('job_paused');
    expect(kinds).not.toContain('model_published');
  });
});
