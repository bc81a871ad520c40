/**
 * `fedcredit audit show` answers an auditor's question, which columns of whose data a job used: a training job with
 * binning reads every column it offers (each is binned and measured against the guest's labels, and the guest
 * learns its per-bin default counts), even those the model then leaves out; a scoring job reads those its model kept.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dataUses, formatDataUses } from '../src/audit/show.js';
import { Ledger } from '../src/ledger/ledger.js';

const TRAIN = 'job-20261207-00000001';
const SCORE = 'job-20261207-00000002';
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fedcredit-audit-show-'));
  const ledger = await Ledger.open(join(dir, 'ledger'), 'coordinator', join(dir, 'ledger-key.pem'));
  const bound = (jobId: string, participant: string, columns: string[]) =>
    ledger.append({ kind: 'data_bound', jobId, body: { participant, schema_sha256: 'ab'.repeat(32), rows: 687, id_set_sha256: 'cd'.repeat(32), load_report: '', columns } });
  await ledger.append({ kind: 'job_submitted', jobId: TRAIN, body: { kind: 'vertical-lr', purpose: 'consumer credit', submitter: 'bank', participants: ['bank', 'telco'] } });
  await bound(TRAIN, 'bank', ['Duration', 'Savings']);
  await bound(TRAIN, 'telco', ['Job', 'NumDependents', 'Telephone']);
  const iv = [
    { party: 'bank', feature: 'Duration', selected: true },
    { party: 'bank', feature: 'Savings', selected: true },
    { party: 'telco', feature: 'Job', selected: false },
    { party: 'telco', feature: 'NumDependents', selected: true },
    { party: 'telco', feature: 'Telephone', selected: false },
  ];
  await ledger.append({ kind: 'binning_completed', jobId: TRAIN, body: { iv } });
  await ledger.append({ kind: 'job_ended', jobId: TRAIN, body: { state: 'succeeded' } });
  await ledger.append({ kind: 'job_submitted', jobId: SCORE, body: { kind: 'vertical-score', purpose: 'new applications', submitter: 'bank', model_job: TRAIN } });
  await bound(SCORE, 'telco', ['Job', 'NumDependents', 'Telephone']);
  await ledger.append({ kind: 'job_ended', jobId: SCORE, body: { state: 'succeeded' } });
  await ledger.close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('audit show: the columns a job used', () => {
  it('a training job lists every column it binned, and which of them the model kept', () => {
    const telco = dataUses(join(dir, 'ledger'), { jobId: TRAIN, party: 'telco' })[0]!;
    expect(telco.columns).toEqual(['Job', 'NumDependents', 'Telephone']);
    expect(telco.modelColumns).toEqual(['NumDependents']);
    const bank = dataUses(join(dir, 'ledger'), { jobId: TRAIN, party: 'bank' })[0]!;
    expect(bank.columns).toEqual(['Duration', 'Savings']);
    expect(bank.modelColumns).toBeUndefined();
    const shown = formatDataUses(dataUses(join(dir, 'ledger'), { jobId: TRAIN }));
    expect(shown).toContain('telco: 687 rows');
    expect(shown).toContain('columns Job, NumDependents, Telephone (in the model: NumDependents); outcome succeeded');
    expect(shown).toContain('columns Duration, Savings; outcome succeeded');
  });

  it("a scoring job lists the columns of the party's part of the model", () => {
    const telco = dataUses(join(dir, 'ledger'), { jobId: SCORE, party: 'telco' })[0]!;
    expect(telco.columns).toEqual(['NumDependents']);
    expect(formatDataUses([telco])).toContain('columns NumDependents; outcome succeeded');
  });
});
