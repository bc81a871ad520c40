import { z } from 'zod';

/** How a cell that is empty, `NA`, or not a number is handled. Every such cell is counted in the load report. */
export const MissingPolicy = z.enum(['impute', 'drop', 'reject']);
export type MissingPolicy = z.infer<typeof MissingPolicy>;

export const FeatureSpec = z.object({
  name: z.string().min(1, 'a feature needs a column name'),
  /** number: any real; integer: must be whole; binary: 0 or 1. A cell that breaks its type counts as non-numeric; a
   * column more than half of whose non-empty cells do is refused (src/data/csv.ts, NON_NUMERIC_REFUSE_SHARE).
   * category: any text (e.g. an industry code), binned one WOE per level (a job must bin it). */
  type: z.enum(['number', 'integer', 'binary', 'category']).default('number'),
  /** impute: keep the row, fill the cell later with the federation-wide mean; drop: drop the row; reject: fail the load. */
  missing: MissingPolicy.default('impute'),
}).strict();
export type FeatureSpec = z.infer<typeof FeatureSpec>;

/** The `data` section of a participant config: where the CSV is and what its columns mean. */
export const DatasetSpec = z.object({
  path: z.string().min(1, 'give the path of the CSV file (relative to the config file)'),
  delimiter: z.string().length(1, 'the delimiter is one character, e.g. "," or ";"').default(','),
  id_column: z.string().min(1),
  /** Present on parties that hold labels (every party in horizontal jobs; the guest in vertical jobs). Values 0/1. */
  label_column: z.string().min(1).optional(),
  features: z.array(FeatureSpec).min(1, 'declare at least one feature column'),
  /** Categorical columns (region, industry, size class) read as text to group reports by, e.g. for fairness; never a
   * model feature. A job can group by one only if it is listed here. */
  group_columns: z.array(z.string().min(1)).optional(),
  duplicate_ids: z.enum(['reject', 'keep_first']).default('reject'),
  /** Strings (besides the empty cell) that mean "missing". */
  missing_values: z.array(z.string()).default(['', 'NA', 'N/A', 'NaN', 'null', 'NULL']),
}).strict();
export type DatasetSpec = z.infer<typeof DatasetSpec>;
