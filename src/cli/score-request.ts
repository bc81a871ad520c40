/**
 * What `fedcredit score` checks on the guest's machine before it submits a scoring job, so that a wrong --model or a
 * wrong --id fails at once, naming the fix, instead of after a whole scoring job (which each host also counts against
 * its consent.scoring quota): the guest kept the model's job, the job trained a vertical model and succeeded, and some
 * requested id fits the id format the model aligned with and is among the guest's rows.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode, FedcreditError } from '../errors.js';
import { ROWS_DIR, UNLABELLED_ROWS_DIR } from '../paths.js';
import { RowStore } from '../data/row-store.js';
import { JOB_ID_PATTERN } from '../jobs/job-id.js';
import { normaliseId, prepareIds, type IdFormat } from '../psi/ids.js';
import { JOB_FILES, JobFolder, readJobFile } from '../../participant/job-store.js';
import { checkPartCalibration, modelIdFormat } from '../../participant/vertical-score.js';

export interface ScoreRequestCheck {
  /** The guest's state folder (its config's state_dir). */
  stateDir: string;
  organisation: string;
  modelJob: string;
  ids: readonly string[];
  /** Where the ids came from, for messages: `--id` or `--ids FILE`. */
  source: string;
  idFormat?: IdFormat;
}

const FORMAT_SHAPE: Record<IdFormat, string> = { uscc: '18 characters with a valid check character', any: 'a non-empty id' };

/** Throws, naming the id and the fix, a request that could only fail as a scoring job. */
export function checkScoreRequest(r: ScoreRequestCheck): void {
  const modelDir = join(r.stateDir, 'jobs', r.modelJob);
  const kept = readJobFile(modelDir);
  const modelHint = `--model names the vertical-lr or vertical-boost job whose model to use, as \`fedcredit job submit\` printed it (\`fedcredit job status ID\` shows its state); with the guest's config as --config`;
  if (!kept) {
    const folder = existsSync(r.modelJob) && statSync(r.modelJob).isDirectory();
    throw new FedcreditError(
      ErrorCode.NOT_FOUND,
      JOB_ID_PATTERN.test(r.modelJob) ? `${r.organisation} kept no job ${r.modelJob} (no ${join(modelDir, 'job.json')})` : `--model ${r.modelJob} is not a job id (job-YYYYMMDD-xxxxxxxx)`,
      folder ? `${r.modelJob} is a folder: a downloaded horizontal model scores a CSV with --model DIR --data FILE.csv` : modelHint,
    );
  }
  const kind = String(kept.spec.kind);
  if (kind !== 'vertical-lr' && kind !== 'vertical-boost') throw new FedcreditError(ErrorCode.JOB_INVALID, `job ${r.modelJob} is a ${kind} job, not a vertical model`, modelHint);
  if (kept.state !== 'succeeded')
    throw new FedcreditError(
      ErrorCode.JOB_INVALID,
      `job ${r.modelJob} is ${kept.state} at ${r.organisation}: it has no published model`,
      kept.state === 'running' ? 'wait until it succeeds (`fedcredit job watch ID`)' : modelHint,
    );

  const folder = new JobFolder(modelDir);
  if (folder.has(JOB_FILES.modelPart)) checkPartCalibration(folder.readJson(JOB_FILES.modelPart), r.modelJob, r.organisation);

  const format = modelIdFormat(modelDir, { model_job: r.modelJob, ...(r.idFormat ? { id_format: r.idFormat } : {}) }, kept);
  const requested = prepareIds(r.ids, format);
  const [first] = r.ids;
  const one = r.ids.length === 1 && first !== undefined;
  const jobIdGiven = one && JOB_ID_PATTERN.test(first.trim()) ? `${first} is a job id: give it to --model, and to --id an enterprise's id` : undefined;
  if (requested.ids.length === 0) {
    const what = one ? `--id ${first} is not a valid ${format} id` : `none of the ${r.ids.length} ids of ${r.source} is a valid ${format} id (e.g. ${requested.invalid.examples.join(', ')})`;
    throw new FedcreditError(
      ErrorCode.DATA_REJECTED,
      `${what}: the model's job ${r.modelJob} aligned enterprises by ${format} ids (${FORMAT_SHAPE[format]})`,
      jobIdGiven ?? `give the enterprises' ids as ${r.organisation}'s data holds them in its id column`,
    );
  }
  // The guest's rows as its node last read them (the node keeps them in its state folder): scores need its columns.
  // Those without a label (applicants with no outcome yet) are kept apart, for scoring only.
  const rowsDir = join(r.stateDir, ROWS_DIR);
  if (!existsSync(join(rowsDir, 'meta.json'))) return;
  const wanted = new Set(requested.ids);
  const stores = [rowsDir, join(r.stateDir, UNLABELLED_ROWS_DIR)].filter((d) => existsSync(join(d, 'meta.json'))).map((d) => RowStore.open(d));
  for (const store of stores) for (const [id] of store.ids()) if (wanted.has(normaliseId(id))) return;
  const what = one ? `${r.organisation}'s data holds no enterprise ${first}` : `${r.organisation}'s data holds none of the ${requested.ids.length} valid ids of ${r.source}`;
  const report = stores[0]!.meta.report;
  // Rows dropped at load are in neither store: the ids may well be in the file. Say so rather than send the user to
  // check the ids. (Rows dropped only for an empty label are not lost: the unlabelled store holds them.)
  const dropped = Object.entries(report.rowsDropped).filter(([k, n]) => n > 0 && k !== 'missing_label');
  if (dropped.length > 0) {
    throw new FedcreditError(
      ErrorCode.DATA_REJECTED,
      `${what} among the rows its node kept: rows of ${report.file} were dropped at load (${dropped.map(([k, n]) => `${k} ${n}`).join(', ')}), and a dropped row cannot be scored`,
      jobIdGiven ?? `check the id${one ? '' : 's'} against its data's id column, and the node's load report for why rows were dropped`,
    );
  }
  throw new FedcreditError(
    ErrorCode.DATA_REJECTED,
    what,
    jobIdGiven ?? `score enterprises ${r.organisation} holds data for (the model scores with its own columns too): check the id${one ? '' : 's'} against its data's id column`,
  );
}
