/**
 * After a crash, the coordinator rebuilds its unfinished jobs from its own ledger: the job file, the
 * federation-wide preprocessing and the model after the last closed round are all recorded there (the model as a
 * blob). Participants keep their keys and job state across a reconnect, so the job continues from the next round;
 * each round's training is seeded by (seed, participant, round), so the final model is the one an uninterrupted
 * run produces (see docs/operations.md for the tolerance).
 */
import { readLedger, type LedgerReadEntry } from '../src/ledger/read.js';
import { coordinatorKind } from './kinds/index.js';
import type { Resumable } from './kinds/kind.js';

/** An unfinished job: how to continue it, or why it cannot be continued (it is then recorded as failed). */
export type UnfinishedJob = { jobId: string; submitter: string } & (
  | { kind: 'resumable'; start: Resumable['start'] }
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
    const kind = coordinatorKind(job.kind);
    if (!kind) {
      out.push({ jobId, submitter, kind: 'failed', reason: `a ${String(job.kind)} job is not resumed after a coordinator restart; resubmit it` });
      continue;
    }
    const resumed = kind.resume({ id: jobId, submitter, file: job, features, entries: list }, { ledgerDir, stateDir });
    out.push('reason' in resumed ? { jobId, submitter, kind: 'failed', reason: resumed.reason } : { jobId, submitter, kind: 'resumable', start: resumed.start });
  }
  return out;
}
