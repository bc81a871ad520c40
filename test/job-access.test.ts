/**
 * Job-scoped reads: a submitter reads only the jobs it submitted, a participant only the jobs it takes part in,
 * an auditor every job; the ledger is the auditors' alone; a model is scored only by the organisation that
 * trained it. Every read method is tried from a certificate that may not use it, and from one that may.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { CoordinatorClient } from '../src/client.js';
import { uciHomoFile } from '../src/data/public-datasets.js';
import type { EphemeralFederation } from '../src/federation/ephemeral.js';
import { DATASETS, horizontalJob, HOMO_PARTIES, TestFederation, uciHomoSpec } from './helpers/federation.js';

describe('job-scoped access to jobs, models and the ledger', () => {
  const names = ['bank-a', 'bank-b'];
  let fed: EphemeralFederation;
  let jobId: string;
  const clients: CoordinatorClient[] = [];
  const client = async (org: string, role: 'submitter' | 'participant' | 'auditor') => {
    const c = new CoordinatorClient(fed.cluster.address, await fed.identity(org, role));
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    fed = await TestFederation.start(names.map((name, i) => ({ name, data: uciHomoSpec(uciHomoFile(DATASETS, HOMO_PARTIES[i]!)) })));
    const run = await fed.run(horizontalJob({ participants: names, training: { rounds: 1 }, encryption: { scheme: 'plaintext' } }));
    expect(run.last.state, run.last.message).toBe('succeeded');
    jobId = run.jobId;
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await fed?.stop();
  });

  it("another bank's submitter can neither see the job's status, follow it, nor download its model", async () => {
    const other = await client('other-bank', 'submitter');
    const refusal = new RegExp(
      `other-bank \\(certificate role submitter\\) may not read job ${jobId}: a job is read by the organisation that submitted it, the organisations taking part in it, and auditors`,
    );
    await expect(other.getJob(jobId)).rejects.toThrow(refusal);
    await expect(other.watchJob(jobId, () => undefined)).rejects.toThrow(refusal);
    await expect(other.downloadModel(jobId)).rejects.toThrow(refusal);
    await expect(other.readLedger(mkdtempSync(join(tmpdir(), 'fedcredit-ledger-no-')))).rejects.toThrow(/may not read the audit ledger: that needs an auditor certificate/);
  });

  it('a participant reads the jobs it is in and no other; the submitter and an auditor read it all', async () => {
    const member = await client('bank-a', 'participant');
    expect((await member.getJob(jobId)).state).toBe('succeeded');
    expect(Object.keys(await member.downloadModel(jobId))).toContain('fedcredit.json');
    const outsider = await client('bank-z', 'participant');
    await expect(outsider.getJob(jobId)).rejects.toThrow(/bank-z \(certificate role participant\) may not read job/);
    await expect(outsider.downloadModel(jobId)).rejects.toThrow(/may not read job/);
    await expect(outsider.readLedger(mkdtempSync(join(tmpdir(), 'fedcredit-ledger-no-')))).rejects.toThrow(/may not read the audit ledger/);
    const owner = await client('test-bank', 'submitter');
    expect((await owner.getJob(jobId)).participants).toEqual(names);
    expect((await owner.watchJob(jobId, () => undefined)).state).toBe('succeeded');
    // A bank's modeller follows the jobs its bank's node takes part in.
    const partyModeller = await client('bank-b', 'submitter');
    expect((await partyModeller.getJob(jobId)).state).toBe('succeeded');
    const auditor = await client('audit-office', 'auditor');
    expect((await auditor.getJob(jobId)).state).toBe('succeeded');
    expect((await auditor.readLedger(mkdtempSync(join(tmpdir(), 'fedcredit-ledger-')))).length).toBeGreaterThan(0);
  });

  it("a bank cannot score enterprises with another bank's model", async () => {
    const other = await client('other-bank', 'submitter');
    const scoring = {
      name: 'borrowed-model',
      kind: 'vertical-score',
      purpose: 'test: scoring with a model of another bank',
      model_job: jobId,
      guest: 'bank-a',
      hosts: ['bank-b'],
      ids_file: 'ids.csv',
    };
    await expect(other.submitJob(stringify(scoring), 'other-bank')).rejects.toThrow(
      new RegExp(`other-bank may not score with job ${jobId}'s model: a model is used only by the organisation that submitted its job or its guest \\(bank-a\\)`),
    );
  });
});
