/**
 * A PostgreSQL table, view or query as a participant's data source. The rows stream through a server-side cursor
 * (pg-cursor), `fetch_size` rows per round trip, into the same checks and row store a CSV file feeds
 * (ingestRecords in ./csv.ts). One connection, one read-only REPEATABLE READ transaction, so the load sees one
 * snapshot and cannot write; only the consented columns are selected. docs/operations.md tells a DBA what to expect.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import pg from 'pg';
import Cursor from 'pg-cursor';
import { ErrorCode, FedcreditError } from '../errors.js';
import { columnsToRead, type IngestOptions, type RecordSource, type RowOrigin, type SourceRecord } from './csv.js';
import type { DatasetSpec, PostgresSource } from './schema.js';
import { sha256Hex } from '../bytes.js';

/** Every value arrives as the server's text, exactly as `psql` shows it: the checks parse numbers the way they parse CSV cells. */
const TEXT_TYPES = { getTypeParser: () => (value: string) => value };

/** Types a feature or label column may have: numbers, or text checked cell by cell like a CSV cell. */
const NUMERIC_TYPE_OIDS = new Set([20, 21, 23, 700, 701, 1700]);
const TEXT_TYPE_OIDS = new Set([25, 1042, 1043]);
/** A boolean column may hold a `binary` feature or the label: its `t`/`f` read as 1/0. */
const BOOLEAN_TYPE_OID = 16;

/** SQLSTATE classes and codes the messages below tell apart (PostgreSQL's errcodes table). */
const SQLSTATE = {
  undefinedTable: '42P01',
  undefinedColumn: '42703',
  undefinedSchema: '3F000',
  insufficientPrivilege: '42501',
  invalidPassword: '28P01',
  invalidAuthorization: '28000',
  invalidCatalogName: '3D000',
  syntaxError: '42601',
  readOnlyTransaction: '25006',
  adminShutdown: '57P01',
  crashShutdown: '57P02',
  cannotConnectNow: '57P03',
  queryCanceled: '57014',
} as const;

/** What the node runs, and what the ledger's fingerprint names. */
export interface PostgresPlan {
  /** The SELECT of the consented columns; its SHA-256 is the load report's querySha256. */
  sql: string;
  /** Column names in select order (the records' header). */
  columns: string[];
  /** For messages: `postgres://user@host:port/db table "public"."loans"`, never a password. */
  name: string;
}

/**
 * The SELECT a source runs: the consented columns, quoted, from the table (ordered by order_by or the id column) or
 * from the owner's query as a subquery. The query is put on lines of its own, so a trailing comment in it cannot
 * swallow the wrapper.
 */
export function postgresPlan(spec: DatasetSpec, source: PostgresSource, opts: IngestOptions): PostgresPlan {
  const target = describeTarget(source);
  const name = `${connectionLabel(source)} ${target}`;
  const columns = columnsToRead(spec, opts, name);
  const select = columns.map((c) => pg.escapeIdentifier(c)).join(', ');
  if (source.table !== undefined) {
    const table = [source.schema, source.table]
      .filter((p) => p !== undefined)
      .map((p) => pg.escapeIdentifier(p))
      .join('.');
    const order = (source.order_by ?? [spec.id_column]).map((c) => pg.escapeIdentifier(c)).join(', ');
    return { sql: `SELECT ${select} FROM ${table} ORDER BY ${order}`, columns, name };
  }
  return { sql: `SELECT ${select} FROM (\n${ownerQuery(source.query!, name)}\n) AS consented`, columns, name };
}

