import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { guestAloneOfJob } from '../src/cli/job-report.js';
import { ParticipantConfig, VerticalBoostSpec, VerticalJobSpec } from '../src/config/schemas.js';
import { loadDataset } from '../src/data/csv.js';
import { DatasetSpec } from '../src/data/schema.js';
import { holdoutOf } from '../src/data/split.js';
import { boostBaselines, guestAloneMetrics, verticalBaselines, type AlignedIds } from '../src/vertical/baseline.js';

const GMSC = fileURLToPath(new URL('../../shared/datasets/give_me_some_credit/cs-training.csv', import.meta.url));
const BANK = ['RevolvingUtilizationOfUnsecuredLines', 'NumberOfTime30-59DaysPastDueNotWorse', 'NumberOfTime60-89DaysPastDueNotWorse', 'NumberOfTimes90DaysLate'];
const BUREAU = ['age', 'DebtRatio', 'MonthlyIncome', 'NumberOfDependents'];

describe("the guest's columns alone, as `fedcredit report` compares a vertical job with them", () => {
  it('is the bank-alone model of the demo: the same rows, split and fit, read from the job record (aligned-ids.csv)', async () => {
    // Give Me Some Credit split by columns: the bank's delinquency history and utilisation, the bureau's the rest.
    const data = await loadDataset(DatasetSpec.parse({ path: GMSC, id_column: 'column_1', label_column: 'SeriousDlqin2yrs', features: [...BANK, ...BUREAU].map((name) => ({ name })) }));
    const spec = VerticalJobSpec.parse({ name: 'gmsc', kind: 'vertical-lr', purpose: 'test', guest: 'bank', hosts: ['bureau'], alignment: { id_format: 'any' } });
    const bank = { organisation: 'bank', data, features: BANK };
    const central = verticalBaselines([bank, { organisation: 'bureau', data, features: BUREAU }], spec);

    // The record lists the aligned ids by part, in no particular order.
    const aligned: AlignedIds = { train: [], validation: [], test: [] };
    for (const id of [...data.ids].reverse()) aligned[holdoutOf(id, spec.training.seed, spec.training.test_fraction, spec.training.validation_fraction)].push(id);
    const alone = guestAloneMetrics(bank, spec, aligned);

    expect(alone.auc).toBe(central.guestOnly.auc);
    expect(alone.ks).toBe(central.guestOnly.ks);
    // What the comparison is for: the bureau's columns add to the bank's own.
    expect(central.pooled.auc).toBeGreaterThan(alone.auc + 0.005);

    aligned.test.push('no-such-enterprise');
    expect(() => guestAloneMetrics(bank, spec, aligned)).toThrow("1 of the job's aligned enterprises are no longer in bank's data");
  });

  const dir = mkdtempSync(join(tmpdir(), 'fedcredit-guest-alone-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("is read by `fedcredit report` from the guest's config and job folder, for trees too; a scoring job says why it has none", async () => {
    const config = ParticipantConfig.parse({
      organisation: 'bank',
      coordinator: '127.0.0.1:7700',
      data: { path: GMSC, id_column: 'column_1', label_column: 'SeriousDlqin2yrs', features: BANK.map((name) => ({ name })) },
    });
    const spec = VerticalJobSpec.parse({ name: 'gmsc', kind: 'vertical-lr', purpose: 'test', guest: 'bank', hosts: ['bureau'], alignment: { id_format: 'any' } });
    const data = await loadDataset(config.data);
    const ids = data.ids.slice(0, 20_000);
    const part = (id: string) => holdoutOf(id, spec.training.seed, spec.training.test_fraction, spec.training.validation_fraction);
    const aligned: AlignedIds = { train: [], validation: [], test: [] };
    for (const id of ids) aligned[part(id)].push(id);
    writeFileSync(join(dir, 'aligned-ids.csv'), `id,part\n${ids.map((id) => `${id},${part(id)}`).join('\n')}\n`);
    writeFileSync(join(dir, 'job.json'), JSON.stringify({ id: 'job-1', spec, features: BANK, state: 'succeeded' }));

    const alone = await guestAloneOfJob(config, dir, dir);
    expect(alone).toEqual({ metrics: guestAloneMetrics({ organisation: 'bank', data, features: BANK }, spec, aligned) });
    expect('metrics' in alone && alone.metrics.auc).toBeGreaterThan(0.75);

    writeFileSync(join(dir, 'job.json'), JSON.stringify({ id: 'job-2', spec: { kind: 'vertical-score', model_job: 'job-1' }, features: BANK, state: 'succeeded' }));
    expect(await guestAloneOfJob(config, dir, dir)).toEqual({ skipped: "the comparison with bank's columns alone is made for training jobs, not vertical-score" });

    // Trees: the job's boosting settings on the bank's columns, as boostBaselines grows them for the demo.
    const boostSpec = VerticalBoostSpec.parse({
      name: 'gmsc',
      kind: 'vertical-boost',
      purpose: 'test',
      guest: 'bank',
      hosts: ['bureau'],
      alignment: { id_format: 'any' },
      boosting: { trees: 4, depth: 3, learning_rate: 0.3 },
    });
    writeFileSync(join(dir, 'job.json'), JSON.stringify({ id: 'job-3', spec: boostSpec, features: BANK, state: 'succeeded' }));
    const trees = await guestAloneOfJob(config, dir, dir);
    const bureauData = await loadDataset(DatasetSpec.parse({ path: GMSC, id_column: 'column_1', features: BUREAU.map((name) => ({ name })) }));
    const bureau = { organisation: 'bureau', data: bureauData, features: BUREAU };
    const central = await boostBaselines([{ organisation: 'bank', data, features: BANK }, bureau], boostSpec, aligned);
    expect(trees).toEqual({ metrics: central.guestOnly });
    expect('metrics' in trees && trees.metrics.auc).toBeGreaterThan(0.75);
  });
});
