/**
 * The bank's model report, on a real credit dataset (UCI default of credit card clients): the page holds every
 * figure and table, references nothing outside itself, and renders in a real browser with every chart drawn. The
 * same for a horizontal model's report, built from an artifact folder whose evaluation is a 200-cell PD histogram.
 */
import { parse } from 'csv-parse/sync';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { evaluateCredit, populationStabilityIndex, psiNoise, validationSizeWarning } from '../src/evaluation.js';
import { auc, binaryMetrics } from '../src/metrics.js';
import { evaluationFromPdHistogram, localPdHistogram, rowsFromPdHistogram, type HistogramEvaluation } from '../src/fl/pd-histogram.js';
import { loadArtifactReport, writeArtifactReport } from '../src/report/artifact-report.js';
import { fitLogistic } from '../src/model/newton-lr.js';
import { binningWarnings } from '../src/credit/settle.js';
import {
  figureId,
  ivStrength,
  ksCurve,
  modelReport,
  psiStatus,
  rocCurve,
  writeModelReport,
  type ModelReportInput,
  type ReportFairnessGroup,
  type ReportIvRow,
  type ReportScorecardFeature,
} from '../src/report/model-report.js';
import { launchChromium, layout, openPage, svgDrawing } from './helpers/browser.js';

const CSV = fileURLToPath(new URL('../../shared/datasets/uci_default_credit/UCI_Credit_Card.csv', import.meta.url));
const LABEL = 'default.payment.next.month';
const SCRATCH = fileURLToPath(new URL('../scratch/', import.meta.url));
/** Which (pretend) federation party owns each column. SEX is kept out of the model and used for fairness only. */
const PARTY: Record<string, string> = {
  LIMIT_BAL: 'bank',
  PAY_0: 'bank',
  PAY_2: 'bank',
  PAY_3: 'bank',
  PAY_4: 'bank',
  PAY_5: 'bank',
  PAY_6: 'bank',
  BILL_AMT1: 'tax-bureau',
  BILL_AMT2: 'tax-bureau',
  BILL_AMT3: 'tax-bureau',
  BILL_AMT4: 'tax-bureau',
  BILL_AMT5: 'tax-bureau',
  BILL_AMT6: 'tax-bureau',
  PAY_AMT1: 'power-company',
  PAY_AMT2: 'power-company',
  PAY_AMT3: 'power-company',
  PAY_AMT4: 'power-company',
  PAY_AMT5: 'power-company',
  PAY_AMT6: 'power-company',
  EDUCATION: 'platform',
  MARRIAGE: 'platform',
  AGE: 'platform',
};
const FEATURES = Object.keys(PARTY);
const CUTOFF = 0.3;
const PDO = 20;
const BASE_SCORE = 600;
const BASE_ODDS = 50;
const FIGURES = ['roc', 'ks', 'score-distribution', 'lift-gain', 'calibration', 'validation-auc', 'iv'];