/** The source's records, for ingestRecords (see the file comment). */
export function postgresRecords(spec: DatasetSpec, source: PostgresSource, opts: IngestOptions): RecordSource {
  const plan = postgresPlan(spec, source, opts);
  const origin: RowOrigin = {
    name: plan.name,
    noun: source.table !== undefined ? 'table' : 'query',
    querySha256: sha256Hex(plan.sql),
    at: (row) => `row ${row}`,
    column: (_index, column) => `column "${column}"`,
    empty: () =>
      new FedcreditError(
        ErrorCode.DATA_SCHEMA,
        `${plan.name}: no rows`,
        source.table !== undefined ? 'check data.source.table (and schema): the node reads every row of it' : 'check data.source.query: it returned no rows',
      ),
  };
  const config = connectionConfig(source, opts.baseDir ?? '.');
  // Connecting inside the load: a failure removes the previous start's row store too, as a missing CSV file does.
  const feed = async (add: (record: SourceRecord, position: number) => void): Promise<void> => {
    const client = new pg.Client(config);
    // A connection that dies between two reads is reported through the read that fails; this only keeps the process alive.
    let lost: Error | undefined;
    client.on('error', (err) => (lost ??= err));
    let rowsRead = 0;
    try {
      await client.connect().catch((err: unknown) => {
        throw sourceError(err, plan, source, 'connect');
      });
      try {
        await client.query('BEGIN TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY');
        if (source.query !== undefined) await checkQueryColumns(client, source.query, plan);
        const described = await client.query({ text: `${plan.sql} LIMIT 0`, rowMode: 'array', types: TEXT_TYPES });
        const booleans = await checkTypes(client, spec, plan, described.fields);
        add(plan.columns, 0);
        const cursor = client.query(new Cursor<(string | null)[]>(plan.sql, [], { rowMode: 'array', types: TEXT_TYPES }));
        for (;;) {
          const rows = await cursor.read(source.fetch_size);
          if (rows.length === 0) break;
          for (const row of rows) {
            for (const c of booleans) {
              const cell = row[c] ?? null;
              row[c] = cell === 't' ? '1' : cell === 'f' ? '0' : cell;
            }
            add(row, ++rowsRead);
          }
        }
        await cursor.close();
        await client.query('COMMIT');
      } catch (err) {
        throw sourceError(lost ?? err, plan, source, 'read', rowsRead);
      }
    } finally {
      await client.end().catch(() => undefined);
    }
  };
  return { origin, feed };
}

/** Where the rows come from, for messages: the table or the query's hash prefix. */
function describeTarget(source: PostgresSource): string {
  if (source.table !== undefined)
    return `table ${[source.schema, source.table]
      .filter((p) => p !== undefined)
      .map((p) => pg.escapeIdentifier(p))
      .join('.')}`;
  return `query sha256:${sha256Hex(source.query!).slice(0, 12)}`;
}

/** user@host:port/database, never with a password. */
function connectionLabel(source: PostgresSource): string {
  if (source.url !== undefined) {
    const url = new URL(source.url);
    url.password = '';
    url.search = '';
    return url.toString();
  }
  return `postgres://${source.user}@${source.host}:${source.port ?? 5432}/${source.database}`;
}

/**
 * The owner's query, trimmed of a trailing semicolon. It must read as one SELECT (WITH … SELECT, VALUES and TABLE
 * too); the server then refuses anything that is not one statement (the cursor's extended protocol takes one), and
 * the read-only transaction refuses anything that writes.
 */
function ownerQuery(query: string, name: string): string {
  const text = query.trim().replace(/;\s*$/, '');
  const start = text.replace(/^(\s*(--[^\n]*\n|\/\*[\s\S]*?\*\/))*\s*/, '');
  if (!/^(select|with|values|table)\b/i.test(start)) {
    throw new FedcreditError(
      ErrorCode.CONFIG_INVALID,
      `${name}: data.source.query must be a single read-only SELECT; it starts with ${JSON.stringify(start.slice(0, 30))}`,
      'write the query as one SELECT (or WITH ... SELECT) returning the id, label, feature and group columns the data section declares',
    );
  }
  return text;
}

