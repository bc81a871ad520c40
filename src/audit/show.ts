/** `fedcredit audit show`: who used which dataset, when, in which job (of which kind), for which stated purpose. */
import { readLedger } from '../ledger/read.js';

export interface DataUse {
  time: string;
  jobId: string;
  /** The job's kind: horizontal, vertical-lr or vertical-score. */
  kind: string;
  party: string;
  purpose: string;
  submitter: string;
  schemaSha256: string;
  rows: number;
  idSetSha256: string;
  /** The dataset fingerprint from the participant's load report: its kept rows, and the SQL a database source ran. */
  rowsSha256?: string;
  querySha256?: string;
  /**
   * The columns of the party's that the job read, when the ledger names them (null when it does not): a training job's
   * every column (binning bins them all and measures each against the labels), a scoring job's those of its part of
   * the model.
   */
  columns: string[] | null;
  /** A training job whose binning left some columns out: those its model kept. */
  modelColumns?: string[];
  /** How the job ended ("succeeded", "failed: …"), or "unfinished". */
  outcome: string;
  /** Scoring jobs: the training job whose model scored, its model digest, and how many enterprises were scored. */
  scoring?: { modelJob: string; modelSha256: string; scored: number | null; requested: number | null };
}

interface JobRecord {
  kind: string;
  purpose: string;
  submitter: string;
  outcome: string;
  /** Columns read, by party: the job file's features, then the data_bound entries. */
  columns: Map<string, string[]>;
  /** Columns in the model, by party, from the binning's selection (absent without binning). */
  modelColumns: Map<string, string[]>;
  modelJob?: string;
  produced?: Record<string, unknown>;
}

export function dataUses(dir: string, filter: { jobId?: string; party?: string } = {}): DataUse[] {
  const { entries } = readLedger(dir);
  const jobs = new Map<string, JobRecord>();
  const bound: { unixMs: number; jobId: string; body: Record<string, any> }[] = [];
  for (const { entry, body } of entries) {
    const b = body as Record<string, any>;
    if (entry.kind === 'job_submitted') {
      const columns = new Map<string, string[]>();
      // A vertical job's features are per party; a horizontal job's are the same list for everyone.
      const features = b.features;
      if (features && typeof features === 'object' && !Array.isArray(features)) for (const [org, names] of Object.entries(features)) if (Array.isArray(names)) columns.set(org, names.map(String));
      if (Array.isArray(features)) for (const org of (b.participants ?? []) as string[]) columns.set(org, features.map(String));
      jobs.set(entry.jobId, {
        kind: String(b.kind ?? '?'),
        purpose: b.purpose,
        submitter: b.submitter,
        outcome: 'unfinished',
        columns,
        modelColumns: new Map(),
        ...(typeof b.model_job === 'string' ? { modelJob: b.model_job } : {}),
      });
      continue;
    }
    const job = jobs.get(entry.jobId);
    if (entry.kind === 'data_bound') {
      bound.push({ unixMs: Number(entry.unixMs), jobId: entry.jobId, body: b });
      if (job && Array.isArray(b.columns)) job.columns.set(b.participant, b.columns.map(String));
    } else if (entry.kind === 'binning_completed' && job && Array.isArray(b.iv)) {
      // After binning, a party's model uses the features that reached the IV threshold.
      const selected = new Map<string, string[]>();
      for (const r of b.iv as { feature: string; party: string; selected: boolean }[]) if (r.selected) selected.set(r.party, [...(selected.get(r.party) ?? []), r.feature]);
      for (const [org, names] of selected) job.modelColumns.set(org, names);
    } else if (entry.kind === 'scores_produced' && job) {
      job.produced = b;
    } else if (entry.kind === 'job_ended' && job) {
      job.outcome = b.state === 'failed' && b.message ? `failed: ${String(b.message).split('\n')[0]}` : String(b.state);
    }
  }
  const uses: DataUse[] = [];
  for (const { unixMs, jobId, body: b } of bound) {
    if ((filter.jobId && jobId !== filter.jobId) || (filter.party && b.participant !== filter.party)) continue;
    const job = jobs.get(jobId);
    // A scoring job reads the columns of the model's part the party holds: those the training job's model kept.
    const model = job?.modelJob ? jobs.get(job.modelJob) : undefined;
    const columns = model ? (model.modelColumns.get(b.participant) ?? model.columns.get(b.participant)) : job?.columns.get(b.participant);
    const kept = model ? undefined : job?.modelColumns.get(b.participant);
    uses.push({
      time: new Date(unixMs).toISOString(),
      jobId,
      kind: job?.kind ?? '?',
      party: b.participant,
      purpose: job?.purpose ?? '(job not in this ledger)',
      submitter: job?.submitter ?? '?',
      schemaSha256: b.schema_sha256 ?? '',
      rows: b.rows,
      idSetSha256: b.id_set_sha256 ?? '',
      columns: columns ?? null,
      ...(kept && columns && kept.length < columns.length ? { modelColumns: kept } : {}),
      outcome: job?.outcome ?? 'unfinished',
      ...(job?.modelJob
        ? {
            scoring: {
              modelJob: job.modelJob,
              modelSha256: String(job.produced?.model_sha256 ?? ''),
              scored: typeof job.produced?.scored === 'number' ? job.produced.scored : null,
              requested: typeof job.produced?.requested === 'number' ? job.produced.requested : null,
            },
          }
        : {}),
      rowsSha256: /rows sha256 ([0-9a-f]{64})/.exec(b.load_report ?? '')?.[1],
      querySha256: /query sha256 ([0-9a-f]{64})/.exec(b.load_report ?? '')?.[1],
    });
  }
  return uses;
}

export function formatDataUses(uses: DataUse[]): string {
  if (uses.length === 0) return 'no data use recorded';
  return uses
    .map((u) => {
      const columns =
        (u.columns ? `columns ${u.columns.join(', ') || '(none)'}` : 'columns not named in the ledger') + (u.modelColumns ? ` (in the model: ${u.modelColumns.join(', ') || 'none'})` : '');
      if (u.scoring) {
        const s = u.scoring;
        const model = `model of ${s.modelJob}${s.modelSha256 ? ` (sha256 ${s.modelSha256.slice(0, 12)}…)` : ''}`;
        const scored = s.scored !== null ? `, ${s.scored}${s.requested !== null ? ` of ${s.requested}` : ''} enterprises scored` : '';
        return `${u.time}  ${u.jobId}  ${u.kind}  ${u.party}: scored with the ${model}; ${columns}; outcome ${u.outcome}${scored}; for "${u.purpose}", submitted by ${u.submitter}`;
      }
      const prints = [`schema ${u.schemaSha256.slice(0, 12)}…`];
      if (u.idSetSha256) prints.push(`id set ${u.idSetSha256.slice(0, 12)}…`);
      if (u.rowsSha256) prints.push(`rows ${u.rowsSha256.slice(0, 12)}…`);
      if (u.querySha256) prints.push(`query ${u.querySha256.slice(0, 12)}…`);
      return `${u.time}  ${u.jobId}  ${u.kind}  ${u.party}: ${u.rows} rows (${prints.join(', ')}); ${columns}; outcome ${u.outcome}; for "${u.purpose}", submitted by ${u.submitter}`;
    })
    .join('\n');
}
