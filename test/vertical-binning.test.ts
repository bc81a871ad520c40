/**
 * Vertical binning on real credit data with the default binning settings: Give Me Some Credit split into a bank
 * (label, utilisation, age, income, debt ratio) and a bureau holding the delinquency counts, and German credit with
 * its A-coded categories on both sides. The binning the guest settles by position must keep the strong
 * delinquency counts, follow a monotone trend, give special codes and categories their own bins, and say so in
 * the ledger, the job's events and the report.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import type { DatasetSpec } from '../src/data/schema.js';
import { VerticalJobSpec } from '../src/config/schemas.js';
import { binCounts, type BinCounts } from '../src/credit/binning.js';
import { binningWarnings } from '../src/credit/settle.js';
import { reasonCodes, scoreRecord, type Scorecard } from '../src/credit/scorecard.js';
import { requestScores } from '../src/vertical/score-client.js';
import { readLedger } from '../src/ledger/read.js';
import type { BinnedFeature, IvRow } from '../src/vertical/binning.js';
import { DATASETS, TestFederation } from './helpers/federation.js';
import { participantJobDir } from './helpers/vertical.js';
import { evaluatePmmlScorecard, readPmmlScorecard } from './helpers/pmml-scorecard.js';

type Row = Record<string, string>;

const readCsv = (file: string) => parse(readFileSync(file, 'utf8'), { columns: true, skip_empty_lines: true }) as Row[];

function writeCsv(file: string, header: string[], rows: string[][]): void {
  writeFileSync(file, [header.join(','), ...rows.map((r) => r.join(','))].join('\n') + '\n');
}

function spec(file: string, features: [string, 'number' | 'integer' | 'category'][], extra: Partial<DatasetSpec> = {}): DatasetSpec {
  return { path: file, delimiter: ',', id_column: 'id', features: features.map(([name, type]) => ({ name, type, missing: 'impute' })), duplicate_ids: 'reject', missing_values: ['', 'NA'], ...extra };
}

function binningOf(dir: string): { features: BinnedFeature[]; iv: IvRow[] | null; hostCounts: Record<string, BinCounts>; warnings: string[] } {
  return JSON.parse(readFileSync(join(dir, 'binning.json'), 'utf8'));
}

/** Default rates of the value bins (numeric or category groups) of counts whose last `extra` bins are specials and missing. */
const rates = (c: BinCounts, valueBins: number) => Array.from({ length: valueBins }, (_, b) => c.events[b]! / c.totals[b]!);
const strictlyMonotone = (r: number[]) => r.every((v, i) => i === 0 || v > r[i - 1]!) || r.every((v, i) => i === 0 || v < r[i - 1]!);

const BANK = ['RevolvingUtilizationOfUnsecuredLines', 'age', 'DebtRatio', 'NumberOfOpenCreditLinesAndLoans', 'NumberRealEstateLoansOrLines', 'NumberOfDependents'];
const BUREAU = ['NumberOfTime30-59DaysPastDueNotWorse', 'NumberOfTime60-89DaysPastDueNotWorse', 'NumberOfTimes90DaysLate', 'MonthlyIncome'];
/** The bureau holds no record of one borrower in 40: they are outside training, and scored without its data. */
const lackedByBureau = (r: Row) => Number(r['']) % 40 === 0;
const ZERO_INFLATED = 'NumberOfTime60-89DaysPastDueNotWorse';

