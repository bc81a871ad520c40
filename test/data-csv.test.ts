import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatLoadReport, heavilyImputed, invalidCells, loadDataset, NON_NUMERIC_REFUSE_SHARE, type LoadOptions } from '../src/data/csv.js';
import { ingestSource } from '../src/data/source.js';
import { DatasetSpec } from '../src/data/schema.js';
import { ErrorCode, FedcreditError } from '../src/errors.js';

const datasets = (rel: string) => fileURLToPath(new URL(`../../shared/datasets/${rel}`, import.meta.url));
const GMSC = datasets('give_me_some_credit/cs-training.csv');
const UCI_GUEST = datasets('uci_default_credit/fate_default_credit_homo_guest.csv');

/** The error a load fails with (the test fails if it loads). */
async function loadError(spec: DatasetSpec, opts?: LoadOptions): Promise<FedcreditError> {
  const err = await loadDataset(spec, opts).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FedcreditError);
  return err as FedcreditError;
}

function spec(fields: Record<string, unknown>): DatasetSpec {
  return DatasetSpec.parse(fields);
}

describe('give_me_some_credit/cs-training.csv (CRLF, blank first header cell, NA cells)', () => {
  const features = [
    ['RevolvingUtilizationOfUnsecuredLines', 'number'],
    ['age', 'integer'],
    ['NumberOfTime30-59DaysPastDueNotWorse', 'integer'],
    ['DebtRatio', 'number'],
    ['MonthlyIncome', 'number'],
    ['NumberOfOpenCreditLinesAndLoans', 'integer'],
    ['NumberOfTimes90DaysLate', 'integer'],
    ['NumberRealEstateLoansOrLines', 'integer'],
    ['NumberOfTime60-89DaysPastDueNotWorse', 'integer'],
    ['NumberOfDependents', 'integer'],
  ] as const;
  const gmscSpec = (incomePolicy: 'impute' | 'drop' | 'reject') =>
    spec({
      path: GMSC,
      id_column: 'column_1',
      label_column: 'SeriousDlqin2yrs',
      features: features.map(([name, type]) => ({ name, type, missing: name === 'MonthlyIncome' ? incomePolicy : 'impute' })),
    });

  // Ground truth from a naive scan of the file (it has no quoted fields).
  const lines = readFileSync(GMSC, 'utf8').split('\r\n');
  const header = lines[0]!.split(',');
  const incomeCol = header.indexOf('MonthlyIncome');
  const dependentsCol = header.indexOf('NumberOfDependents');
  const rows = lines
    .slice(1)
    .filter((l) => l !== '')
    .map((l) => l.split(','));
  const incomeNA = rows.filter((r) => r[incomeCol] === 'NA').length;
  const dependentsNA = rows.filter((r) => r[dependentsCol] === 'NA').length;
  const firstIncomeNALine = rows.findIndex((r) => r[incomeCol] === 'NA') + 2; // header is line 1
  const bad = rows.filter((r) => r[1] === '1').length;

  it('imputes: keeps all 150000 rows and counts every NA cell exactly', async () => {
    const data = await loadDataset(gmscSpec('impute'));
    expect(data.rows).toBe(150000);
    expect(data.report.rowsRead).toBe(150000);
    expect(data.report.rowsKept).toBe(150000);
    expect(data.report.rowsDropped).toEqual({});
    const missing = Object.values(data.report.missingCells).reduce((a, b) => a + b, 0);
    expect(missing).toBe(33655);
    expect(data.report.missingCells.MonthlyIncome).toBe(incomeNA);
    expect(data.report.missingCells.NumberOfDependents).toBe(dependentsNA);
    expect(data.report.imputedCells).toEqual(data.report.missingCells);
    expect(Object.values(data.report.nonNumericCells).every((n) => n === 0)).toBe(true);

    // The NaNs sit in the MonthlyIncome column of x, one per NA cell.
    const f = data.features.indexOf('MonthlyIncome');
    let nan = 0;
    for (let r = 0; r < data.rows; r++) if (Number.isNaN(data.x[r * data.features.length + f])) nan++;
    expect(nan).toBe(incomeNA);
    expect(data.x.length).toBe(150000 * features.length);

    expect(data.ids.slice(0, 3)).toEqual(['1', '2', '3']);
    expect(data.y!.length).toBe(150000);
    expect(data.y!.reduce((a, b) => a + b, 0)).toBe(bad);
    expect(formatLoadReport(data.report)).toContain(`MonthlyIncome ${incomeNA}`);
  });

  it('drop policy on MonthlyIncome drops exactly the rows with NA income', async () => {
    const data = await loadDataset(gmscSpec('drop'));
    expect(data.report.rowsKept).toBe(150000 - incomeNA);
    expect(data.report.rowsDropped).toEqual({ 'missing:MonthlyIncome': incomeNA });
    expect(data.report.missingCells.MonthlyIncome).toBe(incomeNA); // counted over the whole file
    expect(data.report.imputedCells.MonthlyIncome).toBe(0);
    const f = data.features.indexOf('MonthlyIncome');
    let nan = 0;
    for (let r = 0; r < data.rows; r++) if (Number.isNaN(data.x[r * data.features.length + f])) nan++;
    expect(nan).toBe(0);
  });

  it('reject policy fails at the line of the first NA income', async () => {
    const err = await loadError(gmscSpec('reject'));
    expect(err.code).toBe(ErrorCode.DATA_REJECTED);
    expect(err.message).toContain(`line ${firstIncomeNALine},`);
    expect(err.message).toContain('"MonthlyIncome"');
    expect(err.message).toContain('"NA"');
    expect(err.message).toContain('cs-training.csv');
    expect(err.hint).toContain('missing: impute');
  });
});

