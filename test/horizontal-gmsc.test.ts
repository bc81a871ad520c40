/**
 * Issue 19 on real processes: three banks hold Give Me Some Credit rows (the benchmark's split, the first 60,000 rows,
 * a holdout no bank holds) and run the documented scorecard job with default binning. The skewed
 * RevolvingUtilizationOfUnsecuredLines and DebtRatio, which the old mean ± 5 sd grid lost (IV 0), keep an IV close to
 * what a central modeller finds on the pooled rows, and the federated model scores the holdout as well as what each
 * bank builds alone with the same pipeline (within the benchmark's 0.003 AUC).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DATASETS, TestFederation } from './helpers/federation.js';
import { BANKS, horizontalQualityJob, monotoneBins, qualityDatasets, readTable, writeHorizontalSplit } from '../bench/quality.js';
import { HorizontalJobSpec } from '../src/config/schemas.js';
import { loadDataset, type LoadedDataset } from '../src/data/csv.js';
import { concatSplits, splitRows, type Split } from '../src/data/split.js';
import { auc } from '../src/metrics.js';
import { fitCentral } from '../src/fl/central.js';
import { modelFromFiles } from '../src/model/artifact.js';
import { loadTf } from '../src/model/tf.js';
import { readLedger } from '../src/ledger/read.js';

const job = horizontalQualityJob('gmsc-three-banks', BANKS);

describe('horizontal scorecard job on Give Me Some Credit (three banks, default binning, real processes)', () => {
  let dir: string;
  let fed: TestFederation;
  let banks: LoadedDataset[];
  let splits: { train: Split; validation: Split }[];
  let holdout: LoadedDataset;
  let federatedAuc: number;
  let binning: { iv: { feature: string; iv: number; selected: boolean }[] };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fedcredit-gmsc-'));
    const gmsc = qualityDatasets(DATASETS).find((d) => d.key === 'gmsc')!;
    const split = writeHorizontalSplit(readTable(gmsc), dir);
    fed = await TestFederation.start(BANKS.map((name, i) => ({ name, data: split.banks[i]! })));
    const run = await fed.run(job);
    expect(run.last.state, run.last.message).toBe('succeeded');
    const { tf } = await loadTf();
    const model = await modelFromFiles(tf, await run.client.downloadModel(run.jobId));
    run.client.close();
    binning = readLedger(fed.ledgerDir).entries.find((e) => e.entry.kind === 'binning_completed' && e.entry.jobId === run.jobId)!.body as typeof binning;
    holdout = await loadDataset(split.holdout);
    federatedAuc = auc(holdout.y!, model.scoreColumns(holdout.x, holdout.features));
    banks = await Promise.all(split.banks.map((s) => loadDataset(s)));
    const spec = HorizontalJobSpec.parse(job);
    splits = banks.map((b) =>
      splitRows(
        b,
        b.features.map((_, i) => i),
        spec.training.validation_fraction,
        spec.training.seed,
      ),
    );
  });
  afterAll(async () => {
    await fed?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('keeps RevolvingUtilization and DebtRatio with an IV close to a central monotone binning of the pooled training rows', () => {
    const pooled = concatSplits(splits.map((s) => s.train));
    const features = banks[0]!.features;
    const dim = features.length;
    for (const name of ['RevolvingUtilizationOfUnsecuredLines', 'DebtRatio']) {
      const j = features.indexOf(name);
      const central = monotoneBins(
        Float64Array.from({ length: pooled.y.length }, (_, r) => pooled.x[r * dim + j]!),
        pooled.y,
      ).iv;
      const row = binning.iv.find((r) => r.feature === name)!;
      console.log(`${name}: federated IV ${row.iv.toFixed(3)}, central ${central.toFixed(3)}`);
      expect(row.selected, name).toBe(true);
      expect(row.iv, name).toBeGreaterThan(0.9 * central);
    }
  });

  it('scores the holdout above the banks alone on average, and within 0.003 AUC of the best bank alone', async () => {
    const { tf } = await loadTf();
    const spec = HorizontalJobSpec.parse(job);
    const alone = splits.map((own) => auc(holdout.y!, fitCentral(tf, spec, holdout.features, { train: [own.train], validation: [own.validation] }).score(holdout.x)));
    console.log(`holdout AUC: federated ${federatedAuc.toFixed(4)}; alone ${alone.map((a) => a.toFixed(4)).join(' / ')}`);
    // Issue 19 found each bank alone about 0.025 above the federation (old mean ± 5 sd grid). On these 11,905 held-out rows (about 800
    // defaults, an AUC standard error near 0.006) the federation (0.8425, each model the round or epoch with the best
    // validation AUC) is above a Newton WOE-LR on the pooled rows and within 0.0004 of the best bank alone: 0.003 is the
    // benchmark's tolerance.
    expect(federatedAuc).toBeGreaterThan(alone.reduce((a, b) => a + b, 0) / alone.length);
    for (const a of alone) expect(federatedAuc).toBeGreaterThanOrEqual(a - 0.003);
  });
});
