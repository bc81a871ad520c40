/**
 * `fedcredit report JOB --config GUEST.yaml`: a vertical job's model report at the guest, compared with what the
 * guest's own columns alone achieve on the same held-out enterprises (the question a bank asks first: what does the
 * federation add?). The comparison is computed where the guest's data is, from its job folder and its data.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { VerticalBoostSpec, VerticalJobSpec, type ParticipantConfig } from '../config/schemas.js';
import { loadSource } from '../data/source.js';
import { errorMessage } from '../errors.js';
import type { BinaryMetrics } from '../metrics.js';
import { loadBatchStability, loadJobReport } from '../report/job-report.js';
import { writeModelReport } from '../report/model-report.js';
import type { BinnedFeature } from '../vertical/binning.js';
import { guestAloneMetrics, guestAloneTrees, parseAlignedIds } from '../vertical/baseline.js';
import { JOB_FILES, readJobFile } from '../../participant/job-store.js';

/** The guest's columns alone on the job's rows, or why the report goes without them. */
export async function guestAloneOfJob(config: ParticipantConfig, configDir: string, jobDir: string): Promise<{ metrics: BinaryMetrics } | { skipped: string }> {
  const job = readJobFile(jobDir);
  if (!job) return { skipped: `${jobDir} holds no job.json: this node never took part in the job` };
  if (job.spec.kind !== 'vertical-lr' && job.spec.kind !== 'vertical-boost')
    return { skipped: `the comparison with ${config.organisation}'s columns alone is made for training jobs, not ${job.spec.kind}` };
  if (!existsSync(join(jobDir, JOB_FILES.alignedIds))) return { skipped: `${jobDir} holds no ${JOB_FILES.alignedIds}` };
  try {
    const data = await loadSource(config.data, { baseDir: configDir, columns: config.consent.columns });
    const aligned = parseAlignedIds(readFileSync(join(jobDir, JOB_FILES.alignedIds), 'utf8'));
    const guest = { organisation: config.organisation, data, features: job.features };
    if (job.spec.kind === 'vertical-boost') return { metrics: await guestAloneTrees(guest, VerticalBoostSpec.parse(job.spec), aligned) };
    const binningFile = join(jobDir, JOB_FILES.binning);
    const binned = existsSync(binningFile) ? (JSON.parse(readFileSync(binningFile, 'utf8')) as { features: BinnedFeature[] }).features : undefined;
    return { metrics: guestAloneMetrics({ ...guest, ...(binned ? { binned } : {}) }, VerticalJobSpec.parse(job.spec), aligned) };
  } catch (err) {
    return { skipped: `${config.organisation}'s columns alone could not be measured: ${errorMessage(err)}` };
  }
}

/** Writes the report of a vertical job at its guest; returns the figure files and a note when the comparison was left out. */
export async function writeGuestJobReport(
  config: ParticipantConfig,
  configDir: string,
  jobsDir: string,
  jobId: string,
  outFile: string,
  batch?: string,
): Promise<{ figures: string[]; note?: string }> {
  const jobDir = join(jobsDir, jobId);
  const input = loadJobReport(jobDir, batch ? { stability: loadBatchStability(join(jobsDir, batch)) } : {});
  const alone = await guestAloneOfJob(config, configDir, jobDir);
  if ('metrics' in alone) {
    input.comparison = {
      [`${config.organisation} alone (its own columns)`]: { auc: alone.metrics.auc, ks: alone.metrics.ks },
      'federated (this model)': { auc: input.evaluation.auc, ks: input.evaluation.ks },
    };
  }
  const { figures } = await writeModelReport(input, outFile);
  return 'skipped' in alone ? { figures, note: alone.skipped } : { figures };
}
