/**
 * A horizontal scorecard job with categorical features over real processes (issue 19): three participants hold
 * German credit rows, each file with its own order of levels; the job declares every level, bins the categories from
 * secure histograms, trains on WOE and publishes a scorecard whose category bins score held-out rows through
 * `fedcredit score`. The ledger lists every candidate's fine-bin and final IV, the audit replay derives the bins
 * again, and a participant holding a level the job does not declare refuses the offer without naming the level.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { DATASETS, TestFederation, horizontalJob } from './helpers/federation.js';
import { cli } from './helpers/cli.js';
import type { DatasetSpec } from '../src/data/schema.js';
import { loadDataset } from '../src/data/csv.js';
import { scoreRecord, type Scorecard } from '../src/credit/scorecard.js';
import { cellValue } from '../src/credit/bin-layout.js';
import { writeArtifact, type ArtifactFiles } from '../src/model/artifact.js';
import { loadArtifactReport } from '../src/report/artifact-report.js';
import { readLedger } from '../src/ledger/read.js';
import { replayLedger } from '../src/jobs/replay.js';

const NAMES = ['bank-a', 'bank-b', 'bank-c'];
const CATEGORIES = ['CheckingAccountStatus', 'CreditHistory', 'Purpose', 'Savings', 'Property'];
const NUMBERS = ['Duration', 'CreditAmount', 'Age'];
const FEATURES = [...CATEGORIES, ...NUMBERS];

const german = parse(readFileSync(join(DATASETS, 'german_credit', 'german_credit.csv'), 'utf8'), { columns: true, skip_empty_lines: true }) as Record<string, string>[];
const levelsOf = (c: string) => [...new Set(german.map((r) => r[c]!))].sort();

function spec(file: string): DatasetSpec {
  return {
    path: file,
    delimiter: ',',
    id_column: 'id',
    label_column: 'y',
    features: FEATURES.map((name) => ({ name, type: CATEGORIES.includes(name) ? ('category' as const) : ('number' as const), missing: 'impute' as const })),
    duplicate_ids: 'reject',
    missing_values: [''],
  } as DatasetSpec;
}

function binningSection(levels: (c: string) => string[]) {
  return {
    method: 'optimal',
    iv_threshold: 0.02,
    features: Object.fromEntries(CATEGORIES.map((c) => [c, { type: 'category', levels: levels(c) }])),
  };
}

describe('a horizontal scorecard job with categorical features (German credit, three participants, real processes)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedcredit-hcat-'));
  const write = (file: string, rows: { r: Record<string, string>; i: number }[]) =>
    writeFileSync(file, [['id', 'y', ...FEATURES].join(','), ...rows.map(({ r, i }) => [`e${i}`, r.Class === '2' ? 1 : 0, ...FEATURES.map((f) => r[f])].join(','))].join('\n') + '\n');
  const indexed = german.map((r, i) => ({ r, i }));
  // Every tenth row is held out: no participant holds it.
  const held = join(dir, 'held-out.csv');
  let fed: TestFederation;
  let jobId: string;
  let files: ArtifactFiles;
  let events: { message: string }[];
  const entry = (kind: string) => readLedger(fed.ledgerDir).entries.find((e) => e.entry.kind === kind && e.entry.jobId === jobId)?.body as Record<string, any>;

  beforeAll(async () => {
    write(
      held,
      indexed.filter(({ i }) => i % 10 === 9),
    );
    const parts = NAMES.map((_, p) => {
      const rows = indexed.filter(({ i }) => i % 10 !== 9 && i % 3 === p);
      if (p === 1) rows.reverse();
      const file = join(dir, `${NAMES[p]}.csv`);
      write(file, rows);
      return file;
    });
    fed = await TestFederation.start(NAMES.map((name, p) => ({ name, data: spec(parts[p]!) })));
    const job = {
      ...horizontalJob({ participants: NAMES, training: { rounds: 6, seed: 5, optimizer: 'adam', learning_rate: 0.05, batch_size: 32 } }),
      name: 'german-categories',
      statistics: true,
      features: FEATURES,
      binning: binningSection(levelsOf),
      scorecard: { base_score: 600, base_odds: 50, pdo: 20, decimals: 2, reason_codes: 2 },
    };
    const run = await fed.run(job);
    expect(run.last.state, run.last.message).toBe('succeeded');
    jobId = run.jobId;
    files = await run.client.downloadModel(jobId);
    expect(run.events.some((e) => /features have IV/.test(e.message))).toBe(true);
    events = run.events;
    run.client.close();
  }, 600_000);

  afterAll(async () => {
    await fed?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the ledger lists every candidate with its fine-bin and final IV; the categories are binned by level groups', () => {
    const binning = entry('binning_completed');
    expect(binning.iv.map((r: { feature: string }) => r.feature)).toEqual(FEATURES);
    for (const r of binning.iv) expect(r.fine_iv).toBeGreaterThanOrEqual(r.iv - 1e-12);
    // Each fine-bin IV with its chance level: about (bins − 1)·(1/defaults + 1/non-defaults) on some 700 training rows.
    for (const r of binning.iv) expect(r.chance_iv, r.feature).toBeGreaterThan(0.002);
    expect(binning.iv.find((r: { feature: string }) => r.feature === 'Duration').chance_iv).toBeGreaterThan(0.05);
    expect(Array.isArray(binning.warnings)).toBe(true);
    const checking = binning.bins.find((b: { feature: string }) => b.feature === 'CheckingAccountStatus');
    expect(checking.categories.flat().sort()).toEqual(levelsOf('CheckingAccountStatus'));
    // The bins hold every participant's training rows (their validation rows stay out).
    const consents = readLedger(fed.ledgerDir).entries.filter((e) => e.entry.kind === 'participant_consent' && e.entry.jobId === jobId);
    const trainRows = consents.reduce((n, e) => n + (e.body as { train_rows: number }).train_rows, 0);
    expect(trainRows).toBeGreaterThan(600);
    expect(checking.totals.reduce((a: number, b: number) => a + b, 0)).toBe(trainRows);
  });

  it("the federated statistics count a category's rows but give it no mean or sd (its cells are levels, not amounts)", () => {
    const stats = entry('statistics_completed').features as { feature: string; count: number; mean: number | null; sd: number | null }[];
    for (const s of stats) {
      expect(s.count, s.feature).toBeGreaterThan(600);
      if (CATEGORIES.includes(s.feature)) expect([s.mean, s.sd], s.feature).toEqual([null, null]);
      else expect(s.mean, s.feature).toBeGreaterThan(0);
    }
  });

  it('the audit replay derives the statistics, quantile search, bins and scorecard again', async () => {
    const report = await replayLedger(fed.ledgerDir, { jobId });
    expect(report.jobs[0]!.failures).toEqual([]);
    expect(report.jobs[0]!.derived).toMatchObject({ statistics: true, quantiles: true, binning: true, preprocessing: true, scorecard: true });
  });

  it('`fedcredit score` scores held-out rows by their levels as the scorecard says; the report lists every candidate with its fine-bin IV', async () => {
    const modelDir = join(dir, 'model');
    await writeArtifact(modelDir, files);
    const card = JSON.parse(Buffer.from(files['scorecard.json']!).toString('utf8')) as Scorecard;
    expect(card.features.some((f) => f.bins.some((b) => b.categories && b.categories.length > 0))).toBe(true);
    expect(Buffer.from(files['scorecard.pmml']!).toString('utf8')).toMatch(/SimpleSetPredicate field="(CheckingAccountStatus|CreditHistory|Purpose|Savings|Property)"/);
    const out = join(dir, 'scores.csv');
    const { code, stderr } = await cli(['score', '--model', modelDir, '--data', held, '--out', out, '--config', join(fed.dir, 'bank-a.yaml')]);
    expect(code, stderr).toBe(0);
    const rows = await loadDataset(spec(held));
    const [header, ...lines] = (await readFile(out, 'utf8')).trim().split('\n');
    expect(header).toBe('enterprise_id,pd,points,reason_1,reason_2');
    expect(lines).toHaveLength(rows.rows);
    lines.forEach((line, r) => {
      const values = Object.fromEntries(card.features.map((f) => [f.feature, cellValue(rows.x[r * FEATURES.length + FEATURES.indexOf(f.feature)]!, rows.levels?.[f.feature])!]));
      expect(Number(line.split(',')[2])).toBe(scoreRecord(card, values).score);
    });
    const report = loadArtifactReport(modelDir);
    expect(report.iv!.map((r) => r.feature).sort()).toEqual([...FEATURES].sort());
    expect(report.iv!.every((r) => r.fineIv !== undefined && r.chanceIv !== undefined)).toBe(true);
    // Some 60 validation rows a participant: too few for their AUC to choose among six rounds. The job says so.
    expect(report.validationWarning).toMatch(
      /^the validation set is too small to choose the round to publish \(round \d of 6\): on \d+ validation rows, \d+ of them defaults, the validation AUC has a standard error of 0\.0\d\d/,
    );
    expect(report.validationWarning).toMatch(/raise training\.validation_fraction \(now 0\.2\), or set training\.model_selection: last_round$/);
    expect(events.some((e) => e.message === `warning: ${report.validationWarning}`)).toBe(true);
    console.log(`German credit, three participants of some 300 loans: ${report.validationWarning}`);
  });

  it('a participant holding a level the job does not declare refuses, naming the field and a count, never the level', async () => {
    const job = {
      ...horizontalJob({ participants: NAMES, training: { rounds: 1 } }),
      name: 'german-missing-level',
      features: FEATURES,
      binning: binningSection((c) => (c === 'Purpose' ? levelsOf(c).filter((l) => l !== 'A410') : levelsOf(c))),
    };
    const run = await fed.run(job);
    run.client.close();
    expect(run.last.state).toBe('failed');
    expect(run.last.message).toMatch(/binning\.features\.Purpose\.levels/);
    expect(run.last.message).toMatch(/1 level of Purpose in this participant's data is not in/);
    expect(run.last.message).not.toMatch(/A410/);
  });
});
