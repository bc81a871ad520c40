/**
 * A participant's rows from wherever its data section says they are: a CSV file (data.path, the default) or a
 * database (data.source). Every source feeds the same checks and the same row store (ingestRecords in ./csv.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { datasetOf, ingestDataset, type IngestOptions, type LoadedDataset, type LoadOptions } from './csv.js';
import { ingestPostgres } from './postgres.js';
import type { RowStore } from './row-store.js';
import type { DatasetSpec } from './schema.js';

export async function ingestSource(spec: DatasetSpec, opts: IngestOptions): Promise<RowStore> {
  if (spec.source?.kind === 'postgres') return ingestPostgres(spec, spec.source, opts);
  return ingestDataset(spec, opts);
}

/**
 * The rows `kept` (a store with labels) dropped only for an empty label, read again into a store of their own at
 * `opts.dir`: a guest's applicants with no outcome yet, which it scores but never trains on (a database source runs
 * its query again, in a transaction of its own). Undefined (and no folder) when there are none, or no `kept`.
 */
export async function ingestUnlabelled(spec: DatasetSpec, kept: RowStore | undefined, opts: IngestOptions): Promise<RowStore | undefined> {
  rmSync(opts.dir, { recursive: true, force: true });
  if (!kept || (kept.meta.report.rowsDropped.missing_label ?? 0) === 0) return undefined;
  return ingestSource(spec, { ...opts, scatter: false, unlabelledOnly: true });
}

/** The rows in memory, through a temporary row store. */
export async function loadSource(spec: DatasetSpec, opts: LoadOptions = {}): Promise<LoadedDataset> {
  const dir = mkdtempSync(join(tmpdir(), 'fedcredit-rows-'));
  try {
    return datasetOf(await ingestSource(spec, { ...opts, dir: join(dir, 'rows') }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
