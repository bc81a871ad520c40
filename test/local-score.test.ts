/**
 * `fedcredit score --model DIR --data FILE.csv --config P.yaml` on rows whose outcome the bank knows: the model's AUC
 * and KS on them, so a bank sets the federated model beside one of its own on its own held-out rows. Labels that do
 * not read cost the figures only, never the scores. (A new user scoring a held-out file could not tell whether
 * federating beat its own data without computing the AUC by hand.)
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scoreWithArtifact } from '../src/model/local-score.js';
import { loadDataset } from '../src/data/csv.js';
import { auc, ks } from '../src/metrics.js';
import { FedcreditError } from '../src/errors.js';
import { csvHead, horizontalJob, UCI, uciHomoSpec } from './helpers/federation.js';
import { MemoryFederation, writeUciSlices } from './helpers/memory-horizontal.js';

const NAMES = ['bank-a', 'bank-b', 'bank-c'];

describe('scoring a labelled CSV with a downloaded horizontal model', () => {
  let fed: MemoryFederation;
  let modelDir: string;
  let held: string;
  let dir: string;

  beforeAll(async () => {
    const slices = await writeUciSlices(NAMES, 1500);
    dir = slices.dir;
    held = csvHead(join(UCI, 'fate_default_credit_homo_test.csv'), 1500, join(dir, 'held.csv'));
    fed = await MemoryFederation.start(NAMES.map((name, i) => ({ name, data: uciHomoSpec(slices.files[i]!) })));
    const run = await fed.run(horizontalJob({ participants: NAMES, training: { rounds: 2 } }));
    expect(run.state, run.message).toBe('succeeded');
    modelDir = run.modelDir;
  });
  afterAll(async () => {
    await fed?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("gives the model's AUC and KS on the rows with a label when the CSV has the config's label column; none without it", async () => {
    const spec = uciHomoSpec(held);
    const scored = await scoreWithArtifact({ modelDir, dataFile: held, dataSpec: spec });
    const rows = await loadDataset(spec);
    const pd = scored.csv
      .trim()
      .split('\n')
      .slice(1)
      .map((l) => Number(l.split(',')[1]));
    expect(scored.evaluation).toEqual({ auc: auc(rows.y!, pd), ks: ks(rows.y!, pd), n: rows.rows, positives: rows.y!.reduce((a, b) => a + b, 0), labelColumn: 'y' });
    // No label column in the config (the columns named as the model's), or none in the file: scores only.
    expect((await scoreWithArtifact({ modelDir, dataFile: held, idColumn: 'id' })).evaluation).toBeUndefined();
    const [header, ...lines] = readFileSync(held, 'utf8').trim().split('\n');
    const at = header!.split(',').indexOf('y');
    const drop = (l: string) =>
      l
        .split(',')
        .filter((_, j) => j !== at)
        .join(',');
    const applicants = join(dir, 'applicants.csv');
    writeFileSync(applicants, [drop(header!), ...lines.map(drop)].join('\n'));
    const unlabelled = await scoreWithArtifact({ modelDir, dataFile: applicants, dataSpec: spec });
    expect(unlabelled.evaluation).toBeUndefined();
    expect(unlabelled.csv).toBe(scored.csv);
    // Labels coded 1/2: the same scores, and the reason the figures are missing.
    const coded = join(dir, 'coded.csv');
    writeFileSync(
      coded,
      [
        header,
        ...lines.map((l) =>
          l
            .split(',')
            .map((c, j) => (j === at ? String(Number(c) + 1) : c))
            .join(','),
        ),
      ].join('\n'),
    );
    const recoded = await scoreWithArtifact({ modelDir, dataFile: coded, dataSpec: spec });
    expect(recoded.csv).toBe(scored.csv);
    expect(recoded.evaluation).toMatchObject({ labelColumn: 'y', unread: expect.stringMatching(/label column "y": "2" is not 0 or 1/) });
  });

  it('without a config, a CSV whose id column is not "id" is refused naming --id-column (the only way to say it there)', async () => {
    const err = await scoreWithArtifact({ modelDir, dataFile: held, idColumn: 'enterprise_id' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FedcreditError);
    expect((err as FedcreditError).message).toMatch(/held\.csv: line 1: no id column "enterprise_id" in the header$/);
    expect((err as FedcreditError).hint).toMatch(
      /^name the CSV's id column with --id-column NAME \(a blank header cell is column_<position>, e\.g\. column_1\), or give a participant config \(--config P\.yaml\)/,
    );
  });
});
