/**
 * `npm run bench -- --only quality`: the federated credit model with the default job settings, on every real data
 * set in ../shared/datasets, against what a good central modeller builds on the pooled rows and against what a
 * participant builds alone (issue 19). Figures per data set and split, all on the same held-out rows:
 *
 *   quality.<dataset>.<vertical|horizontal>.federated_auc / .federated_ks  the federated job's model
 *   quality.<dataset>.<split>.central_auc                                   central WOE logistic regression, pooled rows
 *   quality.<dataset>.<split>.best_alone_auc                                best participant alone (horizontal), the guest alone (vertical)
 *   quality.<dataset>.horizontal.best_alone_gap_ci95_low / _high            95% interval of federated − best alone (paired bootstrap)
 *   quality.<dataset>.horizontal.no_binning_auc / .no_binning_unclipped_auc the same LR job without binning, winsorised
 *                                                                           (the default) and with `winsorize: 0`
 *
 * The central reference is written here, plainly and apart from the project's binning code: exact quantile
 * pre-bins on distinct values, merged into the monotone trend (ascending or descending, whichever keeps more IV;
 * pool-adjacent-violators on the default rate), bins under 5% of the rows merged into their closest neighbour,
 * missing values as their own bin, WOE with a 0.5 smoothing, features with IV ≥ 0.02, and a Newton logistic
 * regression on the WOE. A categorical column (German credit's A-codes): one bin per level, the levels under 5% of the
 * rows together in one, missing as its own bin.
 *
 * Held-out rows: the enterprises a vertical job with the default settings holds out as its test set (holdoutOf, seed
 * 42, 20%), so both splits and every model are scored on the same rows. Horizontal: the other rows go to three banks
 * (45%, 35%, 20%, by a hash of the id); no bank holds a held-out row. Vertical: a bank (the label and the
 * credit-history columns) and a bureau (the rest) hold every row; the job aligns them and holds out the same rows.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EphemeralFederation } from '../src/federation/ephemeral.js';
import { HorizontalJobSpec, VerticalJobSpec } from '../src/config/schemas.js';
import { loadDataset, type LoadedDataset } from '../src/data/csv.js';
import type { DatasetSpec } from '../src/data/schema.js';
import { holdoutOf, splitRows } from '../src/data/split.js';
import { auc, binaryMetrics } from '../src/metrics.js';
import { Rng } from '../src/random.js';
import { fitCentral } from '../src/fl/central.js';
import { fitLogistic } from '../src/model/newton-lr.js';
import { modelFromFiles } from '../src/model/artifact.js';
import { loadTf } from '../src/model/tf.js';
import { verticalBaselines } from '../src/vertical/baseline.js';
import type { BinnedFeature } from '../src/vertical/binning.js';
import type { JobEvent } from '../src/wire/messages.js';
import { sha256 } from '../src/bytes.js';

/** One public data set as the benchmark reads it, and how its columns split between a bank and a bureau. */
export interface QualityDataset {
  key: string;
  title: string;
  file: string;
  /** The id column ('' for GMSC's blank first header cell), or none: the row number is the id. */
  idColumn?: string;
  label: string;
  isBad: (cell: string) => boolean;
  /** Credit-history columns: the vertical guest (the bank) holds them with the label. */
  guest: string[];
  /** The other party's columns. */
  host: string[];
  /** Rows kept: all, or the first N of the file (stated in BENCHMARKS.md). */
  maxRows?: number;
  /** Columns of text levels (`type: category`); the others are numbers. */
  categories?: string[];
  note: string;
}

