/**
 * `fedcredit synth --postgres URL`: the synthetic CSV files loaded into PostgreSQL tables (one per party, named after
 * it: `tax-bureau` -> `tax_bureau`), so a participant's `data.source` can read a database in the demo and by hand.
 * The columns keep the file's order and names; a feature gets a numeric type from its declared type, the id and
 * the group columns are text, an empty or missing-marked cell is NULL.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import pg from 'pg';
import { ErrorCode, FedcreditError } from '../errors.js';
import type { CsvDatasetSpec, FeatureSpec } from '../data/schema.js';

/** Rows per INSERT: well under PostgreSQL's 65,535 parameters for the widest synthetic file. */
const ROWS_PER_INSERT = 500;

const SQL_TYPE: Record<FeatureSpec['type'], string> = { number: 'double precision', integer: 'bigint', binary: 'smallint', category: 'text' };

export function tableNameFor(party: string): string {
  return party.replace(/-/g, '_');
}

/** Create (or replace) one table per file and load its rows; returns the tables with their row counts. */
export async function loadSynthIntoPostgres(url: string, files: { party: string; file: string; spec: CsvDatasetSpec }[]): Promise<{ table: string; rows: number }[]> {
  if (/^postgres(ql)?:\/\/[^/@]*:[^/@]*@/.test(url)) {
    throw new FedcreditError(
      ErrorCode.CONFIG_INVALID,
      '--postgres: the URL carries a password',
      'remove it from the URL and export PGPASSWORD=<password> instead, so it stays out of the shell history',
    );
  }
  const client = new pg.Client({ connectionString: url, application_name: 'fedcredit synth' });
  try {
    await client.connect();
  } catch (err) {
    throw new FedcreditError(
      ErrorCode.DATA_SOURCE,
      `--postgres ${url}: cannot connect (${(err as Error).message})`,
      'check the URL (postgres://user@host:port/database) and that the server is up; the password is read from PGPASSWORD',
      { cause: err },
    );
  }
  const loaded: { table: string; rows: number }[] = [];
  try {
    for (const { party, file, spec } of files) {
      const table = tableNameFor(party);
      const [header, ...records] = parse(readFileSync(file, 'utf8'), { delimiter: spec.delimiter, skip_empty_lines: true, bom: true }) as string[][];
      const types = new Map(spec.features.map((f) => [f.name, SQL_TYPE[f.type]]));
      if (spec.label_column !== undefined) types.set(spec.label_column, 'smallint');
      const missing = new Set(['', ...spec.missing_values]);
      const columns = header!.map((c) => `${pg.escapeIdentifier(c)} ${types.get(c) ?? 'text'}${c === spec.id_column ? ' PRIMARY KEY' : ''}`);
      await client.query('BEGIN');
      await client.query(`DROP TABLE IF EXISTS ${pg.escapeIdentifier(table)}`);
      await client.query(`CREATE TABLE ${pg.escapeIdentifier(table)} (${columns.join(', ')})`);
      const names = header!.map((c) => pg.escapeIdentifier(c)).join(', ');
      for (let start = 0; start < records.length; start += ROWS_PER_INSERT) {
        const batch = records.slice(start, start + ROWS_PER_INSERT);
        const values: (string | null)[] = [];
        const tuples = batch.map(
          (record) =>
            `(${record
              .map((cell) => {
                values.push(missing.has(cell.trim()) ? null : cell);
                return `$${values.length}`;
              })
              .join(', ')})`,
        );
        await client.query(`INSERT INTO ${pg.escapeIdentifier(table)} (${names}) VALUES ${tuples.join(', ')}`, values);
      }
      await client.query('COMMIT');
      loaded.push({ table, rows: records.length });
    }
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw new FedcreditError(
      ErrorCode.DATA_SOURCE,
      `--postgres ${url}: loading the synthetic data failed (${(err as Error).message})`,
      "the user in the URL needs CREATE on the database's public schema (the tables are dropped and created again)",
      { cause: err },
    );
  } finally {
    await client.end().catch(() => undefined);
  }
  return loaded;
}
