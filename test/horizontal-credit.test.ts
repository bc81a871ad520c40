/**
 * The credit toolkit for horizontal jobs, on real processes (issue 7): three UCI default-credit owners (FATE's homo
 * split) bin every feature from secure histograms, train logistic regression on WOE by FedAvg, get a points scorecard
 * (JSON and PMML) and an evaluation from a secure histogram of predicted PD. Everything the coordinator published is
 * checked against the same computation on the pooled rows, and the audit replay derives every step again. The model
 * report is then written from the downloaded artifact alone (`fedcredit report --model DIR`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { HOMO_PARTIES, TestFederation, UCI, UCI_FEATURES, DATASETS, horizontalJob, uciHomoSpec } from './helpers/federation.js';
import { evaluatePmmlScorecard, readPmmlScorecard } from './helpers/pmml-scorecard.js';
import { HorizontalJobSpec } from '../src/config/schemas.js';
import { loadDataset } from '../src/data/csv.js';
import { concatSplits, splitRows, type Split } from '../src/data/split.js';
import { uciHomoFile } from '../src/data/public-datasets.js';
import { binCounts, binIndex } from '../src/credit/binning.js';
import { woeIv } from '../src/credit/woe.js';
import { binningWarnings } from '../src/credit/settle.js';
import { featureStatistics } from '../src/credit/statistics.js';
import { scoreRecord, type Scorecard } from '../src/credit/scorecard.js';
import { auc, ks as ksStatistic } from '../src/metrics.js';
import { confusionAt } from '../src/evaluation.js';
import { fitLogistic } from '../src/model/newton-lr.js';
import { modelFromFiles, writeArtifact, type ArtifactFiles, type LoadedModel } from '../src/model/artifact.js';
import { localPdHistogram, PD_CELLS } from '../src/fl/pd-histogram.js';
import { loadArtifactReport } from '../src/report/artifact-report.js';
import { ksCurve } from '../src/report/model-report.js';
import { cli } from './helpers/cli.js';
import { loadTf } from '../src/model/tf.js';
import { readLedger } from '../src/ledger/read.js';
import { replayLedger } from '../src/jobs/replay.js';
import { Ledger } from '../src/ledger/ledger.js';
import { FedcreditError } from '../src/errors.js';
import type { FeatureBins } from '../src/model/preprocess.js';

const NAMES = ['bank-a', 'bank-b', 'bank-c'];
const SEED = 11;

const job = {
  ...horizontalJob({ participants: NAMES, training: { rounds: 10, seed: SEED, optimizer: 'adam', learning_rate: 0.01 } }),
  name: 'uci-homo-scorecard',
  statistics: true,
  binning: { method: 'optimal', fine_bins: 20, max_bins: 6, merge: 'iv', min_bin_share: 0.05, iv_threshold: 0.02 },
  scorecard: { base_score: 600, base_odds: 50, pdo: 20, decimals: 2, reason_codes: 3 },
  evaluation: { decline_cutoff: 0.2 },
};

/** Column j of row-major x with `dim` columns. */
const column = (x: Float32Array, dim: number, j: number) => Float64Array.from({ length: x.length / dim }, (_, r) => x[r * dim + j]!);