export function qualityDatasets(datasets: string): QualityDataset[] {
  return [
    {
      key: 'uci',
      title: 'UCI default of credit card clients (UCI_Credit_Card.csv, raw)',
      file: join(datasets, 'uci_default_credit', 'UCI_Credit_Card.csv'),
      idColumn: 'ID',
      label: 'default.payment.next.month',
      isBad: (c) => c === '1',
      guest: ['PAY_0', 'PAY_2', 'PAY_3', 'PAY_4', 'PAY_5', 'PAY_6', ...[1, 2, 3, 4, 5, 6].map((i) => `BILL_AMT${i}`), ...[1, 2, 3, 4, 5, 6].map((i) => `PAY_AMT${i}`)],
      host: ['LIMIT_BAL', 'SEX', 'EDUCATION', 'MARRIAGE', 'AGE'],
      note: 'all 30,000 rows',
    },
    {
      key: 'gmsc',
      title: 'Give Me Some Credit (cs-training.csv, raw)',
      file: join(datasets, 'give_me_some_credit', 'cs-training.csv'),
      idColumn: '',
      label: 'SeriousDlqin2yrs',
      isBad: (c) => c === '1',
      guest: [
        'RevolvingUtilizationOfUnsecuredLines',
        'NumberOfTime30-59DaysPastDueNotWorse',
        'NumberOfTime60-89DaysPastDueNotWorse',
        'NumberOfTimes90DaysLate',
        'NumberOfOpenCreditLinesAndLoans',
        'NumberRealEstateLoansOrLines',
      ],
      host: ['age', 'DebtRatio', 'MonthlyIncome', 'NumberOfDependents'],
      maxRows: 60_000,
      note: 'the first 60,000 of 150,000 rows (the file is in random order), to keep the vertical CKKS job to a minute',
    },
    {
      key: 'german',
      title: 'Statlog German credit (german_credit.csv), all 20 columns',
      file: join(datasets, 'german_credit', 'german_credit.csv'),
      label: 'Class',
      isBad: (c) => c === '2',
      guest: ['CheckingAccountStatus', 'CreditHistory', 'Savings', 'OtherInstallmentPlans', 'Duration', 'CreditAmount', 'InstallmentRate', 'CreditsAtBank'],
      host: ['Purpose', 'EmploymentSince', 'Sex', 'OtherDebtors', 'Property', 'Housing', 'Job', 'Telephone', 'ForeignWorker', 'Age', 'ResidenceSince', 'NumDependents'],
      categories: [
        'CheckingAccountStatus',
        'CreditHistory',
        'Savings',
        'OtherInstallmentPlans',
        'Purpose',
        'EmploymentSince',
        'Sex',
        'OtherDebtors',
        'Property',
        'Housing',
        'Job',
        'Telephone',
        'ForeignWorker',
      ],
      note: 'all 1,000 rows; its 13 A-code columns as `type: category`',
    },
  ];
}

/** A data set's rows: ids, labels (1 = bad) and feature columns (NaN for a blank or NA cell); a categorical
 * column holds each cell's position in `levels[column]` (its distinct texts, sorted). */
export interface Table {
  ids: string[];
  y: Uint8Array;
  features: string[];
  columns: Float64Array[];
  levels: Record<string, string[]>;
}

/** These files have no quoted field (UCI quotes only its header): a line split on commas is a row. */
export function readTable(d: QualityDataset): Table {
  const lines = readFileSync(d.file, 'utf8')
    .split(/\r?\n/)
    .filter((l) => l !== '');
  const header = lines[0]!.split(',').map((h) => h.replace(/^"|"$/g, ''));
  const rows = lines.slice(1, d.maxRows ? d.maxRows + 1 : undefined).map((l) => l.split(','));
  const at = (name: string) => {
    const i = header.indexOf(name);
    if (i < 0) throw new Error(`${d.file}: no column ${name}`);
    return i;
  };
  const features = [...d.guest, ...d.host];
  const idCol = d.idColumn === undefined ? -1 : at(d.idColumn);
  const labelCol = at(d.label);
  const blank = (cell: string | undefined) => cell === '' || cell === 'NA';
  const levels: Record<string, string[]> = {};
  for (const f of d.categories ?? []) levels[f] = [...new Set(rows.map((r) => r[at(f)]!).filter((c) => !blank(c)))].sort();
  return {
    ids: rows.map((r, i) => (idCol < 0 ? String(i + 1) : r[idCol]!)),
    y: Uint8Array.from(rows, (r) => (d.isBad(r[labelCol]!) ? 1 : 0)),
    features,
    columns: features.map((f) => {
      const c = at(f);
      const list = levels[f];
      return Float64Array.from(rows, (r) => (blank(r[c]) ? Number.NaN : list ? list.indexOf(r[c]!) : Number(r[c])));
    }),
    levels,
  };
}

