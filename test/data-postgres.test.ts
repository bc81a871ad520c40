/**
 * A participant's rows from a real PostgreSQL server (test/helpers/postgres.ts starts a throwaway one): the same
 * rows, checks and errors as from the CSV file, read in one read-only transaction that selects only the consented
 * columns; every failure a data owner can meet (bad password, no grant, missing table, a dropped connection, a type
 * that is not a number, NULL under `reject`, a repeated id, a query that is not one SELECT) named with its fix.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { cli } from './helpers/cli.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatLoadReport } from '../src/data/csv.js';
import { DatasetSpec, type PostgresSource } from '../src/data/schema.js';
import { ingestSource, ingestWithUnlabelled, loadSource } from '../src/data/source.js';
import { ErrorCode, FedcreditError } from '../src/errors.js';
import { loadDataset } from '../src/data/csv.js';
import { UCI, uciHomoSpec } from './helpers/federation.js';
import { GUEST_APPLICANT_BLOCK_BYTES, guestApplicantsSpec, storeSummary, TWO_PASS_STORES, writeGuestApplicants } from './helpers/guest-applicants.js';
import { ADMIN, selfSignedCertificate, TestPostgres } from './helpers/postgres.js';
import { writeVerticalSynth } from '../src/synth/vertical.js';
import { loadSynthIntoPostgres } from '../src/synth/postgres.js';

const DB = 'credit';
const READER = 'fc_reader';
const PASSWORD = 'reader-secret-7f3a';
const GUEST = join(UCI, 'fate_default_credit_homo_guest.csv');

let server: TestPostgres;

function source(extra: Partial<PostgresSource>): PostgresSource {
  return {
    kind: 'postgres',
    host: '127.0.0.1',
    port: server.port,
    database: DB,
    user: READER,
    password_env: 'FC_TEST_DB_PASSWORD',
    fetch_size: 1000,
    connect_timeout_s: 10,
    ...extra,
  } as PostgresSource;
}

/** The UCI spec reading the database instead of the file. */
function pgSpec(extra: Partial<PostgresSource>, overrides: Partial<DatasetSpec> = {}): DatasetSpec {
  const { path: _path, ...csv } = uciHomoSpec(GUEST);
  return DatasetSpec.parse({ ...csv, ...overrides, source: source(extra) });
}

async function loadError(spec: DatasetSpec, columns?: string[]): Promise<FedcreditError> {
  const err = await loadSource(spec, { columns }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'the load should fail').toBeInstanceOf(FedcreditError);
  return err as FedcreditError;
}

beforeAll(async () => {
  process.env.FC_TEST_DB_PASSWORD = PASSWORD;
  server = await TestPostgres.start({ tls: true });
  await server.sql(`CREATE DATABASE ${DB}`);
  await server.loadCsvTable(DB, 'loans', GUEST, 'id');
  await server.createReader(READER, PASSWORD, DB);
  await server.sql(
    `GRANT SELECT ON loans TO ${READER};
     CREATE TABLE secrets (id text, x0 double precision);
     CREATE TABLE dirty (id text, y int, x0 text, x1 double precision, opened date, flag boolean);
     INSERT INTO dirty VALUES ('a', 0, '1.5', 1, '2020-01-01', true), ('b', 1, 'abc', NULL, '2020-01-02', false), ('c', 0, '2', 3, '2020-01-03', NULL), ('a', 1, '4', 4, '2020-01-04', true);
     GRANT SELECT ON dirty TO ${READER};
     -- 2 ms a row (the sleep depends on the row, so it runs for every row): 16 s for the whole view.
     CREATE VIEW slow AS SELECT l.* FROM loans l CROSS JOIN LATERAL (SELECT pg_sleep(0.002 + 0 * l.x0)) AS s;
     GRANT SELECT ON slow TO ${READER};`,
    DB,
  );
}, 120_000);

afterAll(async () => {
  await server?.stop();
  // Test files share a process (isolate: false): this file's variables go with it.
  delete process.env.FC_TEST_DB_PASSWORD;
  delete process.env.FC_TEST_WRONG_PASSWORD;
});