describe('uci_default_credit homo guest (id, y, x0..x22)', () => {
  it('loads 8000 rows whose values equal a naive parse of the file', async () => {
    const names = Array.from({ length: 23 }, (_, i) => `x${i}`);
    const data = await loadDataset(spec({ path: UCI_GUEST, id_column: 'id', label_column: 'y', features: names.map((name) => ({ name })) }));
    expect(data.rows).toBe(8000);
    expect(data.features).toEqual(names);
    const lines = readFileSync(UCI_GUEST, 'utf8').trimEnd().split('\n');
    for (const row of [0, 1, 4321, 7999]) {
      const cells = lines[row + 1]!.split(',');
      expect(data.ids[row]).toBe(cells[0]);
      expect(data.y![row]).toBe(Number(cells[1]));
      const x = Array.from(data.x.subarray(row * 23, row * 23 + 23));
      expect(x).toEqual(cells.slice(2).map((c) => Math.fround(Number(c))));
    }
  });

  it('resolves a relative path against baseDir', async () => {
    const data = await loadDataset(spec({ path: 'fate_default_credit_homo_guest.csv', id_column: 'id', features: [{ name: 'x0' }] }), { baseDir: datasets('uci_default_credit') });
    expect(data.rows).toBe(8000);
    expect(data.report.file).toBe(UCI_GUEST);
  });
});

