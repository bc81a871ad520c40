/**
 * Vertical logistic regression over real processes on loopback: the UCI default-credit hetero split, the bank
 * (guest: labels + 13 features) and the tax bureau (host: 10 features), aligned by PSI and trained with CKKS.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { VerticalJobSpec } from '../src/config/schemas.js';
import { loadDataset } from '../src/data/csv.js';
import { verticalBaselines } from '../src/vertical/baseline.js';
import { readLedger } from '../src/ledger/read.js';
import { TestFederation } from './helpers/federation.js';
import { participantJobDir, uciHeteroSpec, UCI_GUEST_FEATURES, UCI_HOST_FEATURES, verticalJob } from './helpers/vertical.js';

describe('vertical LR on UCI default credit (bank + tax bureau)', () => {
  let fed: TestFederation;
  beforeAll(async () => {
    fed = await TestFederation.start([
      { name: 'bank', data: uciHeteroSpec('guest') },
      { name: 'tax-bureau', data: uciHeteroSpec('host') },
    ]);
  });
  afterAll(async () => fed?.stop());

  it('trains with CKKS to within 0.005 AUC of the centralised LR on the pooled columns, well above the bank alone', async () => {
    const job = verticalJob();
    const { jobId, last, events } = await fed.run(job);
    expect(last.state, last.message).toBe('succeeded');
    expect(events.some((e) => /enterprises shared by all parties/.test(e.message))).toBe(true);

    const spec = VerticalJobSpec.parse(job);
    const baselines = verticalBaselines(
      [
        { organisation: 'bank', data: await loadDataset(uciHeteroSpec('guest')), features: UCI_GUEST_FEATURES },
        { organisation: 'tax-bureau', data: await loadDataset(uciHeteroSpec('host')), features: UCI_HOST_FEATURES },
      ],
      spec,
    );
    const ledger = readLedger(join(fed.dir, 'coordinator-state', 'ledger'));
    const published = ledger.entries.find((e) => e.entry.kind === 'model_published' && e.entry.jobId === jobId)!.body as { test: { auc: number; ks: number; rows: number } };
    const fedAuc = published.test.auc;
    console.log(`vertical UCI: federated AUC ${fedAuc.toFixed(4)} KS ${published.test.ks.toFixed(4)}; pooled ${baselines.pooled.auc.toFixed(4)}; guest only ${baselines.guestOnly.auc.toFixed(4)}; intersection ${baselines.intersection}`);
    expect(published.test.rows).toBe(baselines.pooled.n);
    expect(fedAuc).toBeGreaterThan(baselines.pooled.auc - 0.005);
    expect(fedAuc).toBeGreaterThan(baselines.guestOnly.auc + 0.05);

    // The bank keeps its held-out scores and its model part; the tax bureau keeps only its own part.
    const scores = readFileSync(join(participantJobDir(fed.dir, 'bank', jobId), 'test-scores.csv'), 'utf8').trim().split('\n');
    expect(scores.length - 1).toBe(published.test.rows);
    const hostPart = JSON.parse(readFileSync(join(participantJobDir(fed.dir, 'tax-bureau', jobId), 'model-part.json'), 'utf8'));
    expect(hostPart.weights).toHaveLength(10);
    expect(hostPart.intercept).toBeUndefined();
  });
});
