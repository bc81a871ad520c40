import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { CsvError, parse } from 'csv-parse';
import { ErrorCode, FedcreditError } from '../errors.js';
import type { DatasetSpec, FeatureSpec } from './schema.js';
import { Rng } from '../random.js';
import { ID_HASH_BYTES, IdBuckets, idHash, type Duplicate } from './id-buckets.js';
import type { LoadReport } from './load-report.js';
import { blockRowsFor, FileAppender, ID_HASH_FILE, IDS_FILE, readLines, readRecordPieces, RowStore, type RowStoreMeta, X_FILE, Y_FILE } from './row-store.js';

/**
 * Where rows come from, for the messages that name a row: a CSV file (positions are lines, the header is line 1) or
 * a database query (positions are rows of the result, the first is row 1).
 */
export interface RowOrigin {
  /** The source in messages and in the load report: the file's path, or the database and table. */
  name: string;
  /** SHA-256 of the SQL a database source runs, for the load report. */
  querySha256?: string;
  /** What holds the rows, in a hint: `file`, `table`, `query`. */
  noun: string;
  /** How a position reads: `line 57`, `row 57`. */
  at(position: number): string;
  /** How a column reads: `column 9 "debt_to_assets"` in a file, `column "debt_to_assets"` in a query. */
  column(index: number, name: string): string;
  /** The error when the source holds no data rows (hasHeader: a header or a result description was seen). */
  empty(hasHeader: boolean): FedcreditError;
  /** The cell at a position and column, read again (only to name a repeated id whose rows were all dropped). */
  cellAt?(position: number, column: number): Promise<string | undefined>;
}

/** A row's cells in the source's column order; null is an SQL NULL (always missing). */
export type SourceRecord = readonly (string | null)[];

export interface LoadedDataset {
  /** Trimmed id strings, one per kept row. */
  ids: string[];
  /** Feature names in the order requested. */
  features: string[];
  /** Row-major rows x features; NaN where a cell is to be imputed later. */
  x: Float32Array;
  /** Labels 0/1 when the spec has label_column and opts.withLabels !== false. */
  y?: Float32Array;
  /** Values of data.group_columns, one string per kept row (missing cells are ''). */
  groups: Record<string, string[]>;
  /** Categorical features (type: category): their levels in order of first appearance in the file; x holds a
   * level's index in this list (NaN: missing). */
  levels?: Record<string, string[]>;
  rows: number;
  report: LoadReport;
}

export interface IngestOptions extends LoadOptions {
  /** Folder of the row store; replaced if it exists. */
  dir: string;
  /** Bytes of feature cells per block of a pass over the rows (default 4 MiB). */
  blockBytes?: number;
  /**
   * Store the rows of a file larger than one block in a random order (seeded by the id set), so that every block is
   * a sample of the whole file and a file sorted by label or date still trains on mixed mini-batches. The
   * participant sets it; loadDataset keeps the file's order.
   */
  scatter?: boolean;
}

export interface LoadOptions {
  /** spec.path is resolved relative to this (the config file's folder); default: the working directory. */
  baseDir?: string;
  /** Subset (and order) of the spec's features to read; the other columns are never converted. */
  columns?: string[];
  /** Default true. */
  withLabels?: boolean;
}

const DELIMITER_GUESSES = [',', ';', '\t', '|'];

/**
 * A feature more than this share of whose present (non-missing) cells are not valid values of its type is not a
 * column of that type at all (a text column, or the wrong column): the load refuses it rather than impute it away.
 */
export const NON_NUMERIC_REFUSE_SHARE = 0.5;
/** A feature with more than this share of its kept rows imputed is reported with a warning by the node. */
export const IMPUTED_WARN_SHARE = 0.2;
/** Distinct invalid values kept per feature to show in the refusal. */
const SAMPLE_VALUES = 5;
/** Stops an unclosed quote from swallowing the rest of a multi-gigabyte file into one field. */
const MAX_RECORD_CHARS = 4 * 1024 * 1024;

interface ColumnIndex {
  id: number;
  label?: number;
  features: number[];
  groups: number[];
}

/** A source's rows as ingestRecords reads them. */
export interface RecordSource {
  origin: RowOrigin;
  /**
   * Calls `add` once per record, in order (the header first), and resolves when the source is exhausted; it may
   * throw a FedcreditError naming a problem of its own source. Called once: the source is read once.
   */
  feed(add: (record: SourceRecord, position: number) => void): Promise<void>;
}

/** The row stores one pass over a source writes. */
export interface IngestedRows {
  /** The kept rows: a guest's training rows. */
  rows: RowStore;
  /** At a guest asked for them, the rows dropped only for an empty label: its applicants with no outcome yet. */
  unlabelled?: RowStore;
}

/**
 * Stream a CSV file into a row store on disk (src/data/row-store.ts) following its declared schema. Every dropped
 * row and every odd cell is counted in the report; cells under a `reject` policy, bad labels and (by default)
 * duplicate ids fail the load. Header line = line 1; a blank header cell is named `column_<1-based index>`. Memory
 * does not grow with the file: rows go to disk as they are parsed, and duplicate ids are found bucket by bucket.
 */
export async function ingestDataset(spec: DatasetSpec, opts: IngestOptions): Promise<RowStore> {
  return (await ingestRecords(spec, opts, csvRecords(spec, opts))).rows;
}

