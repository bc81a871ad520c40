/** The ids a coordinator gives the jobs it accepts: `job-YYYYMMDD-` and eight random hex digits. */
import { randomBytes } from 'node:crypto';

export const JOB_ID_PATTERN = /^job-\d{8}-[0-9a-f]{8}$/;

/** A fresh job id, dated today (UTC). */
export function newJobId(now = new Date()): string {
  return `job-${now.toISOString().slice(0, 10).replaceAll('-', '')}-${randomBytes(4).toString('hex')}`;
}
