/**
 * Where a collective key's ceremony stood when the coordinator stopped (coordinator/kinds/ceremony-resume.ts): the
 * restart to run, or why the job cannot be resumed. The process tests (test/vertical-ceremony-rejoin.test.ts,
 * test/horizontal-ceremony-rejoin.test.ts) run the restart; here, every refusal, from ledger entries made up.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname } from 'node:path';
import type { LedgerReadEntry } from '../src/ledger/read.js';
import { ceremonyResumePoint } from '../coordinator/kinds/ceremony-resume.js';
import { boxKeysFile } from '../coordinator/job-base.js';

const entry = (kind: string, body: Record<string, unknown> = {}) => ({ entry: { kind }, body }) as unknown as LedgerReadEntry;
const parties = ['bank', 'tax-bureau'];
const job = { id: 'job-1', parties, shareholders: 3, bound: 2 };
const accepted = [entry('job_submitted'), ...parties.map((participant) => entry('data_bound', { participant }))];
const committed = (participant: string) => entry('key_share_committed', { participant });
const revealed = (participant: string) => entry('key_share_revealed', { participant });

describe('a ceremony stopped by a coordinator restart', () => {
  const dir = mkdtempSync(`${tmpdir()}/fc-ceremony-resume-`);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const withBoxKeys = () => {
    mkdirSync(dirname(boxKeysFile(dir, job.id)), { recursive: true });
    writeFileSync(boxKeysFile(dir, job.id), new Uint8Array());
  };

  it('is restarted at the attempt after the recorded ones, naming the step the stop interrupted', () => {
    withBoxKeys();
    expect(ceremonyResumePoint(job, accepted, dir)).toEqual({ attempt: 1, step: 'commit' });
    const shareholders = ['arbiter', ...parties];
    expect(ceremonyResumePoint(job, [...accepted, ...shareholders.map(committed)], dir)).toEqual({ attempt: 1, step: 'reveal' });
    expect(ceremonyResumePoint(job, [...accepted, ...shareholders.map(committed), ...shareholders.map(revealed)], dir)).toEqual({ attempt: 1, step: 'key' });
    // Only the current attempt's records count: attempt 1 had begun its commit step.
    const restarted = [...accepted, ...shareholders.map(committed), ...shareholders.map(revealed), entry('key_ceremony_restarted', { attempt: 1 }), committed('arbiter')];
    expect(ceremonyResumePoint(job, restarted, dir)).toEqual({ attempt: 2, step: 'commit' });
  });

  it('is not restarted once the key is recorded, before every acceptance, without the box keys, or past encryption.ceremony_restarts', () => {
    withBoxKeys();
    expect(ceremonyResumePoint(job, [...accepted, entry('collective_key_ready')], dir)).toEqual({ reason: expect.stringMatching(/a new key ceremony would make a second key; resubmit the job/) });
    expect(ceremonyResumePoint(job, accepted.slice(0, 2), dir)).toEqual({ reason: 'the coordinator restarted before tax-bureau accepted the job; resubmit the job' });
    const restarts = [1, 2].map((attempt) => entry('key_ceremony_restarted', { attempt }));
    expect(ceremonyResumePoint(job, [...accepted, ...restarts], dir)).toEqual({ reason: expect.stringMatching(/restarted 2 times already, the job's bound \(encryption.ceremony_restarts 2\)/) });
    rmSync(boxKeysFile(dir, job.id));
    expect(ceremonyResumePoint(job, accepted, dir)).toEqual({ reason: expect.stringMatching(/the parties' box keys of the job are not in .*box-keys.bin; resubmit the job/) });
  });
});