/** A CSV file's records (see ingestDataset). */
export function csvRecords(spec: DatasetSpec, opts: IngestOptions): RecordSource {
  if (spec.path === undefined) {
    throw new FedcreditError(
      ErrorCode.CONFIG_INVALID,
      'data.path is not set: the data section reads a database (data.source), not a CSV file',
      'load it with ingestSource or loadSource (src/data/source.ts), which read either',
    );
  }
  const file = resolve(opts.baseDir ?? '.', spec.path);
  const delimiter = spec.delimiter;
  let headerLength = 0;
  const origin: RowOrigin = {
    name: file,
    noun: 'file',
    at: (line) => `line ${line}`,
    column: (index, name) => `column ${index + 1} "${name}"`,
    empty: (hasHeader) =>
      new FedcreditError(
        ErrorCode.DATA_SCHEMA,
        `${file}: no data rows (${hasHeader ? 'the file has only a header' : 'the file is empty'})`,
        'check that data.path points at the right file; it needs a header row and at least one data row',
      ),
    cellAt: (line, column) => csvCellOnLine(file, delimiter, line, column),
  };
  return {
    origin,
    feed: async (add) => {
      // Rows are handled inside on_record, in step with the parser: nothing is buffered, line numbers are the
      // parser's, and the first problem (ours or the parser's) stops the stream.
      const parser = parse({
        bom: true,
        delimiter,
        relax_column_count: false,
        skip_empty_lines: true,
        trim: true,
        max_record_size: MAX_RECORD_CHARS,
        on_record: (record: string[], context) => {
          if (headerLength === 0) headerLength = record.length;
          add(record, context.lines);
          return null;
        },
      });
      try {
        await pipeline(createReadStream(file, { highWaterMark: 1024 * 1024 }), parser.resume());
      } catch (err) {
        throw translateError(err, file, headerLength, opts.dir);
      }
    },
  };
}

/**
 * Stream records from any source into a row store, through the one set of checks every source shares: the header
 * (first record: column names) is matched against the spec, then every row's cells are type-checked, missing values
 * follow their policies, and repeated ids are found.
 *
 * With `unlabelledDir`, the same pass also writes the rows dropped only for an empty label to a store of their own
 * there (no labels, never scattered, checked as the kept rows are): a guest's applicants with no outcome yet, which
 * it scores but never trains on. The folder is replaced; it is removed when there are none (or no label column).
 */
export async function ingestRecords(spec: DatasetSpec, opts: IngestOptions, source: RecordSource, unlabelledDir?: string): Promise<IngestedRows> {
  const { origin } = source;
  const features = pickFeatures(spec, opts.columns, origin.name);
  const labelColumn = opts.withLabels === false ? undefined : spec.label_column;
  const apart = labelColumn === undefined ? undefined : unlabelledDir;
  const dirs = [opts.dir, ...(unlabelledDir === undefined ? [] : [unlabelledDir])];
  let loader: Loader;
  try {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    for (const dir of [opts.dir, ...(apart === undefined ? [] : [apart])]) mkdirSync(dir, { recursive: true, mode: 0o700 });
    loader = new Loader(spec, origin, features, labelColumn, opts.dir, opts.blockBytes, opts.scatter ?? false, apart);
  } catch (err) {
    throw storeError(err, opts.dir);
  }
  try {
    await source.feed((record, position) => loader.add(record, position));
    const stored = await loader.finish();
    if (stored.unlabelled?.rows !== 0) return stored;
    rmSync(stored.unlabelled.dir, { recursive: true, force: true });
    return { rows: stored.rows };
  } catch (err) {
    loader.discard();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    throw translateStoreError(err, opts.dir);
  }
}

/** The columns a load reads, in order: the id, the label (unless withLabels is false), the asked features, the group columns. */
export function columnsToRead(spec: DatasetSpec, opts: LoadOptions, sourceName: string): string[] {
  const names = [spec.id_column, ...(opts.withLabels === false || spec.label_column === undefined ? [] : [spec.label_column])];
  names.push(...pickFeatures(spec, opts.columns, sourceName).map((f) => f.name), ...(spec.group_columns ?? []));
  return [...new Set(names)];
}