/** A given query must return the columns the load reads, and no column outside the data section and consent. */
async function checkQueryColumns(client: pg.Client, query: string, plan: PostgresPlan): Promise<void> {
  const result = await client.query({ text: `SELECT * FROM (\n${ownerQuery(query, plan.name)}\n) AS consented LIMIT 0`, rowMode: 'array', types: TEXT_TYPES });
  const names = result.fields.map((f) => f.name);
  const missing = plan.columns.filter((c) => !names.includes(c));
  if (missing.length > 0) {
    throw new FedcreditError(
      ErrorCode.DATA_SCHEMA,
      `${plan.name}: the query returns no column ${missing.map((c) => `"${c}"`).join(', ')} (it returns: ${names.map((c) => `"${c}"`).join(', ')})`,
      'make data.source.query select (or alias with AS) every column the data section declares and consent.columns allows',
    );
  }
  const extra = names.filter((c) => !plan.columns.includes(c));
  if (extra.length > 0) {
    throw new FedcreditError(
      ErrorCode.DATA_SCHEMA,
      `${plan.name}: the query selects column(s) ${extra.map((c) => `"${c}"`).join(', ')} that the data section and consent do not cover (the load reads ${plan.columns.map((c) => `"${c}"`).join(', ')})`,
      'select only the id, label, consented feature and group columns in data.source.query (a column used only to filter or order need not be selected)',
    );
  }
}

/**
 * Features and the label must be numbers, or text checked cell by cell (a boolean only for a binary feature or the
 * label); a date, say, is refused up front. Returns the positions of boolean columns, whose t/f read as 1/0.
 */
async function checkTypes(client: pg.Client, spec: DatasetSpec, plan: PostgresPlan, fields: pg.FieldDef[]): Promise<number[]> {
  const numeric = new Set(spec.features.map((f) => f.name));
  const binary = new Set(spec.features.filter((f) => f.type === 'binary').map((f) => f.name));
  if (spec.label_column !== undefined) {
    numeric.add(spec.label_column);
    binary.add(spec.label_column);
  }
  const booleans = fields.flatMap((f, i) => (binary.has(f.name) && f.dataTypeID === BOOLEAN_TYPE_OID ? [i] : []));
  const wrong = fields.filter((f, i) => numeric.has(f.name) && !booleans.includes(i) && !NUMERIC_TYPE_OIDS.has(f.dataTypeID) && !TEXT_TYPE_OIDS.has(f.dataTypeID));
  if (wrong.length === 0) return booleans;
  const types = await client.query<{ oid: number; name: string }>('SELECT oid::int AS oid, format_type(oid, NULL) AS name FROM pg_type WHERE oid = ANY($1::oid[])', [wrong.map((f) => f.dataTypeID)]);
  const typeName = (oid: number) => types.rows.find((t) => t.oid === oid)?.name ?? `type ${oid}`;
  throw new FedcreditError(
    ErrorCode.DATA_SCHEMA,
    `${plan.name}: ${wrong.map((f) => `column "${f.name}" is of type ${typeName(f.dataTypeID)}`).join(', ')}; a feature or label column must be a number (integer, bigint, real, double precision, numeric) or text holding numbers (a boolean only for a binary feature or the label)`,
    'cast the column to a number in a view or in data.source.query (e.g. `flag::int AS flag`, `extract(epoch FROM opened_at) AS opened_at`), or leave it out of data.features',
  );
}

