/**
 * Real credit data (../shared/datasets) binned for the trees, with a seeded train / validation / test split: UCI
 * "default of credit card clients" (30,000 cards, SEX, EDUCATION and MARRIAGE categorical) and Give Me Some Credit
 * (150,000 borrowers, NA in MonthlyIncome and NumberOfDependents kept as missing).
 */
import { readFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import { binColumn, type FeatureInfo } from '../../src/model/gbdt.js';
import { Rng, seededShuffle } from '../../src/random.js';
import { GMSC_FEATURES } from '../../src/data/public-datasets.js';

const DATASETS = new URL('../../../shared/datasets/', import.meta.url);

export interface TreeData {
  features: FeatureInfo[];
  bins: Uint16Array[];
  labels: Float64Array;
  train: Uint32Array;
  valid: Uint32Array;
  test: Uint32Array;
}

export const UCI_CATEGORICAL = ['SEX', 'EDUCATION', 'MARRIAGE'];

const parsed = new Map<string, Record<string, Float64Array>>();

/** The columns of a CSV file under DATASETS, parsed once per process (the columns are only read, never written). */
function readColumns(path: string): Record<string, Float64Array> {
  const cached = parsed.get(path);
  if (cached) return cached;
  const rows = parse(readFileSync(new URL(path, DATASETS), 'utf8'), { columns: true, skip_empty_lines: true }) as Record<string, string>[];
  const columns: Record<string, Float64Array> = {};
  for (const name of Object.keys(rows[0]!)) columns[name] = Float64Array.from(rows, (r) => (r[name] === 'NA' || r[name] === '' ? Number.NaN : Number(r[name])));
  parsed.set(path, columns);
  return columns;
}

/** Binned columns of `names` (owner per column from `ownerOf`), split 70 / 10 / 20 by a seeded shuffle. */
function binned(
  columns: Record<string, Float64Array>,
  label: string,
  names: string[],
  opts: { maxBins: number; categorical?: string[]; monotone?: Record<string, -1 | 1>; ownerOf?: (name: string) => string; rows?: number },
): TreeData {
  const all = columns[label]!.length;
  const order = seededShuffle(all, new Rng(2026));
  const n = Math.min(all, opts.rows ?? all);
  const picked = order.subarray(0, n);
  const pick = (v: Float64Array) => Float64Array.from(picked, (r) => v[r]!);
  const labels = pick(columns[label]!);
  const built = names.map((name) =>
    binColumn(name, opts.ownerOf?.(name) ?? 'bank', pick(columns[name]!), { maxBins: opts.maxBins, categorical: opts.categorical?.includes(name) ?? false, monotone: opts.monotone?.[name] ?? 0 }),
  );
  const trainEnd = Math.floor(n * 0.7);
  const validEnd = Math.floor(n * 0.8);
  const range = (a: number, b: number) => Uint32Array.from({ length: b - a }, (_, i) => a + i);
  return { features: built.map((b) => b.info), bins: built.map((b) => b.bins), labels, train: range(0, trainEnd), valid: range(trainEnd, validEnd), test: range(validEnd, n) };
}

export const UCI_FEATURES = [
  'LIMIT_BAL',
  'SEX',
  'EDUCATION',
  'MARRIAGE',
  'AGE',
  'PAY_0',
  'PAY_2',
  'PAY_3',
  'PAY_4',
  'PAY_5',
  'PAY_6',
  'BILL_AMT1',
  'BILL_AMT2',
  'BILL_AMT3',
  'BILL_AMT4',
  'BILL_AMT5',
  'BILL_AMT6',
  'PAY_AMT1',
  'PAY_AMT2',
  'PAY_AMT3',
  'PAY_AMT4',
  'PAY_AMT5',
  'PAY_AMT6',
];

export function uciTrees(opts: { maxBins?: number; monotone?: Record<string, -1 | 1>; ownerOf?: (name: string) => string; rows?: number; features?: string[] } = {}): TreeData {
  return binned(readColumns('uci_default_credit/UCI_Credit_Card.csv'), 'default.payment.next.month', opts.features ?? UCI_FEATURES, {
    maxBins: opts.maxBins ?? 32,
    categorical: UCI_CATEGORICAL,
    ...opts,
  });
}

export function gmscTrees(opts: { maxBins?: number; monotone?: Record<string, -1 | 1>; ownerOf?: (name: string) => string; rows?: number } = {}): TreeData {
  return binned(readColumns('give_me_some_credit/cs-training.csv'), 'SeriousDlqin2yrs', [...GMSC_FEATURES], { maxBins: opts.maxBins ?? 32, ...opts });
}
