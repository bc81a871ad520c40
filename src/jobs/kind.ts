/**
 * A job kind (Flower's Strategy is the model): what differs between a horizontal, a vertical-lr and a
 * vertical-score job, declared once. This half is pure declaration: the job file's schema, who takes part, what a
 * data owner's consent checks it against, how a finished job reads back from the ledger and how an auditor replays
 * it. The runners add their halves under the same name: coordinator/kinds/ (run a job, resume it after a restart)
 * and participant/kinds/ (accept an offer, rejoin after a restart).
 */
import type { z } from 'zod';
import type { JobSpec, ParticipantConfig } from '../config/schemas.js';
import type { LedgerReadEntry } from '../ledger/read.js';
import type { ReplayJob } from '../audit/replay-job.js';
import type { BlobRef } from '../audit/replay.js';

export type JobKindName = JobSpec['kind'];
export type SpecOf<K extends JobKindName> = Extract<JobSpec, { kind: K }>;
/** A consent rule a job breaks: the rule's name (as in the participant's config) and why. */
export type Refusal = [rule: string, reason: string];
/** The entries of consent.job_kinds. */
export type ConsentKind = ParticipantConfig['consent']['job_kinds'][number];

/** What a data owner's node knows of its own data and consent when it checks an offer. */
export interface DataOwner {
  org: string;
  consent: ParticipantConfig['consent'];
  /** The columns it offers to jobs: its declared features within consent.columns. */
  offered: string[];
  /** Every feature its data section declares. */
  declared: string[];
  /** The levels of each offered feature of type category, as its data holds them. */
  levels: Readonly<Record<string, readonly string[]>>;
  /** Told the levels of a category that a job does not declare (they stay in the owner's own log). */
  undeclaredLevels?(feature: string, levels: string[]): void;
  rows: number;
  groupColumns: string[];
}

export interface JobKind<K extends JobKindName = JobKindName> {
  readonly name: K;
  readonly schema: z.ZodType<SpecOf<K>>;
  /** Every organisation the job involves (a vertical job's guest first). */
  parties(spec: SpecOf<K>): string[];
  /** The entry of consent.job_kinds that admits the job; `model_job`: the kind of the training job whose model a
   * scoring job uses (as the owner's node kept it). */
  readonly consentKind: ConsentKind | 'model_job';
  /**
   * The owner's columns the job uses and the data-use rules it is checked against, before the owner is asked and
   * again on acceptance. Absent: the job uses data the way an earlier job that was consented to did (scoring,
   * bounded by consent.scoring instead), and the owner is not asked.
   */
  readonly policy?: {
    columns(spec: SpecOf<K>, owner: DataOwner): string[];
    refusal(spec: SpecOf<K>, owner: DataOwner): Refusal | undefined;
  };
  /** A finished job read back from the ledger (coordinator/finished-job.ts). */
  readonly finished: {
    /** Rounds or epochs the job file asks for (its `job_submitted` body). */
    plannedUnits(submitted: Record<string, unknown>): number;
    /** A model job publishes a model (`model_published`); a scoring job a summary (`scores_produced`). */
    producesModel: boolean;
  };
  /** `fedcredit audit replay`: re-execute the job from its record, or say why there is nothing to re-execute. */
  readonly audit:
    | { replay(jobId: string, entries: LedgerReadEntry[], blob: (ref: BlobRef) => Promise<Uint8Array>): Promise<ReplayJob> }
    | { notReplayed(submitted: Record<string, unknown>, entries: LedgerReadEntry[], outcome: string): string };
}

/** A count the recorded job file's training section holds (rounds, epochs), or NaN if it holds none. */
export function trainingCount(submitted: Record<string, unknown>, field: 'rounds' | 'epochs'): number {
  const v = (submitted.training as Record<string, unknown> | undefined)?.[field];
  return typeof v === 'number' && Number.isFinite(v) ? v : Number.NaN;
}
