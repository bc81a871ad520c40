/**
 * A vertical LR job whose validation scores separate defaults from non-defaults (the bank brings a column that
 * leaks the label): the Platt calibration has no maximum-likelihood fit there. The job must say so (its events, its
 * final message and the manifest), publish PDs strictly inside (0, 1) that rank as the scores do, and
 * `fedcredit score` must score with the regularised calibration; a model part whose calibration diverged (as the fit
 * before the line search could) is refused before a scoring job is submitted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CsvDatasetSpec } from '../src/data/schema.js';
import { Rng } from '../src/random.js';
import { auc } from '../src/metrics.js';
import { requestScores } from '../src/vertical/score-client.js';
import { checkScoreRequest } from '../src/cli/score-request.js';
import { TestFederation } from './helpers/federation.js';
import { participantJobDir, verticalJob } from './helpers/vertical.js';

const ROWS = 1600;

function writeLeakyVertical(dir: string): { bank: CsvDatasetSpec; tax: CsvDatasetSpec } {
  const rng = new Rng(5);
  const bank = ['id,y,leak,f1'];
  const tax = ['id,h1'];
  for (let i = 0; i < ROWS; i++) {
    const y = rng.next() < 0.25 ? 1 : 0;
    // Every default's `leak` lies above every non-default's: any model that weighs it separates the classes.
    bank.push(`E${i},${y},${(y + 0.5 * rng.next()).toFixed(4)},${rng.normal().toFixed(3)}`);
    tax.push(`E${i},${rng.normal().toFixed(3)}`);
  }
  writeFileSync(join(dir, 'bank.csv'), `${bank.join('\n')}\n`);
  writeFileSync(join(dir, 'tax.csv'), `${tax.join('\n')}\n`);
  const spec = (file: string, features: string[], label: boolean): CsvDatasetSpec => ({
    path: join(dir, file),
    delimiter: ',',
    id_column: 'id',
    ...(label ? { label_column: 'y' } : {}),
    features: features.map((name) => ({ name, type: 'number', missing: 'impute' })),
    duplicate_ids: 'reject',
    missing_values: [''],
  });
  return { bank: spec('bank.csv', ['leak', 'f1'], true), tax: spec('tax.csv', ['h1'], false) };
}

describe('a vertical job whose validation scores separate the classes', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'fedcredit-leaky-'));
  let fed: TestFederation;
  beforeAll(async () => {
    const specs = writeLeakyVertical(dataDir);
    fed = await TestFederation.start([
      { name: 'bank', data: specs.bank },
      { name: 'tax-bureau', data: specs.tax },
    ]);
  });
  afterAll(async () => {
    await fed?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('says its calibration is regularised, publishes PDs strictly inside (0, 1), and scores with them; a diverged calibration is refused', async () => {
    const job = verticalJob({ encryption: { scheme: 'plaintext' }, training: { epochs: 3, batch_size: 512, learning_rate: 0.5, patience: 0 } });
    const { jobId, last, events } = await fed.run(job);
    expect(last.state, last.message).toBe('succeeded');
    const warning = /separate defaults from non-defaults completely/;
    expect(events.some((e) => e.stage === 'finalize' && /^warning: /.test(e.message) && warning.test(e.message))).toBe(true);
    expect(last.message).toMatch(warning);
    const manifest = JSON.parse(readFileSync(join(fed.stateDir, 'jobs', jobId, 'model', 'manifest.json'), 'utf8')) as { calibration_warning?: string; test: { auc: number } };
    expect(manifest.calibration_warning).toMatch(warning);

    // The held-out PDs: inside (0, 1), ranking as the scores do (here perfectly).
    const bankDir = participantJobDir(fed.dir, 'bank', jobId);
    const rows = readFileSync(join(bankDir, 'test-scores.csv'), 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .map((line) => line.split(',').map(Number));
    const y = rows.map((r) => r[1]!);
    const pd = rows.map((r) => r[3]!);
    expect(manifest.test.auc).toBe(
      auc(
        y,
        rows.map((r) => r[2]!),
      ),
    );
    expect(manifest.test.auc).toBe(1);
    for (const p of pd) {
      expect(p).toBeGreaterThan(0);
      expect(p).toBeLessThan(1);
    }
    const part = JSON.parse(readFileSync(join(bankDir, 'model-part.json'), 'utf8')) as { calibration: { a: number; b: number } };
    expect(part.calibration.a).toBeGreaterThan(0);
    console.log(`[separated validation scores] calibration a = ${part.calibration.a.toPrecision(4)}, b = ${part.calibration.b.toPrecision(4)}; held-out PDs ${Math.min(...pd)}..${Math.max(...pd)}`);

    // Scoring with the regularised calibration: PDs inside (0, 1).
    const stateDir = join(fed.dir, 'fedcredit-state', 'bank');
    const transport = await fed.identity('bank', 'submitter');
    const request = { coordinator: fed.cluster.address, transport, organisation: 'bank', stateDir, modelJob: jobId, ids: ['E1', 'E2', 'E3', 'E4'], idFormat: 'any' as const, purpose: 'test: scoring' };
    const scored = (await requestScores(request)).csv
      .trim()
      .split('\n')
      .slice(1)
      .map((line) => Number(line.split(',')[1]));
    expect(scored).toHaveLength(4);
    for (const p of scored) {
      expect(p).toBeGreaterThan(0);
      expect(p).toBeLessThan(1);
    }

    // A part whose calibration diverged (what the fit before the line search kept at learning_rate 3 on UCI rows).
    writeFileSync(join(bankDir, 'model-part.json'), JSON.stringify({ ...part, calibration: { a: -411409.09, b: -15755.5 } }));
    const diverged = /job job-\S+'s model part at bank holds the calibration a = -411409.09, b = -15755.5: its PDs would be reversed or all 0 or 1/;
    // `fedcredit score` checks it before submitting; a scoring job submitted anyway fails at the guest, naming it.
    expect(() => checkScoreRequest({ stateDir, organisation: 'bank', modelJob: jobId, ids: ['E1'], source: '--id' })).toThrow(
      expect.objectContaining({ code: 'FC_JOB_INVALID', message: expect.stringMatching(diverged) }),
    );
    await expect(requestScores(request)).rejects.toThrow(diverged);
  });
});
