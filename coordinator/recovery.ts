/**
 * After a crash, the coordinator rebuilds its unfinished jobs from its own ledger: the job file, the
 * federation-wide preprocessing and the model after the last closed round are all recorded there (the model as a
 * blob). Participants keep their keys and job state across a reconnect, so the job continues from the next round;
 * each round's training is seeded by (seed, participant, round), so the final model is the one an uninterrupted
 * run produces (see docs/operations.md for the tolerance).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HorizontalJobSpec as JobSpec } from '../src/config/schemas.js';
import { readLedger } from '../src/ledger/read.js';
import { toFloat32 } from '../src/fl/vector-codec.js';
import type { ResumePoint } from './job-run.js';
import type { Preprocessing } from '../src/wire/messages.js';

export interface UnfinishedJob {
  jobId: string;
  /** Absent when the job is of a kind that cannot be resumed. */
  spec?: JobSpec;
  submitter: string;
  /** How to continue, or why the job cannot be continued (it is then recorded as failed). */
  resume: ResumePoint | { reason: string };
}

export function unfinishedJobs(ledgerDir: string): UnfinishedJob[] {
  const { entries } = readLedger(ledgerDir);
  const byJob = new Map<string, typeof entries>();
  for (const e of entries) if (e.entry.jobId) byJob.set(e.entry.jobId, [...(byJob.get(e.entry.jobId) ?? []), e]);
  const out: UnfinishedJob[] = [];
  for (const [jobId, list] of byJob) {
    if (list.some((e) => e.entry.kind === 'job_ended')) continue;
    const submitted = list.find((e) => e.entry.kind === 'job_submitted');
    if (!submitted) continue;
    const { submitter, features, ...job } = submitted.body as Record<string, unknown>;
    if (job.kind !== 'horizontal') {
      out.push({ jobId, submitter: String(submitter ?? 'anonymous'), resume: { reason: `a ${String(job.kind)} job is not resumed after a coordinator restart; resubmit it` } });
      continue;
    }
    const spec = JobSpec.parse({ ...job, ...(features ? { features } : {}) });
    const prep = list.find((e) => e.entry.kind === 'preprocessing_ready')?.body as Preprocessing | undefined;
    let resume: UnfinishedJob['resume'];
    if (!prep) {
      resume = { reason: 'the coordinator restarted before the job had its keys and feature statistics; resubmit the job' };
    } else {
      const closed = list.filter((e) => e.entry.kind === 'round_closed').at(-1);
      const modelRef = closed?.entry.blobs.find((b) => b.name === 'model');
      resume = {
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
      };
    }
    out.push({ jobId, spec, submitter: String(submitter ?? 'anonymous'), resume });
  }
  return out;
}
