/**
 * After a crash, the coordinator rebuilds its unfinished jobs from its own ledger: the job file, the
 * federation-wide preprocessing and the model after the last closed round are all recorded there (the model as a
 * blob). Participants keep their keys and job state across a reconnect, so the job continues from the next round;
 * each round's training is seeded by (seed, participant, round), so the final model is the one an uninterrupted
 * run produces (see docs/operations.md for the tolerance).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HorizontalJobSpec as JobSpec, VerticalJobSpec, VerticalScoreSpec } from '../src/config/schemas.js';
import { readLedger, type LedgerReadEntry } from '../src/ledger/read.js';
import { toFloat32 } from '../src/fl/vector-codec.js';
import type { ResumePoint } from './job-run.js';
import { arbiterKeyFile, type VerticalResumePoint } from './vertical-run.js';
import type { Preprocessing } from '../src/model/preprocess.js';

/** An unfinished job: how to continue it, or why it cannot be continued (it is then recorded as failed). */
export type UnfinishedJob = { jobId: string; submitter: string } & (
  | { kind: 'horizontal'; spec: JobSpec; resume: ResumePoint }
  | { kind: 'vertical-lr'; spec: VerticalJobSpec; resume: VerticalResumePoint }
  | { kind: 'vertical-score'; spec: VerticalScoreSpec; resume: VerticalResumePoint }
  /** The model was published but the end not recorded: the job succeeded. */
  | { kind: 'published'; modelSha256: string }
  | { kind: 'failed'; reason: string }
);

/** Every job the ledger records, by id, with its entries in ledger order. */
export function ledgerJobs(ledgerDir: string): Map<string, LedgerReadEntry[]> {
  const byJob = new Map<string, LedgerReadEntry[]>();
  for (const e of readLedger(ledgerDir).entries) {
    if (!e.entry.jobId) continue;
    const list = byJob.get(e.entry.jobId);
    if (list) list.push(e);
    else byJob.set(e.entry.jobId, [e]);
  }
  return byJob;
}

/** Jobs with a `job_ended` entry: the coordinator serves their status, events and model after a restart. */
export function finishedJobs(byJob: Map<string, LedgerReadEntry[]>): [string, LedgerReadEntry[]][] {
  return [...byJob].filter(([, list]) => list.some((e) => e.entry.kind === 'job_submitted') && list.some((e) => e.entry.kind === 'job_ended'));
}

