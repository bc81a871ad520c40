/**
 * test-scores.csv, the guest's record of a vertical job's held-out enterprises: fixed column names whatever its data
 * calls its own, ids that hold a comma or a quote kept whole, a file of an earlier fedcredit still read, and a file
 * of another layout refused with its name and the fix. (The jobs that write it: test/vertical-lr-memory.test.ts,
 * test/vertical-boost-federation.test.ts.)
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readTestScores, testScoresCsv } from '../src/credit/test-scores.js';
import type { FedcreditError } from '../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'fedcredit-held-out-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("the guest's held-out scores", () => {
  it('read back as written, an id with a comma or a quote whole', () => {
    const written = { ids: ['Smith, J', 'O"Neil', 'E-3'], labels: [1, 0, 0], scores: [1.5, -0.25, -2], pd: [0.8, 0.4, 0.1], points: ['512.3', '601.0', '655.9'] };
    const text = testScoresCsv(written);
    expect(text.split('\n')[0]).toBe('enterprise_id,label,score,pd,points');
    writeFileSync(join(dir, 'test-scores.csv'), text);
    expect(readTestScores(join(dir, 'test-scores.csv'))).toEqual(written);
  });

  it("of a job run before the names were fixed (the demo's default_12m) are still read", () => {
    writeFileSync(join(dir, 'earlier.csv'), 'enterprise_id,default_12m,score,pd\nE-1,1,0.50000000,0.62245933\n');
    expect(readTestScores(join(dir, 'earlier.csv'))).toEqual({ ids: ['E-1'], labels: [1], scores: [0.5], pd: [0.62245933] });
  });

  it('of another layout are refused, naming the file and the fix', () => {
    writeFileSync(join(dir, 'scores.csv'), 'enterprise_id,pd,score,hosts_missing\nE-1,0.6,0.5,\n');
    let err: FedcreditError | undefined;
    try {
      readTestScores(join(dir, 'scores.csv'));
    } catch (e) {
      err = e as FedcreditError;
    }
    expect(err?.message).toBe(`${join(dir, 'scores.csv')}: the header is "enterprise_id,pd,score,hosts_missing", not the held-out scores' "enterprise_id,label,score,pd[,points]"`);
    expect(err?.hint).toContain('run the job again');
  });
});