function connectionConfig(source: PostgresSource, baseDir: string): pg.ClientConfig {
  const config: pg.ClientConfig = source.url !== undefined ? fromUrl(source.url) : { host: source.host, port: source.port ?? 5432, database: source.database, user: source.user };
  config.password = readPassword(source, baseDir);
  config.connectionTimeoutMillis = source.connect_timeout_s * 1000;
  config.keepAlive = true;
  config.application_name = 'fedcredit';
  if (source.ssl) {
    const file = (path: string, what: string) => {
      try {
        return readFileSync(resolve(baseDir, path), 'utf8');
      } catch (err) {
        throw new FedcreditError(
          ErrorCode.CONFIG_INVALID,
          `cannot read data.source.ssl.${what} ${resolve(baseDir, path)}: ${(err as NodeJS.ErrnoException).code ?? err}`,
          "check the path (relative to the config file) and that the node's user may read it",
        );
      }
    };
    config.ssl = {
      ca: file(source.ssl.ca_file, 'ca_file'),
      ...(source.ssl.cert_file !== undefined ? { cert: file(source.ssl.cert_file, 'cert_file'), key: file(source.ssl.key_file!, 'key_file') } : {}),
      rejectUnauthorized: true,
    };
  }
  return config;
}

/**
 * Host, port, database and user of a postgres:// URL (a host of `%2Fsocket%2Fdir` is a unix socket folder). Parsed
 * here rather than handed to the driver, whose connection string would override the password read below.
 */
