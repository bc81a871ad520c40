/** What loading a data source kept, dropped and counted: logged, shown to the owner and recorded in the ledger. */
export interface LoadReport {
  file: string;
  /** Data rows seen (excluding the header and blank lines). rowsRead = rowsKept + the sum of rowsDropped. */
  rowsRead: number;
  rowsKept: number;
  /** reason -> rows: `missing_id`, `duplicate_id`, `missing_label`, `missing:<feature>`, `non_numeric:<feature>`. */
  rowsDropped: Record<string, number>;
  /** feature -> empty/NA cells, over every data row of the file. */
  missingCells: Record<string, number>;
  /** feature -> cells that were present but not a valid value of the feature's type, over every data row. */
  nonNumericCells: Record<string, number>;
  /** feature -> cells of kept rows left as NaN for later imputation. */
  imputedCells: Record<string, number>;
  duplicateIds: number;
  /** Rows with an empty id cell (dropped). */
  invalidIds: number;
  /** SHA-256 of the kept rows as stored (features, labels, ids and group values, in the source's order): the dataset
   * fingerprint the ledger records through the load report. */
  rowsSha256?: string;
  /** SHA-256 of the SQL text a database source ran (src/data/postgres.ts). */
  querySha256?: string;
}