describe('german_credit/german_credit.csv (A-code text columns, class coded 1/2)', () => {
  const GERMAN = datasets('german_credit/german_credit.csv');
  // The file has no id column; CreditAmount is unique enough with keep_first for a load.
  const german = (features: { name: string; type?: string }[]) => spec({ path: GERMAN, id_column: 'CreditAmount', duplicate_ids: 'keep_first', features });

  it('refuses text columns declared numeric, naming each column, its type, sample values and the fix', async () => {
    const err = await loadError(german([{ name: 'Duration' }, { name: 'Housing' }, { name: 'Savings', type: 'integer' }, { name: 'Age' }]));
    expect(err.code).toBe(ErrorCode.DATA_SCHEMA);
    expect(err.message).toContain(GERMAN);
    expect(err.message).toContain('column "Housing" is declared `type: number` but all 1000 of its non-empty cells are not numbers (e.g. "A152", "A153", "A151")');
    expect(err.message).toMatch(/column "Savings" is declared `type: integer` but all 1000 of its non-empty cells are not whole numbers \(e\.g\. "A65", "A61", /);
    expect(err.message).not.toContain('"Duration"');
    expect(err.message).not.toContain('"Age"');
    expect(err.hint).toContain('right column');
    expect(err.hint).toContain('type: category');
  });

  it('loads its numeric columns, and reports a binary column coded 1/2 as 30% imputed (a warning, not a refusal)', async () => {
    const data = await loadDataset(
      german([
        { name: 'Duration', type: 'integer' },
        { name: 'Age', type: 'integer' },
        { name: 'Class', type: 'binary' },
      ]),
    );
    const { report } = data;
    expect(report.rowsRead).toBe(1000);
    expect(report.nonNumericCells).toEqual({ Duration: 0, Age: 0, Class: 300 }); // the 300 bad credits, coded 2
    expect(report.imputedCells.Duration).toBe(0);
    const classNaN = Array.from({ length: data.rows }, (_, r) => data.x[r * 3 + 2]).filter(Number.isNaN).length;
    expect(report.imputedCells.Class).toBe(classNaN);
    expect(classNaN / data.rows).toBeGreaterThan(0.2);
    expect(heavilyImputed(report).map((f) => f.feature)).toEqual(['Class']);
    expect(formatLoadReport(report)).toMatch(/imputed cells \(filled later with the mean\): Class \d+ \(\d+\.\d%\)/);
  });
});

describe('hand-made files', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'fedcredit-csv-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Write `text` to a temp file and return a spec for it (features a, b unless given). */
  function csv(name: string, text: string, fields: Record<string, unknown> = {}): DatasetSpec {
    writeFileSync(join(dir, name), text);
    return spec({ path: join(dir, name), id_column: 'id', features: [{ name: 'a' }, { name: 'b' }], ...fields });
  }

  it('a semicolon file read with the default delimiter says to set data.delimiter; with ";" it loads', async () => {
    const text = 'id;a;b;y\n1;0.5;2;0\n2;1.5;3;1\n';
    const err = await loadError(csv('semi.csv', text, { label_column: 'y' }));
    expect(err.code).toBe(ErrorCode.DATA_SCHEMA);
    expect(err.message).toContain('data.delimiter');
    expect(err.message).toContain('";"');
    expect(err.hint).toContain('data.delimiter: ";"');

    const data = await loadDataset(csv('semi.csv', text, { label_column: 'y', delimiter: ';' }));
    expect(Array.from(data.x)).toEqual([0.5, 2, 1.5, 3]);
    expect(Array.from(data.y!)).toEqual([0, 1]);
  });

  it('handles a BOM, CRLF, quoted delimiters, doubled quotes, line breaks in quotes and a quoted number', async () => {
    const text = '\ufeffid,note,a,b,y\r\n' + '1,"1,234",1,"3.5",0\r\n' + '2,"she said ""no""",2, 4 ,1\r\n' + '3,"two\r\nlines",3,5,0\r\n' + ' 4 ,plain,4,6,1\r\n';
    const data = await loadDataset(csv('bom.csv', text, { label_column: 'y' }));
    expect(data.ids).toEqual(['1', '2', '3', '4']);
    expect(Array.from(data.x)).toEqual([1, 3.5, 2, 4, 3, 5, 4, 6]);
    expect(Array.from(data.y!)).toEqual([0, 1, 0, 1]);
    expect(data.report.nonNumericCells).toEqual({ a: 0, b: 0 });
  });

  it('a missing column is named, with the header that was found', async () => {
    const err = await loadError(csv('cols.csv', 'id,a,c\n1,2,3\n', { label_column: 'target' }));
    expect(err.code).toBe(ErrorCode.DATA_SCHEMA);
    expect(err.message).toContain('"target", "b" not found');
    expect(err.message).toContain('found: "id", "a", "c"');
  });

  it('a blank header cell is named column_<n>, and the error shows that name', async () => {
    const err = await loadError(csv('blank.csv', ',a,b\n1,2,3\n', { id_column: 'row' }));
    expect(err.message).toContain('"column_1"');
    const data = await loadDataset(csv('blank.csv', ',a,b\n1,2,3\n', { id_column: 'column_1' }));
    expect(data.ids).toEqual(['1']);
  });

  it('an empty id_column is refused with the name a blank header cell gets', () => {
    const parsed = DatasetSpec.safeParse({ path: 'x.csv', id_column: '', features: [{ name: 'a' }] });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]?.path).toEqual(['id_column']);
    expect(parsed.error?.issues[0]?.message).toContain('column_1 for the first column');
  });

  it('counts non-numeric cells per feature type and leaves them NaN for imputation', async () => {
    const text = 'id,a,n,flag\n1,abc,2,1\n2,"1,5",2.5,0\n3,7,3,2\n4,NA,Infinity,1\n5,8,,0\n';
    const data = await loadDataset(
      csv('nonnum.csv', text, {
        features: [{ name: 'a' }, { name: 'n', type: 'integer' }, { name: 'flag', type: 'binary' }],
      }),
    );
    expect(data.rows).toBe(5);
    expect(data.report.nonNumericCells).toEqual({ a: 2, n: 2, flag: 1 });
    expect(data.report.missingCells).toEqual({ a: 1, n: 1, flag: 0 });
    expect(data.report.imputedCells).toEqual({ a: 3, n: 3, flag: 1 });
    expect(Array.from(data.x.subarray(6, 9))).toEqual([7, 3, NaN]);
  });

  it(`refuses a column with more than ${NON_NUMERIC_REFUSE_SHARE * 100}% invalid cells, under every missing policy; at or below it, imputes and counts them`, async () => {
    // a: 3 of 5 present cells are text (60%); b: 2 of 4 present cells (50%, the limit); c: all present cells 0/1.
    const text = 'id,a,b,c\n1,owner,1,0\n2,rent,x,1\n3,5,2,NA\n4,free,y,1\n5,7,,0\n6,NA,3,1\n';
    for (const missing of ['impute', 'drop'] as const) {
      const err = await loadError(csv('mostly-text.csv', text, { features: [{ name: 'a', missing }, { name: 'b' }, { name: 'c', type: 'binary' }] }));
      expect(err.code).toBe(ErrorCode.DATA_SCHEMA);
      expect(err.message).toContain('column "a" is declared `type: number` but 3 of 5 (60%) of its non-empty cells are not numbers (e.g. "owner", "rent", "free")');
      expect(err.message).not.toContain('column "b"');
      expect(err.message).not.toContain('column "c"');
    }
    const data = await loadDataset(csv('half-text.csv', text, { features: [{ name: 'b' }, { name: 'c', type: 'binary' }] }));
    expect(data.rows).toBe(6);
    expect(data.report.nonNumericCells).toEqual({ b: 2, c: 0 });
    expect(data.report.imputedCells).toEqual({ b: 3, c: 1 });
    expect(formatLoadReport(data.report)).toContain('imputed cells (filled later with the mean): b 3 (50.0%), c 1 (16.7%)');
    expect(heavilyImputed(data.report)).toEqual([{ feature: 'b', cells: 3, share: 0.5 }]);
    // The owner's own log shows a few of them, so that "x" and "y" can be listed as missing markers or cleaned; the
    // load report, which is sent with every job, counts them only.
    const store = await ingestSource(csv('half-text-2.csv', text, { features: [{ name: 'b' }, { name: 'c', type: 'binary' }] }), { dir: join(dir, 'half-text-rows') });
    expect(invalidCells(store.meta)).toEqual([
      {
        feature: 'b',
        cells: 2,
        examples: ['x', 'y'],
        message: 'feature "b": 2 cells are not a valid value of its type (e.g. "x", "y") and were handled by its missing policy; list such markers in data.missing_values, or clean the data',
      },
    ]);
    expect(formatLoadReport(store.meta.report)).not.toMatch(/"x"|"y"/);

    const binary = await loadError(csv('binary-12.csv', 'id,a,b\n1,1,2\n2,2,2\n3,2,1\n', { features: [{ name: 'a', type: 'binary' }, { name: 'b' }] }));
    expect(binary.message).toContain('column "a" is declared `type: binary` but 2 of 3 (67%) of its non-empty cells are not 0 or 1 (e.g. "2")');
    expect(binary.hint).toContain('`type: number`');
  });

  it('numbers a spreadsheet exported with a thousands separator or a decimal comma are named as such, with the re-export as the fix', async () => {
    // Amounts above 999 carry a "," between thousands (quoted, so the CSV parses): most of a's cells, one of b's.
    const grouped = 'id,a,b\n1,"3,000",5\n2,"12,500",7\n3,"1,234,567.5",9\n4,800,"1,200"\n5,"9,120",3\n6,"2,250",4\n';
    const err = await loadError(csv('grouped.csv', grouped));
    expect(err.code).toBe(ErrorCode.DATA_SCHEMA);
    expect(err.message).toContain(
      'column "a" is declared `type: number` but 5 of 6 (83%) of its non-empty cells are not numbers (e.g. "3,000", "12,500", "1,234,567.5", "9,120", "2,250"): these are numbers with "," between thousands, which a CSV number must not have',
    );
    expect(err.hint).toMatch(/^write the file's numbers plainly, with no thousands separator and "\." before decimals/);
    // Below the refusal share the cells are imputed: the owner's log names the format, not missing-value markers.
    const store = await ingestSource(csv('grouped-few.csv', grouped, { features: [{ name: 'b' }] }), { dir: join(dir, 'grouped-few-rows') });
    expect(invalidCells(store.meta)[0]?.message).toBe(
      'feature "b": 1 cell is not a valid value of its type (e.g. "1,200") and was handled by its missing policy; these are numbers with "," between thousands (or as a decimal mark), which a CSV number must not have: write the file\'s numbers plainly, with no thousands separator and "." before decimals (3000.5), e.g. by formatting the column as a number without separators before a spreadsheet saves it as CSV',
    );
    // A semicolon file of a decimal-comma locale, read with its delimiter.
    const comma = await loadError(csv('decimal-comma.csv', 'id;a;b\n1;0,556;1\n2;0,0457;2\n3;1,5;3\n', { delimiter: ';' }));
    expect(comma.message).toContain('(e.g. "0,556", "0,0457", "1,5"): these are numbers with a decimal comma, where a CSV number has "."');
    // Text is still text: no format is claimed.
    const text = await loadError(csv('text.csv', 'id,a,b\n1,owner,1\n2,"1,000",2\n3,rent,3\n'));
    expect(text.message).not.toContain('between thousands');
    expect(text.hint).toMatch(/^check that data\.features names the right column/);
  });

  it('drop and reject apply to non-numeric cells too', async () => {
    const text = 'id,a,b\n1,abc,2\n2,3,4\n3,5,NA\n';
    const dropped = await loadDataset(
      csv('drop.csv', text, {
        features: [
          { name: 'a', missing: 'drop' },
          { name: 'b', missing: 'drop' },
        ],
      }),
    );
    expect(dropped.ids).toEqual(['2']);
    expect(dropped.report.rowsDropped).toEqual({ 'non_numeric:a': 1, 'missing:b': 1 });
    expect(formatLoadReport(dropped.report)).toContain('3 rows read, 1 kept, 2 dropped (non_numeric:a 1, missing:b 1)');

    const err = await loadError(csv('reject.csv', text, { features: [{ name: 'a', missing: 'reject' }, { name: 'b' }] }));
    expect(err.code).toBe(ErrorCode.DATA_REJECTED);
    expect(err.message).toContain('line 2, column 2 "a"');
    expect(err.message).toContain('"abc"');
  });

  it('truncates a long rejected cell to 40 characters', async () => {
    const long = 'x'.repeat(100);
    const err = await loadError(csv('long.csv', `id,a,b\n1,${long},2\n`, { features: [{ name: 'a', missing: 'reject' }, { name: 'b' }] }));
    expect(err.message).toContain(`"${'x'.repeat(40)}..."`);
    expect(err.message).not.toContain('x'.repeat(41));
  });

  it('custom missing_values mark cells as missing', async () => {
    const data = await loadDataset(csv('custom.csv', 'id,a,b\n1,?,2\n2,NA,3\n3,4,5\n', { missing_values: ['?'] }));
    expect(data.report.missingCells.a).toBe(1); // '?' and the empty cell are missing; 'NA' is now just text
    expect(data.report.nonNumericCells.a).toBe(1);
  });

  it('duplicate ids are rejected naming both lines, or kept-first and counted', async () => {
    const text = 'id,a,b\n7,1,1\n8,2,2\n7,3,3\n9,4,4\n8,5,5\n';
    const err = await loadError(csv('dup.csv', text));
    expect(err.code).toBe(ErrorCode.DATA_REJECTED);
    expect(err.message).toContain('id "7"');
    expect(err.message).toContain('line 2 and again on line 4');
    expect(err.hint).toContain('keep_first');

    const data = await loadDataset(csv('dup.csv', text, { duplicate_ids: 'keep_first' }));
    expect(data.ids).toEqual(['7', '8', '9']);
    expect(Array.from(data.x)).toEqual([1, 1, 2, 2, 4, 4]);
    expect(data.report.duplicateIds).toBe(2);
    expect(data.report.rowsDropped).toEqual({ duplicate_id: 2 });
  });

  it('empty ids and missing labels drop their rows and are counted; a bad label names its line', async () => {
    const text = 'id,a,b,y\n1,1,1,0\n ,2,2,1\n3,3,3,NA\n4,4,4,1.0\n';
    const data = await loadDataset(csv('labels.csv', text, { label_column: 'y' }));
    expect(data.ids).toEqual(['1', '4']);
    expect(Array.from(data.y!)).toEqual([0, 1]);
    expect(data.report.invalidIds).toBe(1);
    expect(data.report.rowsDropped).toEqual({ missing_id: 1, missing_label: 1 });

    const unlabelled = await loadDataset(csv('labels.csv', text, { label_column: 'y' }), { withLabels: false });
    expect(unlabelled.y).toBeUndefined();
    expect(unlabelled.ids).toEqual(['1', '3', '4']);

    const err = await loadError(csv('badlabel.csv', 'id,a,b,y\n1,1,1,0\n2,2,2,2\n', { label_column: 'y' }));
    expect(err.code).toBe(ErrorCode.DATA_REJECTED);
    expect(err.message).toContain('line 3');
    expect(err.message).toContain('"2" is not 0 or 1');
  });

  it('an empty file and a header-only file are schema errors', async () => {
    for (const [name, text] of [
      ['empty.csv', ''],
      ['header.csv', 'id,a,b\r\n'],
    ] as const) {
      const err = await loadError(csv(name, text));
      expect(err.code).toBe(ErrorCode.DATA_SCHEMA);
      expect(err.message).toContain('no data rows');
    }
  });

  it('a file whose rows are all dropped fails with the reasons', async () => {
    const err = await loadError(csv('alldrop.csv', 'id,a,b\n1,NA,1\n2,,2\n', { features: [{ name: 'a', missing: 'drop' }, { name: 'b' }] }));
    expect(err.code).toBe(ErrorCode.DATA_REJECTED);
    expect(err.message).toContain('all 2 data rows were dropped (missing:a 2)');
  });

  it('a ragged row is an error naming its line', async () => {
    const err = await loadError(csv('ragged.csv', 'id,a,b\n1,1,1\n2,2,2\n3,3\n4,4,4\n'));
    expect(err.code).toBe(ErrorCode.DATA_SCHEMA);
    expect(err.message).toContain('line 4 has 2 fields but the header has 3');
  });

  it('an unclosed quote is an error naming its line', async () => {
    const err = await loadError(csv('quote.csv', 'id,a,b\n1,1,1\n2,"2,2\n'));
    expect(err.code).toBe(ErrorCode.DATA_SCHEMA);
    expect(err.message).toContain('line 3');
  });

  it('the columns option reads only the requested features, in the requested order', async () => {
    // Column c is garbage under a reject policy: it must never be looked at when not requested.
    const text = 'id,a,b,c\n1,10,20,junk\n2,11,21,junk\n';
    const s = csv('subset.csv', text, { features: [{ name: 'a' }, { name: 'b' }, { name: 'c', missing: 'reject' }] });
    const data = await loadDataset(s, { columns: ['b', 'a'] });
    expect(data.features).toEqual(['b', 'a']);
    expect(Array.from(data.x)).toEqual([20, 10, 21, 11]);
    expect(Object.keys(data.report.missingCells)).toEqual(['b', 'a']);

    const err = await loadError(s, { columns: ['a', 'z'] });
    expect(err.code).toBe(ErrorCode.DATA_SCHEMA);
    expect(err.message).toContain('"z"');
  });

  it('a file that does not exist is a schema error naming the resolved path', async () => {
    const err = await loadError(spec({ path: 'nope.csv', id_column: 'id', features: [{ name: 'a' }] }), { baseDir: dir });
    expect(err.code).toBe(ErrorCode.DATA_SCHEMA);
    expect(err.message).toContain(join(dir, 'nope.csv'));
    expect(err.message).toContain('ENOENT');
  });

  it('grows its buffers past the initial capacity without losing rows', async () => {
    const n = 5000;
    const body = Array.from({ length: n }, (_, i) => `${i},${i},${-i},${i % 2}`).join('\n');
    const data = await loadDataset(csv('big.csv', `id,a,b,y\n${body}\n`, { label_column: 'y' }));
    expect(data.rows).toBe(n);
    expect(data.x.length).toBe(2 * n);
    expect(data.x[2 * (n - 1)]).toBe(n - 1);
    expect(data.x[2 * (n - 1) + 1]).toBe(-(n - 1));
    expect(data.y![n - 1]).toBe((n - 1) % 2);
  });
});

