/**
 * The guest's side of `fedcredit score` before any scoring job: the id list is read as a user writes it (a header
 * naming the guest's id column, the ids in any column of an extract); applicants with no outcome yet (an empty
 * label) are kept apart from the training rows and can be scored; ids the node dropped at load for another reason
 * are named as dropped, not as absent from the data.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkScoreRequest } from '../src/cli/score-request.js';
import { datasetOf, withScoringRows } from '../src/data/csv.js';
import { DatasetSpec } from '../src/data/schema.js';
import { ingestWithUnlabelled } from '../src/data/source.js';
import { ROWS_DIR, UNLABELLED_ROWS_DIR } from '../src/paths.js';
import type { FedcreditError } from '../src/errors.js';
import { readIdList } from '../participant/vertical-score.js';
import { RowStore } from '../src/data/row-store.js';

const JOB = 'job-20261207-0000abcd';

function refusal(ids: string[], source = '--ids applicants.csv'): FedcreditError {
  try {
    checkScoreRequest({ stateDir: join(dir, 'state'), organisation: 'bank', modelJob: JOB, ids, source });
  } catch (err) {
    return err as FedcreditError;
  }
  throw new Error('the request was accepted');
}

let dir: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedcredit-score-request-'));
  // Two customers with an outcome, two applicants without one yet (an empty label and an NA), and a row dropped for
  // its missing income (missing: drop).
  writeFileSync(join(dir, 'bank.csv'), 'app_id,default,income,sector\nAPP-1,0,10,retail\nAPP-2,1,20,mining\nAPP-3,,30,farming\nAPP-4,NA,,retail\nAPP-5,0,,mining\n');
  const spec = DatasetSpec.parse({
    path: 'bank.csv',
    id_column: 'app_id',
    label_column: 'default',
    features: [
      { name: 'income', missing: 'drop' },
      { name: 'sector', type: 'category' },
    ],
  });
  // As the node does at start.
  await ingestWithUnlabelled(spec, { baseDir: dir, dir: join(dir, 'state', ROWS_DIR) }, { dir: join(dir, 'state', UNLABELLED_ROWS_DIR), keep: true });
  const jobDir = join(dir, 'state', 'jobs', JOB);
  mkdirSync(jobDir, { recursive: true });
  const job = { id: JOB, spec: { kind: 'vertical-lr', guest: 'bank', hosts: ['tax'], alignment: { id_format: 'any' } }, features: ['income', 'sector'], state: 'succeeded' };
  writeFileSync(join(jobDir, 'job.json'), JSON.stringify(job));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the id list of fedcredit score', () => {
  it("skips a header that names the guest's id column, and reads that column of an extract", () => {
    writeFileSync(join(dir, 'one.csv'), 'app_id\nAPP-1\nAPP-2\n');
    expect(readIdList(join(dir, 'one.csv'), 'app_id')).toEqual(['APP-1', 'APP-2']);
    writeFileSync(join(dir, 'extract.csv'), 'name,App_ID,amount\n"Smith, J",APP-3,1000\nLee,APP-4,2000\n');
    expect(readIdList(join(dir, 'extract.csv'), 'app_id')).toEqual(['APP-3', 'APP-4']);
  });

  it('reads the first field of each line of a list without a header, and skips an `id` header as before', () => {
    writeFileSync(join(dir, 'plain.csv'), 'APP-1\r\n\r\nAPP-2,ignored\r\n');
    expect(readIdList(join(dir, 'plain.csv'), 'app_id')).toEqual(['APP-1', 'APP-2']);
    writeFileSync(join(dir, 'id.csv'), '\uFEFFenterprise_id\nAPP-1\n');
    expect(readIdList(join(dir, 'id.csv'))).toEqual(['APP-1']);
  });

  it('names a list it cannot read, with the fix', () => {
    expect(() => readIdList(join(dir, 'nowhere.csv'))).toThrow(/cannot read the id list .*nowhere.csv: ENOENT/);
  });
});

describe('applicants with no outcome yet', () => {
  it('are kept apart from the training rows, without a label, and the training rows are as before', async () => {
    const kept = datasetOf(RowStore.open(join(dir, 'state', ROWS_DIR)));
    expect(kept.ids).toEqual(['APP-1', 'APP-2']);
    expect(kept.report.rowsDropped).toEqual({ missing_label: 2, 'missing:income': 1 });
    const unlabelled = RowStore.open(join(dir, 'state', UNLABELLED_ROWS_DIR));
    expect(unlabelled.meta.labels).toBe(false);
    // APP-4 has no income either, and income drops a row without it, as it does a training row.
    expect(datasetOf(unlabelled).ids).toEqual(['APP-3']);
    expect(unlabelled.meta.report.rowsDropped).toEqual({ labelled: 3, 'missing:income': 1 });
  });

  it('are scored with the training rows, each category level read as its name', () => {
    const kept = datasetOf(RowStore.open(join(dir, 'state', ROWS_DIR)));
    const scoring = withScoringRows(kept, datasetOf(RowStore.open(join(dir, 'state', UNLABELLED_ROWS_DIR))));
    expect(scoring.ids).toEqual(['APP-1', 'APP-2', 'APP-3']);
    expect(scoring.y).toBeUndefined();
    const sector = (row: number) => scoring.levels!.sector![scoring.x[row * 2 + 1]!];
    expect([0, 1, 2].map(sector)).toEqual(['retail', 'mining', 'farming']);
    expect(scoring.x[2 * 2]).toBe(30);
  });

  it("a level numbered otherwise in the applicants' rows is recoded to the training rows' numbering, a new one appended", () => {
    const report = datasetOf(RowStore.open(join(dir, 'state', ROWS_DIR))).report;
    const set = (ids: string[], codes: number[], levels: string[]) => ({ ids, features: ['sector'], x: Float32Array.from(codes), groups: {}, levels: { sector: levels }, rows: ids.length, report });
    const scoring = withScoringRows(set(['A', 'B'], [0, 1], ['retail', 'mining']), set(['C', 'D', 'A'], [0, 1, NaN], ['farming', 'retail']));
    // A is in both: it is scored from the training rows.
    expect(scoring.ids).toEqual(['A', 'B', 'C', 'D']);
    expect(scoring.levels!.sector).toEqual(['retail', 'mining', 'farming']);
    expect(Array.from(scoring.x)).toEqual([0, 1, 2, 0]);
  });

  it('pass the check before a scoring job; an id dropped at load for another reason is named as dropped', () => {
    expect(() => checkScoreRequest({ stateDir: join(dir, 'state'), organisation: 'bank', modelJob: JOB, ids: ['APP-3'], source: '--id' })).not.toThrow();
    const err = refusal(['APP-4', 'APP-5']);
    expect(err.message).toContain("bank's data holds none of the 2 valid ids of --ids applicants.csv among the rows its node kept");
    expect(err.message).toContain('were dropped at load (missing:income 1), and a dropped row cannot be scored');
    expect(err.hint).toContain("the node's load report for why rows were dropped");
  });

  it('leave no store behind when there are none', async () => {
    writeFileSync(join(dir, 'labelled.csv'), 'app_id,default,income\nAPP-1,0,10\n');
    const spec = DatasetSpec.parse({ path: 'labelled.csv', id_column: 'app_id', label_column: 'default', features: [{ name: 'income' }] });
    const other = (keep: boolean) => ingestWithUnlabelled(spec, { baseDir: dir, dir: join(dir, 'other', ROWS_DIR) }, { dir: join(dir, 'other', UNLABELLED_ROWS_DIR), keep });
    mkdirSync(join(dir, 'other', UNLABELLED_ROWS_DIR), { recursive: true });
    expect((await other(true)).unlabelled).toBeUndefined();
    expect(existsSync(join(dir, 'other', UNLABELLED_ROWS_DIR))).toBe(false);
    // Nor for a node that takes part in horizontal jobs only: it never scores them.
    writeFileSync(join(dir, 'labelled.csv'), 'app_id,default,income\nAPP-1,0,10\nAPP-2,,20\n');
    mkdirSync(join(dir, 'other', UNLABELLED_ROWS_DIR), { recursive: true });
    expect((await other(false)).unlabelled).toBeUndefined();
    expect(existsSync(join(dir, 'other', UNLABELLED_ROWS_DIR))).toBe(false);
  });
});