const tmp = mkdtempSync(join(tmpdir(), 'fedcredit-model-report-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Rows {
  x: Float64Array;
  y: number[];
  sex: number[];
  raw: number[][];
}

/** Columns standardised with the training part's mean and spread. */
function loadSplits(): { train: Rows; validation: Rows; test: Rows } {
  if (!existsSync(CSV)) throw new Error(`dataset missing: ${CSV} (the shared UCI credit-card CSV the report test reads)`);
  const records = parse(readFileSync(CSV), { columns: true, skip_empty_lines: true }) as Record<string, string>[];
  const raw = records.map((r) => FEATURES.map((f) => Number(r[f])));
  const labels = records.map((r) => Number(r[LABEL]));
  const sex = records.map((r) => Number(r.SEX));
  // 70% training, 10% validation, 20% test, by position (the file is in no particular order).
  const part = (i: number) => (i % 10 < 7 ? 'train' : i % 10 === 7 ? 'validation' : 'test');
  const trainRows = raw.filter((_, i) => part(i) === 'train');
  const mean = FEATURES.map((_, j) => trainRows.reduce((s, r) => s + r[j]!, 0) / trainRows.length);
  const sd = FEATURES.map((_, j) => Math.sqrt(trainRows.reduce((s, r) => s + (r[j]! - mean[j]!) ** 2, 0) / trainRows.length) || 1);
  const take = (name: string): Rows => {
    const idx = raw.map((_, i) => i).filter((i) => part(i) === name);
    const x = new Float64Array(idx.length * FEATURES.length);
    idx.forEach((i, k) => FEATURES.forEach((_, j) => (x[k * FEATURES.length + j] = (raw[i]![j]! - mean[j]!) / sd[j]!)));
    return { x, y: idx.map((i) => labels[i]!), sex: idx.map((i) => sex[i]!), raw: idx.map((i) => raw[i]!) };
  };
  return { train: take('train'), validation: take('validation'), test: take('test') };
}

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

/** PDs of a logistic fit on the columns `cols` (indices into FEATURES). */
function pdsOf(fit: { score(row: ArrayLike<number>): number }, rows: Rows, cols: number[]): number[] {
  const dim = FEATURES.length;
  return rows.y.map((_, i) => sigmoid(fit.score(cols.map((j) => rows.x[i * dim + j]!))));
}

function columns(rows: Rows, cols: number[]): Float64Array {
  const dim = FEATURES.length;
  const out = new Float64Array(rows.y.length * cols.length);
  for (let i = 0; i < rows.y.length; i++) cols.forEach((j, k) => (out[i * cols.length + k] = rows.x[i * dim + j]!));
  return out;
}

/** Quantile bins (at most 5) of one raw column on the training rows, with WOE and IV as a credit modeller computes them. */
function woeBins(rows: Rows, j: number) {
  const values = rows.raw.map((r) => r[j]!);
  const sorted = [...values].sort((a, b) => a - b);
  const edges = [...new Set([1, 2, 3, 4].map((q) => sorted[Math.floor((q * sorted.length) / 5)]!))].filter((e) => e > sorted[0]!);
  const binOf = (v: number) => edges.filter((e) => v >= e).length;
  const goods = new Array<number>(edges.length + 1).fill(0);
  const bads = new Array<number>(edges.length + 1).fill(0);
  values.forEach((v, i) => (rows.y[i] ? bads : goods)[binOf(v)]!++);
  const G = goods.reduce((a, b) => a + b, 0);
  const B = bads.reduce((a, b) => a + b, 0);
  const fmt = (v: number) => (Math.abs(v) >= 1000 ? `${Math.round(v / 1000)}k` : String(v));
  const bins = goods.map((g, b) => {
    const woe = Math.log((g + 0.5) / (G + 0.5) / ((bads[b]! + 0.5) / (B + 0.5)));
    const label = b === 0 ? `< ${fmt(edges[0] ?? Infinity)}` : b === edges.length ? `≥ ${fmt(edges[b - 1]!)}` : `${fmt(edges[b - 1]!)} to < ${fmt(edges[b]!)}`;
    return { label, woe, goods: g, bads: bads[b]!, count: g + bads[b]!, eventRate: bads[b]! / Math.max(1, g + bads[b]!) };
  });
  const iv = bins.reduce((s, b) => s + (b.goods / G - b.bads / B) * b.woe, 0);
  return { bins, iv, edges, logOdds: Math.log(G / B) };
}

/** A realistic report input: a logistic model on the UCI data and the figures a bank would put beside it. */
function buildInput(): ModelReportInput & { woe: { feature: string; edges: number[]; bins: { woe: number; bads: number; count: number }[] }[] } {
  const { train, validation, test } = loadSplits();
  const all = FEATURES.map((_, j) => j);
  const bankCols = FEATURES.map((f, j) => (PARTY[f] === 'bank' ? j : -1)).filter((j) => j >= 0);
  const fit = fitLogistic(train.x, train.y, FEATURES.length);
  const pd = pdsOf(fit, test, all);
  const bankFit = fitLogistic(columns(train, bankCols), train.y, bankCols.length);
  const bankPd = pdsOf({ score: (row) => bankFit.score(bankCols.map((j) => row[j]!)) }, test, all);
  const evaluation = evaluateCredit(test.y, pd, CUTOFF);
  const bank = binaryMetrics(test.y, bankPd);

  // Validation AUC after each Newton step, as a training curve.
  const validationAuc = [1, 2, 3, 4, 5, 6].map((epoch) => ({ epoch, auc: binaryMetrics(validation.y, pdsOf(fitLogistic(train.x, train.y, FEATURES.length, 1e-4, epoch), validation, all)).auc }));

  const woe = FEATURES.map((f, j) => ({ feature: f, party: PARTY[f]!, ...woeBins(train, j) }));
  const iv: ReportIvRow[] = woe.map((w) => ({ feature: w.feature, party: w.party, iv: w.iv, bins: w.bins.length, selected: w.iv >= 0.02 && w.iv < 0.5 }));
  const factor = PDO / Math.log(2);
  const offset = BASE_SCORE - factor * Math.log(BASE_ODDS);
  const cardFeatures: ReportScorecardFeature[] = [...woe]
    .filter((w) => w.iv >= 0.02 && w.iv < 0.5)
    .sort((a, b) => b.iv - a.iv)
    .slice(0, 5)
    .map((w) => ({ feature: w.feature, party: w.party, bins: w.bins.map((b) => ({ label: b.label, woe: b.woe, points: Math.round(factor * b.woe), count: b.count, eventRate: b.eventRate })) }));
  // Points score of the PDs on the scorecard's scale (higher = safer).
  const score = pd.map((p) => Math.round(offset + factor * Math.log((1 - p) / p)));

  const trainPd = pdsOf(fit, train, all);
  const stability = {
    scorePsi: populationStabilityIndex(trainPd, pd),
    features: iv
      .filter((r) => r.selected)
      .map((r) => {
        const j = FEATURES.indexOf(r.feature);
        return {
          feature: r.feature,
          party: r.party,
          psi: populationStabilityIndex(
            train.raw.map((x) => x[j]!),
            test.raw.map((x) => x[j]!),
          ),
        };
      }),
  };

  const groups: ReportFairnessGroup[] = [
    [1, 'male'],
    [2, 'female'],
  ].map(([code, name]) => {
    const rows = test.y.map((_, i) => i).filter((i) => test.sex[i] === code);
    const y = rows.map((i) => test.y[i]!);
    const p = rows.map((i) => pd[i]!);
    const m = binaryMetrics(y, p);
    const defaults = y.reduce((s, v) => s + v, 0);
    return { group: `${name} (${code})`, n: rows.length, defaults, defaultRate: defaults / rows.length, approvalRate: p.filter((v) => v < CUTOFF).length / rows.length, auc: m.auc, ks: m.ks };
  });
  const gap = (k: 'defaultRate' | 'approvalRate' | 'auc' | 'ks') => Math.max(...groups.map((g) => g[k]!)) - Math.min(...groups.map((g) => g[k]!));
  const gaps = { defaultRate: gap('defaultRate'), approvalRate: gap('approvalRate'), auc: gap('auc'), ks: gap('ks') };
  const maxGap = 0.02;
  const flagged = Object.entries(gaps)
    .filter(([, v]) => v !== null && v > maxGap)
    .map(([k]) => k);

  return {
    job: {
      id: 'job-7f3a',
      name: 'SME working-capital PD <v2> & "federated"',
      purpose: 'PD model for working-capital loans',
      guest: 'bank',
      hosts: ['tax-bureau', 'power-company', 'platform'],
      finishedAt: '2025-03-14T10:22:05Z',
    },
    test: { labels: test.y, pd, score },
    evaluation,
    comparison: { 'bank alone': { auc: bank.auc, ks: bank.ks }, federated: { auc: evaluation.auc, ks: evaluation.ks } },
    validationAuc,
    iv,
    scorecard: { baseScore: BASE_SCORE, baseOdds: BASE_ODDS, pdo: PDO, basePoints: Math.round(offset + factor * woe[0]!.logOdds), features: cardFeatures },
    stability,
    fairness: { column: 'SEX', cutoff: CUTOFF, maxGap, groups, gaps, flagged },
    generatedAt: '2025-03-14T10:30:00Z',
    woe,
  };
}

/** The HTML inside the element with this id (figure or section), up to its closing tag. */
function element(html: string, tag: 'figure' | 'section', id: string): string {
  const m = new RegExp(`<${tag} id="${id}">([\\s\\S]*?)</${tag}>`).exec(html);
  if (!m) throw new Error(`no <${tag} id="${id}"> in the report`);
  return m[1]!;
}

describe('model report', () => {
  const input = buildInput();

  it('holds every figure and table, escapes text and references nothing outside the page', async () => {
    const { html, figures } = await modelReport(input);
    expect(Object.keys(figures).sort()).toEqual(FIGURES.map((f) => `${f}.svg`).sort());
    for (const f of FIGURES) {
      const fig = element(html, 'figure', figureId(`${f}.svg`));
      expect(fig, f).toMatch(/^<svg [^>]*viewBox=/);
      expect(fig, f).toContain('<figcaption>');
    }
    const features = element(html, 'section', 'features');
    for (const f of FEATURES) expect(features).toContain(`<td>${f}</td>`);
    expect(features).toContain('very strong'); // PAY_0's IV is between 0.5 and 1 on this data: strong, not a leak
    expect(features).not.toContain('leakage</td>');
    for (const id of ['summary', 'discrimination', 'ranking', 'cutoff', 'calibration', 'training', 'scorecard', 'stability', 'fairness']) {
      expect(element(html, 'section', id)).not.toContain('class="note"');
    }
    expect(element(html, 'section', 'summary')).toContain('bank alone');
    expect(element(html, 'section', 'scorecard')).toContain(input.scorecard!.features[0]!.feature);
    const fairness = element(html, 'section', 'fairness');
    expect(fairness).toContain('female (2)');
    const titles: Record<string, string> = { defaultRate: 'default rate', approvalRate: 'approval rate', auc: 'AUC', ks: 'KS' };
    expect(input.fairness!.flagged.length).toBeGreaterThan(0);
    for (const metric of input.fairness!.flagged) expect(fairness).toContain(`<strong>${titles[metric]}</strong>`);

    // Text is escaped: the job name's markup shows as text.
    expect(html).toContain('SME working-capital PD &lt;v2&gt; &amp; &quot;federated&quot;');
    expect(html).not.toContain('<v2>');
    // Self-contained: no script, stylesheet, font, image or frame, and no URL but XML namespaces and the Vega-Lite schema.
    // (url(#…) and href="#…" point inside the page: Vega's clip paths and the contents list.)
    expect(html.match(/<script|<link|<img|<iframe|<object|<embed|@import|url\((?!#)|\ssrc=|\shref="(?!#)/gi)).toBeNull();
    const urls = new Set(html.match(/https?:\/\/[^\s"'<>)]+/g) ?? []);
    for (const u of urls) expect(u).toMatch(/^http:\/\/www\.w3\.org\/(2000\/svg|1999\/xlink)$|^https:\/\/vega\.github\.io\/schema\//);
  });

  it('renders in headless Chromium with every chart drawn, and prints', async () => {
    const out = join(tmp, 'report.html');
    const written = await writeModelReport(input, out);
    expect(written.html).toBe(out);
    expect(readdirSync(join(tmp, 'report-figures')).sort()).toEqual(FIGURES.map((f) => `${f}.svg`).sort());
    expect(written.figures).toHaveLength(FIGURES.length);

    const browser = await launchChromium();
    try {
      const url = pathToFileURL(out).href;
      const { page, problems, requests } = await openPage(browser, url);
      expect(problems).toEqual([]);
      expect(requests).toEqual([url]);
      expect(await page.title()).toContain('SME working-capital PD <v2>');
      for (const f of FIGURES) {
        const drawn = await svgDrawing(page, `#${figureId(`${f}.svg`)} > svg`);
        expect(drawn, f).not.toBeNull();
        expect(drawn!.width, f).toBeGreaterThan(100);
        expect(drawn!.height, f).toBeGreaterThan(100);
        expect(drawn!.marks, f).toBeGreaterThan(0);
      }
      // Readable: nothing wider than the window, every table laid out.
      const { scrollWidth, tableHeights } = await layout(page);
      expect(scrollWidth).toBeLessThanOrEqual(1280);
      expect(tableHeights.length).toBeGreaterThanOrEqual(8);
      for (const h of tableHeights) expect(h).toBeGreaterThan(20);

      const shot = join(tmp, 'report.png');
      await page.screenshot({ path: shot, fullPage: true });
      const png = readFileSync(shot);
      expect(png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).toBe(true);
      expect(statSync(shot).size).toBeGreaterThan(50_000);
      if (process.env.FEDCREDIT_KEEP_SCREENSHOT === '1') {
        mkdirSync(SCRATCH, { recursive: true });
        copyFileSync(shot, join(SCRATCH, 'report-screenshot.png'));
        copyFileSync(out, join(SCRATCH, 'report.html'));
      }

      await page.emulateMedia({ media: 'print' });
      const pdf = await page.pdf({ format: 'A4', printBackground: true });
      expect(pdf.subarray(0, 5).toString()).toBe('%PDF-');
      expect(problems).toEqual([]);
    } finally {
      await browser.close();
    }
  });

  it('with only the evaluation, omits the other sections with a note', async () => {
    const { html, figures } = await modelReport({ job: input.job, test: { labels: input.test.labels, pd: input.test.pd }, evaluation: input.evaluation });
    expect(Object.keys(figures).sort()).toEqual(['calibration.svg', 'ks.svg', 'lift-gain.svg', 'roc.svg', 'score-distribution.svg']);
    for (const id of ['training', 'features', 'scorecard', 'stability', 'fairness']) {
      expect(element(html, 'section', id), id).toMatch(/^\n<h2>[^<]+<\/h2>\n<p class="note">[^<]+<\/p>\n$/);
    }
    expect(html).not.toContain('fig-iv');
    expect(element(html, 'section', 'summary')).not.toContain('Compared on');
    // Without a score, the distribution is of the PD, with the cut-off marked.
    expect(element(html, 'figure', 'fig-score-distribution')).toContain('cut-off 0.30');
    expect(element(html, 'section', 'calibration')).not.toContain('not calibrated as asked');
  });

  it('names a calibration that could not be fitted as asked in the calibration section', async () => {
    const warning = "the validation scores of the kept epoch do not rank defaults (calibration slope -0.120); the PDs are the model's own log-odds, not calibrated";
    const { html } = await modelReport({ job: input.job, test: { labels: input.test.labels, pd: input.test.pd }, evaluation: input.evaluation, calibrationWarning: warning });
    const calibration = element(html, 'section', 'calibration');
    expect(calibration).toContain('The PDs are not calibrated as asked');
    expect(calibration).toContain('do not rank defaults (calibration slope -0.120)');
  });

  it('names validation rows too few to choose the kept epoch in the training section, above the curve', async () => {
    const warning = validationSizeWarning({ rows: 62, defaults: 19, auc: 0.74 }, 'the epoch to keep (epoch 1 of 5 validated)', 'raise training.validation_fraction (now 0.1)')!;
    const { html } = await modelReport({ ...input, validationWarning: warning });
    const training = element(html, 'section', 'training');
    expect(training).toContain('The model was chosen on too few validation rows');
    expect(training).toMatch(/on 62 validation rows, 19 of them defaults, the validation AUC has a standard error of 0\.073 \(Hanley–McNeil\)/);
    expect(training.indexOf('too few validation rows')).toBeLessThan(training.indexOf('<figure'));
    expect(element(await modelReport(input).then((r) => r.html), 'section', 'training')).not.toContain('too few validation rows');
  });

  it('curves: ROC and KS thinned to 200 points, end to end, with KS equal to the evaluation', () => {
    const roc = rocCurve(input.test.labels, input.test.pd);
    expect(roc.length).toBeLessThanOrEqual(200);
    expect(roc[0]).toEqual({ x: 0, y: 0 });
    expect(roc[roc.length - 1]).toEqual({ x: 1, y: 1 });
    const ks = ksCurve(input.test.labels, input.test.pd)!;
    expect(ks.goods.length).toBeLessThanOrEqual(201);
    expect(Math.abs(ks.gap.goods - ks.gap.bads)).toBeCloseTo(input.evaluation.ks, 10);
    // On the points score (a decreasing function of PD, rounded) KS is nearly the same.
    expect(Math.abs(Math.abs(ksCurve(input.test.labels, input.test.score!)!.gap.goods - ksCurve(input.test.labels, input.test.score!)!.gap.bads) - input.evaluation.ks)).toBeLessThan(0.01);
    expect(rocCurve([1, 1], [0.2, 0.4])).toEqual([]);
    expect(ksCurve([0, 0], [0.2, 0.4])).toBeNull();
  });

  it('a horizontal model from its artifact folder: curves from the 200-cell PD histogram, IV from the bins; renders in Chromium', async () => {
    // What a horizontal job publishes: the evaluation of the pooled validation PDs' histogram, the selected features'
    // bins (WOE, defaults, rows) and a scorecard. Here the UCI test rows stand in for the validation rows.
    const histogram = localPdHistogram(input.test.labels, input.test.pd, CUTOFF);
    const evaluation = evaluationFromPdHistogram(histogram, CUTOFF) as HistogramEvaluation;
    const selected = input.woe.filter((w) => input.iv!.find((r) => r.feature === w.feature)!.selected);
    const dir = join(tmp, 'horizontal-model');
    mkdirSync(dir, { recursive: true });
    const sc = input.scorecard!;
    writeFileSync(
      join(dir, 'fedcredit.json'),
      JSON.stringify({
        format: 'fedcredit-model/1',
        jobId: 'job-20250314-0a1b2c3d',
        name: 'uci-homo <scorecard>',
        purpose: 'PD model for credit-card lines across three banks',
        modelType: 'logistic',
        participants: ['bank-a', 'bank-b', 'bank-c'],
        createdAt: '2025-03-14T10:22:05Z',
        rounds: 10,
        weightsSha256: '00',
        preprocessing: {
          features: selected.map((w) => w.feature),
          mean: selected.map(() => 0),
          scale: selected.map(() => 1),
          bins: selected.map((w) => ({ feature: w.feature, edges: w.edges, woe: w.bins.map((b) => b.woe), events: w.bins.map((b) => b.bads), totals: w.bins.map((b) => b.count), iv: 0 })),
        },
        evaluation: JSON.parse(JSON.stringify({ contributors: ['bank-a', 'bank-b', 'bank-c'], ...evaluation })),
        scorecard: { json: 'scorecard.json', pmml: 'scorecard.pmml', sha256: '00', basePoints: sc.basePoints, scoreRange: [300, 700] },
      }),
    );
    writeFileSync(
      join(dir, 'scorecard.json'),
      JSON.stringify({
        format: 'fedcredit-scorecard/1',
        scaling: { baseScore: sc.baseScore, baseOdds: sc.baseOdds, pdo: sc.pdo, decimals: 0 },
        factor: 0,
        offset: 0,
        basePoints: sc.basePoints,
        features: sc.features,
      }),
    );

    const loaded = loadArtifactReport(dir, { generatedAt: '2025-03-14T10:30:00Z' });
    // The drawn rows are the histogram's, no more: the curves' AUC and KS are the published ones, which are within
    // the histogram's stated error of the exact figures on the rows themselves.
    const rows = rowsFromPdHistogram(evaluation.pdHistogram);
    expect(Array.from(loaded.test.pd)).toEqual(Array.from(rows.pd));
    expect(Math.abs(auc(loaded.test.labels, loaded.test.pd) - evaluation.auc)).toBeLessThan(1e-12);
    expect(Math.abs(evaluation.auc - input.evaluation.auc)).toBeLessThanOrEqual(evaluation.aucMaxError + 1e-12);
    const ks = ksCurve(loaded.test.labels, loaded.test.pd)!;
    expect(Math.abs(ks.gap.goods - ks.gap.bads)).toBeCloseTo(evaluation.ks, 12);
    expect(loaded.iv!.map((r) => r.feature)).toEqual(selected.map((w) => w.feature));

    const out = join(tmp, 'horizontal.html');
    const written = await writeArtifactReport(dir, out, { generatedAt: '2025-03-14T10:30:00Z' });
    const figures = ['roc', 'ks', 'score-distribution', 'lift-gain', 'calibration', 'iv'];
    expect(written.map((f) => f.slice(f.lastIndexOf('/') + 1)).sort()).toEqual(figures.map((f) => `${f}.svg`).sort());
    const html = readFileSync(out, 'utf8');
    expect(html).toContain('<dt>participants</dt><dd>bank-a, bank-b, bank-c');
    expect(html).not.toContain('guest (labels)');
    expect(element(html, 'section', 'discrimination')).toContain('200 cells of width 1/200');
    expect(element(html, 'section', 'summary')).toContain(`<td>AUC</td><td class="num">${evaluation.auc.toFixed(3)}</td>`);
    expect(element(html, 'section', 'ranking')).toContain('split between them in proportion');
    expect(element(html, 'section', 'scorecard')).toContain(sc.features[0]!.feature);
    expect(html).toContain('uci-homo &lt;scorecard&gt;');

    const browser = await launchChromium();
    try {
      const url = pathToFileURL(out).href;
      const { page, problems, requests } = await openPage(browser, url);
      expect(requests).toEqual([url]);
      for (const f of figures) {
        const drawn = await svgDrawing(page, `#${figureId(`${f}.svg`)} > svg`);
        expect(drawn!.width, f).toBeGreaterThan(100);
        expect(drawn!.marks, f).toBeGreaterThan(0);
      }
      const { scrollWidth, tableHeights } = await layout(page);
      expect(scrollWidth).toBeLessThanOrEqual(1280);
      for (const h of tableHeights) expect(h).toBeGreaterThan(20);
      if (process.env.FEDCREDIT_KEEP_SCREENSHOT === '1') {
        mkdirSync(SCRATCH, { recursive: true });
        await page.screenshot({ path: join(SCRATCH, 'report-horizontal-screenshot.png'), fullPage: true });
      }
      expect(problems).toEqual([]);
    } finally {
      await browser.close();
    }
  });

  it("shows each feature's fine-bin IV and trend, names the features binning lost, counts enterprises a host does not hold", async () => {
    const iv = input.iv!.map((r, i) => ({ ...r, fineIv: r.iv * 1.1, chanceIv: 0.0123, trend: i % 2 ? 'descending' : 'ascending', type: 'number' as const }));
    iv[0] = { ...iv[0]!, fineIv: 0.31, iv: 0.01, selected: false };
    const warnings = binningWarnings([iv[0]], 0.02);
    expect(warnings[0]).toBe(
      `${iv[0].feature} (${iv[0].party}) was dropped: IV 0.0100 in its final bins against 0.3100 in its fine bins, 0.0123 of it chance (what a feature unrelated to defaults reaches on these fine bins), threshold 0.02; set binning.features.${iv[0].feature}.monotonic (none, peak or valley), max_bins or min_bin_share to keep it`,
    );
    const { html } = await modelReport({
      ...input,
      iv,
      binningWarnings: warnings,
      ivThresholds: { caution: 0.4, leakage: 0.9 },
      stability: { ...input.stability!, scored: 500, notHeld: { 'tax-bureau': 12 } },
    });
    const features = element(html, 'section', 'features');
    expect(features).toContain('<th>fine-bin IV</th>');
    expect(features).toContain(`<td class="num">${(0.31).toFixed(4)}</td>`);
    expect(features).toContain('<th>of it chance</th>');
    expect(features).toContain('<td class="num">0.0123</td>');
    expect(features).toContain('warnings count only the IV above it');
    expect(features).toContain('descending');
    expect(features).toContain(`Binning lost the information of a feature`);
    expect(features).toContain(`${iv[0].feature} (${iv[0].party}) was dropped`);
    expect(features).toContain('from 0.40 very strong');
    expect(element(html, 'section', 'stability')).toContain('tax-bureau: 12 of 500');
  });

  it("a small scoring batch's score PSI is read against what sampling alone gives", async () => {
    // Two batches of one population: 100 scored, against the held-out rows.
    const n = input.evaluation.n;
    const noise = psiNoise(100, n);
    expect(noise.mean).toBeCloseTo(9 * (1 / 100 + 1 / n), 10);
    // The chi-square of 9 degrees of freedom has its 95th percentile at 16.92.
    expect(noise.p95 / (1 / 100 + 1 / n)).toBeCloseTo(16.92, 1);
    const { html } = await modelReport({ ...input, stability: { ...input.stability!, scored: 100 } });
    expect(element(html, 'section', 'stability')).toContain(
      `With 100 scored and ${n.toLocaleString('en-US')} held-out enterprises, two batches from one population show a score PSI of about ${noise.mean.toFixed(2)} on average, and up to ${noise.p95.toFixed(2)} one time in twenty, by chance alone`,
    );
    // A batch as large as the held-out rows: no such note below a PSI of 0.05.
    const { html: large } = await modelReport({ ...input, stability: { ...input.stability!, scored: 100_000 } });
    expect(psiNoise(100_000, n).p95).toBeLessThan(0.05);
    expect(element(large, 'section', 'stability')).not.toContain('by chance alone');
  });

  it('reads IV and PSI with the usual thresholds', () => {
    expect([0.01, 0.05, 0.2, 0.4, 0.6, 1.2].map((iv) => ivStrength(iv))).toEqual(['useless', 'weak', 'medium', 'strong', 'very strong', 'check for leakage']);
    expect(ivStrength(0.7, { caution: 0.8, leakage: 2 })).toBe('strong');
    expect([0.05, 0.1, 0.2, 0.25, 0.4].map(psiStatus)).toEqual(['stable', 'moderate shift', 'moderate shift', 'significant shift', 'significant shift']);
  });
});