describe('horizontal credit toolkit on UCI default credit (three owners, real processes)', () => {
  let fed: TestFederation;
  let jobId: string;
  let files: ArtifactFiles;
  let model: LoadedModel;
  let ledgerDir: string;
  let train: Split;
  let validation: Split;
  let test: Split;
  const entry = (kind: string) => readLedger(ledgerDir).entries.find((e) => e.entry.kind === kind && e.entry.jobId === jobId)?.body as Record<string, any>;

  beforeAll(async () => {
    fed = await TestFederation.start(NAMES.map((name, i) => ({ name, data: uciHomoSpec(join(UCI, `fate_default_credit_homo_${HOMO_PARTIES[i]}.csv`)) })));
    const run = await fed.run(job);
    expect(run.last.state, run.last.message).toBe('succeeded');
    jobId = run.jobId;
    files = await run.client.downloadModel(jobId);
    run.client.close();
    ledgerDir = fed.ledgerDir;
    const { tf } = await loadTf();
    model = await modelFromFiles(tf, files);
    // The pooled rows, split exactly as each participant splits its own.
    const all = UCI_FEATURES.map((_, i) => i);
    const splits = await Promise.all(HOMO_PARTIES.map(async (p) => splitRows(await loadDataset(uciHomoSpec(uciHomoFile(DATASETS, p))), all, 0.2, SEED)));
    train = concatSplits(splits.map((s) => s.train));
    validation = concatSplits(splits.map((s) => s.validation));
    test = splitRows(await loadDataset(uciHomoSpec(uciHomoFile(DATASETS, 'test'))), all, 0, 0).train;
  });
  afterAll(async () => {
    await fed?.stop();
  });

  it('publishes count, mean, sd and missing rate of every feature as on the pooled training rows', () => {
    const stats = entry('statistics_completed').features as ReturnType<typeof featureStatistics>[];
    expect(stats.map((s) => s.feature)).toEqual(UCI_FEATURES);
    UCI_FEATURES.forEach((f, j) => {
      const central = featureStatistics(f, column(train.x, UCI_FEATURES.length, j));
      expect(stats[j]!.count).toBe(central.count);
      expect(stats[j]!.rows).toBe(central.rows);
      expect(stats[j]!.missingRate).toBeCloseTo(central.missingRate, 12);
      expect(Math.abs(stats[j]!.mean! - central.mean!)).toBeLessThan(1e-6);
      expect(Math.abs(stats[j]!.sd! - central.sd!)).toBeLessThan(1e-6);
    });
  });

  it('(a) the federated IV and WOE of every feature equal those computed on the pooled training rows with the same bins', () => {
    const binning = entry('binning_completed') as { iv: { feature: string; iv: number; selected: boolean }[]; bins: Omit<FeatureBins, 'iv'>[] };
    expect(binning.iv.map((r) => r.feature)).toEqual(UCI_FEATURES);
    const dim = UCI_FEATURES.length;
    binning.bins.forEach((b, j) => {
      const counts = binCounts(column(train.x, dim, j), train.y, b.edges);
      const central = woeIv(counts);
      expect(Math.abs(binning.iv[j]!.iv - central.iv), b.feature).toBeLessThan(1e-6);
      expect(b.totals).toEqual(counts.totals);
      expect(b.events).toEqual(counts.events);
      expect(
        b.woe.every((w, k) => Math.abs(w - central.woe[k]!) < 1e-9),
        `${b.feature} WOE`,
      ).toBe(true);
      expect(binning.iv[j]!.selected).toBe(central.iv >= 0.02);
    });
    const ivOf = Object.fromEntries(binning.iv.map((r) => [r.feature, r.iv]));
    console.log(
      `IV: ${Object.entries(ivOf)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 5)
        .map(([f, v]) => `${f} ${v.toFixed(3)}`)
        .join(', ')}; ${binning.iv.filter((r) => r.selected).length} of ${dim} selected`,
    );
    // Repayment status is among these columns: the strongest credit predictor is strong here too.
    expect(Math.max(...Object.values(ivOf))).toBeGreaterThan(0.5);
    // The published model reads exactly the selected features, as WOE.
    expect(model.features).toEqual(binning.iv.filter((r) => r.selected).map((r) => r.feature));
    expect(model.metadata.preprocessing.bins!.map((b) => b.feature)).toEqual(model.features);
  });

  it('(b) the WOE-LR model scores the held-out test file within 0.01 AUC of a central WOE-LR on the pooled rows', () => {
    const bins = model.metadata.preprocessing.bins!;
    const idx = bins.map((b) => UCI_FEATURES.indexOf(b.feature));
    const woeRows = (s: Split) => {
      const n = s.y.length;
      const out = new Float64Array(n * bins.length);
      for (let r = 0; r < n; r++) bins.forEach((b, k) => (out[r * bins.length + k] = b.woe[binIndex(s.x[r * UCI_FEATURES.length + idx[k]!]!, b.edges)]!));
      return out;
    };
    const fit = fitLogistic(woeRows(train), train.y, bins.length);
    const xt = woeRows(test);
    const centralAuc = auc(
      test.y,
      Array.from({ length: test.y.length }, (_, r) => fit.score(xt.subarray(r * bins.length, (r + 1) * bins.length))),
    );
    const federatedAuc = auc(test.y, model.scoreColumns(test.x, UCI_FEATURES));
    console.log(`test AUC: federated WOE-LR ${federatedAuc.toFixed(4)}, central WOE-LR ${centralAuc.toFixed(4)} (${bins.length} features)`);
    expect(Math.abs(federatedAuc - centralAuc)).toBeLessThan(0.01);
  });

  it('(c) the published evaluation matches the exact figures of the same model on the pooled validation rows', () => {
    const ev = model.metadata.evaluation as Record<string, any>;
    expect(entry('evaluation_completed').evaluation).toEqual(ev);
    const pd = model.scoreColumns(validation.x, UCI_FEATURES);
    const exact = auc(validation.y, pd);
    console.log(`validation AUC: published ${ev.auc.toFixed(4)} (±${ev.aucMaxError.toFixed(4)}), exact ${exact.toFixed(4)}; KS ${ev.ks.toFixed(4)} on ${ev.n} rows`);
    expect(ev.n).toBe(validation.y.length);
    expect(Math.abs(ev.auc - exact)).toBeLessThan(0.01);
    expect(Math.abs(ev.auc - exact)).toBeLessThanOrEqual(ev.aucMaxError + 1e-12);
    expect(ev.gini).toBeCloseTo(2 * ev.auc - 1, 12);
    // The confusion table is counted on exact PDs: equal to a central count (a PD within float32 noise of the
    // cut-off could fall either side, hence the slack of one row).
    const central = confusionAt(validation.y, pd, 0.2);
    for (const k of ['truePositives', 'falsePositives', 'trueNegatives', 'falseNegatives'] as const) expect(Math.abs(ev.confusion[k] - central[k])).toBeLessThanOrEqual(1);
    expect(ev.deciles).toHaveLength(10);
    expect(ev.deciles[9].cumulativeGain).toBeCloseTo(1, 9);
    expect(ev.calibration.reduce((n: number, c: { count: number }) => n + c.count, 0)).toBe(ev.n);
    expect(entry('model_published').evaluation.auc).toBe(ev.auc);
  });

  it('(d) the PMML scorecard parses back and scores sample rows as the JSON card and the model artifact do', () => {
    const card = JSON.parse(Buffer.from(files['scorecard.json']!).toString('utf8')) as Scorecard;
    const pmml = readPmmlScorecard(Buffer.from(files['scorecard.pmml']!).toString('utf8'));
    expect(card.features.map((f) => f.feature).sort()).toEqual([...model.features].sort());
    const pd = model.scoreColumns(test.x, UCI_FEATURES);
    const dim = UCI_FEATURES.length;
    for (let r = 0; r < 300; r++) {
      const values = Object.fromEntries(card.features.map((f) => [f.feature, test.x[r * dim + UCI_FEATURES.indexOf(f.feature)]!]));
      const json = scoreRecord(card, values).score;
      expect(evaluatePmmlScorecard(pmml, values).score).toBeCloseTo(json, 9);
      // score = offset − factor·logit(pd), up to the rounding of each feature's points to 2 decimals.
      const logit = Math.log(pd[r]! / (1 - pd[r]!));
      expect(Math.abs(json - (card.offset - card.factor * logit))).toBeLessThan(0.005 * (card.features.length + 1) + 1e-3);
    }
  });

  it('(e) the audit replay re-adds every sum and derives statistics, bins, preprocessing, evaluation (and its copy in fedcredit.json) and scorecard again', async () => {
    const report = await replayLedger(ledgerDir, { jobId });
    const replayed = report.jobs[0]!;
    expect(replayed.failures).toEqual([]);
    expect(report.ok).toBe(true);
    const searchRounds = entry('quantiles_completed').rounds as number;
    expect(searchRounds).toBeGreaterThan(1);
    expect(replayed.rounds.map((r) => r.purpose)).toEqual(['moments', ...Array(searchRounds).fill('quantiles'), 'histogram', ...Array(job.training.rounds).fill('update'), 'evaluation']);
    expect(replayed.rounds.every((r) => r.sumOk)).toBe(true);
    expect(replayed.derived).toEqual({
      statistics: true,
      quantiles: true,
      binning: true,
      preprocessing: true,
      'model selection': true,
      evaluation: true,
      'published evaluation': true,
      scorecard: true,
    });
    expect(replayed.publishedModelOk).toBe(true);
  });

  it('(f) the model report is written from the downloaded artifact alone: ROC and KS from the published PD histogram, IV from the bins, the scorecard', async () => {
    const ev = model.metadata.evaluation as Record<string, any>;
    // The published cells: rows and defaults add up to the evaluation, and they are the histogram of the pooled
    // validation rows' PDs (a PD within float32 noise of a cell boundary may land in the next cell: a little slack).
    const h = ev.pdHistogram as { cells: number; rows: number[]; defaults: number[]; pdSum: number[] };
    expect(h.cells).toBe(PD_CELLS);
    expect(h.rows.reduce((a, b) => a + b, 0)).toBe(ev.n);
    expect(h.defaults.reduce((a, b) => a + b, 0)).toBe(ev.defaults);
    const pooled = localPdHistogram(validation.y, model.scoreColumns(validation.x, UCI_FEATURES), 0.2);
    expect(h.rows.reduce((d, r, c) => d + Math.abs(r - pooled[c]!), 0)).toBeLessThanOrEqual(4);
    expect(Math.abs(h.pdSum.reduce((a, b) => a + b, 0) - pooled.subarray(2 * PD_CELLS, 3 * PD_CELLS).reduce((a, b) => a + b, 0))).toBeLessThan(0.05);

    const dir = join(fed.dir, 'downloaded-model');
    await writeArtifact(dir, files);
    const input = loadArtifactReport(dir);
    expect(input.job).toMatchObject({ id: jobId, name: job.name, purpose: job.purpose, participants: NAMES });
    // The rows the page draws are the histogram's: their AUC and KS are the published ones, exactly.
    expect(input.test.labels.length).toBe(ev.n);
    expect(Math.abs(auc(input.test.labels, input.test.pd) - ev.auc)).toBeLessThan(1e-12);
    const ks = ksCurve(input.test.labels, input.test.pd)!;
    expect(Math.abs(Math.abs(ks.gap.goods - ks.gap.bads) - ev.ks)).toBeLessThan(1e-12);
    // Every candidate with the IV of its fine bins and of its final bins, as the coordinator recorded them; the
    // selected ones are the model's features.
    const rows = entry('binning_completed').iv as { feature: string; iv: number; fine_iv: number; chance_iv: number }[];
    expect(input.iv!.map((r) => r.feature)).toEqual(rows.map((r) => r.feature));
    expect(input.iv!.filter((r) => r.selected).map((r) => r.feature)).toEqual(model.features);
    for (const r of input.iv!) {
      const recorded = rows.find((x) => x.feature === r.feature)!;
      expect(Math.abs(r.iv - recorded.iv), r.feature).toBeLessThan(1e-9);
      expect(r.fineIv, r.feature).toBe(recorded.fine_iv);
      // On some 19,000 training rows (4,200 defaults) 20 fine bins reach about 0.006 by chance.
      expect(r.chanceIv, r.feature).toBe(recorded.chance_iv);
      expect(r.chanceIv!, r.feature).toBeLessThan(0.007);
      expect(r.fineIv!, r.feature).toBeGreaterThanOrEqual(r.iv - 1e-12);
    }
    const card = JSON.parse(Buffer.from(files['scorecard.json']!).toString('utf8')) as Scorecard;
    expect(input.scorecard!.basePoints).toBe(card.basePoints);
    // 1,600 validation rows a participant are enough to choose the round: no warning.
    expect(input.validationWarning).toBeUndefined();

    const out = join(fed.dir, 'report', 'horizontal.html');
    const written = await cli(['report', '--model', dir, '--out', out]);
    expect({ code: written.code, stderr: written.stderr }, written.stderr).toEqual({ code: 0, stderr: '' });
    const html = await readFile(out, 'utf8');
    for (const fig of ['fig-roc', 'fig-ks', 'fig-score-distribution', 'fig-lift-gain', 'fig-calibration', 'fig-iv']) expect(html).toContain(`<figure id="${fig}">`);
    const summary = /<section id="summary">([\s\S]*?)<\/section>/.exec(html)![1]!;
    const headline = /<td>AUC<\/td><td class="num">([0-9.]+)<\/td>/.exec(summary)![1]!;
    expect(headline).toBe(ev.auc.toFixed(3));
    expect(html).toContain(`AUC = ${ev.auc.toFixed(3)}`); // on the ROC chart
    expect(html).toContain('200 cells of width 1/200');
    const scorecard = /<section id="scorecard">([\s\S]*?)<\/section>/.exec(html)![1]!;
    for (const f of card.features) expect(scorecard).toContain(`<td rowspan="${f.bins.length}" class="feature">${f.feature}</td>`);
    const features = /<section id="features">([\s\S]*?)<\/section>/.exec(html)![1]!;
    for (const f of model.features) expect(features).toContain(`<td>${f}</td>`);
    console.log(`report from the artifact: AUC ${headline}, KS ${ev.ks.toFixed(3)} on ${ev.n} validation rows; ${input.iv!.length} features in the IV table, ${card.features.length} in the scorecard`);

    // The command says what is wrong when it is not given one source, or not a horizontal artifact.
    const neither = await cli(['report', '--out', out]);
    expect(neither.code).toBe(1);
    expect(neither.stderr).toMatch(/nothing to report on; give either a vertical job .* or a downloaded horizontal model/);
    const both = await cli(['report', jobId, '--config', 'guest.yaml', '--model', dir, '--out', out]);
    expect(both.code).toBe(1);
    expect(both.stderr).toMatch(/--model cannot be combined with a job id, --config or --batch/);
    const notArtifact = await cli(['report', '--model', fed.dir, '--out', out]);
    expect(notArtifact.code).toBe(2);
    expect(notArtifact.stderr).toMatch(/FC_NOT_FOUND: .* is not a horizontal model artifact: it has no fedcredit\.json\n {2}fix: .*fedcredit job model/);
    const vertical = join(fed.dir, 'vertical-model');
    await writeArtifact(vertical, { 'manifest.json': Buffer.from('{}') });
    expect((await cli(['report', '--model', vertical, '--out', out])).stderr).toMatch(
      /holds a vertical model's manifest, not a horizontal model artifact\n {2}fix: .*fedcredit report <job-id> --config <guest\.yaml>/,
    );
    // An artifact without the PD cells (written by an older version) is refused with the fix, not drawn wrong.
    const old = join(fed.dir, 'old-model');
    await writeArtifact(old, files);
    const { pdHistogram: _, ...rest } = ev;
    await writeFile(join(old, 'fedcredit.json'), JSON.stringify({ ...model.metadata, evaluation: rest }));
    expect(() => loadArtifactReport(old)).toThrow(/carries no PD histogram/);
  });

  it('(g) `fedcredit score --model DIR --data FILE` scores the held-out file locally: the PD of the artifact, the points and reasons of its scorecard', async () => {
    const dir = join(fed.dir, 'scoring-model');
    await writeArtifact(dir, files);
    const testFile = uciHomoFile(DATASETS, 'test');
    const rows = await loadDataset(uciHomoSpec(testFile));
    const card = JSON.parse(Buffer.from(files['scorecard.json']!).toString('utf8')) as Scorecard;
    const dim = UCI_FEATURES.length;
    const pd = model.scoreColumns(rows.x, UCI_FEATURES);
    const check = async (args: string[]) => {
      const out = join(dir, 'scores.csv');
      const { code, stderr } = await cli(['score', '--model', dir, '--data', testFile, '--out', out, ...args]);
      expect(code, stderr).toBe(0);
      const [header, ...lines] = (await readFile(out, 'utf8')).trim().split('\n');
      expect(header).toBe('enterprise_id,pd,points,reason_1,reason_2,reason_3');
      expect(lines).toHaveLength(rows.rows);
      let worstPd = 0;
      lines.forEach((line, r) => {
        const [id, p, points, ...reasons] = line.split(',');
        expect(id).toBe(rows.ids[r]);
        worstPd = Math.max(worstPd, Math.abs(Number(p) - pd[r]!));
        const values = Object.fromEntries(card.features.map((f) => [f.feature, rows.x[r * dim + UCI_FEATURES.indexOf(f.feature)]!]));
        expect(Number(points)).toBe(scoreRecord(card, values).score);
        // Reasons name a feature of the card and the points it lost against the feature's best bin.
        for (const reason of reasons.filter(Boolean)) expect(reason).toMatch(/^x\d+ \((-\d+(\.\d+)?|0)\)$/);
      });
      expect(worstPd).toBeLessThan(1e-7);
      return stderr;
    };
    // The columns as the model names them, or read as a participant's data section says.
    expect(await check([])).not.toMatch(/with a label/);
    // The file has the config's label column: the bank reads the model's AUC and KS on these rows of its own.
    const labels = (await loadDataset(uciHomoSpec(testFile))).y!;
    expect(await check(['--config', join(fed.dir, 'bank-a.yaml')])).toContain(
      `${rows.rows} of them with a label in "y" (${labels.reduce((a, b) => a + b, 0)} defaults): AUC ${auc(labels, pd).toFixed(4)}, KS ${ksStatistic(labels, pd).toFixed(4)}`,
    );

    // The data checks of a participant: a column the model reads is missing from the file.
    const partial = join(dir, 'partial.csv');
    const dropped = model.features[0]!;
    const lines = (await readFile(testFile, 'utf8')).split('\n');
    const at = lines[0]!.split(',').indexOf(dropped);
    await writeFile(
      partial,
      lines
        .map((l) =>
          l
            .split(',')
            .filter((_, j) => j !== at)
            .join(','),
        )
        .join('\n'),
    );
    const refused = await cli(['score', '--model', dir, '--data', partial]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/FC_DATA_SCHEMA/);
    expect(refused.stderr).toContain(`"${dropped}"`);
  });

  it('quantile binning without the WOE transform selects by IV and trains on the standardised selected features', async () => {
    const variant = {
      ...horizontalJob({ participants: NAMES, training: { rounds: 3, seed: SEED }, encryption: { scheme: 'plaintext' }, model: { type: 'mlp', hidden: [4] } }),
      binning: { method: 'quantile', max_bins: 10, iv_threshold: 0.1, woe_transform: false },
    };
    const run = await fed.run(variant);
    expect(run.last.state, run.last.message).toBe('succeeded');
    const { tf } = await loadTf();
    const plain = await modelFromFiles(tf, await run.client.downloadModel(run.jobId));
    run.client.close();
    const binning = readLedger(ledgerDir).entries.find((e) => e.entry.kind === 'binning_completed' && e.entry.jobId === run.jobId)!.body as {
      iv: { feature: string; iv: number; selected: boolean }[];
      bins: { edges: number[] }[];
    };
    binning.bins.forEach((b, j) => {
      expect(b.edges.length).toBeLessThanOrEqual(9);
      expect(Math.abs(binning.iv[j]!.iv - woeIv(binCounts(column(train.x, UCI_FEATURES.length, j), train.y, b.edges)).iv)).toBeLessThan(1e-6);
    });
    expect(plain.features).toEqual(binning.iv.filter((r) => r.iv >= 0.1).map((r) => r.feature));
    expect(plain.metadata.preprocessing.bins).toEqual([]);
    expect(plain.metadata.preprocessing.scale.every((x) => x !== 1)).toBe(true);
    // Read as numbers, the selected features are winsorised at the federation's 0.5% and 99.5% quantiles first.
    const p = plain.metadata.preprocessing;
    expect(p.clipLow).toHaveLength(plain.features.length);
    plain.features.forEach((f, k) => {
      const values = column(train.x, UCI_FEATURES.length, UCI_FEATURES.indexOf(f)).sort();
      const below = values.filter((v) => v < p.clipLow![k]!).length / values.length;
      const above = values.filter((v) => v > p.clipHigh![k]!).length / values.length;
      // Each bound is within the quantile search's rank error (0.25% of the rows) of its quantile.
      expect(below, f).toBeLessThanOrEqual(0.005 + 0.0025);
      expect(above, f).toBeLessThanOrEqual(0.005);
    });
    expect(auc(test.y, plain.scoreColumns(test.x, UCI_FEATURES))).toBeGreaterThan(0.7);
  });

  it('catches a coordinator that re-signs a history with a flattering IV and AUC', async () => {
    const forged = join(await mkdtemp(join(tmpdir(), 'fedcredit-forged-')), 'ledger');
    const ledger = await Ledger.open(forged, 'coordinator', join(fed.stateDir, 'keys', 'ledger-ed25519.pem'));
    for (const { entry, body } of readLedger(ledgerDir).entries) {
      const b = structuredClone(body) as Record<string, any>;
      if (entry.kind === 'binning_completed') b.iv[0].iv += 0.05;
      if (entry.kind === 'evaluation_completed') b.evaluation.auc += 0.02;
      const blobs = await Promise.all(entry.blobs.map(async (r) => ({ name: r.name, bytes: await readFile(join(ledgerDir, 'blobs', Buffer.from(r.sha256).toString('hex'))) })));
      await ledger.append({ kind: entry.kind, jobId: entry.jobId, body: b, blobs });
    }
    await ledger.close();
    const replay = await replayLedger(forged, { jobId });
    expect(replay.ok).toBe(false);
    expect(replay.jobs[0]!.derived).toMatchObject({ binning: false, evaluation: false, 'published evaluation': false, statistics: true, scorecard: true });
    expect(replay.jobs[0]!.failures.join('\n')).toMatch(/bins, WOE and IV do not follow[\s\S]*evaluation does not follow/);
  });

  it('a ledger recorded before the evaluation kept its PD cells, and binning its chance levels, still replays', async () => {
    const older = join(await mkdtemp(join(tmpdir(), 'fedcredit-older-')), 'ledger');
    const ledger = await Ledger.open(older, 'coordinator', join(fed.stateDir, 'keys', 'ledger-ed25519.pem'));
    for (const { entry, body } of readLedger(ledgerDir).entries) {
      if (entry.jobId !== jobId) continue;
      const b = structuredClone(body) as Record<string, any>;
      if (entry.kind === 'evaluation_completed') delete b.evaluation.pdHistogram;
      if (entry.kind === 'binning_completed') {
        // Its warnings then counted the whole fine-bin IV.
        for (const r of b.iv) delete r.chance_iv;
        b.warnings = binningWarnings(
          b.iv.map((r: { feature: string; iv: number; fine_iv: number; selected: boolean }) => ({ feature: r.feature, iv: r.iv, fineIv: r.fine_iv, selected: r.selected })),
          b.iv_threshold,
        );
      }
      const blobs = await Promise.all(
        entry.blobs.map(async (r) => {
          let bytes: Uint8Array = await readFile(join(ledgerDir, 'blobs', Buffer.from(r.sha256).toString('hex')));
          if (r.name === 'fedcredit.json') {
            const meta = JSON.parse(Buffer.from(bytes).toString('utf8'));
            delete meta.evaluation.pdHistogram;
            bytes = Buffer.from(JSON.stringify(meta, null, 2));
          }
          return { name: r.name, bytes };
        }),
      );
      await ledger.append({ kind: entry.kind, jobId: entry.jobId, body: b, blobs });
    }
    await ledger.close();
    const replay = await replayLedger(older, { jobId });
    expect(replay.jobs[0]!.failures).toEqual([]);
    expect(replay.jobs[0]!.derived).toMatchObject({ binning: true, evaluation: true, 'published evaluation': true });
  });

  it('a scorecard without binning, or on an mlp, is refused at submission with the cause and the fix', async () => {
    const issues = (spec: object) => {
      const r = HorizontalJobSpec.safeParse(spec);
      return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    const { binning: _, ...noBinning } = job;
    expect(issues(noBinning).join('\n')).toMatch(/scorecard: a scorecard gives points per bin: add a `binning:` section/);
    expect(issues({ ...job, binning: { ...job.binning, woe_transform: false } }).join('\n')).toMatch(/binning\.woe_transform: .*set binning\.woe_transform to true/);
    expect(issues({ ...job, model: { type: 'mlp' } }).join('\n')).toMatch(/model\.type: a scorecard needs model\.type: logistic/);
    expect(issues({ ...job, evaluation: { decline_cutoff: 1.5 } })).toHaveLength(1);
    const client = await fed.client();
    const err = await client.submitJob(stringify(noBinning), 'test-bank').catch((e: unknown) => e as FedcreditError);
    client.close();
    expect(err).toBeInstanceOf(FedcreditError);
    expect((err as FedcreditError).code).toBe('FC_CONFIG_INVALID');
    expect((err as FedcreditError).message).toMatch(/binning/);
  });
});
