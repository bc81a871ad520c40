/** What the replay found for one job, and for each of its rounds (horizontal) or epochs (vertical). */
export interface ReplayRound {
  round: number;
  purpose: string;
  contributors: string[];
  rowsByParty: Record<string, number>;
  trainLoss: number | null;
  validationAuc: number | null;
  /** Vertical jobs: the validation KS the epoch recorded. */
  validationKs?: number | null;
  /** Vertical jobs: each party's role (guest or host), where horizontal rounds give training rows. */
  roleByParty?: Record<string, string>;
  sumOk: boolean;
  modelOk: boolean | null;
}

export interface ReplayJob {
  jobId: string;
  name: string;
  purpose: string;
  submitter: string;
  state: string;
  rounds: ReplayRound[];
  publishedModel: string | null;
  publishedModelOk: boolean | null;
  failures: string[];
  /** Horizontal jobs: each step derived from an opened aggregate, and whether the record matches the derivation. */
  derived?: Record<string, boolean>;
}

/** A job's replay before its first entry, and how a check records a failure at an entry. */
export function startReplay(jobId: string): { job: ReplayJob; fail: (seq: number, message: string) => void } {
  const job: ReplayJob = { jobId, name: '', purpose: '', submitter: '', state: 'unfinished', rounds: [], publishedModel: null, publishedModelOk: null, failures: [] };
  return { job, fail: (seq, message) => void job.failures.push(`entry ${seq}: ${message}`) };
}
