/**
 * Horizontal binning of categories and special values (issue 19), in one process with the functions each party runs:
 * three participants hold German credit rows (13 categorical A-code columns, each file with its own order of levels)
 * or Give Me Some Credit rows (the codes 96 and 98 in the delinquency counts); each counts its rows as a participant
 * node does (src/fl/histogram.ts, src/fl/quantile-search.ts), the counts are summed as the secure sum opens them, and
 * the coordinator's bins are checked against the pooled rows.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { BinningSpec, ScorecardSpec } from '../src/config/schemas.js';
import { loadDataset, type LoadedDataset } from '../src/data/csv.js';
import { binsFromHistogram, binningRecord, categoryRefusal, declaredLevels, fineGridsOf, localHistogram, preprocessingFromBins, searchLayouts, toDeclaredLevels } from '../src/fl/histogram.js';
import { QuantileSearch } from '../src/fl/quantile-search.js';
import { applyPreprocessing, localMoments, preprocessingFromMoments } from '../src/model/preprocess.js';
import { horizontalScorecard } from '../src/model/scorecard.js';
import { scoreRecord } from '../src/credit/scorecard.js';
import { binningConflict } from '../src/credit/settle.js';
import { reportScorecard } from '../src/report/model-report.js';
import { ErrorCode, FedcreditError } from '../src/errors.js';
import { DATASETS } from './helpers/federation.js';

const GERMAN = join(DATASETS, 'german_credit', 'german_credit.csv');
const GMSC = join(DATASETS, 'give_me_some_credit', 'cs-training.csv');
const CATEGORIES = ['CheckingAccountStatus', 'CreditHistory', 'Purpose', 'Savings', 'EmploymentSince', 'Property', 'Housing'];
const NUMBERS = ['Duration', 'CreditAmount', 'Age'];
/** Every Purpose code of the data set's documentation: A47 (vacation) is declared but no row holds it. */
const PURPOSE_LEVELS = ['A40', 'A41', 'A42', 'A43', 'A44', 'A45', 'A46', 'A47', 'A48', 'A49', 'A410'];

interface Party {
  data: LoadedDataset;
}

/** Sum of every party's vector, as the secure sum opens it. */
const sum = (vectors: Float64Array[]) => vectors.reduce((acc, v) => acc.map((a, i) => a + v[i]!));

/** The horizontal job's steps over the parties: moments, quantile search, histograms, bins. */
function runBinning(parties: Party[], features: string[], spec: BinningSpec) {
  const xs = parties.map((p) => toDeclaredLevels(p.data.x, features, p.data.levels, spec));
  const dim = features.length;
  const moments = sum(xs.map((x) => localMoments(x, dim)));
  const search = new QuantileSearch(moments, dim, searchLayouts(spec, features));
  while (!search.done) search.advance(sum(xs.map((x) => search.localCounts(x, dim))));
  const grids = fineGridsOf(search, spec, features);
  const histogram = sum(parties.map((p, i) => localHistogram(xs[i]!, p.data.y!, grids)));
  const binned = binsFromHistogram(features, grids, histogram, spec);
  return { binned, grids, prep: preprocessingFromBins(preprocessingFromMoments(features, moments, false), binned, true) };
}

