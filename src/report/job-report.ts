/**
 * The model report of a vertical job, from what the guest kept in its job folder: model-report.json (aggregates the
 * guest computed: evaluation, IV of every party's features, fairness), scorecard.json and test-scores.csv (its held-out
 * enterprises' labels, probabilities of default and points). Nothing here needs another party.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode, FedcreditError } from '../errors.js';
import { BATCH_REPORT_FILE, MODEL_REPORT_FILE, SCORECARD_FILE, TEST_SCORES_FILE, type BatchReport } from '../paths.js';
import type { Scorecard } from '../credit/scorecard.js';
import { readTestScores } from '../credit/test-scores.js';
import { reportScorecard, writeModelReport, type ModelReportInput } from './model-report.js';

/** The stability section from a scoring job's folder at the guest (`batch-report.json`). */
export function loadBatchStability(batchDir: string): NonNullable<ModelReportInput['stability']> {
  const file = join(batchDir, BATCH_REPORT_FILE);
  if (!existsSync(file)) throw new FedcreditError(ErrorCode.NOT_FOUND, `no ${BATCH_REPORT_FILE} in ${batchDir}`, 'name a scoring job (fedcredit score) this guest ran with the same model');
  const batch = JSON.parse(readFileSync(file, 'utf8')) as BatchReport;
  const features = Object.entries(batch.featurePsi).flatMap(([party, psi]) => Object.entries(psi ?? {}).map(([feature, value]) => ({ feature, party, psi: value })));
  return { scorePsi: batch.scorePsi, features, scored: batch.scored, ...(batch.notHeld ? { notHeld: batch.notHeld } : {}) };
}

export function loadJobReport(jobDir: string, extra: Pick<ModelReportInput, 'comparison' | 'stability'> = {}): ModelReportInput {
  const file = join(jobDir, MODEL_REPORT_FILE);
  if (!existsSync(file)) {
    throw new FedcreditError(ErrorCode.NOT_FOUND, `no ${MODEL_REPORT_FILE} in ${jobDir}`, "run `fedcredit report` with the config of the job's guest (the bank), for a vertical-lr job that succeeded");
  }
  const saved = JSON.parse(readFileSync(file, 'utf8')) as Omit<ModelReportInput, 'test'>;
  const test = readTestScores(join(jobDir, TEST_SCORES_FILE));
  // The guest's scorecard.json (written by the scorecard step) is the report's scorecard.
  const cardFile = join(jobDir, SCORECARD_FILE);
  const card = existsSync(cardFile) ? reportScorecard(JSON.parse(readFileSync(cardFile, 'utf8')) as Scorecard) : undefined;
  return {
    ...saved,
    ...(card ? { scorecard: card } : {}),
    test: { labels: test.labels, pd: test.pd, ...(test.points ? { score: test.points.map(Number) } : {}) },
    ...extra,
  };
}

/** Render a job's report to `outFile` (and its figures beside it); returns the figure files written. */
export async function writeJobReport(jobDir: string, outFile: string, extra: Pick<ModelReportInput, 'comparison' | 'stability'> = {}): Promise<string[]> {
  return (await writeModelReport(loadJobReport(jobDir, extra), outFile)).figures;
}
