/** `fedcredit audit show`: who used which dataset, when, in which job, for which stated purpose. */
import { readLedger } from '../ledger/read.js';

export interface DataUse {
  time: string;
  jobId: string;
  party: string;
  purpose: string;
  submitter: string;
  schemaSha256: string;
  rows: number;
  idSetSha256: string;
  /** The dataset fingerprint from the participant's load report: its kept rows, and the SQL a database source ran. */
  rowsSha256?: string;
  querySha256?: string;
}

export function dataUses(dir: string, filter: { jobId?: string; party?: string } = {}): DataUse[] {
  const { entries } = readLedger(dir);
  const jobs = new Map<string, { purpose: string; submitter: string }>();
  const uses: DataUse[] = [];
  for (const { entry, body } of entries) {
    const b = body as Record<string, any>;
    if (entry.kind === 'job_submitted') jobs.set(entry.jobId, { purpose: b.purpose, submitter: b.submitter });
    if (entry.kind !== 'data_bound') continue;
    if ((filter.jobId && entry.jobId !== filter.jobId) || (filter.party && b.participant !== filter.party)) continue;
    const job = jobs.get(entry.jobId);
    uses.push({
      time: new Date(Number(entry.unixMs)).toISOString(),
      jobId: entry.jobId,
      party: b.participant,
      purpose: job?.purpose ?? '(job not in this ledger)',
      submitter: job?.submitter ?? '?',
      schemaSha256: b.schema_sha256,
      rows: b.rows,
      idSetSha256: b.id_set_sha256 ?? '',
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
      const prints = [`schema ${u.schemaSha256.slice(0, 12)}…`];
      if (u.idSetSha256) prints.push(`id set ${u.idSetSha256.slice(0, 12)}…`);
      if (u.rowsSha256) prints.push(`rows ${u.rowsSha256.slice(0, 12)}…`);
      if (u.querySha256) prints.push(`query ${u.querySha256.slice(0, 12)}…`);
      return `${u.time}  ${u.jobId}  ${u.party}: ${u.rows} rows (${prints.join(', ')}) for "${u.purpose}", submitted by ${u.submitter}`;
    })
    .join('\n');
}
