import { describe, expect, it } from 'vitest';
import { formatReplay } from '../src/audit/replay.js';
import { startReplay } from '../src/audit/replay-job.js';

describe('audit replay output', () => {
  it('says that a job failed before training instead of printing an empty table of another kind of job', () => {
    const { job } = startReplay('job-1');
    Object.assign(job, { name: 'gmsc', purpose: 'scorecard', submitter: 'bank', state: 'failed' });
    const text = formatReplay({ ok: true, jobs: [job], notReplayed: [] });
    expect(text).toContain('no training round in the record: the job failed before training began');
    expect(text).not.toContain('participants (training rows)');
    expect(text).not.toContain('parties (role)');
  });
});
