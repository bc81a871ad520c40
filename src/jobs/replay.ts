/** `fedcredit audit replay`: each job of a ledger replayed the way its kind declares (src/audit/ holds the replays). */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readLedger, type LedgerReadEntry } from '../ledger/read.js';
import { hex } from '../bytes.js';
import type { ReplayJob } from '../audit/replay-job.js';
import type { BlobRef, ReplayReport } from '../audit/replay.js';
import { jobKind } from './registry.js';

export async function replayLedger(dir: string, opts: { jobId?: string } = {}): Promise<ReplayReport> {
  const ledger = readLedger(dir);
  const blob = (ref: BlobRef) => readFile(join(dir, 'blobs', hex(ref.sha256)));
  const byJob = new Map<string, typeof ledger.entries>();
  for (const e of ledger.entries) {
    if (!e.entry.jobId || (opts.jobId && e.entry.jobId !== opts.jobId)) continue;
    byJob.set(e.entry.jobId, [...(byJob.get(e.entry.jobId) ?? []), e]);
  }
  const jobs: ReplayJob[] = [];
  const notReplayed: ReplayReport['notReplayed'] = [];
  for (const [jobId, entries] of byJob) {
    const submitted = entries.find((e) => e.entry.kind === 'job_submitted')?.body as Record<string, unknown> | undefined;
    const audit = jobKind(submitted?.kind)?.audit;
    if (audit && 'replay' in audit) jobs.push(await audit.replay(jobId, entries, blob));
    else notReplayed.push({ jobId, kind: String(submitted?.kind ?? 'unknown'), what: notReplayedSummary(submitted, entries) });
  }
  return { ok: jobs.length > 0 && jobs.every((j) => j.failures.length === 0), jobs, notReplayed };
}

/** What the record says of a job that has nothing to replay (a scoring job changes no model). */
function notReplayedSummary(submitted: Record<string, unknown> | undefined, entries: LedgerReadEntry[]): string {
  if (!submitted) return 'no job_submitted entry: not replayed';
  const ended = entries.find((e) => e.entry.kind === 'job_ended')?.body as { state?: string; message?: string } | undefined;
  const outcome = ended ? (ended.state === 'failed' ? `failed (${String(ended.message ?? '').split('\n')[0]})` : String(ended.state)) : 'unfinished';
  const audit = jobKind(submitted.kind)?.audit;
  if (!audit || !('notReplayed' in audit)) return `a ${String(submitted.kind)} job: not replayed; ${outcome}`;
  return audit.notReplayed(submitted, entries, outcome);
}
