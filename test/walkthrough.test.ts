/**
 * A new user's by-hand run of a vertical job, through the CLI a user types: what `fedcredit job status` says of
 * the model it published.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { identityDir } from '../src/federation/pki-layout.js';
import { readLedger } from '../src/ledger/read.js';
import { cli } from './helpers/cli.js';
import { startUciHeteroPair, verticalJob } from './helpers/vertical.js';

describe("a new user's vertical job, through the CLI", () => {
  let pair: Awaited<ReturnType<typeof startUciHeteroPair>>;
  let jobId = '';
  beforeAll(async () => {
    pair = await startUciHeteroPair(4000);
    // A learning rate this high overshoots: validation's best epoch comes before the last one run.
    const job = verticalJob({ training: { epochs: 5, patience: 0, batch_size: 1000, learning_rate: 0.5 }, encryption: { scheme: 'plaintext' } });
    const run = await pair.fed.run(job);
    expect(run.last.state, run.last.message).toBe('succeeded');
    jobId = run.jobId;
    await pair.fed.identity('test-bank', 'submitter');
  }, 240_000);
  afterAll(async () => pair?.stop());

  it('job status names the epoch kept (the published model) with its validation figures, and labels the last epoch run', async () => {
    const status = await cli(['job', 'status', jobId, '--coordinator', pair.fed.cluster.address, '--identity', identityDir(pair.fed.dir, 'test-bank', 'submitter')]);
    expect(status.code, status.stderr).toBe(0);
    const entries = readLedger(pair.ledgerDir).entries.filter((e) => e.entry.jobId === jobId);
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
});