/** Write rows of a table as a participant's CSV: id, y (optional), the given columns. */
function writePart(file: string, t: Table, rows: number[], columns: string[], withLabel: boolean): void {
  const idx = columns.map((c) => t.features.indexOf(c));
  const out = [['id', ...(withLabel ? ['y'] : []), ...columns].join(',')];
  const cell = (j: number, r: number) => {
    const v = t.columns[j]![r]!;
    if (Number.isNaN(v)) return '';
    const list = t.levels[t.features[j]!];
    return list ? list[v]! : v;
  };
  for (const r of rows) out.push([t.ids[r], ...(withLabel ? [t.y[r]] : []), ...idx.map((j) => cell(j, r))].join(','));
  writeFileSync(file, out.join('\n') + '\n');
}

function partSpec(file: string, columns: string[], withLabel: boolean, t: Table): DatasetSpec {
  return {
    path: file,
    delimiter: ',',
    id_column: 'id',
    ...(withLabel ? { label_column: 'y' } : {}),
    features: columns.map((name) => ({ name, type: t.levels[name] ? ('category' as const) : ('number' as const), missing: 'impute' as const })),
    duplicate_ids: 'reject',
    missing_values: [''],
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The central reference: monotone optimal binning, WOE, logistic regression.

interface RefBins {
  /** Upper edges of the numeric bins but the last (x ≤ edges[k] is bin k; above them all the last). */
  edges: number[];
  /** WOE per numeric bin (or level group), then the missing bin's. */
  woe: number[];
  iv: number;
  /** A category: the bin of each level (-1: no fitting row holds it, WOE 0). */
  binOfLevel?: number[];
}

const REF_PREBINS = 20;
const REF_MIN_SHARE = 0.05;
const REF_IV_THRESHOLD = 0.02;

/** WOE ln(good share / bad share) with 0.5 added to every count, and the IV of the bins. */
function woeOfCounts(bads: number[], totals: number[]): { woe: number[]; iv: number } {
  const B = bads.reduce((a, b) => a + b, 0);
  const G = totals.reduce((a, b) => a + b, 0) - B;
  let iv = 0;
  const woe = bads.map((b, k) => {
    const g = totals[k]! - b;
    const pg = (g + 0.5) / (G + 0.5 * totals.length);
    const pb = (b + 0.5) / (B + 0.5 * totals.length);
    const w = Math.log(pg / pb);
    if (totals[k]! > 0) iv += (pg - pb) * w;
    return w;
  });
  return { woe, iv };
}

/** Monotone bins of one column on the fitting rows. */
export function monotoneBins(values: Float64Array, y: ArrayLike<number>): RefBins {
  const present: number[] = [];
  let missingRows = 0;
  let missingBads = 0;
  for (let i = 0; i < values.length; i++) {
    if (Number.isNaN(values[i]!)) {
      missingRows++;
      missingBads += y[i]!;
    } else present.push(i);
  }
  present.sort((a, b) => values[a]! - values[b]!);
  const n = present.length;
  // Pre-bins: cuts at the exact q/20 quantiles, each moved to the end of its run of equal values.
  const cuts: number[] = [];
  for (let q = 1; q < REF_PREBINS; q++) {
    const v = values[present[Math.min(n - 1, Math.floor((q * n) / REF_PREBINS))]!]!;
    if (v < values[present[n - 1]!]! && (cuts.length === 0 || v > cuts.at(-1)!)) cuts.push(v);
  }
  // Counts per pre-bin.
  let bins = [...cuts, Infinity].map((edge) => ({ edge, rows: 0, bads: 0 }));
  let k = 0;
  for (const i of present) {
    while (values[i]! > bins[k]!.edge) k++;
    bins[k]!.rows++;
    bins[k]!.bads += y[i]!;
  }
  bins = bins.filter((b) => b.rows > 0);
  const merge = (list: typeof bins, at: number) => {
    const a = list[at]!;
    const b = list[at + 1]!;
    list.splice(at, 2, { edge: b.edge, rows: a.rows + b.rows, bads: a.bads + b.bads });
  };
  const candidates = (['ascending', 'descending'] as const).map((trend) => {
    const list = bins.map((b) => ({ ...b }));
    // Pool adjacent violators: merge neighbours while the default rate breaks the trend.
    for (let changed = true; changed; ) {
      changed = false;
      for (let i = 0; i + 1 < list.length; i++) {
        const r1 = list[i]!.bads / list[i]!.rows;
        const r2 = list[i + 1]!.bads / list[i + 1]!.rows;
        if (trend === 'ascending' ? r2 < r1 : r2 > r1) {
          merge(list, i);
          changed = true;
          break;
        }
      }
    }
    // Bins under the minimum share go into the neighbour with the closer default rate (the trend is kept).
    for (;;) {
      let small = -1;
      for (let i = 0; i < list.length; i++) if (list.length > 1 && list[i]!.rows < REF_MIN_SHARE * n && (small < 0 || list[i]!.rows < list[small]!.rows)) small = i;
      if (small < 0) break;
      const rate = (b: { rows: number; bads: number }) => b.bads / b.rows;
      const left = small > 0 ? Math.abs(rate(list[small - 1]!) - rate(list[small]!)) : Infinity;
      const right = small + 1 < list.length ? Math.abs(rate(list[small + 1]!) - rate(list[small]!)) : Infinity;
      merge(list, left <= right ? small - 1 : small);
    }
    const { woe, iv } = woeOfCounts([...list.map((b) => b.bads), missingBads], [...list.map((b) => b.rows), missingRows]);
    return { edges: list.slice(0, -1).map((b) => b.edge), woe, iv };
  });
  const best = candidates[0]!.iv >= candidates[1]!.iv ? candidates[0]! : candidates[1]!;
  // A missing bin with no fitting row reads as neutral.
  if (missingRows === 0) best.woe[best.woe.length - 1] = 0;
  return best;
}

/** A category's bins on the fitting rows: one per level, the levels under 5% of the rows together in one, the
 * missing bin; WOE as for numbers. */
export function categoryBins(codes: Float64Array, y: ArrayLike<number>, levels: number): RefBins {
  const rows = new Array<number>(levels + 1).fill(0);
  const bads = new Array<number>(levels + 1).fill(0);
  for (let i = 0; i < codes.length; i++) {
    const k = Number.isNaN(codes[i]!) ? levels : codes[i]!;
    rows[k]!++;
    bads[k]! += y[i]!;
  }
  const binOfLevel = new Array<number>(levels).fill(-1);
  let bins = 0;
  const rare = rows.slice(0, levels).map((r) => r > 0 && r < REF_MIN_SHARE * codes.length);
  for (let l = 0; l < levels; l++) if (rows[l]! > 0 && !rare[l]) binOfLevel[l] = bins++;
  if (rare.some(Boolean)) {
    for (let l = 0; l < levels; l++) if (rare[l]) binOfLevel[l] = bins;
    bins++;
  }
  const binRows = new Array<number>(bins).fill(0);
  const binBads = new Array<number>(bins).fill(0);
  binOfLevel.forEach((b, l) => {
    if (b < 0) return;
    binRows[b]! += rows[l]!;
    binBads[b]! += bads[l]!;
  });
  const { woe, iv } = woeOfCounts([...binBads, bads[levels]!], [...binRows, rows[levels]!]);
  if (rows[levels] === 0) woe[woe.length - 1] = 0;
  return { edges: [], woe, iv, binOfLevel };
}

function woeValue(v: number, b: RefBins): number {
  if (Number.isNaN(v)) return b.woe.at(-1)!;
  if (b.binOfLevel) {
    const bin = b.binOfLevel[v]!;
    return bin < 0 ? 0 : b.woe[bin]!;
  }
  let k = 0;
  while (k < b.edges.length && v > b.edges[k]!) k++;
  return b.woe[k]!;
}

/** Fit the reference on rows `fit` of the columns `features`, return the test rows' PDs. */
function centralReference(t: Table, features: string[], fit: number[], test: number[]): Float64Array {
  const cols = features.map((f) => t.columns[t.features.indexOf(f)]!);
  const yFit = Float64Array.from(fit, (r) => t.y[r]!);
  const binned = cols
    .map((c, j) => {
      const values = Float64Array.from(fit, (r) => c[r]!);
      const levels = t.levels[features[j]!];
      return levels ? categoryBins(values, yFit, levels.length) : monotoneBins(values, yFit);
    })
    .map((b, j) => ({ b, j }))
    .filter(({ b }) => b.iv >= REF_IV_THRESHOLD);
  const matrix = (rows: number[]) => {
    const x = new Float64Array(rows.length * binned.length);
    rows.forEach((r, i) => binned.forEach(({ b, j }, k) => (x[i * binned.length + k] = woeValue(cols[j]![r]!, b))));
    return x;
  };
  const model = fitLogistic(matrix(fit), yFit, binned.length);
  const xt = matrix(test);
  return Float64Array.from(test, (_, i) => model.score(xt.subarray(i * binned.length, (i + 1) * binned.length)));
}

// ---------------------------------------------------------------------------------------------------------------

/** The jobs' settings: the documented defaults of a scorecard job, the same for every data set. A horizontal job
 * lists the levels of each category (the federation's common vocabulary), nothing else per data set. */
export function horizontalQualityJob(name: string, participants: string[], levels: Record<string, string[]> = {}) {
  return {
    name,
    kind: 'horizontal',
    purpose: 'quality benchmark: default scorecard job',
    participants,
    model: { type: 'logistic' },
    training: { rounds: 10, optimizer: 'adam', learning_rate: 0.01 },
    binning: Object.keys(levels).length > 0 ? { features: Object.fromEntries(Object.entries(levels).map(([f, l]) => [f, { type: 'category', levels: l }])) } : {},
    scorecard: {},
  };
}

function verticalQualityJob(name: string) {
  return {
    name,
    kind: 'vertical-lr',
    purpose: 'quality benchmark: default scorecard job',
    guest: 'bank',
    hosts: ['bureau'],
    alignment: { id_format: 'any' },
    binning: {},
    scorecard: {},
  };
}

/** The held-out rows (the default vertical job's test set) and the rest, by row index. */
export function holdout(t: Table): { fit: number[]; test: number[] } {
  const all = t.ids.map((_, r) => r);
  return { fit: all.filter((r) => holdoutOf(t.ids[r]!, 42, 0.2, 0.1) !== 'test'), test: all.filter((r) => holdoutOf(t.ids[r]!, 42, 0.2, 0.1) === 'test') };
}

/** The horizontal split written to `dir`: each bank's file and the held-out rows', as participants declare them. */
export function writeHorizontalSplit(t: Table, dir: string): { banks: DatasetSpec[]; holdout: DatasetSpec } {
  const { fit, test } = holdout(t);
  const files = BANKS.map((b) => join(dir, `${b}.csv`));
  BANKS.forEach((_, i) =>
    writePart(
      files[i]!,
      t,
      fit.filter((r) => bankOf(t.ids[r]!) === i),
      t.features,
      true,
    ),
  );
  const testFile = join(dir, 'holdout.csv');
  writePart(testFile, t, test, t.features, true);
  return { banks: files.map((f) => partSpec(f, t.features, true, t)), holdout: partSpec(testFile, t.features, true, t) };
}

/** Which bank holds a non-held-out row: 45% / 35% / 20% by a hash of the id. */
export const BANKS = ['bank-a', 'bank-b', 'bank-c'];
function bankOf(id: string): number {
  const u = sha256(`quality-bank|${id}`).readUInt32BE(0) / 2 ** 32;
  return u < 0.45 ? 0 : u < 0.8 ? 1 : 2;
}

async function runJob(
  fed: EphemeralFederation,
  job: object & { name: string },
): Promise<{ jobId: string; last: JobEvent; files?: Awaited<ReturnType<Awaited<ReturnType<EphemeralFederation['client']>>['downloadModel']>> }> {
  const client = await fed.client();
  try {
    const jobId = await client.submitJob(JSON.stringify(job), 'test-bank');
    const last = await client.watchJob(jobId, () => undefined);
    if (last.state !== 'succeeded') throw new Error(`${job.name}: ${last.message}`);
    return { jobId, last, files: await client.downloadModel(jobId) };
  } finally {
    client.close();
  }
}

export interface QualityRow {
  dataset: string;
  split: 'vertical' | 'horizontal';
  federated_auc: number;
  federated_ks: number;
  central_auc: number;
  best_alone_auc: number;
  /** Horizontal only: a 95% interval of federated − best alone AUC on the held-out rows (paired bootstrap). */
  best_alone_gap_ci95?: [number, number];
  /** Horizontal only: the same job's LR without binning, winsorised (the default) and with `winsorize: 0`. */
  no_binning_auc?: number;
  no_binning_unclipped_auc?: number;
  seconds: number;
}

export async function qualityBenchmark(datasets: string, log: (line: string) => void): Promise<QualityRow[]> {
  const out: QualityRow[] = [];
  const { tf } = await loadTf();
  for (const d of qualityDatasets(datasets)) {
    const t = readTable(d);
    const all = t.ids.map((_, r) => r);
    const { fit, test } = holdout(t);
    const yTest = Float64Array.from(test, (r) => t.y[r]!);
    const central = binaryMetrics(yTest, centralReference(t, t.features, fit, test));
    log(`${d.key}: ${t.ids.length} rows (${d.note}), ${fit.length} to fit, ${test.length} held out; central WOE-LR AUC ${central.auc.toFixed(4)}`);
    const dir = await mkdtemp(join(tmpdir(), `fedcredit-quality-${d.key}-`));
    try {
      // Horizontal: three banks, the held-out rows at none of them.
      const started = Date.now();
      const split = writeHorizontalSplit(t, dir);
      const specs = split.banks;
      const held = await loadDataset(split.holdout);
      const job = horizontalQualityJob(`quality-${d.key}-horizontal`, BANKS, t.levels);
      const fed = await EphemeralFederation.start(
        BANKS.map((name, i) => ({ name, data: specs[i]! })),
        { prefix: 'fedcredit-bench-' },
      );
      let federated: ReturnType<typeof binaryMetrics>;
      let federatedScores: Float32Array;
      const noBinning: number[] = [];
      try {
        const run = await runJob(fed, job);
        const model = await modelFromFiles(tf, run.files!);
        federatedScores = model.scoreColumns(held.x, held.features, held.levels);
        federated = binaryMetrics(held.y!, federatedScores);
        // The same LR without binning: standardised, winsorised at the federated 0.5% / 99.5% quantiles (the
        // default), then with `winsorize: 0`; on the numeric columns (a category enters a model only through WOE).
        for (const winsorize of [0.005, 0]) {
          const { binning: _b, scorecard: _s, ...plain } = job;
          const lrJob = { ...plain, name: `${job.name}-no-binning-${winsorize}`, features: t.features.filter((f) => !t.levels[f]), training: { ...job.training, winsorize } };
          const lr = await runJob(fed, lrJob);
          noBinning.push(binaryMetrics(held.y!, (await modelFromFiles(tf, lr.files!)).scoreColumns(held.x, held.features, held.levels)).auc);
        }
      } finally {
        await fed.stop();
      }
      // Each bank alone: the job's pipeline (quantile sketch, bins, WOE, the same training) on its own training rows.
      const spec = HorizontalJobSpec.parse(job);
      const alone = await Promise.all(
        specs.map(async (s) => {
          const data: LoadedDataset = await loadDataset(s);
          const own = splitRows(
            data,
            data.features.map((_, i) => i),
            spec.training.validation_fraction,
            spec.training.seed,
          );
          return fitCentral(tf, spec, data.features, { train: [own.train], validation: [own.validation], levels: data.levels }).score(held.x, held.levels);
        }),
      ).then((scores) => scores.map((pd) => ({ pd, auc: binaryMetrics(held.y!, pd).auc })));
      const bestAlone = alone.reduce((a, b) => (b.auc > a.auc ? b : a));
      out.push({
        dataset: d.key,
        split: 'horizontal',
        federated_auc: federated.auc,
        federated_ks: federated.ks,
        central_auc: central.auc,
        best_alone_auc: bestAlone.auc,
        best_alone_gap_ci95: pairedAucGapInterval(held.y!, federatedScores, bestAlone.pd),
        no_binning_auc: noBinning[0],
        no_binning_unclipped_auc: noBinning[1],
        seconds: (Date.now() - started) / 1000,
      });
      log(
        `${d.key} horizontal: federated AUC ${federated.auc.toFixed(4)} KS ${federated.ks.toFixed(4)}; alone ${alone.map((a) => a.auc.toFixed(4)).join(' / ')}; LR without binning ${noBinning[0]!.toFixed(4)} winsorised, ${noBinning[1]!.toFixed(4)} not`,
      );

      // Vertical: the bank (label, credit history) and the bureau (the rest) hold every row.
      const vStarted = Date.now();
      const guestFile = join(dir, 'bank.csv');
      const hostFile = join(dir, 'bureau.csv');
      writePart(guestFile, t, all, d.guest, true);
      writePart(hostFile, t, all, d.host, false);
      const vfed = await EphemeralFederation.start(
        [
          { name: 'bank', data: partSpec(guestFile, d.guest, true, t) },
          { name: 'bureau', data: partSpec(hostFile, d.host, false, t) },
        ],
        { prefix: 'fedcredit-bench-' },
      );
      const vjob = verticalQualityJob(`quality-${d.key}-vertical`);
      try {
        const run = await runJob(vfed, vjob);
        const m = /test AUC ([0-9.]+), KS ([0-9.]+) on (\d+) held-out/.exec(run.last.message);
        if (!m) throw new Error(`vertical ${d.key}: no test figures in "${run.last.message}"`);
        if (Number(m[3]) !== test.length) throw new Error(`vertical ${d.key}: the job held out ${m[3]} enterprises, the benchmark ${test.length}`);
        // The guest alone: the job's own bins and WOE of its columns, a logistic regression on them, the same rows.
        const guestData = await loadDataset(partSpec(guestFile, d.guest, true, t));
        const hostData = await loadDataset(partSpec(hostFile, d.host, false, t));
        const binnedOf = async (org: string) =>
          (JSON.parse(await readFile(join(vfed.dir, 'fedcredit-state', org, 'jobs', run.jobId, 'binning.json'), 'utf8')) as { features: BinnedFeature[] }).features;
        const baselines = verticalBaselines(
          [
            { organisation: 'bank', data: guestData, features: d.guest, binned: await binnedOf('bank') },
            { organisation: 'bureau', data: hostData, features: d.host, binned: await binnedOf('bureau') },
          ],
          VerticalJobSpec.parse(vjob),
        );
        out.push({
          dataset: d.key,
          split: 'vertical',
          federated_auc: Number(m[1]),
          federated_ks: Number(m[2]),
          central_auc: central.auc,
          best_alone_auc: baselines.guestOnly.auc,
          seconds: (Date.now() - vStarted) / 1000,
        });
        log(`${d.key} vertical: federated AUC ${m[1]} KS ${m[2]}; guest alone ${baselines.guestOnly.auc.toFixed(4)}`);
      } finally {
        await vfed.stop();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  return out;
}

/**
 * A 95% interval of AUC(a) − AUC(b) on the same rows: 1,000 paired bootstrap resamples of the rows (seeded), the
 * 2.5th and 97.5th percentiles. Tells a gap on the held-out rows from their sampling noise.
 */
export function pairedAucGapInterval(y: ArrayLike<number>, a: ArrayLike<number>, b: ArrayLike<number>, resamples = 1000): [number, number] {
  const rng = new Rng(19);
  const n = y.length;
  const gaps: number[] = [];
  const ys = new Float64Array(n);
  const as = new Float64Array(n);
  const bs = new Float64Array(n);
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < n; i++) {
      const k = rng.int(n);
      ys[i] = y[k]!;
      as[i] = a[k]!;
      bs[i] = b[k]!;
    }
    gaps.push(auc(ys, as) - auc(ys, bs));
  }
  gaps.sort((p, q) => p - q);
  return [gaps[Math.floor(0.025 * resamples)]!, gaps[Math.ceil(0.975 * resamples) - 1]!];
}
