/**
 * A new user's by-hand run of a vertical job, through the CLI a user types: what `fedcredit job status` says of
 * the model it published, and a data owner's rule against being a job's only host.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { identityDir } from '../src/federation/pki-layout.js';
import { readLedger } from '../src/ledger/read.js';
import { cli } from './helpers/cli.js';
import { TestFederation } from './helpers/federation.js';
import { uciHeteroSlice, verticalJob } from './helpers/vertical.js';

describe("a new user's vertical job, through the CLI", () => {
  const uci = uciHeteroSlice(4000);
  let fed: TestFederation;
  let jobId = '';
  const submitter = () => ['--coordinator', fed.cluster.address, '--identity', identityDir(fed.dir, 'test-bank', 'submitter')];
  beforeAll(async () => {
    fed = await TestFederation.start([
      { name: 'bank', data: uci('guest') },
      { name: 'tax-bureau', data: uci('host') },
      // The same columns at a host that takes part only beside another host.
      { name: 'careful-host', data: uci('host'), consent: { min_vertical_hosts: 2 } },
    ]);
    // A learning rate this high overshoots: validation's best epoch comes before the last one run.
    const job = verticalJob({ training: { epochs: 5, patience: 0, batch_size: 1000, learning_rate: 0.5 }, encryption: { scheme: 'plaintext' } });
    const run = await fed.run(job);
    expect(run.last.state, run.last.message).toBe('succeeded');
    jobId = run.jobId;
    await fed.identity('test-bank', 'submitter');
    await fed.identity('bank', 'submitter');
  }, 240_000);
  afterAll(async () => {
    await fed?.stop();
    rmSync(uci.dir, { recursive: true, force: true });
  });

  it('job status names the epoch kept (the published model) with its validation figures, and labels the last epoch run', async () => {
    const status = await cli(['job', 'status', jobId, ...submitter()]);
    expect(status.code, status.stderr).toBe(0);
    const entries = readLedger(fed.ledgerDir).entries.filter((e) => e.entry.jobId === jobId);
    const kept = Number((entries.find((e) => e.entry.kind === 'model_published')!.body as { epoch: number }).epoch);
    const epochs = entries.filter((e) => e.entry.kind === 'epoch_closed').map((e) => e.body as { epoch: number; validation_auc: number; validation_ks: number });
    const figures = (epoch: number) => {
      const e = epochs.find((x) => x.epoch === epoch)!;
      return `validation AUC ${e.validation_auc.toFixed(4)}, KS ${e.validation_ks.toFixed(4)}`;
    };
    const last = epochs.at(-1)!.epoch;
    expect(status.stdout).toContain(`kept epoch ${kept} (best ${figures(kept)})`);
    // The mini-batches follow the PSI's order, which its random salt changes: the kept epoch is almost always an
    // earlier one here, but not by construction.
    if (kept < last) expect(status.stdout).toContain(`last epoch run ${last} (${figures(last)}), not published`);
    else expect(status.stdout).toContain('the last epoch run');
  });

  it("a host with consent.min_vertical_hosts 2 refuses to be a job's only host, naming the rule and the fix, in the ledger and its own record", async () => {
    const { jobId: refused, last } = await fed.run(verticalJob({ hosts: ['careful-host'], training: { epochs: 1 }, encryption: { scheme: 'plaintext' } }));
    expect(last.state).toBe('failed');
    expect(last.message).toContain('FC_JOB_REFUSED');
    expect(last.message).toContain('consent.min_vertical_hosts');
    expect(last.message).toContain('the job has 1 host (careful-host) and careful-host takes part as a host only with at least 2');
    expect(last.message).toContain('add hosts to the job, or the data owner lowers consent.min_vertical_hosts');
    const ledgered = readLedger(fed.ledgerDir).entries.filter((e) => e.entry.jobId === refused && e.entry.kind === 'participant_refused');
    expect(ledgered.map((e) => (e.body as { participant: string }).participant)).toEqual(['careful-host']);
    const egress = await cli(['participant', 'egress', '--config', join(fed.dir, 'careful-host.yaml'), '--job', refused]);
    expect(egress.code, egress.stderr).toBe(0);
    expect(egress.stdout).toMatch(/jobRefused .* refusal reason/);
    const record = readFileSync(join(fed.dir, 'fedcredit-state', 'careful-host', 'egress.jsonl'), 'utf8');
    expect(record.split('\n').find((l) => l.includes(refused) && l.includes('jobRefused'))).toContain('consent.min_vertical_hosts: the job has 1 host');
    // Beside another host it takes part.
    const { last: both } = await fed.run(verticalJob({ hosts: ['tax-bureau', 'careful-host'], training: { epochs: 1 }, encryption: { scheme: 'plaintext' } }));
    expect(both.state, both.message).toBe('succeeded');
  });

  it('`fedcredit score` with a wrong --id or --model fails before any scoring job is submitted, naming the id and the fix', async () => {
    const score = (...args: string[]) => cli(['score', '--config', join(fed.dir, 'bank.yaml'), '--coordinator', fed.cluster.address, '--identity', identityDir(fed.dir, 'bank', 'submitter'), ...args]);
    const submitted = () => readLedger(fed.ledgerDir).entries.filter((e) => e.entry.kind === 'job_submitted').length;
    const before = submitted();
    const refused = [
      // The training job's id given as the enterprise's.
      [['--model', jobId, '--id', jobId], `bank's data holds no enterprise ${jobId}`, `${jobId} is a job id: give it to --model, and to --id an enterprise's id`],
      [['--model', jobId, '--id', '99999999'], "bank's data holds no enterprise 99999999", 'score enterprises bank holds data for'],
      [['--model', jobId, '--id', '25115', '--id-format', 'uscc'], `the scoring job asks for id_format uscc but the model's job ${jobId} aligned its ids as any`, 'leave id_format (--id-format) out'],
      [['--model', 'job-20260101-00000000', '--id', '25115'], 'bank kept no job job-20260101-00000000', '--model names the vertical-lr or vertical-boost job whose model to use'],
      [['--model', '25115', '--id', jobId], '--model 25115 is not a job id (job-YYYYMMDD-xxxxxxxx)', '--model names the vertical-lr or vertical-boost job'],
    ] as const;
    for (const [args, cause, fix] of refused) {
      const out = await score(...args);
      expect(out.code, out.stderr).not.toBe(0);
      expect(out.stderr).toContain(cause);
      expect(out.stderr).toContain(fix);
      expect(out.stderr).not.toMatch(/scoring job job-/);
    }
    expect(submitted()).toBe(before);
    // An enterprise the bank holds is scored.
    const scored = await score('--model', jobId, '--id', '25115');
    expect(scored.code, scored.stderr).toBe(0);
    expect(scored.stdout.trim().split('\n')[1]).toMatch(/^25115,[01]\.\d+,/);
    expect(submitted()).toBe(before + 1);
  });
});