describe('horizontal categories on German credit (three participants, each with its own level order)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedcredit-hbin-'));
  const rows = parse(readFileSync(GERMAN, 'utf8'), { columns: true, skip_empty_lines: true }) as Record<string, string>[];
  const features = [...CATEGORIES, ...NUMBERS];
  const levelsOf = (c: string) => (c === 'Purpose' ? PURPOSE_LEVELS : [...new Set(rows.map((r) => r[c]!))].sort());
  const spec = BinningSpec.parse({
    rare_share: 0.02,
    features: {
      ...Object.fromEntries(CATEGORIES.map((c) => [c, { type: 'category', levels: levelsOf(c) }])),
      Purpose: { type: 'category', levels: PURPOSE_LEVELS, unseen: 'reject' },
    },
  });
  const parties: Party[] = [];

  beforeAll(async () => {
    for (let p = 0; p < 3; p++) {
      // Participant p's rows, its file reversed for p = 1 so its levels first appear in another order.
      const mine = rows.map((r, i) => ({ r, i })).filter(({ i }) => i % 3 === p);
      if (p === 1) mine.reverse();
      const file = join(dir, `p${p}.csv`);
      writeFileSync(file, [['id', 'y', ...features].join(','), ...mine.map(({ r, i }) => [`e${i}`, r.Class === '2' ? 1 : 0, ...features.map((f) => r[f])].join(','))].join('\n') + '\n');
      const data = await loadDataset({
        path: file,
        delimiter: ',',
        id_column: 'id',
        label_column: 'y',
        features: features.map((name) => ({ name, type: CATEGORIES.includes(name) ? ('category' as const) : ('number' as const), missing: 'impute' as const })),
        duplicate_ids: 'reject',
        missing_values: [''],
      });
      parties.push({ data });
    }
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('the participants really list their levels in different orders (so positions must be translated)', () => {
    expect(parties[0]!.data.levels!.Purpose).not.toEqual(parties[1]!.data.levels!.Purpose);
  });

  it('each category bin holds exactly the pooled rows and defaults of its levels; rare levels share one bin; every held level is in one bin', () => {
    const { binned } = runBinning(parties, features, spec);
    for (const c of CATEGORIES) {
      const b = binned.find((x) => x.feature === c)!;
      const groups = b.categories!.map((g) => g.levels);
      const held = new Set(rows.map((r) => r[c]!));
      expect(groups.flat().sort(), c).toEqual([...held].sort());
      groups.forEach((g, k) => {
        const inBin = rows.filter((r) => g.includes(r[c]!));
        expect(b.totals[k], `${c} bin ${k}`).toBe(inBin.length);
        expect(b.events[k], `${c} bin ${k}`).toBe(inBin.filter((r) => r.Class === '2').length);
      });
      // Levels under 2% of the rows are never a bin of their own.
      for (const g of groups) if (g.length === 1) expect(rows.filter((r) => r[c] === g[0]).length, `${c} ${g[0]}`).toBeGreaterThanOrEqual(0.02 * rows.length);
      expect(b.iv).toBeLessThanOrEqual(b.fineIv + 1e-12);
    }
    const purpose = binned.find((x) => x.feature === 'Purpose')!;
    const rare = purpose.categories!.find((g) => g.levels.includes('A48'))!.levels;
    expect(rare).toEqual(expect.arrayContaining(['A44', 'A48', 'A410']));
    expect(purpose.categories!.flatMap((g) => g.levels)).not.toContain('A47');
    expect(binned.find((x) => x.feature === 'CheckingAccountStatus')!.iv).toBeGreaterThan(0.5);
  });

  it('the record lists every candidate with its fine-bin and final IV, categories typed, and names a feature binning lost', () => {
    const { binned } = runBinning(parties, features, spec);
    const record = binningRecord(binned, spec);
    expect(record.iv.map((r) => r.feature)).toEqual(features);
    for (const r of record.iv) expect(r.fine_iv as number).toBeGreaterThanOrEqual((r.iv as number) - 1e-12);
    expect(record.iv.filter((r) => r.type === 'category').map((r) => r.feature)).toEqual(CATEGORIES);
    // Forced into one bin, CheckingAccountStatus keeps no IV: the warning names it and the fix.
    const lost = runBinning(parties, features, BinningSpec.parse({ ...spec, features: { ...spec.features, CheckingAccountStatus: { ...spec.features.CheckingAccountStatus, max_bins: 1 } } })).binned;
    const warnings = binningRecord(lost, spec).warnings;
    expect(warnings.some((w) => w.startsWith('CheckingAccountStatus was dropped'))).toBe(true);
  });

  it('scorecard, PMML and reason codes read the levels; an undeclared level scores as unseen says (reject: a clear error)', () => {
    const { prep } = runBinning(parties, features, spec);
    const weights = new Float32Array([...prep.features.map(() => -0.8), -0.9]);
    const card = horizontalScorecard(weights, prep, ScorecardSpec.parse({}), 'german-h');
    const purpose = card.card.features.find((f) => f.feature === 'Purpose')!;
    expect(purpose.bins.some((b) => b.categories?.includes('A43'))).toBe(true);
    expect(card.pmml).toMatch(/<SimpleSetPredicate field="Purpose" booleanOperator="isIn">/);
    expect(card.pmml).toMatch(/A410/);
    // The points of a row follow its levels' bins.
    const row = rows[0]!;
    const values = Object.fromEntries(prep.features.map((f) => [f, CATEGORIES.includes(f) ? row[f]! : Number(row[f])]));
    const scored = scoreRecord(card.card, values);
    const housingPoints = scored.points.find((p) => p.feature === 'Housing')!.points;
    const housingBin = card.card.features.find((f) => f.feature === 'Housing')!.bins.find((b) => b.categories?.includes(row.Housing!))!;
    expect(housingPoints).toBe(housingBin.points);
    // A47 is declared but no training row holds it: Purpose's unseen is reject, so scoring it fails, naming the fix.
    const levels = declaredLevels(spec, prep.features);
    const x = new Float32Array(prep.features.length).fill(Number.NaN);
    x[prep.features.indexOf('Purpose')] = PURPOSE_LEVELS.indexOf('A47');
    let error: unknown;
    try {
      applyPreprocessing(x, prep, levels);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(FedcreditError);
    expect((error as FedcreditError).code).toBe(ErrorCode.DATA_REJECTED);
    expect((error as FedcreditError).message).toMatch(/Purpose: level "A47" was not seen in training.*unseen is reject/);
    // Training and validation rows read it as neutral (WOE 0).
    expect(applyPreprocessing(x, prep, levels, true)[prep.features.indexOf('Purpose')]).toBe(0);
  });

  it('a participant refuses a job that does not declare its levels, naming the field, the count, and no level', () => {
    const levels = parties[0]!.data.levels!;
    const undeclared: string[] = [];
    const without = BinningSpec.parse({ features: { Purpose: { type: 'category', levels: ['A40', 'A41'] } } });
    const refusal = categoryRefusal(without, ['Purpose'], levels, (_, l) => undeclared.push(...l));
    expect(refusal?.[0]).toBe('binning.features.Purpose.levels');
    expect(refusal?.[1]).toMatch(/^\d+ levels of Purpose in this participant's data are not in binning\.features\.Purpose\.levels/);
    expect(refusal?.[1]).not.toMatch(/A43/);
    expect(undeclared).toContain('A43');
    expect(categoryRefusal(BinningSpec.parse({}), ['Housing'], levels)?.[0]).toBe('binning.features.Housing.levels');
    expect(categoryRefusal(spec, CATEGORIES, levels)).toBeUndefined();
    // A job without binning is refused by binningConflict instead ("add a binning: section").
    expect(categoryRefusal(undefined, CATEGORIES, levels)).toBeUndefined();
  });

  it('a job that lists no levels, or has no binning section, is refused naming every category at once, not one per submission', () => {
    const levels = parties[0]!.data.levels!;
    const unlisted = categoryRefusal(BinningSpec.parse({ features: { Purpose: { type: 'category', levels: [...levels.Purpose!] } } }), CATEGORIES, levels);
    expect(unlisted?.[0]).toBe('binning.features.CheckingAccountStatus.levels');
    expect(unlisted?.[1]).toBe(
      'CheckingAccountStatus, CreditHistory, Savings, EmploymentSince, Property, Housing are categories (type: category): a horizontal job counts its rows per level in an order the job declares; list every level of each in binning.features.<name>.levels, with binning.features.<name>.type: category',
    );
    const features = [{ name: 'Duration', category: false }, ...CATEGORIES.slice(0, 3).map((name) => ({ name, category: true }))];
    expect(binningConflict(undefined, features)).toEqual([
      'binning',
      'CheckingAccountStatus, CreditHistory, Purpose are categories (type: category in the data schema): each enters a model through the WOE of its levels; add a binning: section to the job, or leave them out',
    ]);
    expect(binningConflict(undefined, features.slice(0, 2))?.[1]).toMatch(/^CheckingAccountStatus is a category .* or leave CheckingAccountStatus out$/);
    expect(binningConflict(undefined, features.slice(0, 1))).toBeUndefined();
  });
});

describe('horizontal special values on Give Me Some Credit (96 and 98 in the delinquency counts)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fedcredit-hspec-'));
  const feature = 'NumberOfTime30-59DaysPastDueNotWorse';
  const parties: Party[] = [];
  let values: number[] = [];
  let labels: number[] = [];

  beforeAll(async () => {
    const lines = readFileSync(GMSC, 'utf8')
      .split(/\r?\n/)
      .filter((l) => l !== '')
      .slice(1);
    const cells = lines.map((l) => l.split(','));
    values = cells.map((c) => Number(c[4]));
    labels = cells.map((c) => Number(c[1]));
    for (let p = 0; p < 3; p++) {
      const file = join(dir, `p${p}.csv`);
      const mine = cells.map((_, i) => i).filter((i) => i % 3 === p);
      writeFileSync(file, [`id,y,${feature}`, ...mine.map((i) => `e${i},${labels[i]},${values[i]}`)].join('\n') + '\n');
      parties.push({
        data: await loadDataset({
          path: file,
          delimiter: ',',
          id_column: 'id',
          label_column: 'y',
          features: [{ name: feature, type: 'number', missing: 'impute' }],
          duplicate_ids: 'reject',
          missing_values: [''],
        }),
      });
    }
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('96 and 98 get bins of their own with exactly their pooled rows; the numeric bins and their quantiles ignore them', () => {
    const name = feature;
    const spec = BinningSpec.parse({ features: { [name]: { special_values: [96, 98] } } });
    const { binned, grids } = runBinning(parties, [name], spec);
    const b = binned[0]!;
    expect(b.specials).toEqual([96, 98]);
    expect(grids[0]!.edges.every((e) => e < 20)).toBe(true);
    const numeric = b.edges.length + 1;
    for (const [k, code] of [96, 98].entries()) {
      const held = values.map((v, i) => ({ v, i })).filter(({ v }) => v === code);
      expect(held.length).toBeGreaterThan(0);
      expect(b.totals[numeric + k]).toBe(held.length);
      expect(b.events[numeric + k]).toBe(held.filter(({ i }) => labels[i] === 1).length);
    }
    // Without them declared, the codes fall in the top numeric bin with the 3+ counts.
    const plain = runBinning(parties, [name], BinningSpec.parse({})).binned[0]!;
    expect(plain.specials).toBeUndefined();
    expect(plain.woe.length).toBeLessThan(b.woe.length);
    expect(b.fineIv).toBeGreaterThanOrEqual(b.iv - 1e-12);
  });

  it('max_bins bounds the value bins the record and the report show; special-value bins and an empty missing bin are not counted as bins asked for', () => {
    const spec = BinningSpec.parse({ method: 'quantile', max_bins: 3, features: { [feature]: { special_values: [96, 98] } } });
    const { binned, prep } = runBinning(parties, [feature], spec);
    const b = binned[0]!;
    // Three numeric bins (0, 1, 2 and more), the bins of 96 and of 98, and the missing bin, which no row is in.
    expect(b.edges.length + 1).toBe(3);
    expect(b.woe.length).toBe(6);
    expect(b.totals.at(-1)).toBe(0);
    expect(binningRecord(binned, spec).iv[0]!.bins).toBe(3);
    const card = horizontalScorecard(new Float32Array([-0.8, -0.9]), prep, ScorecardSpec.parse({}), 'gmsc-h');
    const labels = reportScorecard(card.card).features[0]!.bins.map((x) => x.label);
    expect(labels.slice(3)).toEqual(['= 96', '= 98', 'missing (no training rows: kept for scoring)']);
  });
});

describe('bad binning options on a horizontal category', () => {
  it('a monotonic trend, special values, undeclared-type levels, a level twice and an unseen level not declared: errors naming the field and the fix', () => {
    const issue = (features: unknown) => {
      const r = BinningSpec.safeParse({ features });
      expect(r.success).toBe(false);
      return r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n');
    };
    expect(issue({ Purpose: { type: 'category', levels: ['A40'], monotonic: 'ascending' } })).toMatch(
      /features\.Purpose\.monotonic: Purpose is a category.*remove binning\.features\.Purpose\.monotonic/,
    );
    expect(issue({ Purpose: { type: 'category', levels: ['A40'], special_values: [98] } })).toMatch(/features\.Purpose\.special_values: .*remove binning\.features\.Purpose\.special_values/);
    expect(issue({ Purpose: { levels: ['A40'] } })).toMatch(/levels apply to categories only: declare binning\.features\.Purpose\.type: category/);
    expect(issue({ Purpose: { type: 'category', levels: ['A40', 'A40'] } })).toMatch(/level "A40" is listed twice/);
    expect(issue({ Purpose: { type: 'category', levels: ['A40'], unseen: 'A49' } })).toMatch(/features\.Purpose\.unseen: .*"A49", which binning\.features\.Purpose\.levels does not list/);
  });
});
