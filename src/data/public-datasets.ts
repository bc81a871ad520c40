/**
 * Schemas of the public credit data sets kept beside the project in shared/datasets (see its README): the real
 * data the end-to-end tests and the benchmarks run on. Never copied into this repository.
 */
import { join } from 'node:path';
import type { CsvDatasetSpec } from './schema.js';

/** UCI default of credit card clients, FATE's z-scored splits: id, y, x0..x22 (horizontal) . */
export const UCI_HOMO_FEATURES = Array.from({ length: 23 }, (_, i) => `x${i}`);
export const UCI_HOMO_PARTIES = ['guest', 'host_1', 'host_2'] as const;

export function uciHomoFile(datasetsDir: string, part: (typeof UCI_HOMO_PARTIES)[number] | 'test'): string {
  return join(datasetsDir, 'uci_default_credit', `fate_default_credit_homo_${part}.csv`);
}

export function uciHomoSpec(file: string): CsvDatasetSpec {
  return {
    path: file,
    delimiter: ',',
    id_column: 'id',
    label_column: 'y',
    features: UCI_HOMO_FEATURES.map((name) => ({ name, type: 'number', missing: 'impute' })),
    duplicate_ids: 'reject',
    missing_values: ['', 'NA'],
  };
}

/** Give Me Some Credit (Kaggle 2011), the raw training file: the blank first header cell is the row id. */
export const GMSC_FEATURES = [
  'RevolvingUtilizationOfUnsecuredLines',
  'age',
  'NumberOfTime30-59DaysPastDueNotWorse',
  'DebtRatio',
  'MonthlyIncome',
  'NumberOfOpenCreditLinesAndLoans',
  'NumberOfTimes90DaysLate',
  'NumberRealEstateLoansOrLines',
  'NumberOfTime60-89DaysPastDueNotWorse',
  'NumberOfDependents',
] as const;

export function gmscFile(datasetsDir: string): string {
  return join(datasetsDir, 'give_me_some_credit', 'cs-training.csv');
}

/** cs-training.csv as a participant declares it: every feature a number, NA imputed. */
export function gmscSpec(file: string): CsvDatasetSpec {
  return {
    path: file,
    delimiter: ',',
    id_column: 'column_1',
    label_column: 'SeriousDlqin2yrs',
    features: GMSC_FEATURES.map((name) => ({ name, type: 'number', missing: 'impute' })),
    duplicate_ids: 'reject',
    missing_values: ['', 'NA'],
  };
}
