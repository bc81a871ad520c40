/**
 * Federations where one data owner reads PostgreSQL (a real throwaway server, test/helpers/postgres.ts) and the others
 * read CSV files, on the UCI default-credit splits: the job's figures equal those of the same job run on the CSV files
 * alone, and the ledger's record of the data carries the rows' and the query's fingerprints.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DatasetSpec } from '../src/data/schema.js';
import { toFloat32 } from '../src/fl/vector-codec.js';
import { readLedger } from '../src/ledger/read.js';
import { TestFederation, UCI, UCI_FEATURES, horizontalJob, uciHomoSpec } from './helpers/federation.js';
import { TestPostgres } from './helpers/postgres.js';
import { participantJobDir, uciHeteroSpec, verticalJob } from './helpers/vertical.js';

const DB = 'credit';
const READER = 'fedcredit_reader';
const PASSWORD_ENV = 'FC_E2E_DB_PASSWORD';
const PASSWORD = 'e2e-reader-5d1c';

let server: TestPostgres;
let fed: TestFederation;

/** A CSV data section reading the database instead: same columns, types and policies. */
function fromDatabase(spec: DatasetSpec, source: Record<string, unknown>): DatasetSpec {
  const { path: _path, ...rest } = spec;
  return { ...rest, source: { kind: 'postgres', url: `postgres://${READER}@127.0.0.1:${server.port}/${DB}`, password_env: PASSWORD_ENV, fetch_size: 2000, ...source } } as DatasetSpec;
}

beforeAll(async () => {
  server = await TestPostgres.start();
  await server.sql(`CREATE DATABASE ${DB}`);
  await server.loadCsvTable(DB, 'tax_invoices', join(UCI, 'fate_default_credit_hetero_host.csv'), 'id');
  await server.loadCsvTable(DB, 'loans', join(UCI, 'fate_default_credit_homo_host_2.csv'), 'id');
  await server.createReader(READER, PASSWORD, DB);
  await server.sql(`GRANT SELECT ON tax_invoices, loans TO ${READER}`, DB);
  const homo = (part: string) => uciHomoSpec(join(UCI, `fate_default_credit_homo_${part}.csv`));
  fed = await TestFederation.start(
    [
      { name: 'bank', data: uciHeteroSpec('guest') },
      { name: 'tax-bureau', data: uciHeteroSpec('host') },
      // The tax bureau's rows from its database table, read in id order (the default).
      { name: 'tax-bureau-db', data: fromDatabase(uciHeteroSpec('host'), { table: 'tax_invoices' }) },
      { name: 'bank-a', data: homo('guest') },
      { name: 'bank-b', data: homo('host_1') },
      { name: 'bank-c', data: homo('host_2') },
      // The third bank's rows through a consented query, in the file's order (horizontal training follows row order).
      { name: 'bank-c-db', data: fromDatabase(homo('host_2'), { query: `SELECT id, y, ${UCI_FEATURES.join(', ')} FROM loans ORDER BY row_no` }) },
    ],
    { env: { [PASSWORD_ENV]: PASSWORD } },
  );
  // Seven nodes start at once on a shared machine: wait until each has read its data and reached the coordinator.
  for (const name of ['bank', 'tax-bureau', 'tax-bureau-db', 'bank-a', 'bank-b', 'bank-c', 'bank-c-db']) await connected(name, 180_000);
}, 300_000);

