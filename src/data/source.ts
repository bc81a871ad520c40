/**
 * A participant's rows from wherever its data section says they are: a CSV file (data.path, the default) or a
 * database (data.source). Every source feeds the same checks and the same row store (ingestRecords in ./csv.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { csvRecords, datasetOf, ingestRecords, type IngestedRows, type IngestOptions, type LoadedDataset, type LoadOptions, type RecordSource } from './csv.js';
import { postgresRecords } from './postgres.js';
import type { RowStore } from './row-store.js';
import type { DatasetSpec } from './schema.js';

export async function ingestSource(spec: DatasetSpec, opts: IngestOptions): Promise<RowStore> {
  return (await ingestRecords(spec, opts, recordsOf(spec, opts))).rows;
}

/**
 * The rows, and in the same pass over the source (one read of the file, one query in one transaction) the rows
 * dropped only for an empty label, in a store of their own in `unlabelled.dir`: a guest's applicants with no outcome
 * yet, which it scores but never trains on. The folder is replaced: by that store when `unlabelled.keep` (a node that
 * may be a vertical model's guest) and there are such rows, else by nothing.
 */
export async function ingestWithUnlabelled(spec: DatasetSpec, opts: IngestOptions, unlabelled: { dir: string; keep: boolean }): Promise<IngestedRows> {
  if (!unlabelled.keep) rmSync(unlabelled.dir, { recursive: true, force: true });
  return ingestRecords(spec, opts, recordsOf(spec, opts), unlabelled.keep ? unlabelled.dir : undefined);
}

function recordsOf(spec: DatasetSpec, opts: IngestOptions): RecordSource {
  return spec.source?.kind === 'postgres' ? postgresRecords(spec, spec.source, opts) : csvRecords(spec, opts);
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
