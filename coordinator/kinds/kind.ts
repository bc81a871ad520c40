/**
 * The coordinator's half of a job kind (src/jobs/kind.ts declares the rest): how a submitted job runs, and how one
 * a previous run of the coordinator left unfinished continues from its ledger.
 */
import type { LedgerReadEntry } from '../../src/ledger/read.js';
import type { JobKindName, SpecOf } from '../../src/jobs/kind.js';
import type { JobBase, JobContext } from '../job-base.js';
import type { TrainedModel } from '../score-run.js';

/** What a job may ask of the coordinator that runs it. */
export interface CoordinatorDeps {
  /** What this coordinator knows of a job it ran (a scoring job names the training job whose model it uses). */
  trainedModel(jobId: string): TrainedModel | undefined;
}

/** An unfinished job as the ledger records it. */
export interface RecordedJob {
  id: string;
  submitter: string;
  /** The job file as submitted (the `job_submitted` body without the submitter and the features). */
  file: Record<string, unknown>;
  features: unknown;
  entries: LedgerReadEntry[];
}

/** How an unfinished job continues, or why it cannot (it is then recorded as failed). */
export interface Resumable {
  start(ctx: JobContext, deps: CoordinatorDeps): JobBase;
}
export type Resumption = Resumable | { reason: string };

export interface CoordinatorKind<K extends JobKindName = JobKindName> {
  /** Why `submitter` (known by its certificate) may not submit the job, if it may not; with the log's fields. */
  refuseSubmitter?(spec: SpecOf<K>, submitter: string, deps: CoordinatorDeps): { details: string; fields: Record<string, unknown> } | undefined;
  start(id: string, spec: SpecOf<K>, submitter: string, ctx: JobContext, deps: CoordinatorDeps): JobBase;
  /** Continue a job a previous run of the coordinator left unfinished, from its ledger entries. */
  resume(job: RecordedJob, dirs: { ledgerDir: string; stateDir: string }): Resumption;
}