describe('ids that are not UTF-8', () => {
  it('a GBK-encoded id is refused with its line, not taken in as U+FFFD', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedcredit-csv-utf8-'));
    try {
      const file = join(dir, 'gbk.csv');
      // Line 3's id is "企业7" in GBK (0xC6 0xF3 0xD2 0xB5): not valid UTF-8.
      writeFileSync(file, Buffer.concat([Buffer.from('id,a,b\nE1,1,2\n'), Buffer.from([0xc6, 0xf3, 0xd2, 0xb5]), Buffer.from('7,3,4\nE3,5,6\n')]));
      const err = await loadError(spec({ path: file, id_column: 'id', features: [{ name: 'a' }, { name: 'b' }] }));
      expect(err.code).toBe(ErrorCode.DATA_REJECTED);
      expect(err.message).toContain(`${file}: line 3, column "id"`);
      expect(err.message).toContain('not valid UTF-8');
      expect(err.hint).toContain('iconv -f GB18030 -t UTF-8');

      // The same id in UTF-8 loads.
      writeFileSync(file, 'id,a,b\nE1,1,2\n企业7,3,4\nE3,5,6\n');
      const data = await loadDataset(spec({ path: file, id_column: 'id', features: [{ name: 'a' }, { name: 'b' }] }));
      expect(data.ids).toEqual(['E1', '企业7', 'E3']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('german_credit/german_credit.csv: A-coded categories (type: category)', () => {
  const GERMAN = datasets('german_credit/german_credit.csv');

  it("reads each level as its index into the dataset's levels, in order of first appearance; an empty cell is missing", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedcredit-cat-'));
    try {
      // The file has no id column: the row number serves, and a few Purpose cells are blanked.
      const lines = readFileSync(GERMAN, 'utf8').trim().split(/\r?\n/);
      const header = lines[0]!.split(',');
      const purpose = header.indexOf('Purpose');
      const rows = lines.slice(1).map((l, i) => {
        const cells = l.split(',');
        if (i % 100 === 7) cells[purpose] = '';
        return [String(i + 1), ...cells];
      });
      const file = join(dir, 'german.csv');
      writeFileSync(file, [['id', ...header].join(','), ...rows.map((r) => r.join(','))].join('\n'));
      const data = await loadDataset(
        spec({
          path: file,
          id_column: 'id',
          features: [
            { name: 'Purpose', type: 'category' },
            { name: 'Duration', type: 'integer' },
            { name: 'Housing', type: 'category' },
          ],
        }),
      );
      expect([...data.levels!.Purpose!].sort()).toEqual(['A40', 'A41', 'A410', 'A42', 'A43', 'A44', 'A45', 'A46', 'A48', 'A49']);
      expect(data.levels!.Housing!.slice(0, 2)).toEqual(['A152', 'A153']); // first appearance: rows 1 and 4
      expect([...data.levels!.Housing!].sort()).toEqual(['A151', 'A152', 'A153']);
      expect(Object.keys(data.levels!)).toEqual(['Purpose', 'Housing']);
      const levels = data.levels!.Purpose!;
      rows.forEach((r, i) => {
        const code = data.x[i * 3]!;
        if (r[purpose + 1] === '') expect(code).toBeNaN();
        else expect(levels[code]).toBe(r[purpose + 1]);
      });
      expect(data.report.missingCells.Purpose).toBe(10);
      expect(data.report.nonNumericCells.Purpose).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
