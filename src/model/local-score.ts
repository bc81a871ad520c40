/**
 * `fedcredit score --model DIR --data FILE.csv`: a downloaded horizontal model (`fedcredit job model ID --out DIR`)
 * scores enterprises on this machine, nothing sent anywhere: the probability of default of each, and with a scorecard
 * model its points and main reason codes. The CSV is loaded with the checks a participant's data gets
 * (src/data/csv.ts): the model's columns must be there, cells that are not numbers are counted, duplicate ids refused.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DatasetSpec } from '../data/schema.js';
import type { LoadReport } from '../data/load-report.js';
import { csvCell, csvHeader, loadDataset } from '../data/csv.js';
import { binaryMetrics, type BinaryMetrics } from '../metrics.js';
import { ErrorCode, FedcreditError } from '../errors.js';
import { reasonCodes, reasonText, scoreRecord, type Scorecard } from '../credit/scorecard.js';
import { loadArtifact, readArtifactMetadata } from './artifact.js';
import { loadTf } from './tf.js';
import { cellValue } from '../credit/bin-layout.js';
import { sha256Hex } from '../bytes.js';

/** Reasons per enterprise when the artifact does not say (artifacts written before it did): the job's default. */
const DEFAULT_REASON_CODES = 3;

export interface LocalScoreOptions {
  modelDir: string;
  dataFile: string;
  /**
   * How to read the CSV: a participant config's `data` section (types, missing-value policy, delimiter, id column);
   * its path is replaced by `dataFile`. Absent: columns named as the model's features, numbers, missing cells imputed.
   */
  dataSpec?: DatasetSpec;
  /** The id column when there is no dataSpec (default `id`). */
  idColumn?: string;
  baseDir?: string;
}

export interface LocalScores {
  jobId: string;
  /** enterprise_id,pd[,points,reason_1..k] */
  csv: string;
  rows: number;
  report: LoadReport;
  /**
   * When the CSV has the config's label column: the model's AUC and KS on the scored rows with a label (`n` of them),
   * so a bank can set the federated model and one of its own side by side on its own held-out rows.
   */
  evaluation?: (BinaryMetrics & { labelColumn: string }) | { labelColumn: string; unread: string };
}

const ALTERED = 'download the model again (`fedcredit job model <job-id> --out <folder>`): a file of the artifact was altered';

export async function scoreWithArtifact(o: LocalScoreOptions): Promise<LocalScores> {
  const meta = readArtifactMetadata(o.modelDir, "a vertical model scores on its guest's machine, with every party: `fedcredit score --config <guest.yaml> --model <job-id> --ids FILE`");
  const weights = readFileSync(join(o.modelDir, 'weights.bin'));
  if (sha256Hex(weights) !== meta.weightsSha256)
    throw new FedcreditError(ErrorCode.NOT_FOUND, `${join(o.modelDir, 'weights.bin')} is not the published model of ${meta.jobId} (its SHA-256 differs from fedcredit.json's)`, ALTERED);
  let card: Scorecard | undefined;
  if (meta.scorecard) {
    const file = join(o.modelDir, meta.scorecard.json);
    if (!existsSync(file)) throw new FedcreditError(ErrorCode.NOT_FOUND, `${file} is missing: ${meta.jobId} was published with a scorecard`, ALTERED);
    const bytes = readFileSync(file);
    if (sha256Hex(bytes) !== meta.scorecard.sha256) throw new FedcreditError(ErrorCode.NOT_FOUND, `${file} is not the published scorecard of ${meta.jobId} (its SHA-256 differs)`, ALTERED);
    card = JSON.parse(bytes.toString('utf8')) as Scorecard;
  }
  const features = meta.preprocessing.features;
  const spec: DatasetSpec = o.dataSpec ? { ...o.dataSpec, path: o.dataFile } : DatasetSpec.parse({ path: o.dataFile, id_column: o.idColumn ?? 'id', features: features.map((name) => ({ name })) });
  const file = resolve(o.baseDir ?? '.', o.dataFile);
  const columns = await csvHeader(file, spec.delimiter);
  if (!o.dataSpec && !columns.includes(spec.id_column))
    throw new FedcreditError(
      ErrorCode.DATA_SCHEMA,
      `${file}: line 1: no id column "${spec.id_column}" in the header`,
      "name the CSV's id column with --id-column NAME (a blank header cell is column_<position>, e.g. column_1), or give a participant config (--config P.yaml) whose data section says how to read the file",
    );
  const data = await loadDataset(spec, { baseDir: o.baseDir, columns: features, withLabels: false });
  const labelColumn = spec.label_column;
  // Labels that do not read (coded 1/2, say) cost the figures only, never the scores: the scoring does not need them.
  const labelled =
    labelColumn !== undefined && columns.includes(labelColumn)
      ? await loadDataset(spec, { baseDir: o.baseDir, columns: [] }).catch((err: unknown) => {
          if (err instanceof FedcreditError) return { unread: err.message };
          throw err;
        })
      : undefined;
  const { tf } = await loadTf();
  const model = await loadArtifact(tf, o.modelDir);
  const pd = model.score(data.x, data.levels);
  model.model.dispose();
  const k = meta.scorecard?.reasonCodes ?? DEFAULT_REASON_CODES;
  const header = ['enterprise_id', 'pd', ...(card ? ['points', ...Array.from({ length: k }, (_, j) => `reason_${j + 1}`)] : [])];
  const lines = [header.join(',')];
  const width = features.length;
  for (let r = 0; r < data.rows; r++) {
    const cells = [csvCell(data.ids[r]!), pd[r]!.toFixed(8)];
    if (card) {
      const scored = scoreRecord(
        card,
        Object.fromEntries(
          features.flatMap((f, j) => {
            const value = cellValue(data.x[r * width + j]!, data.levels?.[f]);
            return value === undefined ? [] : [[f, value]];
          }),
        ),
      );
      const reasons = reasonCodes(scored.points, k);
      const decimals = card.scaling.decimals;
      cells.push(String(scored.score), ...Array.from({ length: k }, (_, j) => (reasons[j] ? csvCell(reasonText(reasons[j]!, decimals)) : '')));
    }
    lines.push(cells.join(','));
  }
  return {
    jobId: meta.jobId,
    csv: lines.join('\n') + '\n',
    rows: data.rows,
    report: data.report,
    ...(labelled ? { evaluation: 'unread' in labelled ? { labelColumn: labelColumn!, unread: labelled.unread } : { ...evaluate(labelled, data.ids, pd), labelColumn: labelColumn! } } : {}),
  };
}

/** The scores of the rows that have a label (rows dropped from the scoring, by their missing policy, are left out). */
function evaluate(labelled: { ids: string[]; y?: Float32Array }, ids: string[], pd: ArrayLike<number>): BinaryMetrics {
  const label = new Map(labelled.ids.map((id, r) => [id, labelled.y![r]!]));
  const y: number[] = [];
  const p: number[] = [];
  ids.forEach((id, r) => {
    const v = label.get(id);
    if (v === undefined) return;
    y.push(v);
    p.push(pd[r]!);
  });
  return binaryMetrics(y, p);
}