async function connected(name: string, timeoutMs: number): Promise<void> {
  const log = join(fed.dir, 'logs', `${name}.log`);
  const deadline = Date.now() + timeoutMs;
  while (!(existsSync(log) && readFileSync(log, 'utf8').includes('connected to coordinator'))) {
    if (fed.cluster.process(name)?.exitCode != null) throw new Error(`${name} exited before it connected:\n${readFileSync(log, 'utf8').slice(-2000)}`);
    if (Date.now() > deadline) throw new Error(`${name} did not connect within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

afterAll(async () => {
  await fed?.stop();
  await server?.stop();
});

/** The load report each participant bound to a job, as the ledger records it. */
function boundReports(jobId: string): Map<string, string> {
  const entries = readLedger(join(fed.dir, 'coordinator-state', 'ledger')).entries;
  return new Map(entries.filter((e) => e.entry.jobId === jobId && e.entry.kind === 'data_bound').map((e) => {
    const body = e.body as { participant: string; load_report: string };
    return [body.participant, body.load_report];
  }));
}

function rowsSha256(report: string): string | undefined {
  return report.match(/rows sha256 ([0-9a-f]{64})/)?.[1];
}

describe('one party reads PostgreSQL, the others CSV (real processes, real server)', () => {
  it('vertical LR: the host reading its table gives the same model parts and test AUC as the host reading its CSV', async () => {
    const training = { epochs: 3, patience: 0 };
    const csv = await fed.run(verticalJob({ hosts: ['tax-bureau'], training, encryption: { scheme: 'plaintext' } }));
    const db = await fed.run(verticalJob({ hosts: ['tax-bureau-db'], training, encryption: { scheme: 'plaintext' } }));
    csv.client.close();
    db.client.close();
    expect(csv.last.state, csv.last.message).toBe('succeeded');
    expect(db.last.state, db.last.message).toBe('succeeded');

    const published = (jobId: string) =>
      readLedger(join(fed.dir, 'coordinator-state', 'ledger')).entries.find((e) => e.entry.kind === 'model_published' && e.entry.jobId === jobId)!.body as { test: { auc: number; ks: number; rows: number } };
    const part = (org: string, jobId: string) => JSON.parse(readFileSync(join(participantJobDir(fed.dir, org, jobId), 'model-part.json'), 'utf8')) as { weights: number[]; intercept?: number };
    const [a, b] = [published(csv.jobId).test, published(db.jobId).test];
    console.log(`vertical UCI, 3 epochs: test AUC ${a.auc.toFixed(6)} (CSV host) vs ${b.auc.toFixed(6)} (PostgreSQL host)`);
    expect(a.auc).toBeGreaterThan(0.7);
    expect(b.rows).toBe(a.rows);
    expect(b.auc).toBe(a.auc);
    expect(b.ks).toBe(a.ks);
    expect(part('tax-bureau-db', db.jobId).weights).toEqual(part('tax-bureau', csv.jobId).weights);
    expect(part('bank', db.jobId)).toEqual(part('bank', csv.jobId));

    // The ledger binds the database party's data with the fingerprint of its rows (equal to the file's: same rows,
    // same values) and of the query it ran.
    const csvBound = boundReports(csv.jobId).get('tax-bureau')!;
    const dbBound = boundReports(db.jobId).get('tax-bureau-db')!;
    expect(dbBound).toMatch(/query sha256 [0-9a-f]{64}/);
    expect(csvBound).not.toContain('query sha256');
    expect(rowsSha256(dbBound)).toMatch(/^[0-9a-f]{64}$/);
    expect(dbBound).not.toContain('127.0.0.1');
  }, 600_000);

  it('horizontal FedAvg: the bank reading a consented query gives the same weights as the bank reading its CSV', async () => {
    const training = { rounds: 3 };
    const csv = await fed.run(horizontalJob({ participants: ['bank-a', 'bank-b', 'bank-c'], training }));
    const db = await fed.run(horizontalJob({ participants: ['bank-a', 'bank-b', 'bank-c-db'], training }));
    expect(csv.last.state, csv.last.message).toBe('succeeded');
    expect(db.last.state, db.last.message).toBe('succeeded');
    const wCsv = toFloat32((await csv.client.downloadModel(csv.jobId))['weights.bin']!);
    const wDb = toFloat32((await db.client.downloadModel(db.jobId))['weights.bin']!);
    csv.client.close();
    db.client.close();
    expect(wCsv.length).toBe(UCI_FEATURES.length + 1);
    const maxDiff = wCsv.reduce((m, w, i) => Math.max(m, Math.abs(w - wDb[i]!)), 0);
    console.log(`horizontal UCI, 3 rounds: max |w_csv - w_postgres| = ${maxDiff.toExponential(2)}`);
    const lastAuc = (events: typeof csv.events) => events.filter((e) => e.progress).at(-1)!.progress!.validationAuc;
    console.log(`validation AUC ${lastAuc(csv.events)} (CSV) vs ${lastAuc(db.events)} (PostgreSQL)`);
    expect(maxDiff).toBeLessThan(1e-4);
    expect(Math.abs(lastAuc(db.events) - lastAuc(csv.events))).toBeLessThan(1e-4);

    const bound = boundReports(db.jobId);
    expect(rowsSha256(bound.get('bank-c-db')!)).toBe(rowsSha256(boundReports(csv.jobId).get('bank-c')!));
    expect(bound.get('bank-c-db')).toMatch(/query sha256 [0-9a-f]{64}/);
  }, 600_000);
});
