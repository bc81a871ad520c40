import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { egressSummary } from '../src/cli/egress.js';

describe('fedcredit participant egress', () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'fedcredit-egress-'));
  afterAll(() => rmSync(stateDir, { recursive: true, force: true }));

  /** A host's record of one scoring share sent to the guest in a job naming `hosts`. */
  function recordJob(jobId: string, hosts: string[]): void {
    mkdirSync(join(stateDir, 'jobs', jobId), { recursive: true });
    writeFileSync(join(stateDir, 'jobs', jobId, 'job.json'), JSON.stringify({ id: jobId, spec: { kind: 'vertical-lr', guest: 'bank', hosts }, features: ['age'], state: 'succeeded' }));
    const line = {
      time: '2026-12-06T22:20:00.000Z',
      direction: 'sent',
      job: jobId,
      round: 3,
      kind: 'relay',
      bytes: 938,
      what: 'a payload sealed to another party of a vertical job (see its kind) (score.share for bank)',
    };
    writeFileSync(join(stateDir, 'egress.jsonl'), `${JSON.stringify(line)}\n`, { flag: 'a' });
  }

  it("tells the only host of a job that the guest reads its partial scores, which no other host's mask hides", () => {
    recordJob('job-one-host', ['credit-bureau']);
    recordJob('job-two-hosts', ['credit-bureau', 'power-company']);
    const [one] = egressSummary(stateDir, 'job-one-host');
    expect(one).toMatchObject({ kind: 'score.share', to: 'bank', messages: 1, bytes: 938 });
    expect(one!.what).toContain('this job has one host, so the sum is these values themselves: the guest reads them as they are');
    const [two] = egressSummary(stateDir, 'job-two-hosts');
    expect(two!.what).toBe('partial scores masked pairwise with the other hosts (only their sum opens)');
  });
});
