/**
 * test-scores.csv, the guest's own record of a vertical job's held-out enterprises (never sent): one row per
 * enterprise, with fixed column names whatever the guest's data calls its columns, the same for every vertical kind:
 * `enterprise_id` (the value of the guest's data.id_column, as in every scores file fedcredit writes), `label` (its
 * data.label_column, 0/1), `score` (the model's joint score: log-odds before calibration for a linear model, the
 * trees' margin for boosting), `pd` (the probability of default), and with a scorecard `points`.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import { csvCell } from '../data/csv.js';
import { ErrorCode, FedcreditError } from '../errors.js';

export const TEST_SCORES_COLUMNS = ['enterprise_id', 'label', 'score', 'pd'] as const;

export interface TestScores {
  ids: string[];
  labels: number[];
  scores: number[];
  pd: number[];
  /** With a scorecard: the points (offset − factor·logit(pd), before the scorecard's rounding). */
  points?: string[];
}

/** The file's text; `points` (already formatted to the scorecard's decimals) adds the column. */
export function testScoresCsv(rows: { ids: ArrayLike<string>; labels: ArrayLike<number>; scores: ArrayLike<number>; pd: ArrayLike<number>; points?: ArrayLike<string> }): string {
  const lines = [[...TEST_SCORES_COLUMNS, ...(rows.points ? ['points'] : [])].join(',')];
  for (let i = 0; i < rows.ids.length; i++) {
    const cells = [csvCell(rows.ids[i]!), String(rows.labels[i]), rows.scores[i]!.toFixed(8), rows.pd[i]!.toFixed(8)];
    if (rows.points) cells.push(rows.points[i]!);
    lines.push(cells.join(','));
  }
  return `${lines.join('\n')}\n`;
}

/** The header of the files written before the names were fixed: the demo's label column. */
const EARLIER_COLUMNS = ['enterprise_id', 'default_12m', 'score', 'pd'];

/** Read a test-scores.csv back (also one of a job run by an earlier fedcredit); a file of another layout is refused, naming it. */
export function readTestScores(file: string): TestScores {
  const [header, ...rows] = parse(readFileSync(file, 'utf8'), { skip_empty_lines: true }) as string[][];
  const expected = TEST_SCORES_COLUMNS.join(',');
  const leading = header?.slice(0, TEST_SCORES_COLUMNS.length).join(',');
  if (leading !== expected && leading !== EARLIER_COLUMNS.join(',')) {
    throw new FedcreditError(
      ErrorCode.DATA_SCHEMA,
      `${file}: the header is "${header?.join(',') ?? ''}", not the held-out scores' "${expected}[,points]"`,
      'this file is written by the guest at the end of a vertical job: run the job again with this fedcredit to write it anew',
    );
  }
  const withPoints = header![TEST_SCORES_COLUMNS.length] === 'points';
  return {
    ids: rows.map((r) => r[0]!),
    labels: rows.map((r) => Number(r[1])),
    scores: rows.map((r) => Number(r[2])),
    pd: rows.map((r) => Number(r[3])),
    ...(withPoints ? { points: rows.map((r) => r[4]!) } : {}),
  };
}