export function unfinishedJobs(byJob: Map<string, LedgerReadEntry[]>, ledgerDir: string, stateDir: string): UnfinishedJob[] {
  const out: UnfinishedJob[] = [];
  for (const [jobId, list] of byJob) {
    if (list.some((e) => e.entry.kind === 'job_ended')) continue;
    const submitted = list.find((e) => e.entry.kind === 'job_submitted');
    if (!submitted) continue;
    const { submitter: by, features, ...job } = submitted.body as Record<string, unknown>;
    const submitter = String(by ?? 'anonymous');
    const published = list.find((e) => e.entry.kind === 'model_published');
    if (published) {
      out.push({ jobId, submitter, kind: 'published', modelSha256: String(published.body.model_sha256 ?? '') });
      continue;
    }
    if (job.kind === 'vertical-lr') {
      // The job file as submitted: sections a job left out are recorded as null.
      const spec = VerticalJobSpec.parse(Object.fromEntries(Object.entries({ ...job, features }).filter(([, v]) => v !== null && v !== undefined)));
      const resume = verticalResumePoint(jobId, spec.encryption.scheme, list, stateDir);
      out.push('reason' in resume ? { jobId, submitter, kind: 'failed', reason: resume.reason } : { jobId, submitter, kind: 'vertical-lr', spec, resume });
      continue;
    }
    if (job.kind === 'vertical-score') {
      if (job.ids_file === undefined) {
        out.push({ jobId, submitter, kind: 'failed', reason: 'a scoring job recorded by an older coordinator is not resumed; run `fedcredit score` again' });
        continue;
      }
      const spec = VerticalScoreSpec.parse(Object.fromEntries(Object.entries(job).filter(([, v]) => v !== null && v !== undefined)));
      const resume = verticalResumePoint(jobId, 'none', list, stateDir);
      out.push('reason' in resume ? { jobId, submitter, kind: 'failed', reason: resume.reason } : { jobId, submitter, kind: 'vertical-score', spec, resume });
      continue;
    }
    if (job.kind !== 'horizontal') {
      out.push({ jobId, submitter, kind: 'failed', reason: `a ${String(job.kind)} job is not resumed after a coordinator restart; resubmit it` });
      continue;
    }
    const spec = JobSpec.parse({ ...job, ...(features ? { features } : {}) });
    const prep = list.find((e) => e.entry.kind === 'preprocessing_ready')?.body as Preprocessing | undefined;
    if (!prep) {
      out.push({ jobId, submitter, kind: 'failed', reason: 'the coordinator restarted before the job had its keys and feature statistics; resubmit the job' });
      continue;
    }
    const closed = list.filter((e) => e.entry.kind === 'round_closed').at(-1);
    const modelRef = closed?.entry.blobs.find((b) => b.name === 'model');
    out.push({
      jobId,
      submitter,
      kind: 'horizontal',
      spec,
      resume: {
        // A binned job's preprocessing carries the bins and WOE every participant transforms its rows with.
        preprocessing: {
          features: prep.features,
          mean: prep.mean,
          scale: prep.scale,
          bins: prep.bins ?? [],
          clipLow: (prep as { clip_low?: number[] }).clip_low ?? [],
          clipHigh: (prep as { clip_high?: number[] }).clip_high ?? [],
        },
        roundsDone: closed ? (closed.body as { round: number }).round : 0,
        weights: modelRef ? toFloat32(readFileSync(join(ledgerDir, 'blobs', Buffer.from(modelRef.sha256).toString('hex')))) : undefined,
      },
    });
  }
  return out;
}

/**
 * Where a vertical job stands in its ledger: every step completed (with the parties' reports and state digests,
 * which the job's flow reads again instead of running the step), the attempt to run the interrupted step with, and
 * the arbiter's CKKS secret key from the coordinator's state folder. The parties keep their state in memory, or in
 * their job folders if they restarted too, so the interrupted step runs again from its start at every party.
 */
function verticalResumePoint(jobId: string, scheme: 'ckks' | 'plaintext' | 'none', list: LedgerReadEntry[], stateDir: string): VerticalResumePoint | { reason: string } {
  if (!list.some((e) => e.entry.kind === 'keys_ready')) return { reason: 'the coordinator restarted before the job\'s keys were in place; resubmit the job' };
  let secretKey: Uint8Array | undefined;
  if (scheme === 'ckks') {
    const file = arbiterKeyFile(stateDir, jobId);
    if (!existsSync(file)) return { reason: `the arbiter's CKKS secret key of the job is not in ${file}; resubmit the job` };
    secretKey = readFileSync(file);
  }
  const steps: VerticalResumePoint['steps'] = new Map();
  for (const e of list) {
    if (e.entry.kind !== 'step_completed') continue;
    const b = e.body as { step: number; name: string; epoch: number; batch: number; parts_sha256?: Record<string, string>; reports?: Record<string, Record<string, unknown>> };
    steps.set(b.step, { name: b.name, epoch: b.epoch, batch: b.batch, parts: b.parts_sha256 ?? {}, reports: b.reports ?? {} });
  }
  const interrupted = Math.max(0, ...steps.keys()) + 1;
  // Above every attempt of the interrupted step the parties may have been asked for (pauses and resumptions).
  const attempts = list.filter((e) => (e.entry.kind === 'job_paused' || e.entry.kind === 'job_resumed') && e.body.step === interrupted).map((e) => Number(e.body.attempt) || 0);
  const recorded = new Map<string, number>();
  for (const e of list) recorded.set(e.entry.kind, (recorded.get(e.entry.kind) ?? 0) + 1);
  return { steps, nextAttempt: Math.max(0, ...attempts) + 1, recorded, secretKey };
}