/** Read a CSV file into memory (through a temporary row store, so both paths share one parser). */
export async function loadDataset(spec: DatasetSpec, opts: LoadOptions = {}): Promise<LoadedDataset> {
  const dir = mkdtempSync(join(tmpdir(), 'fedcredit-rows-'));
  try {
    return datasetOf(await ingestDataset(spec, { ...opts, dir: join(dir, 'rows') }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A row store's rows in memory. */
export function datasetOf(store: RowStore): LoadedDataset {
  return { ...store.materialise(), features: store.features, rows: store.rows, report: store.meta.report, ...(store.meta.levels ? { levels: store.meta.levels } : {}) };
}

/**
 * The rows a guest scores: its kept rows, then those kept for scoring only (IngestedRows.unlabelled: applicants
 * with no outcome yet), with the second set's category codes mapped onto the first's levels (new levels appended), and no
 * labels. The first set's report is kept. An id in both sets is scored from the first.
 */
export function withScoringRows(kept: LoadedDataset, extra: LoadedDataset): LoadedDataset {
  if (extra.rows === 0) return kept;
  const width = kept.features.length;
  if (extra.features.join('\n') !== kept.features.join('\n')) throw new RangeError('the rows kept for scoring have other features than the training rows');
  const levels: Record<string, string[]> = Object.fromEntries(Object.entries(kept.levels ?? {}).map(([f, l]) => [f, [...l]]));
  const recode = kept.features.map((f) => {
    const own = extra.levels?.[f];
    if (!own) return undefined;
    const merged = (levels[f] ??= []);
    return own.map((level) => {
      const at = merged.indexOf(level);
      return at >= 0 ? at : merged.push(level) - 1;
    });
  });
  const known = new Set(kept.ids);
  const rows = extra.ids.flatMap((id, r) => (known.has(id) ? [] : [r]));
  const x = new Float32Array((kept.rows + rows.length) * width);
  x.set(kept.x);
  rows.forEach((r, i) => {
    for (let j = 0; j < width; j++) {
      const v = extra.x[r * width + j]!;
      const codes = recode[j];
      x[(kept.rows + i) * width + j] = codes && !Number.isNaN(v) ? codes[v]! : v;
    }
  });
  const groups = Object.fromEntries(Object.entries(kept.groups).map(([g, values]) => [g, [...values, ...rows.map((r) => extra.groups[g]?.[r] ?? '')]]));
  return {
    ids: [...kept.ids, ...rows.map((r) => extra.ids[r]!)],
    features: kept.features,
    x,
    groups,
    ...(Object.keys(levels).length > 0 ? { levels } : {}),
    rows: kept.rows + rows.length,
    report: kept.report,
  };
}

/** A CSV cell, quoted when it holds a delimiter, a quote or a line break. */
export function csvCell(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

/** A few human lines for logs. */
export function formatLoadReport(report: LoadReport): string {
  const dropped = report.rowsRead - report.rowsKept;
  const lines = [`${report.file}: ${report.rowsRead} rows read, ${report.rowsKept} kept, ${dropped} dropped` + (dropped > 0 ? ` (${formatCounts(report.rowsDropped)})` : '')];
  const sections: [string, Record<string, number>, number?][] = [
    ['missing cells', report.missingCells, report.rowsRead],
    ['non-numeric cells', report.nonNumericCells, report.rowsRead],
    ['imputed cells (filled later with the mean)', report.imputedCells, report.rowsKept],
  ];
  for (const [title, counts, rows] of sections) {
    if (Object.values(counts).some((n) => n > 0)) lines.push(`  ${title}: ${formatCounts(counts, rows)}`);
  }
  if (report.duplicateIds > 0 || report.invalidIds > 0) {
    lines.push(`  ids: ${report.duplicateIds} duplicate (later rows dropped), ${report.invalidIds} empty (rows dropped)`);
  }
  if (report.rowsSha256 !== undefined) {
    lines.push(`  dataset fingerprint: rows sha256 ${report.rowsSha256}${report.querySha256 === undefined ? '' : `, query sha256 ${report.querySha256}`}`);
  }
  return lines.join('\n');
}

/** `name n` for each nonzero count, with its share of `rows` when given. */
function formatCounts(counts: Record<string, number>, rows?: number): string {
  return Object.entries(counts)
    .filter(([, n]) => n > 0)
    .map(([name, n]) => `${name} ${n}${rows ? ` (${formatShare(n / rows)})` : ''}`)
    .join(', ');
}

function formatShare(share: number): string {
  return `${(100 * share).toFixed(share < 0.001 ? 2 : 1)}%`;
}

/** Features whose imputed cells exceed IMPUTED_WARN_SHARE of the kept rows, most imputed first. */
export function heavilyImputed(report: LoadReport): { feature: string; cells: number; share: number }[] {
  if (report.rowsKept === 0) return [];
  return Object.entries(report.imputedCells)
    .map(([feature, cells]) => ({ feature, cells, share: cells / report.rowsKept }))
    .filter((f) => f.share > IMPUTED_WARN_SHARE)
    .sort((a, b) => b.share - a.share);
}

/**
 * Features with invalid cells (present, but not a value of the feature's type: `n/a`, `12,345.00`), with a few of
 * them, for a warning in the owner's own log: the load report counts them but, as it is sent, shows none.
 */
export function invalidCells(meta: Pick<RowStoreMeta, 'report' | 'invalidExamples'>): { feature: string; cells: number; examples: string[]; message: string }[] {
  return Object.entries(meta.report.nonNumericCells)
    .filter(([, cells]) => cells > 0)
    .map(([feature, cells]) => {
      const examples = meta.invalidExamples?.[feature] ?? [];
      const shown = examples.length > 0 ? ` (e.g. ${examples.map(preview).join(', ')})` : '';
      const format = localNumberFormat(examples);
      const fix = format ? `${format}: ${PLAIN_NUMBERS}` : 'list such markers in data.missing_values, or clean the data';
      return {
        feature,
        cells,
        examples,
        message: `feature "${feature}": ${cells} cell${cells > 1 ? 's are' : ' is'} not a valid value of its type${shown} and ${cells > 1 ? 'were' : 'was'} handled by its missing policy; ${fix}`,
      };
    });
}

function pickFeatures(spec: DatasetSpec, columns: string[] | undefined, file: string): FeatureSpec[] {
  if (!columns) return spec.features;
  const byName = new Map(spec.features.map((f) => [f.name, f]));
  const unknown = columns.filter((c) => !byName.has(c));
  if (unknown.length > 0) {
    throw new FedcreditError(
      ErrorCode.DATA_SCHEMA,
      `${file}: column(s) ${quoteList(unknown)} were asked for but are not declared in data.features ` + `(declared: ${quoteList([...byName.keys()])})`,
      'declare the columns in data.features of the participant config, or stop asking for them',
    );
  }
  return columns.map((c) => byName.get(c)!);
}

/** Partitions of a scattered store: a few MiB of write buffers at most. */
const MAX_SCATTER_PARTS = 256;

/** Drop reasons are numbered in the id buckets; 0 = the row was kept. */
const NO_REASON = 0;

/**
 * One row store a pass writes: its files and what it kept and dropped. A pass writes one (the rows), or two at a
 * guest (also its applicants with no outcome yet, kept apart for scoring); the cells are parsed once, for both.
 */
class StoreWriter {
  readonly xOut: FileAppender;
  readonly yOut?: FileAppender;
  readonly idsOut: FileAppender;
  readonly hashOut: FileAppender;
  readonly buckets: IdBuckets;
  readonly reasons: string[] = ['kept'];
  kept = 0;
  readonly imputedCounts: Uint32Array;
  readonly report: LoadReport;
  private closed = false;

  constructor(
    readonly dir: string,
    width: number,
    /** Whether the store keeps a label per row (not the store of rows without one). */
    readonly labels: boolean,
    /** Rows with a label are the ones it drops (`labelled`): the store of a guest's applicants, which may be empty. */
    readonly unlabelledOnly: boolean,
    readonly scatterRows: boolean,
    file: string,
  ) {
    this.xOut = new FileAppender(join(dir, X_FILE));
    if (labels) this.yOut = new FileAppender(join(dir, Y_FILE));
    this.idsOut = new FileAppender(join(dir, IDS_FILE));
    this.hashOut = new FileAppender(join(dir, ID_HASH_FILE));
    this.buckets = new IdBuckets(dir);
    this.imputedCounts = new Uint32Array(width);
    this.report = { file, rowsRead: 0, rowsKept: 0, rowsDropped: {}, missingCells: {}, nonNumericCells: {}, imputedCells: {}, duplicateIds: 0, invalidIds: 0 };
  }

  reasonCode(reason: string): number {
    const code = this.reasons.indexOf(reason);
    return code >= 0 ? code : this.reasons.push(reason) - 1;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.xOut.close();
    this.yOut?.close();
    this.idsOut.close();
    this.hashOut.close();
  }

  discard(): void {
    try {
      this.close();
    } catch {
      // the files are removed with the store's folder
    }
    this.buckets.discard();
  }
}

/** Holds the parse state: header, the counters every store shares, and the stores it writes. */
class Loader {
  private cols?: ColumnIndex;
  private readonly missing: Set<string>;
  private readonly row: Float32Array;
  private readonly rowBytes: Uint8Array;
  private readonly labelCell = new Float32Array(1);
  private readonly labelBytes = new Uint8Array(this.labelCell.buffer);
  private rowsRead = 0;
  private invalidIds = 0;
  private readonly missingCounts: Uint32Array;
  private readonly nonNumericCounts: Uint32Array;
  /** Per feature, the first few distinct invalid values, to show when the column is refused. */
  private readonly invalidSamples: Set<string>[];
  /** Per feature: level -> code, for categorical features only. */
  private readonly levelCodes: (Map<string, number> | undefined)[];
  private readonly rows: StoreWriter;
  private readonly unlabelled?: StoreWriter;

  constructor(
    private readonly spec: DatasetSpec,
    private readonly origin: RowOrigin,
    private readonly features: FeatureSpec[],
    private readonly labelColumn: string | undefined,
    dir: string,
    private readonly blockBytes: number | undefined,
    scatterRows: boolean,
    unlabelledDir: string | undefined,
  ) {
    this.missing = new Set(['', ...spec.missing_values.map((v) => v.trim())]);
    this.row = new Float32Array(features.length);
    this.rowBytes = new Uint8Array(this.row.buffer);
    this.missingCounts = new Uint32Array(features.length);
    this.nonNumericCounts = new Uint32Array(features.length);
    this.invalidSamples = features.map(() => new Set<string>());
    this.levelCodes = features.map((f) => (f.type === 'category' ? new Map<string, number>() : undefined));
    this.rows = new StoreWriter(dir, features.length, labelColumn !== undefined, false, scatterRows, origin.name);
    if (unlabelledDir !== undefined) this.unlabelled = new StoreWriter(unlabelledDir, features.length, false, true, false, origin.name);
  }

  private get stores(): StoreWriter[] {
    return this.unlabelled ? [this.rows, this.unlabelled] : [this.rows];
  }

  add(record: SourceRecord, line: number): void {
    if (this.cols) this.addRow(record, line, this.cols);
    else this.cols = this.readHeader(record, line);
  }

  async finish(): Promise<IngestedRows> {
    for (const store of this.stores) store.close();
    if (!this.cols || this.rowsRead === 0) throw this.origin.empty(this.cols !== undefined);
    this.refuseMistypedColumns();
    const rows = await this.finishStore(this.rows);
    const unlabelled = this.unlabelled && (await this.finishStore(this.unlabelled));
    return { rows, ...(unlabelled ? { unlabelled } : {}) };
  }

  private async finishStore(store: StoreWriter): Promise<RowStore> {
    const { report } = store;
    const { duplicates, idSetSha256 } = store.buckets.resolve();
    report.rowsRead = this.rowsRead;
    report.invalidIds = this.invalidIds;
    if (duplicates.length > 0) await this.dropDuplicates(store, duplicates);
    report.rowsKept = store.kept;
    this.features.forEach((f, j) => {
      report.missingCells[f.name] = this.missingCounts[j]!;
      report.nonNumericCells[f.name] = this.nonNumericCounts[j]!;
      report.imputedCells[f.name] = store.imputedCounts[j]!;
    });
    if (store.kept === 0 && !store.unlabelledOnly) {
      throw new FedcreditError(
        ErrorCode.DATA_REJECTED,
        `${this.origin.name}: all ${report.rowsRead} data rows were dropped (${formatCounts(report.rowsDropped)})`,
        `clean the ${this.origin.noun}, or relax \`missing: drop\` to \`missing: impute\` for the features named above`,
      );
    }
    report.rowsSha256 = this.rowsDigest(store);
    if (this.origin.querySha256 !== undefined) report.querySha256 = this.origin.querySha256;
    const blockRows = blockRowsFor(this.features.length, this.blockBytes);
    if (store.scatterRows && store.kept > blockRows) this.scatter(store, Math.min(MAX_SCATTER_PARTS, Math.ceil(store.kept / blockRows)), idSetSha256);
    return RowStore.writeMeta(store.dir, {
      features: this.features.map((f) => f.name),
      rows: store.kept,
      labels: store.labels,
      groupColumns: this.spec.group_columns ?? [],
      ...(this.levelCodes.some((m) => m) ? { levels: Object.fromEntries(this.features.flatMap((f, j) => (this.levelCodes[j] ? [[f.name, [...this.levelCodes[j].keys()]]] : []))) } : {}),
      report,
      invalidExamples: Object.fromEntries(this.features.flatMap((f, j) => (this.invalidSamples[j]!.size > 0 ? [[f.name, [...this.invalidSamples[j]!]]] : []))),
      idSetSha256,
      blockRows,
    });
  }

  /** Refuse features whose present cells are mostly not of their declared type (NON_NUMERIC_REFUSE_SHARE). */
  private refuseMistypedColumns(): void {
    const lines: string[] = [];
    let formatted = false;
    this.features.forEach((f, j) => {
      const present = this.rowsRead - this.missingCounts[j]!;
      const invalid = this.nonNumericCounts[j]!;
      if (present === 0 || invalid / present <= NON_NUMERIC_REFUSE_SHARE) return;
      const share = invalid === present ? 'all' : `${invalid} of ${present} (${Math.round((100 * invalid) / present)}%)`;
      const cells = invalid === present ? `all ${present} of its non-empty cells` : `${share} of its non-empty cells`;
      const samples = [...this.invalidSamples[j]!];
      const format = localNumberFormat(samples);
      if (format) formatted = true;
      lines.push(`column "${f.name}" is declared \`type: ${f.type}\` but ${cells} are ${INVALID_WORDS[f.type]} (e.g. ${samples.map(preview).join(', ')})${format ? `: ${format}` : ''}`);
    });
    if (lines.length === 0) return;
    throw new FedcreditError(
      ErrorCode.DATA_SCHEMA,
      `${this.origin.name}: ${lines.join('; ')}; a feature with more than ${NON_NUMERIC_REFUSE_SHARE * 100}% invalid cells would be all imputed and add nothing to a model`,
      (formatted ? `${PLAIN_NUMBERS}; otherwise ` : '') +
        'check that data.features names the right column; declare a text column of levels (an industry, a region, a grade) ' +
        '`type: category` (a job bins it, one WOE per level), or list it in data.group_columns to group reports by it; ' +
        'an integer or binary column holding other numbers can be declared `type: number`',
    );
  }

  discard(): void {
    for (const store of this.stores) store.discard();
  }

  /**
   * Later rows of an id are dropped (or, under duplicate_ids: reject, fail the load at the first of them in the
   * file). A later row already dropped for another reason is counted as a duplicate instead, as the id is checked
   * first.
   */
  private async dropDuplicates(store: StoreWriter, duplicates: Duplicate[]): Promise<void> {
    if (this.spec.duplicate_ids === 'reject') {
      const first = duplicates.reduce((a, b) => (b.line < a.line ? b : a));
      const keptRow = first.keptIndex >= 0 ? first.keptIndex : first.firstKeptIndex;
      const id = keptRow >= 0 ? this.keptId(store, keptRow) : await this.origin.cellAt?.(first.line, this.cols!.id).catch(() => undefined);
      const { at } = this.origin;
      throw new FedcreditError(
        ErrorCode.DATA_REJECTED,
        `${this.origin.name}: ${id === undefined ? 'an id' : `id ${preview(id)}`} (column "${this.spec.id_column}") appears on ${at(first.firstLine)} and again on ${at(first.line)}` +
          (duplicates.length > 1 ? ` (${duplicates.length} repeated rows in all)` : ''),
        'make the ids unique, or set data.duplicate_ids: keep_first to keep the first row of each id',
      );
    }
    const dropped = store.report.rowsDropped;
    const keptDuplicates: number[] = [];
    for (const d of duplicates) {
      store.report.duplicateIds++;
      dropped.duplicate_id = (dropped.duplicate_id ?? 0) + 1;
      if (d.keptIndex >= 0) keptDuplicates.push(d.keptIndex);
      else {
        const reason = store.reasons[d.reason]!;
        if (--dropped[reason]! === 0) delete dropped[reason];
      }
    }
    if (keptDuplicates.length > 0) this.compact(store, Uint32Array.from(keptDuplicates).sort());
  }

  /** SHA-256 over the store's row files as they stand (before scattering): the kept rows, whatever their source. */
  private rowsDigest(store: StoreWriter): string {
    const digest = createHash('sha256');
    const files = [X_FILE, ...(store.labels ? [Y_FILE] : []), IDS_FILE];
    for (const name of files) for (const piece of readRecordPieces(join(store.dir, name), 1)) digest.update(piece);
    return digest.digest('hex');
  }

  private keptId(store: StoreWriter, index: number): string {
    let r = 0;
    for (const line of readLines(join(store.dir, IDS_FILE))) if (r++ === index) return (JSON.parse(line) as string[])[0]!;
    throw new Error(`kept row ${index} is missing from ${IDS_FILE}`);
  }

  /**
   * Deal every row to one of `parts` partitions at random (each partition's rows keep their order), then lay the
   * partitions end to end: each block then holds rows from all over the file. One more pass over the store's files,
   * in memory of `parts` small write buffers.
   */
  private scatter(store: StoreWriter, parts: number, idSetSha256: string): void {
    const rng = new Rng(Number.parseInt(idSetSha256.slice(0, 8), 16));
    const folder = join(store.dir, 'scatter');
    mkdirSync(folder, { recursive: true, mode: 0o700 });
    const files: [string, number][] = [
      [X_FILE, this.features.length * 4],
      [ID_HASH_FILE, ID_HASH_BYTES],
    ];
    if (store.labels) files.push([Y_FILE, 4]);
    const binaries = files.map(([name, bytes]) => ({
      name,
      records: readRecords(join(store.dir, name), bytes),
      outs: Array.from({ length: parts }, (_, p) => new FileAppender(join(folder, `${name}.${p}`), 8 * 1024)),
    }));
    const ids = readLines(join(store.dir, IDS_FILE));
    const idOuts = Array.from({ length: parts }, (_, p) => new FileAppender(join(folder, `${IDS_FILE}.${p}`), 8 * 1024));
    try {
      for (let r = 0; r < store.kept; r++) {
        const p = rng.int(parts);
        for (const b of binaries) b.outs[p]!.write(b.records.next().value as Uint8Array);
        idOuts[p]!.writeText(`${ids.next().value as string}\n`);
      }
    } finally {
      ids.return(undefined);
      for (const b of binaries) {
        b.records.return(undefined);
        b.outs.forEach((o) => o.close());
      }
      idOuts.forEach((o) => o.close());
    }
    for (const name of [...files.map(([n]) => n), IDS_FILE]) {
      const out = new FileAppender(join(store.dir, name));
      try {
        for (let p = 0; p < parts; p++) for (const piece of readRecordPieces(join(folder, `${name}.${p}`), 1)) out.write(piece);
      } finally {
        out.close();
      }
    }
    rmSync(folder, { recursive: true, force: true });
  }

  /** Rewrite the store's files without the given kept rows (sorted), and take their cells out of the counts. */
  private compact(store: StoreWriter, remove: Uint32Array): void {
    const xs = new RowStoreRewriter(join(store.dir, X_FILE), this.features.length * 4);
    const ys = store.labels ? new RowStoreRewriter(join(store.dir, Y_FILE), 4) : undefined;
    const hashes = new RowStoreRewriter(join(store.dir, ID_HASH_FILE), ID_HASH_BYTES);
    const idsIn = readLines(join(store.dir, IDS_FILE));
    const idsOut = new FileAppender(join(store.dir, `${IDS_FILE}.next`));
    const rewriters = [xs, ys, hashes].filter((w) => w !== undefined);
    try {
      this.copyKept(store, remove, xs, ys, hashes, idsIn, idsOut);
    } finally {
      // The readers stop at the last row, inside their generators: return() runs their finally, closing the files.
      idsIn.return(undefined);
      idsOut.close();
      rewriters.forEach((w) => w.close());
    }
    rewriters.forEach((w) => w.swap());
    renameSync(join(store.dir, `${IDS_FILE}.next`), join(store.dir, IDS_FILE));
    store.kept -= remove.length;
  }

  private copyKept(store: StoreWriter, remove: Uint32Array, xs: RowStoreRewriter, ys: RowStoreRewriter | undefined, hashes: RowStoreRewriter, idsIn: Generator<string>, idsOut: FileAppender): void {
    const width = this.features.length;
    let next = 0;
    for (let r = 0; r < store.kept; r++) {
      const row = xs.next();
      ys?.next();
      hashes.next();
      const ids = idsIn.next().value as string;
      const drop = next < remove.length && remove[next] === r;
      if (drop) {
        next++;
        const cells = new Float32Array(row.buffer, row.byteOffset, width);
        for (let j = 0; j < width; j++) if (Number.isNaN(cells[j])) store.imputedCounts[j]!--;
        continue;
      }
      xs.keep(row);
      ys?.keepLast();
      hashes.keepLast();
      idsOut.writeText(`${ids}\n`);
    }
  }

  private readHeader(record: SourceRecord, line: number): ColumnIndex {
    const names = record.map((cell, i) => cell?.trim() || `column_${i + 1}`);
    const wanted = [this.spec.id_column, ...(this.labelColumn === undefined ? [] : [this.labelColumn])];
    wanted.push(...this.features.map((f) => f.name), ...(this.spec.group_columns ?? []));
    const absent = wanted.filter((name) => !names.includes(name));
    if (absent.length > 0) throw this.missingColumns(absent, names, line);
    for (const name of new Set(wanted)) {
      const first = names.indexOf(name);
      const again = names.indexOf(name, first + 1);
      if (again >= 0) {
        throw new FedcreditError(
          ErrorCode.DATA_SCHEMA,
          `${this.origin.name}: ${this.origin.at(line)}: column "${name}" appears twice in the header (columns ${first + 1} and ${again + 1})`,
          'rename one of the two columns in the CSV header so every column name is unique',
        );
      }
    }
    return {
      id: names.indexOf(this.spec.id_column),
      label: this.labelColumn === undefined ? undefined : names.indexOf(this.labelColumn),
      features: this.features.map((f) => names.indexOf(f.name)),
      groups: (this.spec.group_columns ?? []).map((c) => names.indexOf(c)),
    };
  }

  private missingColumns(absent: string[], names: string[], line: number): FedcreditError {
    const message = `${this.origin.name}: ${this.origin.at(line)}: column(s) ${quoteList(absent)} not found in the header (found: ${quoteList(names)})`;
    const guess = names.length === 1 ? DELIMITER_GUESSES.find((d) => d !== this.spec.delimiter && names[0]!.includes(d)) : undefined;
    if (guess !== undefined) {
      const shown = JSON.stringify(guess);
      return new FedcreditError(
        ErrorCode.DATA_SCHEMA,
        `${message}; the header is one field, so the delimiter looks like ${shown} but data.delimiter is ${JSON.stringify(this.spec.delimiter)}`,
        `set data.delimiter: ${shown} in the participant config`,
      );
    }
    return new FedcreditError(
      ErrorCode.DATA_SCHEMA,
      message,
      'make data.id_column, data.label_column and data.features[].name match the CSV header ' + '(a blank header cell is named column_<position>, e.g. column_1)',
    );
  }

  private addRow(record: SourceRecord, line: number, cols: ColumnIndex): void {
    this.rowsRead++;
    // Every row is fully checked, so cell counts and reject policies cover the whole file, not only kept rows.
    const cellReason = this.readCells(record, line, cols.features);
    const labelled = cols.label === undefined || this.readLabel(record[cols.label], line);
    const id = record[cols.id]?.trim() ?? '';
    // The file is read as UTF-8, which turns bytes that are not UTF-8 into U+FFFD: such an id would never match
    // the same enterprise's id at another party.
    if (id.includes('\uFFFD')) {
      throw new FedcreditError(
        ErrorCode.DATA_REJECTED,
        `${this.origin.name}: ${this.origin.at(line)}, column "${this.spec.id_column}": the id ${preview(id)} holds bytes that are not valid UTF-8 (shown as \uFFFD)`,
        'save the file as UTF-8 (for a GBK or GB18030 file: iconv -f GB18030 -t UTF-8 in.csv > out.csv), or correct the id on that line',
      );
    }
    if (id === '') this.invalidIds++;
    const hash = id === '' ? undefined : idHash(id);
    const idReason = id === '' ? 'missing_id' : undefined;
    this.keepRow(this.rows, record, id, line, cols, hash, idReason ?? (labelled ? undefined : 'missing_label') ?? cellReason);
    if (this.unlabelled) this.keepRow(this.unlabelled, record, id, line, cols, hash, idReason ?? (labelled ? 'labelled' : undefined) ?? cellReason);
  }

  /** Note the row's id in the store's buckets, and write the row to the store unless `reason` drops it. */
  private keepRow(store: StoreWriter, record: SourceRecord, id: string, line: number, cols: ColumnIndex, hash: Buffer | undefined, reason: string | undefined): void {
    if (hash) store.buckets.add(hash, line, reason === undefined ? store.kept : -1, reason === undefined ? NO_REASON : store.reasonCode(reason));
    if (reason !== undefined) {
      store.report.rowsDropped[reason] = (store.report.rowsDropped[reason] ?? 0) + 1;
      return;
    }
    const row = this.row;
    for (let j = 0; j < row.length; j++) if (Number.isNaN(row[j])) store.imputedCounts[j]!++;
    store.xOut.write(this.rowBytes);
    store.yOut?.write(this.labelBytes);
    store.hashOut.write(hash!);
    const groups = cols.groups.map((col) => {
      const cell = record[col]?.trim() ?? '';
      return this.missing.has(cell) ? '' : cell;
    });
    store.idsOut.writeText(`${JSON.stringify([id, ...groups])}\n`);
    store.kept++;
  }

  /** Write the row's features into the row buffer; return why the row must be dropped, if it must. */
  private readCells(record: SourceRecord, line: number, featureCols: number[]): string | undefined {
    const x = this.row;
    let reason: string | undefined;
    for (const [j, feature] of this.features.entries()) {
      const col = featureCols[j]!;
      const cell = record[col]?.trim() ?? null;
      let problem: 'missing' | 'non_numeric';
      if (cell === null || this.missing.has(cell)) {
        problem = 'missing';
        this.missingCounts[j]!++;
      } else if (this.levelCodes[j]) {
        const codes = this.levelCodes[j];
        let code = codes.get(cell);
        if (code === undefined) codes.set(cell, (code = codes.size));
        x[j] = code;
        continue;
      } else {
        const value = Number(cell);
        if (fitsType(value, feature.type)) {
          x[j] = value;
          continue;
        }
        problem = 'non_numeric';
        this.nonNumericCounts[j]!++;
        const samples = this.invalidSamples[j]!;
        if (samples.size < SAMPLE_VALUES) samples.add(cell);
      }
      x[j] = NaN;
      if (feature.missing === 'reject') throw this.rejectedCell(feature, col, cell, problem, line);
      if (feature.missing === 'drop') reason ??= `${problem}:${feature.name}`;
    }
    return reason;
  }

  private rejectedCell(feature: FeatureSpec, col: number, cell: string | null, problem: string, line: number): FedcreditError {
    const shown = cell === null ? 'NULL' : preview(cell);
    const what = problem === 'missing' ? 'missing value' : `value that is not a valid ${feature.type}`;
    return new FedcreditError(
      ErrorCode.DATA_REJECTED,
      `${this.origin.name}: ${this.origin.at(line)}, ${this.origin.column(col, feature.name)}: ${what} ${shown} (the feature's policy is missing: reject)`,
      `clean the ${this.origin.noun}, or set \`missing: impute\` (fill with the mean) or \`missing: drop\` (skip the row) ` + `for feature "${feature.name}" in data.features`,
    );
  }

  /** Whether the row has a label (then set in the label cell); a missing one makes the row an applicant's. */
  private readLabel(raw: string | null | undefined, line: number): boolean {
    const cell = raw?.trim() ?? '';
    if (this.missing.has(cell)) return false;
    const value = Number(cell);
    if (value !== 0 && value !== 1) {
      const shown = preview(cell);
      throw new FedcreditError(
        ErrorCode.DATA_REJECTED,
        `${this.origin.name}: ${this.origin.at(line)}, label column "${this.labelColumn}": ${shown} is not 0 or 1`,
        'recode the label column to 0/1 (1 = the bad outcome); a row with an empty or NA label never trains (a vertical guest scores it)',
      );
    }
    this.labelCell[0] = value;
    return true;
  }
}

const INVALID_WORDS: Record<FeatureSpec['type'], string> = {
  number: 'not numbers',
  integer: 'not whole numbers',
  binary: 'not 0 or 1',
  // Every non-empty cell of a category is one of its levels: none is ever invalid.
  category: 'not levels',
};

/** A cell that breaks its feature's type; NaN, ±Infinity and values beyond float32 range never fit. */
function fitsType(value: number, type: FeatureSpec['type']): boolean {
  if (!Number.isFinite(Math.fround(value))) return false;
  if (type === 'integer') return Number.isInteger(value);
  if (type === 'binary') return value === 0 || value === 1;
  return true;
}

/** Reads a fixed-width binary file record by record and writes the kept records to `<file>.next`, then swaps. */
class RowStoreRewriter {
  private readonly records: Generator<Uint8Array>;
  private readonly out: FileAppender;
  private last?: Uint8Array;

  constructor(
    private readonly file: string,
    recordBytes: number,
  ) {
    this.records = readRecords(file, recordBytes);
    this.out = new FileAppender(`${file}.next`);
  }

  next(): Uint8Array {
    this.last = this.records.next().value as Uint8Array;
    return this.last;
  }

  keep(record: Uint8Array): void {
    this.out.write(record);
  }

  keepLast(): void {
    this.out.write(this.last!);
  }

  close(): void {
    this.records.return(undefined);
    this.out.close();
  }

  /** After close(): the rewritten file takes the old one's place. */
  swap(): void {
    renameSync(`${this.file}.next`, this.file);
  }
}

/** Each record as a view into a reused buffer: valid until the next one is read (every caller writes it at once). */
function* readRecords(file: string, recordBytes: number): Generator<Uint8Array> {
  for (const piece of readRecordPieces(file, recordBytes)) {
    for (let o = 0; o < piece.length; o += recordBytes) yield piece.subarray(o, o + recordBytes);
  }
}

/** A failure to write the row store (no space, no permission): named with the folder and what it needs. */
function storeError(err: unknown, dir: string): unknown {
  const io = err as NodeJS.ErrnoException;
  if (!(io && typeof io.code === 'string' && io.syscall)) return err;
  return new FedcreditError(
    ErrorCode.DATA_SCHEMA,
    `cannot write the row store in ${dir}: ${io.code}${io.path && io.path !== dir ? ` (${io.path})` : ''}`,
    'the participant copies its consented columns there (about 4 bytes per cell, plus the ids): free disk space, ' +
      'or set state_dir in the participant config to a folder this user can write on a disk with room',
    { cause: err },
  );
}

/** A write or open failure under the store's folder, named as such; anything else unchanged. */
function translateStoreError(err: unknown, dir: string): unknown {
  if (err instanceof FedcreditError) return err;
  const io = err as NodeJS.ErrnoException;
  // Only the store is ever written to or opened under `dir`; the source is only read.
  if (io && typeof io.code === 'string' && (io.syscall === 'write' || io.path?.startsWith(dir))) return storeError(err, dir);
  return err;
}

function translateError(err: unknown, file: string, headerLength: number, dir: string): unknown {
  if (err instanceof FedcreditError) return err;
  if (err instanceof CsvError) return csvError(err, file, headerLength);
  const io = err as NodeJS.ErrnoException;
  if (io && typeof io.code === 'string' && (io.syscall === 'write' || io.path?.startsWith(dir))) return storeError(err, dir);
  if (io && typeof io.code === 'string' && io.syscall) {
    return new FedcreditError(
      ErrorCode.DATA_SCHEMA,
      `cannot read data file ${file}: ${io.code}`,
      "check data.path in the participant config; a relative path is resolved from the config file's folder",
      { cause: err },
    );
  }
  return err;
}

function csvError(err: CsvError, file: string, headerLength: number): FedcreditError {
  const line = typeof err.lines === 'number' ? err.lines : '?';
  if (err.code === 'CSV_RECORD_INCONSISTENT_FIELDS_LENGTH') {
    const got = Array.isArray(err.record) ? err.record.length : '?';
    return new FedcreditError(
      ErrorCode.DATA_SCHEMA,
      `${file}: line ${line} has ${got} fields but the header has ${headerLength}`,
      'give every row as many fields as the header: look for a missing or extra delimiter on that line, ' + 'and wrap values that contain the delimiter in double quotes',
      { cause: err },
    );
  }
  if (err.code === 'CSV_MAX_RECORD_SIZE') {
    return new FedcreditError(
      ErrorCode.DATA_SCHEMA,
      `${file}: line ${line}: a record is longer than ${MAX_RECORD_CHARS} characters`,
      'this is almost always an unclosed double quote near that line, or a wrong line ending; fix the quoting',
      { cause: err },
    );
  }
  return new FedcreditError(
    ErrorCode.DATA_SCHEMA,
    `${file}: line ${line}: ${err.message}`,
    'fix the quoting on that line: a value that contains the delimiter, a quote or a line break must be wrapped ' + 'in double quotes, with quotes inside it doubled ("")',
    { cause: err },
  );
}

/** One line of a CSV file, read again (undefined when it cannot be read). */
async function csvLine(file: string, delimiter: string, line: number): Promise<string[] | undefined> {
  const records: string[][] = [];
  const parser = parse({ bom: true, delimiter, trim: true, relax_column_count: true, from_line: line, to_line: line });
  parser.on('data', (r: string[]) => records.push(r));
  await pipeline(createReadStream(file), parser).catch(() => undefined);
  return records[0];
}

async function csvCellOnLine(file: string, delimiter: string, line: number, column: number): Promise<string | undefined> {
  return (await csvLine(file, delimiter, line))?.[column];
}

/** A CSV file's header (line 1): its column names, empty when the file has none. */
export async function csvHeader(file: string, delimiter: string): Promise<string[]> {
  return (await csvLine(file, delimiter, 1)) ?? [];
}

/** A number with its digits grouped in threes ("3,000", "1.234.567,89", "12 500"): the separator is group 1. */
const GROUPED_NUMBER = /^[+-]?\d{1,3}([,.' \u00a0\u202f])\d{3}(?:\1\d{3})*(?:[.,]\d+)?$/;
const DECIMAL_COMMA = /^[+-]?\d*,\d+$/;
const PLAIN_NUMBERS =
  'write the file\'s numbers plainly, with no thousands separator and "." before decimals (3000.5), e.g. by formatting the column as a number without separators before a spreadsheet saves it as CSV';

/**
 * When every sample of a column's invalid cells is a number written the way a spreadsheet in some locales exports it
 * (digits grouped by a thousands separator, or a decimal comma), says so: such a file needs re-exporting, not
 * missing-value markers or another type. Undefined when any sample is something else.
 */
export function localNumberFormat(samples: readonly string[]): string | undefined {
  if (samples.length === 0) return undefined;
  const grouped = samples.map((s) => GROUPED_NUMBER.exec(s.trim())?.[1]);
  if (grouped.every((sep) => sep !== undefined)) {
    const seps = [...new Set(grouped)].map((sep) => (sep === ' ' ? 'a space' : sep === '\u00a0' || sep === '\u202f' ? 'a no-break space' : `"${sep}"`));
    // "3,000" alone may be 3000 or a decimal comma's 3.000: either way it is not a CSV number.
    const ambiguous = samples.every((s) => /^[+-]?\d{1,3}[,.]\d{3}$/.test(s.trim()));
    return `these are numbers with ${seps.join(' or ')} between thousands${ambiguous ? ' (or as a decimal mark)' : ''}, which a CSV number must not have`;
  }
  if (samples.every((s) => DECIMAL_COMMA.test(s.trim()) || GROUPED_NUMBER.test(s.trim()))) return 'these are numbers with a decimal comma, where a CSV number has "."';
  return undefined;
}

/** A cell as shown in an error message: quoted, at most 40 characters. */
function preview(cell: string): string {
  return JSON.stringify(cell.length > 40 ? `${cell.slice(0, 40)}...` : cell);
}

function quoteList(names: string[]): string {
  return names.map((n) => `"${n}"`).join(', ');
}