describe('a PostgreSQL table as a data source (real server)', () => {
  it('reads the same rows as the CSV file, in one read-only transaction selecting only the consented columns', async () => {
    const consented = ['x0', 'x3', 'x5'];
    const fromCsv = await loadDataset(uciHomoSpec(GUEST), { columns: consented });
    const spec = pgSpec({ table: 'loans', order_by: ['row_no'], fetch_size: 777 });
    const fromDb = await loadSource(spec, { columns: consented });
    expect(fromDb.rows).toBe(8000);
    expect(fromDb.ids).toEqual(fromCsv.ids);
    expect(Buffer.from(fromDb.x.buffer).equals(Buffer.from(fromCsv.x.buffer))).toBe(true);
    expect(Buffer.from(fromDb.y!.buffer).equals(Buffer.from(fromCsv.y!.buffer))).toBe(true);
    // The fingerprint covers the rows (equal to the file's: the same values) and names the query that was run.
    expect(fromDb.report.rowsSha256).toBe(fromCsv.report.rowsSha256);
    expect(fromDb.report.querySha256).toMatch(/^[0-9a-f]{64}$/);
    expect(fromCsv.report.querySha256).toBeUndefined();
    expect(formatLoadReport(fromDb.report)).toContain(`query sha256 ${fromDb.report.querySha256}`);
    expect(fromDb.report.file).not.toContain(PASSWORD);

    // What the node's session ran, from the server's statement log: one read-only transaction, consented columns only.
    const lines = server.log().split('\n');
    const pid = lines.find((l) => l.includes('BEGIN TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY'))?.match(/\[(\d+)\]/)?.[1];
    expect(pid, 'the node began a read-only transaction').toBeDefined();
    const session = lines.filter((l) => l.includes(`[${pid}]`)).join('\n');
    expect(session).toContain('execute <unnamed>/C_1: SELECT "id", "y", "x0", "x3", "x5" FROM "loans" ORDER BY "row_no"');
    expect(session).toContain('execute fetch from');
    expect(session).toContain('COMMIT');
    expect(session).not.toMatch(/"x1"|"x2"|"x4"|\*/);
    expect(session).not.toContain(PASSWORD);
  });

  it('reads a consented query, refusing one that selects other columns, lacks one, writes, or hides a second statement', async () => {
    const query = 'SELECT id, y, x0, x1 FROM loans WHERE x0 > 0 ORDER BY row_no;';
    const spec = pgSpec(
      { query, fetch_size: 100 },
      {
        features: [
          { name: 'x0', type: 'number', missing: 'impute' },
          { name: 'x1', type: 'number', missing: 'impute' },
        ],
      },
    );
    const data = await loadSource(spec);
    const csv = await loadDataset(uciHomoSpec(GUEST), { columns: ['x0', 'x1'] });
    const expected = csv.ids.filter((_, r) => csv.x[r * 2]! > 0);
    expect(data.ids).toEqual(expected);

    const extra = await loadError(
      pgSpec(
        { query: 'SELECT id, y, x0, x1, x2 FROM loans' },
        {
          features: [
            { name: 'x0', type: 'number', missing: 'impute' },
            { name: 'x1', type: 'number', missing: 'impute' },
          ],
        },
      ),
    );
    expect(extra.code).toBe(ErrorCode.DATA_SCHEMA);
    expect(extra.message).toContain('"x2"');
    expect(extra.message).toContain('do not cover');
    // Narrowing the consent makes a query that selects a withheld feature a refusal too.
    const withheld = await loadError(spec, ['x0']);
    expect(withheld.message).toContain('"x1"');

    const lacking = await loadError(
      pgSpec(
        { query: 'SELECT id, y, x0 FROM loans' },
        {
          features: [
            { name: 'x0', type: 'number', missing: 'impute' },
            { name: 'x1', type: 'number', missing: 'impute' },
          ],
        },
      ),
    );
    expect(lacking.code).toBe(ErrorCode.DATA_SCHEMA);
    expect(lacking.message).toContain('returns no column "x1"');

    const writes = await loadError(pgSpec({ query: 'DELETE FROM loans RETURNING *' }));
    expect(writes.code).toBe(ErrorCode.CONFIG_INVALID);
    expect(writes.message).toContain('single read-only SELECT');

    const twoStatements = await loadError(pgSpec({ query: `SELECT * FROM loans) AS a; DROP TABLE loans; SELECT * FROM (SELECT 1` }));
    expect(twoStatements.code).toBe(ErrorCode.CONFIG_INVALID);
    const [count] = await server.sql('SELECT count(*)::int AS n FROM loans', DB);
    expect(count!.rows[0].n).toBe(8000);
  });

  it("keeps a guest's applicants without an outcome apart in the same query: one SELECT, the stores two reads wrote", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedcredit-pg-applicants-'));
    try {
      writeGuestApplicants(join(dir, 'bank.csv'));
      // Every column as text: the server returns each cell as the file holds it (an empty one as NULL).
      await server.loadCsvTable(DB, 'applicants', join(dir, 'bank.csv'), 'loan_ref', 'text');
      await server.sql(`GRANT SELECT ON applicants TO ${READER}`, DB);
      const { path: _path, ...csv } = guestApplicantsSpec('bank.csv');
      const spec = DatasetSpec.parse({ ...csv, source: source({ table: 'applicants', order_by: ['row_no'], fetch_size: 500 }) });
      const opts = { dir: join(dir, 'rows'), scatter: true, blockBytes: GUEST_APPLICANT_BLOCK_BYTES };
      const stored = await ingestWithUnlabelled(spec, opts, { dir: join(dir, 'rows-unlabelled'), keep: true });
      expect(storeSummary(stored.rows)).toEqual(TWO_PASS_STORES.rows);
      expect(storeSummary(stored.unlabelled!)).toEqual(TWO_PASS_STORES.unlabelled);
      // The server logs a cursor's first execution, then each later fetch from it (`execute fetch from`).
      const runs = server
        .log()
        .split('\n')
        .filter((l) => / execute [^:]*: SELECT .* FROM "applicants" ORDER BY "row_no"$/.test(l));
      expect(runs.filter((l) => !l.includes('execute fetch from'))).toHaveLength(1);
      expect(runs.length).toBeGreaterThan(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('fedcredit synth --postgres (real server)', () => {
  it('loads each synthetic party file into a table named after it; the table reads back as the file does', async () => {
    const out = mkdtempSync(join(tmpdir(), 'fedcredit-synth-pg-'));
    const pgPassword = process.env.PGPASSWORD;
    try {
      const synth = await writeVerticalSynth(out, { seed: 5, bankRows: 600 });
      process.env.PGPASSWORD = 'admin-password';
      const url = `postgres://${ADMIN}@127.0.0.1:${server.port}/${DB}`;
      const tables = await loadSynthIntoPostgres(
        url,
        synth.parties.map((p) => ({ party: p.party, file: join(out, p.spec.path), spec: p.spec })),
      );
      expect(tables.map((t) => t.table)).toEqual(['bank', 'tax_bureau', 'power_company', 'platform']);
      await server.sql(`GRANT SELECT ON tax_bureau TO ${READER}`, DB);
      const tax = synth.parties.find((p) => p.party === 'tax-bureau')!;
      const fromFile = await loadDataset(tax.spec, { baseDir: out });
      const { path: _path, ...columns } = tax.spec;
      const fromDb = await loadSource(DatasetSpec.parse({ ...columns, source: source({ table: 'tax_bureau' }) }));
      expect(tables.find((t) => t.table === 'tax_bureau')!.rows).toBe(tax.rows);
      expect(fromDb.rows).toBe(fromFile.rows);
      // The table is read in id order; the file is in generation order: compare row by row through the ids.
      const width = fromFile.features.length;
      const rowOf = new Map(fromFile.ids.map((id, r) => [id, r]));
      let differing = 0;
      fromDb.ids.forEach((id, r) => {
        const f = rowOf.get(id)!;
        for (let j = 0; j < width; j++) if (!Object.is(fromDb.x[r * width + j], fromFile.x[f * width + j])) differing++;
        if (fromDb.groups.industry![r] !== fromFile.groups.industry![f]) differing++;
      });
      expect(differing).toBe(0);
      expect(fromDb.report.missingCells).toEqual(fromFile.report.missingCells);
    } finally {
      // Test files share a process (isolate: false): the variable goes back as it was.
      if (pgPassword === undefined) delete process.env.PGPASSWORD;
      else process.env.PGPASSWORD = pgPassword;
      rmSync(out, { recursive: true, force: true });
    }
  }, 120_000);
});

describe('PostgreSQL source errors name the cause and the fix (real server)', () => {
  const dirtyFeatures = (policy: 'impute' | 'drop' | 'reject') => ({
    id_column: 'id',
    label_column: 'y',
    features: [
      { name: 'x0', type: 'number', missing: 'impute' },
      { name: 'x1', type: 'number', missing: policy },
    ],
    duplicate_ids: 'keep_first',
  });

  it('a text cell that is not a number, under reject: FC_DATA_REJECTED naming the row and column', async () => {
    const err = await loadError(
      pgSpec({ table: 'dirty', order_by: ['opened'] }, { ...dirtyFeatures('impute'), features: [{ name: 'x0', type: 'number', missing: 'reject' }] } as Partial<DatasetSpec>),
    );
    expect(err.code).toBe(ErrorCode.DATA_REJECTED);
    expect(err.message).toContain('row 2, column "x0": value that is not a valid number "abc"');
    expect(err.hint).toContain('clean the table');
  });

  it('a column of a type that is not a number (date): FC_DATA_SCHEMA naming the type and a cast', async () => {
    const err = await loadError(pgSpec({ table: 'dirty' }, { ...dirtyFeatures('impute'), features: [{ name: 'opened', type: 'number', missing: 'impute' }] } as Partial<DatasetSpec>));
    expect(err.code).toBe(ErrorCode.DATA_SCHEMA);
    expect(err.message).toContain('column "opened" is of type date');
    expect(err.hint).toContain('cast');
  });

  it('a boolean column reads as 0/1 for a binary feature, and is refused for a number feature', async () => {
    const binary = await loadSource(
      pgSpec({ table: 'dirty', order_by: ['opened'] }, { ...dirtyFeatures('impute'), features: [{ name: 'flag', type: 'binary', missing: 'impute' }] } as Partial<DatasetSpec>),
    );
    expect(Array.from(binary.x)).toEqual([1, 0, NaN]);
    expect(binary.report.missingCells.flag).toBe(1);
    const err = await loadError(pgSpec({ table: 'dirty' }, { ...dirtyFeatures('impute'), features: [{ name: 'flag', type: 'number', missing: 'impute' }] } as Partial<DatasetSpec>));
    expect(err.code).toBe(ErrorCode.DATA_SCHEMA);
    expect(err.message).toContain('column "flag" is of type boolean');
  });

  it('NULL under reject: FC_DATA_REJECTED naming NULL, the row and the column; under drop the row is counted', async () => {
    const err = await loadError(pgSpec({ table: 'dirty', order_by: ['opened'] }, dirtyFeatures('reject') as Partial<DatasetSpec>));
    expect(err.code).toBe(ErrorCode.DATA_REJECTED);
    expect(err.message).toContain('row 2, column "x1": missing value NULL');
    const dropped = await loadSource(pgSpec({ table: 'dirty', order_by: ['opened'] }, dirtyFeatures('drop') as Partial<DatasetSpec>));
    expect(dropped.report.rowsDropped['missing:x1']).toBe(1);
    expect(dropped.report.nonNumericCells.x0).toBe(1);
  });

  it('a repeated id: FC_DATA_REJECTED naming both rows', async () => {
    const err = await loadError(pgSpec({ table: 'dirty', order_by: ['opened'] }, { ...dirtyFeatures('impute'), duplicate_ids: 'reject' } as Partial<DatasetSpec>));
    expect(err.code).toBe(ErrorCode.DATA_REJECTED);
    expect(err.message).toContain('id "a" (column "id") appears on row 1 and again on row 4');
  });

  it('a missing table: FC_DATA_SCHEMA', async () => {
    const err = await loadError(pgSpec({ table: 'no_such_table' }));
    expect(err.code).toBe(ErrorCode.DATA_SCHEMA);
    expect(err.message).toContain('does not exist');
    expect(err.hint).toContain('data.source.table');
  });

  it('no SELECT grant: FC_DATA_SOURCE naming the user and the GRANT', async () => {
    const err = await loadError(pgSpec({ table: 'secrets' }, { label_column: undefined, features: [{ name: 'x0', type: 'number', missing: 'impute' }] }));
    expect(err.code).toBe(ErrorCode.DATA_SOURCE);
    expect(err.message).toContain(`user "${READER}" may not read it`);
    expect(err.hint).toContain('GRANT SELECT');
  });

  it('a wrong password: FC_DATA_SOURCE, and the password appears in no message; an unset variable: FC_CONFIG_INVALID', async () => {
    process.env.FC_TEST_WRONG_PASSWORD = 'not-the-password-91';
    const err = await loadError(pgSpec({ table: 'loans', password_env: 'FC_TEST_WRONG_PASSWORD' }));
    expect(err.code).toBe(ErrorCode.DATA_SOURCE);
    expect(err.message).toContain(`refused the password of user "${READER}"`);
    expect(`${err.message} ${err.hint}`).not.toContain('not-the-password-91');
    const unset = await loadError(pgSpec({ table: 'loans', password_env: 'FC_TEST_UNSET_PASSWORD' }));
    expect(unset.code).toBe(ErrorCode.CONFIG_INVALID);
    expect(unset.hint).toContain('export FC_TEST_UNSET_PASSWORD=');
  });

  it('no server listening: FC_DATA_SOURCE "cannot connect"', async () => {
    const err = await loadError(pgSpec({ table: 'loans', port: 1 }));
    expect(err.code).toBe(ErrorCode.DATA_SOURCE);
    expect(err.message).toContain('cannot connect to the database');
  });

  it('a connection dropped mid-read: FC_DATA_SOURCE naming the rows read, and no row store left behind', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedcredit-pg-drop-'));
    try {
      const loading = ingestSource(pgSpec({ table: 'slow', order_by: ['row_no'], fetch_size: 50 }), { dir: join(dir, 'rows') }).then(
        () => undefined,
        (e: unknown) => e,
      );
      let terminated = false;
      for (let i = 0; i < 200 && !terminated; i++) {
        await new Promise((r) => setTimeout(r, 50));
        const [result] = await server.sql(`SELECT pg_terminate_backend(pid) AS t FROM pg_stat_activity WHERE usename = '${READER}' AND query LIKE '%FROM "slow"%'`);
        terminated = result!.rows.some((r: { t: boolean }) => r.t);
      }
      expect(terminated, "the reader's backend was found and terminated").toBe(true);
      const err = (await loading) as FedcreditError;
      expect(err).toBeInstanceOf(FedcreditError);
      expect(err.code).toBe(ErrorCode.DATA_SOURCE);
      expect(err.message).toMatch(/connection to the database was lost after \d+ rows/);
      expect(err.hint).toContain('start the participant again');
      expect(existsSync(join(dir, 'rows'))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('a server that asks for a password the config does not give: FC_CONFIG_INVALID naming the two fields', async () => {
    const err = await loadError(pgSpec({ table: 'loans', password_env: undefined }));
    expect(err.code).toBe(ErrorCode.CONFIG_INVALID);
    expect(err.hint).toContain('password_env');
  });

  it('a participant whose database is away does not start: exit 2, FC_DATA_SOURCE, no password in its output, no rows kept', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedcredit-pg-node-'));
    try {
      const { path: _path, ...columns } = uciHomoSpec(GUEST);
      const config = { organisation: 'bank-db', coordinator: '127.0.0.1:1', state_dir: 'state', data: { ...columns, source: source({ table: 'loans', port: 1 }) } };
      writeFileSync(join(dir, 'participant.yaml'), stringify(config));
      // A row store left by an earlier start is removed: no stale copy of the rows stays behind.
      mkdirSync(join(dir, 'state', 'rows'), { recursive: true });
      writeFileSync(join(dir, 'state', 'rows', 'x.f32'), 'stale');
      const { code, stderr } = await cli(['participant', '--config', join(dir, 'participant.yaml'), '--insecure'], 120_000);
      expect(code).toBe(2);
      expect(stderr).toContain('FC_DATA_SOURCE');
      expect(stderr).toContain('cannot connect to the database');
      expect(stderr).not.toContain(PASSWORD);
      expect(existsSync(join(dir, 'state', 'rows'))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 150_000);

  it('TLS: with ssl.ca_file the node reads over TLS, verifying the server; a certificate from another CA is refused (FC_DATA_SOURCE)', async () => {
    const data = await loadSource(pgSpec({ table: 'loans', ssl: { ca_file: server.certFile } }));
    expect(data.rows).toBe(8000);
    expect(server.log()).toMatch(new RegExp(`connection authorized: user=${READER} database=${DB} application_name=fedcredit SSL enabled`));
    const other = mkdtempSync(join(tmpdir(), 'fedcredit-other-ca-'));
    try {
      await selfSignedCertificate(join(other, 'ca.pem'), join(other, 'key.pem'));
      const err = await loadError(pgSpec({ table: 'loans', ssl: { ca_file: join(other, 'ca.pem') } }));
      expect(err.code).toBe(ErrorCode.DATA_SOURCE);
      expect(err.message).toContain('cannot connect to the database');
      expect(err.message).toMatch(/certificate/);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  it('a statement_timeout that stops the read: FC_DATA_SOURCE naming the timeout and the rows read', async () => {
    await server.createReader('fc_impatient', PASSWORD, DB);
    await server.sql(`ALTER ROLE fc_impatient SET statement_timeout = '300ms'; GRANT SELECT ON slow TO fc_impatient;`, DB);
    const err = await loadError(pgSpec({ table: 'slow', order_by: ['row_no'], user: 'fc_impatient' }));
    expect(err.code).toBe(ErrorCode.DATA_SOURCE);
    expect(err.message).toMatch(/the server cancelled the read after \d+ rows \(canceling statement due to statement timeout\)/);
    expect(err.hint).toContain('statement_timeout');
  });

  it('a URL with a password in it is refused by the config schema', () => {
    const parsed = DatasetSpec.safeParse({ id_column: 'id', features: [{ name: 'x0' }], source: { kind: 'postgres', url: 'postgres://u:secret@db:5432/credit', table: 'loans' } });
    expect(parsed.success).toBe(false);
    expect(JSON.stringify(parsed.error?.issues)).toContain('the URL carries a password');
    const issues = (data: Record<string, unknown>) => JSON.stringify(DatasetSpec.safeParse({ id_column: 'id', features: [{ name: 'x0' }], ...data }).error?.issues ?? []);
    expect(issues({ path: 'a.csv', source: { kind: 'postgres', url: 'postgres://u@db/credit', table: 'loans' } })).toContain('give either path (a CSV file) or source');
    expect(issues({})).toContain('or a data.source');
    expect(issues({ source: { kind: 'postgres', url: 'postgres://u@db/credit' } })).toContain('give either table (a table or view) or query');
    expect(issues({ source: { kind: 'postgres', url: 'postgres://u@db/credit', table: 'loans', password_env: 'A', password_file: 'b' } })).toContain('not both');
    // A CSV data section without a source is what it always was.
    expect(issues({ path: 'a.csv' })).toBe('[]');
  });
});
