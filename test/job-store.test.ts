/**
 * What a participant keeps of a job once it ends (participant/job-store.ts): nothing that served only to rejoin it,
 * nothing at all of a job that failed, and never less than the model of a job it saw succeed.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { COLLECTIVE_FILES, JobStore } from '../participant/job-store.js';

const root = mkdtempSync(join(tmpdir(), 'fedcredit-job-store-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A vertical job's folder as a party leaves it mid-job, and after its finalize step. */
function vertical(store: JobStore, id: string): string {
  store.save({ id, specJson: JSON.stringify({ kind: 'vertical-lr' }), features: ['x0'] });
  const dir = store.dirOf(id);
  for (const name of ['box-x25519.pem', 'vertical-setup.bin', 'progress.json', 'validation-scores-3.f64', 'model-part.json', 'test-scores.csv', 'aligned-ids.csv']) writeFileSync(join(dir, name), 'x');
  // Under a collective key: the party's share, the keys' sums, its record of shares given, and a share a crash left half written.
  for (const name of [...Object.values(COLLECTIVE_FILES), `${COLLECTIVE_FILES.keyShare}.tmp-4242`]) writeFileSync(join(dir, name), 'x');
  mkdirSync(join(dir, 'psi', 'ids'), { recursive: true });
  mkdirSync(join(dir, 'score-psi'), { recursive: true });
  return dir;
}

const state = (dir: string) => JSON.parse(readFileSync(join(dir, 'job.json'), 'utf8')).state as string;

describe('JobStore.end', () => {
  const store = new JobStore(join(root, 'jobs'));

  it('a job that succeeded keeps its results and loses its per-job key, the arbiter keys or its collective key share, progress and PSI files', () => {
    const dir = vertical(store, 'job-ok');
    store.end('job-ok', 'succeeded');
    expect(readdirSync(dir).sort()).toEqual(['aligned-ids.csv', 'job.json', 'model-part.json', 'score-psi', 'test-scores.csv']);
    expect(state(dir)).toBe('succeeded');
    expect(store.unfinished().map((j) => j.id)).not.toContain('job-ok');
  });

  it('a job that failed keeps only the record that it ran', () => {
    const dir = vertical(store, 'job-failed');
    store.end('job-failed', 'failed');
    expect(readdirSync(dir)).toEqual(['job.json']);
    expect(state(dir)).toBe('failed');
  });

  it('a job seen to succeed is not undone by a later "failed" (told again at a reconnection, or by a deviating coordinator)', () => {
    const dir = vertical(store, 'job-told-twice');
    store.end('job-told-twice', 'succeeded');
    store.end('job-told-twice', 'failed');
    expect(readdirSync(dir)).toContain('model-part.json');
    expect(state(dir)).toBe('succeeded');
  });
});
