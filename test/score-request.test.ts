/**
 * What `fedcredit score` checks on the guest's machine before it submits a scoring job: the id list is read as a
 * user writes it (a header naming the guest's id column, the ids in any column of an extract), and ids the guest's
 * node dropped at load, such as applicants with no outcome yet, are named as dropped, not as absent from the data.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkScoreRequest } from '../src/cli/score-request.js';
import { DatasetSpec } from '../src/data/schema.js';
import { ingestSource } from '../src/data/source.js';
import { ErrorCode, type FedcreditError } from '../src/errors.js';
import { readIdList } from '../participant/vertical-score.js';

const JOB = 'job-20261207-0000abcd';

function refusal(ids: string[], source = '--ids applicants.csv'): FedcreditError {
  try {
    checkScoreRequest({ stateDir: join(dir, 'state'), organisation: 'bank', modelJob: JOB, ids, source });
  } catch (err) {
    return err as FedcreditError;
  }
  throw new Error('the request was accepted');
}

let dir: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedcredit-score-request-'));
  // Two customers with an outcome, two applicants without one yet (an empty label and an NA).
  writeFileSync(join(dir, 'bank.csv'), 'app_id,default,income\nAPP-1,0,10\nAPP-2,1,20\nAPP-3,,30\nAPP-4,NA,40\n');
  const spec = DatasetSpec.parse({ path: 'bank.csv', id_column: 'app_id', label_column: 'default', features: [{ name: 'income' }] });
  await ingestSource(spec, { baseDir: dir, dir: join(dir, 'state', 'rows') });
  const jobDir = join(dir, 'state', 'jobs', JOB);
  mkdirSync(jobDir, { recursive: true });
  const job = { id: JOB, spec: { kind: 'vertical-lr', guest: 'bank', hosts: ['tax'], alignment: { id_format: 'any' } }, features: ['income'], state: 'succeeded' };
  writeFileSync(join(jobDir, 'job.json'), JSON.stringify(job));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the id list of fedcredit score', () => {
  it("skips a header that names the guest's id column, and reads that column of an extract", () => {
    writeFileSync(join(dir, 'one.csv'), 'app_id\nAPP-1\nAPP-2\n');
    expect(readIdList(join(dir, 'one.csv'), 'app_id')).toEqual(['APP-1', 'APP-2']);
    writeFileSync(join(dir, 'extract.csv'), 'name,App_ID,amount\n"Smith, J",APP-3,1000\nLee,APP-4,2000\n');
    expect(readIdList(join(dir, 'extract.csv'), 'app_id')).toEqual(['APP-3', 'APP-4']);
  });

  it('reads the first field of each line of a list without a header, and skips an `id` header as before', () => {
    writeFileSync(join(dir, 'plain.csv'), 'APP-1\r\n\r\nAPP-2,ignored\r\n');
    expect(readIdList(join(dir, 'plain.csv'), 'app_id')).toEqual(['APP-1', 'APP-2']);
    writeFileSync(join(dir, 'id.csv'), '\uFEFFenterprise_id\nAPP-1\n');
    expect(readIdList(join(dir, 'id.csv'))).toEqual(['APP-1']);
  });

  it('names a list it cannot read, with the fix', () => {
    expect(() => readIdList(join(dir, 'nowhere.csv'))).toThrow(/cannot read the id list .*nowhere.csv: ENOENT/);
  });
});

describe("ids the guest's node dropped at load", () => {
  it('an applicant without an outcome is named as dropped for its empty label, not as missing from the data', () => {
    const err = refusal(['APP-3', 'APP-4']);
    expect(err.code).toBe(ErrorCode.DATA_REJECTED);
    expect(err.message).toContain("bank's data holds none of the 2 valid ids of --ids applicants.csv among the 2 rows its node kept");
    expect(err.message).toContain('2 rows of');
    expect(err.message).toContain('were dropped at load (missing_label 2)');
    expect(err.hint).toContain('a row with an empty label (an applicant with no outcome yet) is dropped at load and cannot be scored yet');
  });

  it('a request that holds one kept id goes ahead', () => {
    expect(() => checkScoreRequest({ stateDir: join(dir, 'state'), organisation: 'bank', modelJob: JOB, ids: ['APP-3', 'APP-2'], source: '--ids x.csv' })).not.toThrow();
  });
});
