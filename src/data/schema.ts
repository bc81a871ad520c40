import { z } from 'zod';

/** How a cell that is empty, `NA`, or not a number is handled. Every such cell is counted in the load report. */
export const MissingPolicy = z.enum(['impute', 'drop', 'reject']);
export type MissingPolicy = z.infer<typeof MissingPolicy>;

export const FeatureSpec = z
  .object({
    name: z.string().min(1, 'a feature needs a column name'),
    /** number: any real; integer: must be whole; binary: 0 or 1. A cell that breaks its type counts as non-numeric; a
     * column more than half of whose non-empty cells do is refused (src/data/csv.ts, NON_NUMERIC_REFUSE_SHARE).
     * category: any text (e.g. an industry code), binned one WOE per level (a job must bin it). */
    type: z.enum(['number', 'integer', 'binary', 'category']).default('number'),
    /** impute: keep the row, fill the cell later with the federation-wide mean; drop: drop the row; reject: fail the load. */
    missing: MissingPolicy.default('impute'),
  })
  .strict();
export type FeatureSpec = z.infer<typeof FeatureSpec>;

/** TLS to the database: the server's certificate must chain to ca_file and name the host connected to. */
export const PostgresTls = z
  .object({
    /** PEM file of the CA that signed the database server's certificate (relative to the config file). */
    ca_file: z.string().min(1),
    /** A client certificate and key, for a server that authenticates its clients by certificate. */
    cert_file: z.string().min(1).optional(),
    key_file: z.string().min(1).optional(),
  })
  .strict()
  .refine((t) => (t.cert_file === undefined) === (t.key_file === undefined), { message: 'give cert_file and key_file together, or neither' });

const sqlName = z.string().min(1).max(63, 'PostgreSQL names are at most 63 bytes');

/**
 * `data.source` of kind postgres: the participant reads its rows from a table, a view or a query of one read-only
 * transaction over one connection, through a server-side cursor (src/data/postgres.ts; docs/configuration.md).
 */
export const PostgresSource = z
  .object({
    kind: z.literal('postgres'),
    /** postgres://user@host:port/database (no password in it), or host/port/database/user below. */
    url: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'a URL starts with postgres:// or postgresql://')
      .optional(),
    host: z.string().min(1).optional(),
    port: z.number().int().min(1).max(65535).optional(),
    database: z.string().min(1).optional(),
    user: z.string().min(1).optional(),
    /** Name of the environment variable holding the password. */
    password_env: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'the name of an environment variable, e.g. FEDCREDIT_DB_PASSWORD')
      .optional(),
    /** File holding the password (first line; relative to the config file; readable by the node's user only). */
    password_file: z.string().min(1).optional(),
    ssl: PostgresTls.optional(),
    /** A table or view to read (only the consented columns are selected), in `schema` (default: the search path). */
    schema: sqlName.optional(),
    table: sqlName.optional(),
    /** Columns of the table the rows are read in order of (default: the id column), so every load reads the same order. */
    order_by: z.array(sqlName).min(1).optional(),
    /** Or a single read-only SELECT; the node runs it as a subquery and selects only the consented columns from it. */
    query: z.string().min(1).optional(),
    /** Rows fetched from the server-side cursor per round trip. */
    fetch_size: z.number().int().min(1).max(1_000_000).default(10_000),
    /** Seconds to wait for the connection (and the TLS and password exchange). */
    connect_timeout_s: z.number().positive().default(15),
  })
  .strict()
  .superRefine((s, ctx) => {
    const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
    const parts = (['host', 'port', 'database', 'user'] as const).filter((k) => s[k] !== undefined);
    if (s.url === undefined && (s.host === undefined || s.database === undefined || s.user === undefined)) {
      issue('url', 'give either url (postgres://user@host:port/database) or host, database and user');
    }
    if (s.url !== undefined && parts.length > 0) issue('url', `give either url or ${parts.join('/')}, not both`);
    if (s.url !== undefined && /^postgres(ql)?:\/\/[^/@]*:[^/@]*@/.test(s.url)) {
      issue('url', 'the URL carries a password: remove it and set password_env (an environment variable) or password_file instead, so no secret sits in the config');
    }
    if (s.password_env !== undefined && s.password_file !== undefined) issue('password_env', 'give password_env or password_file, not both');
    if ((s.table === undefined) === (s.query === undefined)) issue('table', 'give either table (a table or view) or query (a single SELECT)');
    if (s.query !== undefined && (s.order_by !== undefined || s.schema !== undefined)) issue('query', 'order_by and schema go with table; a query orders and qualifies its own rows');
  });
export type PostgresSource = z.infer<typeof PostgresSource>;

/** A column named "": the loader names a blank header cell after its position. */
const BLANK_HEADER_HINT = 'a column name cannot be empty; a blank header cell (the unnamed row-number column of an R or pandas export) is named column_<position>, e.g. column_1 for the first column';

/** The `data` section of a participant config: where the rows are (a CSV file, or data.source) and what their columns mean. */
export const DatasetSpec = z
  .object({
    /** The CSV file (relative to the config file); absent when data.source names a database. */
    path: z.string().min(1, 'give the path of the CSV file (relative to the config file)').optional(),
    /** Where the rows are when they are not in a CSV file. */
    source: PostgresSource.optional(),
    delimiter: z.string().length(1, 'the delimiter is one character, e.g. "," or ";"').default(','),
    id_column: z.string().min(1, BLANK_HEADER_HINT),
    /** Present on parties that hold labels (every party in horizontal jobs; the guest in vertical jobs). Values 0/1. */
    label_column: z.string().min(1, BLANK_HEADER_HINT).optional(),
    features: z.array(FeatureSpec).min(1, 'declare at least one feature column'),
    /** Categorical columns (region, industry, size class) read as text to group reports by, e.g. for fairness; never a
     * model feature. A job can group by one only if it is listed here. */
    group_columns: z.array(z.string().min(1)).optional(),
    duplicate_ids: z.enum(['reject', 'keep_first']).default('reject'),
    /** Strings (besides the empty cell) that mean "missing". */
    missing_values: z.array(z.string()).default(['', 'NA', 'N/A', 'NaN', 'null', 'NULL']),
  })
  .strict()
  .superRefine((d, ctx) => {
    if (d.path === undefined && d.source === undefined) ctx.addIssue({ code: 'custom', path: ['path'], message: 'give the path of the CSV file (relative to the config file), or a data.source' });
    if (d.path !== undefined && d.source !== undefined) ctx.addIssue({ code: 'custom', path: ['source'], message: `give either path (a CSV file) or source (a ${d.source.kind} database), not both` });
  });
export type DatasetSpec = z.infer<typeof DatasetSpec>;

/** A data section that reads a CSV file (what the synthetic data and the public data sets come with). */
export type CsvDatasetSpec = DatasetSpec & { path: string };
