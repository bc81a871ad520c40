/**
 * A data owner's policy, enforced by its own node: the columns any job may use (others are never read), the
 * fewest rows it takes part with, and manual approval of each offer with `fedcredit participant approve|reject`.
 * A job that breaks a rule is refused with the rule named, and the refusal is in the coordinator's ledger.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cliPath } from '../src/federation/local-cluster.js';
import { readLedger } from '../src/ledger/read.js';
import { Approvals } from '../participant/approvals.js';
import { cli } from './helpers/cli.js';
import { DATASETS, HOMO_PARTIES, horizontalJob, TestFederation, UCI_FEATURES, uciHomoSpec } from './helpers/federation.js';
import { uciHomoFile } from '../src/data/public-datasets.js';

const run = promisify(execFile);
const NAMES = ['bank-a', 'bank-b', 'bank-c'];

describe("a data owner's policy", () => {
  let fed: TestFederation;
  beforeAll(async () => {
    fed = await TestFederation.start(
      NAMES.map((name, i) => ({
        name,
        data: uciHomoSpec(uciHomoFile(DATASETS, HOMO_PARTIES[i]!)),
        // bank-a lets jobs use only the first six columns and approves every offer by hand; bank-b needs 50,000 rows.
        consent: i === 0 ? { columns: UCI_FEATURES.slice(0, 6), approval: 'manual', approval_timeout_s: 60 } : i === 1 ? { min_rows: 50_000 } : {},
      })),
    );
  });
  afterAll(async () => fed?.stop());

  const refusals = (jobId: string) =>
    readLedger(fed.ledgerDir)
      .entries.filter((e) => e.entry.jobId === jobId && e.entry.kind === 'participant_refused')
      .map((e) => String((e.body as { reason: string }).reason));

  it('refuses a job that needs a column outside consent.columns, naming the rule, without asking the owner', async () => {
    const { jobId, last } = await fed.run({ ...horizontalJob({ participants: ['bank-a', 'bank-c'] }), features: UCI_FEATURES });
    expect(last.state).toBe('failed');
    expect(last.message).toMatch(/bank-a did not accept the job: refused \(consent.columns\): the job asks for .*x6.*which consent.columns does not allow/);
    expect(refusals(jobId).join()).toMatch(/consent.columns/);
  });

  it('refuses a job that would use fewer rows than consent.min_rows', async () => {
    const { last } = await fed.run(horizontalJob({ participants: ['bank-b', 'bank-c'] }));
    expect(last.state).toBe('failed');
    expect(last.message).toMatch(/bank-b did not accept the job: refused \(consent.min_rows\): the job would use \d+ rows of this data owner; consent.min_rows is 50000/);
  });

  it('manual approval: the offer waits for the owner; approved, the job runs; rejected, it is refused with the reason', async () => {
    const approvals = new Approvals(join(fed.dir, 'fedcredit-state', 'bank-a'));
    const job = horizontalJob({ participants: ['bank-a', 'bank-c'], training: { rounds: 2 } });
    const onlyConsented = { ...job, features: UCI_FEATURES.slice(0, 6) };
    const decide = async (verb: 'approve' | 'reject') => {
      const deadline = Date.now() + 20_000;
      while (approvals.pending().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      const [offer] = approvals.pending();
      expect(offer?.columns).toEqual(UCI_FEATURES.slice(0, 6));
      await run(process.execPath, [cliPath(), 'participant', verb, offer!.jobId, '--config', join(fed.dir, 'bank-a.yaml'), '--reason', 'not this quarter']);
    };
    const [approved] = await Promise.all([fed.run(onlyConsented), decide('approve')]);
    expect(approved.last.state, approved.last.message).toBe('succeeded');
    const [rejected] = await Promise.all([fed.run(onlyConsented), decide('reject')]);
    expect(rejected.last.state).toBe('failed');
    expect(rejected.last.message).toMatch(/refused \(consent.approval\): the data owner did not approve the job: not this quarter/);
    expect(approvals.pending()).toEqual([]);
    // Deciding on an offer that is not waiting names the job and how to list the waiting ones.
    const { code, stderr } = await cli(['participant', 'approve', 'job-20990101-00000000', '--config', join(fed.dir, 'bank-a.yaml')]);
    expect(code).toBe(2);
    expect(stderr).toMatch(/no offer of job job-20990101-00000000 is waiting for approval/);
    expect(stderr).toMatch(/fedcredit participant pending/);
  });
});