function fromUrl(url: string): pg.ClientConfig {
  const parsed = new URL(url);
  if (parsed.search !== '') {
    throw new FedcreditError(
      ErrorCode.CONFIG_INVALID,
      `data.source.url has parameters (${parsed.search}); they are not read`,
      'give TLS in data.source.ssl (ca_file, cert_file, key_file) and the timeout in connect_timeout_s, and remove the ?… part of the URL',
    );
  }
  return {
    host: decodeURIComponent(parsed.hostname) || 'localhost',
    port: parsed.port === '' ? 5432 : Number(parsed.port),
    database: decodeURIComponent(parsed.pathname.replace(/^\//, '')) || undefined,
    user: decodeURIComponent(parsed.username) || undefined,
  };
}

/** The password from the environment or a file; never from the config itself. */
function readPassword(source: PostgresSource, baseDir: string): string | undefined {
  if (source.password_env !== undefined) {
    const value = process.env[source.password_env];
    if (value === undefined || value === '') {
      throw new FedcreditError(
        ErrorCode.CONFIG_INVALID,
        `data.source.password_env names ${source.password_env}, which is not set in the participant's environment`,
        `export ${source.password_env}=<the database password> before starting the participant (or use password_file)`,
      );
    }
    return value;
  }
  if (source.password_file !== undefined) {
    const file = resolve(baseDir, source.password_file);
    try {
      return readFileSync(file, 'utf8').split(/\r?\n/)[0]!;
    } catch (err) {
      throw new FedcreditError(
        ErrorCode.CONFIG_INVALID,
        `cannot read data.source.password_file ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`,
        "check the path (relative to the config file) and that the node's user may read it (chmod 600)",
      );
    }
  }
  return undefined;
}

/** A driver or server error as the FedcreditError a data owner can act on; FedcreditErrors of the checks pass through. */
function sourceError(err: unknown, plan: PostgresPlan, source: PostgresSource, stage: 'connect' | 'read', rowsRead = 0): unknown {
  if (err instanceof FedcreditError) return err;
  const e = err as Error & { code?: string; severity?: string };
  const code = typeof e?.code === 'string' ? e.code : '';
  const detail = e instanceof Error ? e.message : String(err);
  const who = source.user ?? (source.url !== undefined ? decodeURIComponent(new URL(source.url).username) : '') ?? '';
  const fail = (errorCode: ErrorCode, message: string, hint: string) => new FedcreditError(errorCode, `${plan.name}: ${message}`, hint, { cause: err });
  // The driver's words when the server asks for a password and none was configured.
  if (/client password must be a string|password must be a string|no password/i.test(detail) && source.password_env === undefined && source.password_file === undefined) {
    return fail(
      ErrorCode.CONFIG_INVALID,
      `the database asks user "${who}" for a password, and data.source gives none`,
      'set data.source.password_env (the name of an environment variable holding the password) or password_file',
    );
  }
  switch (code) {
    case SQLSTATE.invalidPassword:
      return fail(
        ErrorCode.DATA_SOURCE,
        `the database refused the password of user "${who}" (${detail})`,
        'check the password in the variable named by data.source.password_env (or the file named by password_file) and the user name',
      );
    case SQLSTATE.invalidAuthorization:
      return fail(
        ErrorCode.DATA_SOURCE,
        `the database refused the connection (${detail})`,
        'ask the DBA to allow this user from this host in pg_hba.conf (host ... scram-sha-256, or hostssl with TLS)',
      );
    case SQLSTATE.invalidCatalogName:
      return fail(ErrorCode.DATA_SOURCE, `no such database (${detail})`, "check data.source.database (or the URL's path)");
    case SQLSTATE.undefinedTable:
    case SQLSTATE.undefinedSchema:
      return fail(
        ErrorCode.DATA_SCHEMA,
        `the table or view does not exist (${detail})`,
        "check data.source.table and schema (or the query's FROM); a view the DBA renamed or dropped must be restored",
      );
    case SQLSTATE.undefinedColumn:
      return fail(
        ErrorCode.DATA_SCHEMA,
        `a declared column is not in the table (${detail})`,
        'make data.id_column, label_column, features[].name and group_columns match the column names (a view can rename them)',
      );
    case SQLSTATE.insufficientPrivilege:
      return fail(
        ErrorCode.DATA_SOURCE,
        `user "${who}" may not read it (${detail})`,
        'ask the DBA to GRANT SELECT on the table or view (and USAGE on its schema) to this role; docs/operations.md has the read-only role to create',
      );
    case SQLSTATE.syntaxError:
      return fail(
        ErrorCode.CONFIG_INVALID,
        `the query is not a single valid SELECT (${detail})`,
        'check data.source.query in psql; it must be one SELECT statement, without a second statement after a semicolon',
      );
    case SQLSTATE.readOnlyTransaction:
      return fail(ErrorCode.CONFIG_INVALID, `the query tries to write (${detail})`, 'data.source.query must only read: the node runs it in a read-only transaction');
    case SQLSTATE.queryCanceled:
      return fail(
        ErrorCode.DATA_SOURCE,
        `the server cancelled the read after ${rowsRead} rows (${detail}); nothing was kept from this load`,
        'a statement_timeout on the role or database, or a DBA, stopped it: raise the timeout for this role (it needs the time to stream every row), then start the participant again',
      );
    case SQLSTATE.adminShutdown:
    case SQLSTATE.crashShutdown:
    case SQLSTATE.cannotConnectNow:
      return lostError(err, plan, stage, rowsRead, detail);
  }
  if (stage === 'connect' || code.startsWith('08') || /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND|EPIPE|terminated|timeout|Connection/i.test(`${code} ${detail}`)) {
    return lostError(err, plan, stage, rowsRead, detail);
  }
  // Any other error the server reported (it carries a SQLSTATE and a severity): its own words, named as the database's.
  if (code !== '' && typeof e.severity === 'string') {
    return fail(
      ErrorCode.DATA_SOURCE,
      `the database reported ${e.severity} ${code}: ${detail}`,
      "the message is the server's own; check data.source (table, query) and the role's rights with the DBA",
    );
  }
  return err;
}

function lostError(err: unknown, plan: PostgresPlan, stage: 'connect' | 'read', rowsRead: number, detail: string): FedcreditError {
  if (stage === 'connect') {
    return new FedcreditError(
      ErrorCode.DATA_SOURCE,
      `${plan.name}: cannot connect to the database (${detail})`,
      'check that the server is up and reachable from this host (host, port, firewall, TLS settings in data.source); the participant reads its rows when it starts',
      { cause: err },
    );
  }
  return new FedcreditError(
    ErrorCode.DATA_SOURCE,
    `${plan.name}: the connection to the database was lost after ${rowsRead} rows (${detail}); nothing was kept from this load`,
    'start the participant again once the database is back; it reads every row again in one transaction',
    { cause: err },
  );
}