describe('Give Me Some Credit, bank + bureau, default binning settings', () => {
  let fed: TestFederation;
  const dataDir = mkdtempSync(join(tmpdir(), 'fedcredit-gmsc-'));
  let rows: Row[];
  beforeAll(async () => {
    // 60,000 of the 150,000 borrowers keep the test's time down; 4% of the 60-89 day counts are non-zero.
    rows = readCsv(join(DATASETS, 'give_me_some_credit', 'cs-training.csv')).slice(0, 60_000);
    const id = (r: Row) => `c${r['']}`;
    writeCsv(
      join(dataDir, 'bank.csv'),
      ['id', 'default', ...BANK],
      rows.map((r) => [id(r), r.SeriousDlqin2yrs!, ...BANK.map((f) => r[f]!)]),
    );
    writeCsv(
      join(dataDir, 'bureau.csv'),
      ['id', ...BUREAU],
      rows.filter((r) => !lackedByBureau(r)).map((r) => [id(r), ...BUREAU.map((f) => r[f]!)]),
    );
    fed = await TestFederation.start([
      {
        name: 'bank',
        data: spec(
          join(dataDir, 'bank.csv'),
          BANK.map((f) => [f, 'number']),
          { label_column: 'default' },
        ),
      },
      {
        name: 'bureau',
        data: spec(
          join(dataDir, 'bureau.csv'),
          BUREAU.map((f) => [f, f === 'MonthlyIncome' ? 'number' : 'integer']),
        ),
      },
    ]);
  });
  afterAll(async () => fed?.stop());

  it('keeps the zero-inflated 60-89 days count (IV 0 under the old defaults), monotone bins, special codes apart, warnings recorded', async () => {
    const { jobId, last, events } = await fed.run({
      name: 'gmsc-defaults',
      kind: 'vertical-lr',
      purpose: 'test: default binning on Give Me Some Credit',
      guest: 'bank',
      hosts: ['bureau'],
      alignment: { id_format: 'any', min_intersection: 1000 },
      // One epoch (was three): what is checked is the binning, made before training, and the scorecard and scores as
      // the model's weights make them, whatever those are.
      training: { epochs: 1, batch_size: 4096, learning_rate: 0.05, seed: 2, patience: 0, step_timeout_s: 180, grace_period_s: 20 },
      // Default settings but one: the delinquency counts' 96 and 98 are codes, not counts.
      binning: { features: { 'NumberOfTime30-59DaysPastDueNotWorse': { special_values: [96, 98] } } },
      scorecard: {},
    });
    expect(last.state, last.message).toBe('succeeded');
    const bank = binningOf(participantJobDir(fed.dir, 'bank', jobId));
    const bureau = binningOf(participantJobDir(fed.dir, 'bureau', jobId));

    const ledger = readLedger(fed.ledgerDir);
    const recorded = ledger.entries.find((e) => e.entry.kind === 'binning_completed' && e.entry.jobId === jobId)!.body as { iv: IvRow[]; warnings: string[] };
    const row = (f: string) => recorded.iv.find((r) => r.feature === f)!;
    // Every candidate feature with its fine-bin IV and its final IV.
    expect(recorded.iv.map((r) => r.feature).sort()).toEqual([...BANK, ...BUREAU].sort());
    for (const r of recorded.iv) {
      expect(r.fineIv, r.feature).toBeGreaterThanOrEqual(r.iv - 1e-12);
      expect(['ascending', 'descending']).toContain(r.trend);
    }
    console.log(
      `GMSC bank + bureau, default binning: ${last.message}; IV final/fine: ${recorded.iv.map((r) => `${r.feature} ${r.iv.toFixed(3)}/${r.fineIv!.toFixed(3)}${r.selected ? '' : ' (dropped)'}`).join(', ')}; ${recorded.warnings.length} warnings`,
    );
    // The zero-inflated count: kept, with most of its fine-bin IV (0.58 on the whole file), cut between 0 and 1.
    expect(row(ZERO_INFLATED).selected).toBe(true);
    expect(row(ZERO_INFLATED).iv).toBeGreaterThan(0.4);
    const sixty = bureau.features.find((f) => f.feature === ZERO_INFLATED)!;
    expect(sixty.edges[0]).toBe(0.5);
    // Monotone default rates in every final bin set: the bank's own counts and the host counts the guest learned.
    for (const f of bank.features) expect(strictlyMonotone(rates({ events: f.trainEvents!, totals: f.trainCounts }, f.edges.length + 1)), f.feature).toBe(true);
    for (const f of bureau.features) expect(strictlyMonotone(rates(bank.hostCounts[f.feature]!, f.edges.length + 1)), f.feature).toBe(true);
    // Special codes: their own bins at the host, after the numeric ones, with the rows that hold them.
    const late = bureau.features.find((f) => f.feature === 'NumberOfTime30-59DaysPastDueNotWorse')!;
    expect(late.specials).toEqual([96, 98]);
    expect(Math.max(...late.edges)).toBeLessThan(96);
    const m = late.edges.length;
    // The IV table counts the value bins max_bins bounds (8 by default), not the special-value bins and the missing one.
    expect(row(late.feature).bins).toBe(m + 1);
    for (const r of recorded.iv) expect(r.bins, r.feature).toBeLessThanOrEqual(8);
    const nineEight = rows.filter((r) => r['NumberOfTime30-59DaysPastDueNotWorse'] === '98').length;
    expect(bank.hostCounts[late.feature]!.totals[m + 2]).toBeGreaterThan(0.5 * nineEight); // the training share of them
    expect(late.woe[m + 2]!).toBeLessThan(-1.5); // half of them default
    // The guest's counts of the host's bins equal a central count on the same training rows and final bins.
    const train = readFileSync(join(participantJobDir(fed.dir, 'bank', jobId), 'aligned-ids.csv'), 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .filter((l) => l.endsWith(',train'))
      .map((l) => l.split(',')[0]!);
    const byId = new Map(rows.map((r) => [`c${r['']}`, r]));
    expect(train.some((id) => lackedByBureau(byId.get(id)!))).toBe(false);
    const central = binCounts(
      train.map((id) => Number(byId.get(id)!['NumberOfTime30-59DaysPastDueNotWorse'])),
      train.map((id) => Number(byId.get(id)!.SeriousDlqin2yrs)),
      late.edges,
      late.specials,
    );
    expect(bank.hostCounts[late.feature]).toEqual(central);
    // Warnings: exactly the features binning lost, in the ledger, the job's events and the guest's record.
    const expected = binningWarnings(recorded.iv, 0.02);
    expect(recorded.warnings).toEqual(expected);
    expect(bank.warnings).toEqual(expected);
    for (const w of expected) expect(events.some((e) => e.message === `warning: ${w}`)).toBe(true);
    const report = JSON.parse(readFileSync(join(participantJobDir(fed.dir, 'bank', jobId), 'model-report.json'), 'utf8')) as {
      iv: IvRow[];
      binningWarnings: string[];
      ivThresholds: { caution: number; leakage: number };
    };
    expect(report.iv).toEqual(recorded.iv);
    expect(report.binningWarnings).toEqual(expected);
    expect(report.ivThresholds).toEqual({ caution: 0.5, leakage: 1 });
    const manifest = JSON.parse(readFileSync(join(fed.stateDir, 'jobs', jobId, 'model', 'manifest.json'), 'utf8')) as { iv: IvRow[]; binning_warnings: string[] };
    expect(manifest.iv).toEqual(recorded.iv);
    expect(manifest.binning_warnings).toEqual(expected);
    // The scorecard's special-value bins carry their own points.
    const card = JSON.parse(readFileSync(join(participantJobDir(fed.dir, 'bank', jobId), 'scorecard.json'), 'utf8')) as Scorecard;
    const cardLate = card.features.find((f) => f.feature === late.feature)!;
    expect(cardLate.bins.filter((b) => b.special !== undefined).map((b) => b.label)).toEqual(['= 96', '= 98']);

    // Scoring borrowers the bureau holds no record of: neutral on its features (0 points, no reason), not its
    // missing bins (MonthlyIncome's missing bin has its own WOE), flagged per borrower and counted.
    const bureauFeatures = new Set(card.features.filter((f) => f.party === 'bureau').map((f) => f.feature));
    const missingIncome = card.features.find((f) => f.feature === 'MonthlyIncome')!.bins.at(-1)!;
    console.log(`Give Me Some Credit: MonthlyIncome's ${missingIncome.label} bin scores ${missingIncome.points} points`);
    expect(missingIncome.points).not.toBe(0);
    const lacked = rows.filter(lackedByBureau).slice(0, 25);
    const held = train.slice(0, 25).map((id) => byId.get(id)!);
    const transport = await fed.identity('bank', 'submitter');
    const scored = await requestScores({
      coordinator: fed.cluster.address,
      transport,
      organisation: 'bank',
      stateDir: join(fed.dir, 'fedcredit-state', 'bank'),
      modelJob: jobId,
      ids: [...lacked, ...held].map((r) => `c${r['']}`),
      idFormat: 'any',
      purpose: 'test: borrowers the bureau lacks',
    });
    const out = parse(scored.csv, { columns: true }) as Row[];
    expect(out).toHaveLength(50);
    const value = (r: Row, f: string) => (r[f] === 'NA' ? Number.NaN : Number(r[f]));
    for (const o of out) {
      const r = byId.get(o.enterprise_id!.toLowerCase())!;
      const lacks = lackedByBureau(r);
      expect(o.hosts_missing).toBe(lacks ? 'bureau' : '');
      const values = Object.fromEntries(card.features.map((f) => [f.feature, lacks && bureauFeatures.has(f.feature) ? Number.NaN : value(r, f.feature)]));
      const expected = scoreRecord(card, values, lacks ? bureauFeatures : undefined);
      expect(Number(o.points)).toBeCloseTo(expected.score, 6);
      if (lacks) {
        expect(Number(o.points)).not.toBeCloseTo(scoreRecord(card, values).score, 2); // what the missing bins would give
        for (const k of [1, 2, 3]) expect(o[`reason_${k}`] ?? '').not.toMatch(/^bureau\//);
      }
    }
    const batch = JSON.parse(readFileSync(join(participantJobDir(fed.dir, 'bank', scored.jobId), 'batch-report.json'), 'utf8')) as { notHeld: Record<string, number> };
    expect(batch.notHeld).toEqual({ bureau: 25 });
  });
});

const LENDER: [string, 'number' | 'category'][] = [
  ['Duration', 'number'],
  ['CreditAmount', 'number'],
  ['Purpose', 'category'],
  ['CreditHistory', 'category'],
];
const REGISTRY: [string, 'number' | 'category'][] = [
  ['CheckingAccountStatus', 'category'],
  ['Savings', 'category'],
  ['Age', 'number'],
  ['Property', 'category'],
];

describe('German credit with its categories on both sides', () => {
  let fed: TestFederation;
  const dataDir = mkdtempSync(join(tmpdir(), 'fedcredit-german-cat-'));
  let rows: Row[];
  beforeAll(async () => {
    rows = readCsv(join(DATASETS, 'german_credit', 'german_credit.csv'));
    const ids = rows.map((_, i) => `app-${i + 1}`);
    writeCsv(
      join(dataDir, 'lender.csv'),
      ['id', 'bad', ...LENDER.map(([f]) => f)],
      rows.map((r, i) => [ids[i]!, r.Class === '2' ? '1' : '0', ...LENDER.map(([f]) => r[f]!)]),
    );
    writeCsv(
      join(dataDir, 'registry.csv'),
      ['id', ...REGISTRY.map(([f]) => f)],
      rows.map((r, i) => [ids[i]!, ...REGISTRY.map(([f]) => r[f]!)]),
    );
    fed = await TestFederation.start([
      { name: 'lender', data: spec(join(dataDir, 'lender.csv'), LENDER, { label_column: 'bad' }) },
      { name: 'registry', data: spec(join(dataDir, 'registry.csv'), REGISTRY) },
    ]);
  });
  afterAll(async () => fed?.stop());

  const job = {
    name: 'german-categories',
    kind: 'vertical-lr',
    purpose: 'test: categorical features on German credit',
    guest: 'lender',
    hosts: ['registry'],
    alignment: { id_format: 'any', min_intersection: 500 },
    // Two epochs (was ten): the IVs come from the binning, before training, and the scorecard, its PMML and the scores
    // are checked against each other, whatever the weights.
    training: { epochs: 2, batch_size: 512, learning_rate: 0.05, seed: 3, patience: 0, test_fraction: 0.3, step_timeout_s: 120, grace_period_s: 20 },
    scorecard: {},
  };

  it('WOE per category (rare levels grouped), in the scorecard, its PMML and the reasons; the checking account is the strongest', async () => {
    const { jobId, last, events } = await fed.run({ ...job, binning: { features: { Purpose: { type: 'category', unseen: 'reject' } } } });
    expect(last.state, last.message).toBe('succeeded');
    const lenderDir = participantJobDir(fed.dir, 'lender', jobId);
    const lender = binningOf(lenderDir);
    const registry = binningOf(participantJobDir(fed.dir, 'registry', jobId));
    // The guest knows each fine-bin IV's chance level (about (bins − 1)·(1/defaults + 1/non-defaults) on 630 training
    // loans); the registry is not told it, as it would tell it how many of the loans default.
    for (const r of lender.iv!) expect(r.chanceIv, r.feature).toBeGreaterThan(0.002);
    expect(lender.iv!.find((r) => r.feature === 'Duration')!.chanceIv).toBeGreaterThan(0.05);
    expect(JSON.stringify(registry)).not.toContain('chanceIv');
    // About 70 validation loans choose between the two epochs: the job says that they are too few.
    const report = JSON.parse(readFileSync(join(lenderDir, 'model-report.json'), 'utf8')) as { validationWarning?: string };
    expect(report.validationWarning).toMatch(
      /^the validation set is too small to choose the epoch to keep \(epoch [12] of 2 validated\): on \d+ validation rows, \d+ of them defaults, the validation AUC has a standard error of 0\.0[3-9]\d/,
    );
    expect(report.validationWarning).toMatch(/raise training\.validation_fraction \(now 0\.1\)/);
    expect(events.some((e) => e.message === `warning: ${report.validationWarning}`)).toBe(true);
    const manifest = JSON.parse(readFileSync(join(fed.stateDir, 'jobs', jobId, 'model', 'manifest.json'), 'utf8')) as { validation_warning?: string };
    expect(manifest.validation_warning).toBe(report.validationWarning);
    const iv = Object.fromEntries(lender.iv!.map((r) => [r.feature, r]));
    console.log(`German credit with categories: ${last.message}; IV final/fine: ${lender.iv!.map((r) => `${r.feature} ${r.iv.toFixed(3)}/${r.fineIv!.toFixed(3)}`).join(', ')}`);
    expect(iv.CheckingAccountStatus!.type).toBe('category');
    expect(iv.CheckingAccountStatus!.iv).toBeGreaterThan(0.5); // A14 (no checking account) is far safer
    expect(Math.max(...lender.iv!.map((r) => r.iv))).toBe(iv.CheckingAccountStatus!.iv);
    // Every level of a category in exactly one bin, bins in ascending default rate (the guest's own and the host's).
    for (const f of [...lender.features, ...registry.features].filter((b) => b.categories)) {
      const levels = [...new Set(rows.map((r) => r[f.feature]!))].sort();
      expect(f.categories!.flat().sort(), f.feature).toEqual(levels);
      const counts = f.trainEvents ? { events: f.trainEvents, totals: f.trainCounts } : lender.hostCounts[f.feature]!;
      const r = rates(counts, f.categories!.length);
      expect(
        r.every((v, i) => i === 0 || v > r[i - 1]!),
        f.feature,
      ).toBe(true);
    }
    // Purpose's rare levels (A44, A48, A410: about 1% each) share a bin with another level.
    const purpose = lender.features.find((f) => f.feature === 'Purpose')!;
    expect(purpose.unseen).toBe('reject');
    for (const rare of ['A44', 'A48', 'A410']) expect(purpose.categories!.find((g) => g.includes(rare))!.length).toBeGreaterThan(1);

    // The scorecard and its PMML score the held-out applicants alike, levels given as text.
    const card = JSON.parse(readFileSync(join(lenderDir, 'scorecard.json'), 'utf8')) as Scorecard;
    const pmmlText = readFileSync(join(lenderDir, 'scorecard.pmml'), 'utf8');
    expect(pmmlText).toContain('<SimpleSetPredicate field="Purpose" booleanOperator="isIn">');
    const pmml = readPmmlScorecard(pmmlText);
    const byId = new Map(rows.map((r, i) => [`app-${i + 1}`, r]));
    const test = readCsv(join(lenderDir, 'test-scores.csv'));
    const numeric = new Set(['Duration', 'CreditAmount', 'Age']);
    for (const t of test) {
      const r = byId.get(t.enterprise_id!)!;
      const values = Object.fromEntries(card.features.map((f) => [f.feature, numeric.has(f.feature) ? Number(r[f.feature]) : r[f.feature]!]));
      const own = scoreRecord(card, values);
      expect(Number(t.points)).toBeCloseTo(own.score, 0); // test-scores' points come from the model's logit, before rounding
      const fromPmml = evaluatePmmlScorecard(pmml, values);
      expect(fromPmml.score).toBeCloseTo(own.score, 9);
      expect(fromPmml.reasonCodes.slice(0, 3)).toEqual(reasonCodes(own.points, 3).map((p) => p.feature));
    }
    // Scoring through the federation: each party reads its categories as text and finds their bins.
    const ids = test.slice(0, 60).map((t) => t.enterprise_id!);
    const transport = await fed.identity('lender', 'submitter');
    const scored = await requestScores({
      coordinator: fed.cluster.address,
      transport,
      organisation: 'lender',
      stateDir: join(fed.dir, 'fedcredit-state', 'lender'),
      modelJob: jobId,
      ids,
      idFormat: 'any',
      purpose: 'test: scoring categories',
    });
    const scoredRows = parse(scored.csv, { columns: true }) as Row[];
    expect(scoredRows).toHaveLength(ids.length);
    for (const s of scoredRows) {
      const r = byId.get(s.enterprise_id!.toLowerCase())!; // scores.csv gives ids normalised (upper case)
      const own = scoreRecord(card, Object.fromEntries(card.features.map((f) => [f.feature, numeric.has(f.feature) ? Number(r[f.feature]) : r[f.feature]!])));
      expect(Number(s.points)).toBeCloseTo(own.score, 6);
      expect([s.reason_1, s.reason_2, s.reason_3].filter((v) => v).map((v) => v!.split(' ')[0]!.split('/')[1])).toEqual(reasonCodes(own.points, 3).map((p) => p.feature));
    }
    // A level never seen in training: rejected by the card and by a PMML engine for Purpose (unseen: reject), neutral
    // elsewhere (0 points).
    const sample = Object.fromEntries(card.features.map((f) => [f.feature, numeric.has(f.feature) ? 30 : (rows[0]![f.feature] as string)]));
    expect(() => scoreRecord(card, { ...sample, Purpose: 'A47' })).toThrow(/FC_DATA_REJECTED|level "A47" was not seen in training, and binning\.features\.Purpose\.unseen is reject/);
    expect(() => evaluatePmmlScorecard(pmml, { ...sample, Purpose: 'A47' })).toThrow(/not a valid value/);
    if (card.features.some((f) => f.feature === 'Savings')) {
      const neutral = scoreRecord(card, { ...sample, Savings: 'A69' });
      expect(neutral.points.find((p) => p.feature === 'Savings')!.points).toBe(0);
      expect(evaluatePmmlScorecard(pmml, { ...sample, Savings: 'A69' }).score).toBeCloseTo(neutral.score, 9);
    }
  });

  it('names the field and the fix for a monotonic trend or special values on a category, or a category the job calls a number', async () => {
    const monotonic = VerticalJobSpec.safeParse({ ...job, binning: { features: { Purpose: { type: 'category', monotonic: 'ascending' } } } });
    expect(monotonic.success).toBe(false);
    expect(monotonic.error!.issues[0]!.path.join('.')).toBe('binning.features.Purpose.monotonic');
    expect(monotonic.error!.issues[0]!.message).toMatch(/Purpose is a category.*remove binning\.features\.Purpose\.monotonic/);
    const special = VerticalJobSpec.safeParse({ ...job, binning: { features: { Savings: { type: 'category', special_values: [98] } } } });
    expect(special.error!.issues[0]!.message).toMatch(/Savings is a category.*remove binning\.features\.Savings\.special_values/);

    // Without `type: category` in the job, the data owner's schema says so: the job is refused before any data moves.
    const run = await fed.run({ ...job, binning: { features: { CheckingAccountStatus: { monotonic: 'descending' } } } });
    expect(run.last.state).toBe('failed');
    expect(run.last.message).toMatch(/binning\.features\.CheckingAccountStatus\.monotonic/);
    expect(run.last.message).toMatch(/CheckingAccountStatus is a category/);
    const typed = await fed.run({ ...job, binning: { features: { Age: { type: 'category' } } } });
    expect(typed.last.state).toBe('failed');
    expect(typed.last.message).toMatch(/binning\.features\.Age\.type.*declares Age a category but the data owner's schema has it as a number/);
    const noBinning = await fed.run({ ...job, scorecard: undefined });
    expect(noBinning.last.state).toBe('failed');
    // Every category of the refusing party at once, not one per submission (whichever party's refusal arrives first).
    expect(noBinning.last.message).toMatch(
      /lender did not accept the job: refused \(binning\): Purpose, CreditHistory are categories .*add a binning: section|registry did not accept the job: refused \(binning\): CheckingAccountStatus, Savings, Property are categories .*add a binning: section/,
    );
  });
});
