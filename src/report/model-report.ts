/**
 * The bank's model report (issue 7): one self-contained HTML page with what a credit-risk committee reads before
 * approving a model — discrimination (ROC, KS, distributions), ranking (lift and gain), calibration, the cut-off's
 * confusion, feature strength (IV; a tree model's gain importance by party and feature), the scorecard or a tree
 * model's reason codes, stability (PSI) and fairness across groups.
 *
 * Charts are Vega-Lite rendered to SVG on the server and inlined, so the page runs no script, loads nothing and
 * prints as it shows. The same SVGs are returned (and written beside the page) for slides and memos.
 *
 * Inputs: a vertical job's guest folder (job-report.ts) or a downloaded horizontal model (artifact-report.ts).
 */
import { tiedGroups } from '../metrics.js';
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { psiNoise, type CreditEvaluation, type FairnessReport, type GroupFigures } from '../evaluation.js';
import type { Scorecard } from '../credit/scorecard.js';
import { calibrationChart, distributionChart, importanceChart, ivChart, ksChart, lineChart, liftGainChart, rocChart, type HistogramBin, type XY } from './charts.js';

export interface ReportIvRow {
  feature: string;
  party: string;
  iv: number;
  /** IV of the fine bins before merging (absent: the fine bins were kept). */
  fineIv?: number;
  /** The part of fineIv a feature unrelated to the label reaches on the same bins by chance. */
  chanceIv?: number;
  bins: number;
  /** Default-rate trend of the final bins (absent for a category or kept fine bins). */
  trend?: string;
  type?: 'number' | 'category';
  selected: boolean;
}

/** Where the report's IV reading turns to "very strong" and to "check for leakage" (binning.caution_iv, leakage_iv). */
export interface IvThresholds {
  caution: number;
  leakage: number;
}

export const DEFAULT_IV_THRESHOLDS: IvThresholds = { caution: 0.5, leakage: 1.0 };

export interface ReportScorecardBin {
  label: string;
  woe: number;
  points: number;
  count?: number;
  eventRate?: number;
}

export interface ReportScorecardFeature {
  feature: string;
  party: string;
  bins: ReportScorecardBin[];
}

export type ReportFairnessGroup = GroupFigures;

/** The scorecard section's input from a fedcredit scorecard (scorecard.json), vertical or horizontal. */
export function reportScorecard(card: Scorecard): NonNullable<ModelReportInput['scorecard']> {
  return {
    baseScore: card.scaling.baseScore,
    baseOdds: card.scaling.baseOdds,
    pdo: card.scaling.pdo,
    basePoints: card.basePoints,
    features: card.features.map((f) => ({
      feature: f.feature,
      party: f.party,
      bins: f.bins.map((b) => ({
        // The missing-value bin is always there, for scoring; without training rows it is no bin binning made.
        label: b.missing && b.count === 0 ? 'missing (no training rows: kept for scoring)' : b.label,
        woe: b.woe,
        points: b.points,
        ...(b.count !== undefined ? { count: b.count } : {}),
        ...(b.eventRate !== undefined ? { eventRate: b.eventRate } : {}),
      })),
    })),
  };
}

export interface ModelReportInput {
  /** A vertical job names its guest (labels) and hosts; a horizontal job its participants (each holds both). */
  job: { id: string; name: string; purpose: string; guest?: string; hosts?: string[]; participants?: string[]; finishedAt: string };
  /**
   * Held-out enterprises at the guest: label (1 = default), probability of default and, when there is a scorecard,
   * points score. For a horizontal model, the rows its published PD histogram describes (src/report/artifact-report.ts).
   */
  test: { labels: ArrayLike<number>; pd: ArrayLike<number>; score?: ArrayLike<number> };
  evaluation: CreditEvaluation;
  /** AUC of comparable models on the same held-out rows, e.g. { 'bank alone': 0.78, federated: 0.83 } (optional). */
  comparison?: Record<string, { auc: number; ks: number }>;
  /**
   * What the page says about where its figures come from, when not the vertical guest's held-out rows: `heldOut`
   * replaces the sentence under the header, `curves` opens the discrimination section, `iv` the features section,
   * `comparison` titles the comparison table (default: compared on the same held-out rows), `rows` names the rows
   * counted in the summary (default: held-out enterprises), `training` replaces the note of a missing training curve.
   */
  notes?: { heldOut?: string; curves?: string; iv?: string; comparison?: string; rows?: string; training?: string };
  validationAuc?: { epoch: number; auc: number }[];
  iv?: ReportIvRow[];
  /** The job's IV reading thresholds (default DEFAULT_IV_THRESHOLDS). */
  ivThresholds?: IvThresholds;
  /** Features binning lost (src/credit/settle.ts binningWarnings), shown above the IV table. */
  binningWarnings?: string[];
  /** Why the PDs are not a maximum-likelihood Platt calibration (src/vertical/party-model.ts fitCalibration), shown in the calibration section. */
  calibrationWarning?: string;
  /** Validation rows too few to choose the kept epoch or published round (src/evaluation.ts validationSizeWarning), shown in the training section. */
  validationWarning?: string;
  scorecard?: { baseScore: number; baseOdds: number; pdo: number; basePoints: number; features: ReportScorecardFeature[] };
  /** A tree model's feature importance: the total gain of the splits on each feature, with its owner. */
  importance?: { feature: string; party: string; gain: number }[];
  /**
   * A tree model's reason codes on the held-out enterprises (`count` per enterprise: the features that raised its PD
   * most): per feature, how many have it as their main reason (`first`) and among their `count` (`any`).
   */
  reasons?: { count: number; rows: number; features: { feature: string; party: string; first: number; any: number }[] };
  stability?: {
    scorePsi: number | null;
    features: { feature: string; party: string; psi: number }[];
    /** Scoring: enterprises scored, and per host those it holds no record of (scored neutral on its features). */
    scored?: number;
    notHeld?: Record<string, number>;
  };
  fairness?: FairnessReport;
  /** When the page says it was made; defaults to now (fix it for byte-identical output). */
  generatedAt?: string;
}

/** The page, and every figure as SVG text keyed by its file name (e.g. 'roc.svg'). */
export interface RenderedReport {
  html: string;
  figures: Record<string, string>;
}

/** At most this many points per curve: enough for a smooth line, small enough to keep the page light. */
const MAX_CURVE_POINTS = 200;
const HISTOGRAM_BINS = 30;

/* ------------------------------------------------------------------------------------------------------------ */
/* Curves                                                                                                        */
/* ------------------------------------------------------------------------------------------------------------ */

/** Indices 0..m-1 thinned to at most `max`, evenly spread, always keeping the first, the last and `keep`. */
function thin(m: number, max: number, keep: number[] = []): number[] {
  if (m <= max) return Array.from({ length: m }, (_, i) => i);
  const picked = new Set<number>(keep.filter((k) => k >= 0 && k < m));
  const slots = max - picked.size;
  for (let i = 0; i < slots; i++) picked.add(Math.round((i * (m - 1)) / Math.max(1, slots - 1)));
  return [...picked].sort((a, b) => a - b);
}

/**
 * The ROC curve of PDs (riskiest declined first): false positive rate (goods declined) against true positive rate
 * (bads declined), one point per distinct PD, thinned to at most `maxPoints`. Empty when either class is missing.
 */
export function rocCurve(labels: ArrayLike<number>, pd: ArrayLike<number>, maxPoints = MAX_CURVE_POINTS): XY[] {
  checkLengths('pd', labels, pd);
  const { groups, positives: bads, negatives: goods } = tiedGroups(labels, pd);
  if (bads === 0 || goods === 0) return [];
  const full: XY[] = [{ x: 0, y: 0 }];
  let tp = 0;
  let fp = 0;
  for (const g of groups) {
    tp += g.pos;
    fp += g.neg;
    full.push({ x: fp / goods, y: tp / bads });
  }
  return thin(full.length, maxPoints).map((i) => full[i]!);
}

export interface KsCurve {
  /** Cumulative share of goods and of bads with a value at or below x. */
  goods: XY[];
  bads: XY[];
  /** Where the two are furthest apart; |goods − bads| there is the KS statistic. */
  gap: { x: number; goods: number; bads: number };
}

/**
 * Cumulative distributions of goods and bads over `value` (PD or score), thinned to at most `maxPoints` while
 * keeping the point of largest gap. Null when either class is missing.
 */
export function ksCurve(labels: ArrayLike<number>, value: ArrayLike<number>, maxPoints = MAX_CURVE_POINTS): KsCurve | null {
  checkLengths('value', labels, value);
  const { groups, positives: bads, negatives: goods } = tiedGroups(labels, value, 'ascending');
  if (bads === 0 || goods === 0) return null;
  const steps: { x: number; goods: number; bads: number }[] = [];
  let g = 0;
  let b = 0;
  let best = 0;
  for (const group of groups) {
    g += group.neg;
    b += group.pos;
    steps.push({ x: group.value, goods: g / goods, bads: b / bads });
    if (Math.abs(g / goods - b / bads) > Math.abs(steps[best]!.goods - steps[best]!.bads)) best = steps.length - 1;
  }
  const kept = thin(steps.length, maxPoints, [best]).map((i) => steps[i]!);
  // Start both curves at zero, just left of the smallest value, so the step lines rise from the axis.
  const first = steps[0]!.x;
  const span = steps[steps.length - 1]!.x - first || 1;
  const start = { x: first - span * 1e-3, goods: 0, bads: 0 };
  const all = [start, ...kept];
  return { goods: all.map((s) => ({ x: s.x, y: s.goods })), bads: all.map((s) => ({ x: s.x, y: s.bads })), gap: steps[best]! };
}

/**
 * Equal-width histogram of `value` for goods and for bads, each class's shares summing to 1. Bins span `range`
 * (default: the smallest to the largest value); values outside it count in the end bins.
 */
export function classHistogram(labels: ArrayLike<number>, value: ArrayLike<number>, bins = HISTOGRAM_BINS, range?: [number, number]): HistogramBin[] {
  checkLengths('value', labels, value);
  if (value.length === 0) return [];
  let [lo, hi] = range ?? [Infinity, -Infinity];
  if (!range) {
    for (let i = 0; i < value.length; i++) {
      lo = Math.min(lo, value[i]!);
      hi = Math.max(hi, value[i]!);
    }
  }
  const width = (hi - lo) / bins || 1;
  const counts = { goods: new Array<number>(bins).fill(0), bads: new Array<number>(bins).fill(0) };
  let goods = 0;
  let bads = 0;
  for (let i = 0; i < value.length; i++) {
    const bin = Math.max(0, Math.min(bins - 1, Math.floor((value[i]! - lo) / width)));
    if (labels[i]! > 0.5) {
      counts.bads[bin]!++;
      bads++;
    } else {
      counts.goods[bin]!++;
      goods++;
    }
  }
  const out: HistogramBin[] = [];
  for (let k = 0; k < bins; k++) {
    const x0 = lo + k * width;
    if (goods > 0) out.push({ x0, x1: x0 + width, share: counts.goods[k]! / goods, class: 'goods' });
    if (bads > 0) out.push({ x0, x1: x0 + width, share: counts.bads[k]! / bads, class: 'bads' });
  }
  return out;
}

function checkLengths(name: string, labels: ArrayLike<number>, other: ArrayLike<number>): void {
  if (labels.length !== other.length) {
    throw new RangeError(`model report: test.labels has ${labels.length} rows but test.${name} has ${other.length}; pass one value per held-out row`);
  }
}

/**
 * The range holding all but the outer `tail` share of values at each end, so that a few extreme scores do not
 * squash the charts; the full range when that would be empty.
 */
export function centralRange(value: ArrayLike<number>, tail = 0.005): [number, number] {
  const sorted = Float64Array.from(value).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.floor(q * (sorted.length - 1))))]!;
  const [lo, hi] = [at(tail), at(1 - tail)];
  return hi > lo ? [lo, hi] : [sorted[0]!, sorted[sorted.length - 1]!];
}

/* ------------------------------------------------------------------------------------------------------------ */
/* Reading the numbers                                                                                           */
/* ------------------------------------------------------------------------------------------------------------ */

export type IvStrength = 'useless' | 'weak' | 'medium' | 'strong' | 'very strong' | 'check for leakage';

/**
 * The usual reading of a feature's information value (Siddiqi): below 0.02 useless, 0.1 weak, 0.3 medium, then
 * strong; from `caution` (0.5) very strong, as delinquency history is on bureau-like data; only from `leakage` (1.0),
 * where an honest feature is rare, a prompt to check that the feature is not dated after the outcome.
 */
export function ivStrength(iv: number, thresholds: IvThresholds = DEFAULT_IV_THRESHOLDS): IvStrength {
  if (iv < 0.02) return 'useless';
  if (iv < 0.1) return 'weak';
  if (iv < 0.3) return 'medium';
  if (iv < thresholds.caution) return 'strong';
  if (iv < thresholds.leakage) return 'very strong';
  return 'check for leakage';
}

/** A scoring batch's enterprises that a host holds no record of: counted, and how they were scored. */
function notHeldHtml(st: NonNullable<ModelReportInput['stability']>): string {
  const entries = Object.entries(st.notHeld ?? {});
  if (entries.length === 0) return '';
  const of = st.scored !== undefined ? ` of ${int(st.scored)}` : '';
  const items = entries.map(([host, n]) => `${esc(host)}: ${int(n)}${of}`).join('; ');
  return `<p>Enterprises a host holds no record of (scored neutral on that host's features, unless the job declared binning.not_held; flagged in scores.csv, column hosts_missing): ${items}.</p>\n`;
}

/** What a batch's score PSI reaches by chance against the held-out scores, when the batch is small enough to matter. */
function scoreNoise(st: NonNullable<ModelReportInput['stability']>, heldOut: number): string {
  if (st.scorePsi === null || st.scored === undefined || st.scored === 0 || heldOut === 0) return '';
  const noise = psiNoise(st.scored, heldOut);
  if (noise.p95 < 0.05) return '';
  return ` With ${int(st.scored)} scored and ${int(heldOut)} held-out enterprises, two batches from one population show a score PSI of about ${dec(noise.mean, 2)} on average, and up to ${dec(noise.p95, 2)} one time in twenty, by chance alone: read the model score's PSI against that, not the thresholds alone.`;
}

/** The usual reading of a population stability index. */
export function psiStatus(psi: number): 'stable' | 'moderate shift' | 'significant shift' {
  if (psi < 0.1) return 'stable';
  if (psi < 0.25) return 'moderate shift';
  return 'significant shift';
}

/* ------------------------------------------------------------------------------------------------------------ */
/* HTML                                                                                                          */
/* ------------------------------------------------------------------------------------------------------------ */

const esc = (s: unknown) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
const numberFormat = new Intl.NumberFormat('en-US');
const int = (v: number) => numberFormat.format(v);
const dec = (v: number | null | undefined, digits = 3) => (v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(digits));
const pct = (v: number | null | undefined, digits = 1) => (v === null || v === undefined || !Number.isFinite(v) ? '–' : `${(v * 100).toFixed(digits)}%`);
/** A difference of rates, in percentage points. */
const pp = (v: number | null | undefined, digits = 1) => (v === null || v === undefined || !Number.isFinite(v) ? '–' : `${(v * 100).toFixed(digits)} pp`);
const note = (text: string) => `<p class="note">${esc(text)}</p>`;

interface Figure {
  file: string;
  svg: string;
  caption: string;
}

/** A figure's id on the page: `fig-` and its file name without `.svg`. */
export const figureId = (file: string) => `fig-${file.replace(/\.svg$/, '')}`;

const figureHtml = (f: Figure) => `<figure id="${esc(figureId(f.file))}">${f.svg}<figcaption>${esc(f.caption)}</figcaption></figure>`;

/** A table; a row is its cells' HTML, or (a string) a whole ready-made `<tr>`. */
function table(head: string[], rows: (string[] | string)[], opts: { className?: string; numeric?: number[] } = {}): string {
  const numeric = new Set(opts.numeric ?? []);
  const cell = (tag: 'td' | 'th', c: string, j: number) => `<${tag}${numeric.has(j) ? ' class="num"' : ''}>${c}</${tag}>`;
  return (
    `<table${opts.className ? ` class="${opts.className}"` : ''}><thead><tr>${head.map((h, j) => cell('th', esc(h), j)).join('')}</tr></thead>` +
    `<tbody>${rows.map((r) => (typeof r === 'string' ? r : `<tr>${r.map((c, j) => cell('td', c, j)).join('')}</tr>`)).join('\n')}</tbody></table>`
  );
}

/** Render the report: the HTML page and its figures. */
export async function modelReport(input: ModelReportInput): Promise<RenderedReport> {
  const { job, test, evaluation: ev } = input;
  checkLengths('pd', test.labels, test.pd);
  if (test.score) checkLengths('score', test.labels, test.score);
  const figures: Figure[] = [];
  const sections: string[] = [];
  const contents: { id: string; title: string }[] = [];
  const section = (id: string, title: string, body: string) => {
    contents.push({ id, title });
    return `<section id="${id}">\n<h2>${esc(title)}</h2>\n${body}\n</section>`;
  };

  /* Summary */
  const headline = table(
    ['measure', 'value'],
    [
      ['AUC', dec(ev.auc)],
      ['KS', dec(ev.ks)],
      ['Gini (2·AUC − 1)', dec(ev.gini)],
      [input.notes?.rows ?? 'held-out enterprises', int(ev.n)],
      ['defaults', `${int(ev.defaults)} (${pct(ev.n > 0 ? ev.defaults / ev.n : NaN)})`],
      ['top-decile lift', ev.deciles[0] ? `${dec(ev.deciles[0].lift, 2)}×` : '–'],
    ],
    { className: 'kv', numeric: [1] },
  );
  let comparison = '';
  const compared = Object.entries(input.comparison ?? {});
  if (compared.length > 0) {
    const bestAuc = Math.max(...compared.map(([, m]) => m.auc));
    comparison =
      `<h3>${esc(input.notes?.comparison ?? 'Compared on the same held-out rows')}</h3>` +
      table(
        ['model', 'AUC', 'KS', 'Gini'],
        compared.map(([name, m]) => {
          const b = (s: string) => (m.auc === bestAuc ? `<strong>${s}</strong>` : s);
          return [b(esc(name)), b(dec(m.auc)), dec(m.ks), dec(2 * m.auc - 1)];
        }),
        { numeric: [1, 2, 3] },
      );
  }
  sections.push(section('summary', 'Summary', `<div class="row"><div>${headline}</div><div>${comparison}</div></div>`));

  /* Discrimination */
  const useScore = test.score !== undefined && test.score.length > 0;
  const value = useScore ? test.score! : test.pd;
  const valueName = useScore ? 'score (points)' : 'PD';
  const discrimination: string[] = [];
  if (input.notes?.curves) discrimination.push(`<p>${esc(input.notes.curves)}</p>`);
  const curves: Figure[] = [];
  const roc = rocCurve(test.labels, test.pd);
  const ks = ksCurve(test.labels, value);
  const range = value.length > 0 ? centralRange(value) : undefined;
  if (roc.length === 0 || !ks) {
    discrimination.push(note('The held-out rows hold only one class (all defaults or none), so ROC and KS curves cannot be drawn.'));
  } else {
    curves.push({
      file: 'roc.svg',
      svg: await rocChart(roc, ev.auc),
      caption: 'ROC curve: declining applicants from the highest PD down, the share of defaulters caught against the share of good payers turned away. The dashed diagonal is a random ranking.',
    });
    const ksValue = Math.abs(ks.gap.goods - ks.gap.bads);
    const differs = Math.abs(ksValue - ev.ks) >= 0.0005 ? ` (the summary's ${dec(ev.ks)} is on the unrounded PD)` : '';
    curves.push({
      file: 'ks.svg',
      svg: await ksChart(ks.goods, ks.bads, ks.gap, `${valueName} threshold`, range),
      caption: `Kolmogorov-Smirnov: share of goods and of bads at or below each ${valueName} threshold. The bar marks the largest gap, KS = ${dec(ksValue)} at ${valueName} ${dec(ks.gap.x, useScore ? 0 : 3)}${differs}.`,
    });
  }
  const hist = classHistogram(test.labels, value, HISTOGRAM_BINS, range);
  if (hist.length > 0) {
    curves.push({
      file: 'score-distribution.svg',
      svg: await distributionChart(hist, valueName, useScore ? undefined : { x: ev.confusion.cutoff, label: `cut-off ${dec(ev.confusion.cutoff, 2)}` }),
      caption: `Distribution of the ${valueName} for enterprises that repaid (goods) and that defaulted (bads), each as a share of its own class; the less the two overlap, the better the model separates them. The most extreme 0.5% at each end are counted in the end bins.`,
    });
  }
  figures.push(...curves);
  if (curves.length > 0) discrimination.push(`<div class="charts">${curves.map(figureHtml).join('\n')}</div>`);
  sections.push(section('discrimination', 'Discrimination', discrimination.join('\n')));

  /* Ranking: lift and gain by decile */
  if (ev.deciles.length > 0) {
    const lift: Figure = {
      file: 'lift-gain.svg',
      svg: await liftGainChart(ev.deciles),
      caption:
        'Left: default rate of each tenth of applicants, riskiest first, over the overall rate (dashed line = 1, no better than random). Right: share of all defaults caught when declining the riskiest tenths; the diagonal is a random ranking.',
    };
    figures.push(lift);
    // Deciles from a PD histogram split a cell that straddles two of them in proportion: defaults need not be whole.
    const split = ev.deciles.some((d) => !Number.isInteger(d.defaults));
    const rows = ev.deciles.map((d) => [String(d.decile), int(d.count), split ? dec(d.defaults, 1) : int(d.defaults), pct(d.defaultRate), `${dec(d.lift, 2)}×`, pct(d.cumulativeGain)]);
    const splitNote = split ? `\n<p class="dim">A PD cell that straddles two deciles is split between them in proportion to its rows, so a decile's defaults need not be a whole number.</p>` : '';
    sections.push(
      section(
        'ranking',
        'Ranking: lift and gain',
        `${figureHtml(lift)}\n${table(['decile (1 = riskiest)', 'enterprises', 'defaults', 'default rate', 'lift', 'cumulative gain'], rows, { numeric: [0, 1, 2, 3, 4, 5] })}${splitNote}`,
      ),
    );
  } else {
    sections.push(section('ranking', 'Ranking: lift and gain', note('No decile table in the evaluation; lift and gain omitted.')));
  }

  /* Cut-off */
  const c = ev.confusion;
  const declined = c.truePositives + c.falsePositives;
  const bads = c.truePositives + c.falseNegatives;
  const goods = c.falsePositives + c.trueNegatives;
  const confusion = table(
    ['', `declined (PD ≥ ${dec(c.cutoff, 2)})`, `approved (PD < ${dec(c.cutoff, 2)})`, 'total'],
    [
      ['<strong>defaulted</strong>', `${int(c.truePositives)} <span class="dim">caught</span>`, `${int(c.falseNegatives)} <span class="dim">missed</span>`, int(bads)],
      ['<strong>repaid</strong>', `${int(c.falsePositives)} <span class="dim">turned away</span>`, `${int(c.trueNegatives)} <span class="dim">approved</span>`, int(goods)],
      ['<strong>total</strong>', int(declined), int(c.trueNegatives + c.falseNegatives), int(bads + goods)],
    ],
    { className: 'confusion', numeric: [1, 2, 3] },
  );
  const rates = table(
    ['at this cut-off', 'value'],
    [
      ['approval rate', pct(c.approvalRate)],
      ['default rate among the approved', pct(c.approvedDefaultRate)],
      ['defaults caught (recall)', pct(bads > 0 ? c.truePositives / bads : NaN)],
      ['defaults among the declined (precision)', pct(declined > 0 ? c.truePositives / declined : NaN)],
      ['good payers turned away', pct(goods > 0 ? c.falsePositives / goods : NaN)],
    ],
    { className: 'kv', numeric: [1] },
  );
  sections.push(section('cutoff', `Decisions at the cut-off PD ${dec(c.cutoff, 2)}`, `<div class="row"><div>${confusion}</div><div>${rates}</div></div>`));

  /* Calibration */
  const calibrationWarning = input.calibrationWarning ? `<div class="warning"><strong>The PDs are not calibrated as asked:</strong> ${esc(input.calibrationWarning)}.</div>\n` : '';
  if (ev.calibration.length > 0) {
    const cal: Figure = {
      file: 'calibration.svg',
      svg: await calibrationChart(ev.calibration),
      caption:
        'Calibration: in bins of equal size by PD, the mean predicted PD against the default rate observed. On the dashed line the PDs can be read as probabilities; above it the model underestimates risk.',
    };
    figures.push(cal);
    const rows = ev.calibration.map((b, i) => [String(i + 1), int(b.count), pct(b.meanPd, 2), pct(b.observedRate, 2), `${b.observedRate >= b.meanPd ? '+' : ''}${pp(b.observedRate - b.meanPd, 2)}`]);
    sections.push(
      section(
        'calibration',
        'Calibration',
        `${calibrationWarning}<div class="row">${figureHtml(cal)}<div>${table(['bin (low PD first)', 'enterprises', 'mean PD', 'observed rate', 'observed − predicted'], rows, { numeric: [0, 1, 2, 3, 4] })}</div></div>`,
      ),
    );
  } else {
    sections.push(section('calibration', 'Calibration', calibrationWarning + note('No calibration bins in the evaluation; calibration omitted.')));
  }

  /* Training */
  const validationWarning = input.validationWarning ? `<div class="warning"><strong>The model was chosen on too few validation rows:</strong> ${esc(input.validationWarning)}.</div>\n` : '';
  const epochs = input.validationAuc ?? [];
  if (epochs.length > 0) {
    const fig: Figure = {
      file: 'validation-auc.svg',
      svg: await lineChart('Validation AUC by epoch', 'epoch', 'AUC', [{ name: 'validation AUC', points: epochs.map((e) => ({ x: e.epoch, y: e.auc })) }]),
      caption: `AUC on the validation split after each training epoch (${epochs.length} epochs; best ${dec(Math.max(...epochs.map((e) => e.auc)))}).`,
    };
    figures.push(fig);
    sections.push(section('training', 'Training', validationWarning + figureHtml(fig)));
  } else {
    sections.push(section('training', 'Training', validationWarning + note(input.notes?.training ?? 'No validation AUC by epoch was recorded for this job; training curve omitted.')));
  }

  /* Features: information value */
  if (input.iv && input.iv.length > 0) {
    const sorted = [...input.iv].sort((a, b) => b.iv - a.iv || a.feature.localeCompare(b.feature));
    const fig: Figure = {
      file: 'iv.svg',
      svg: await ivChart(sorted),
      caption: 'Information value of each candidate feature, with its owner. Dashed lines at 0.02, 0.1 and 0.3 separate useless, weak, medium and strong features.',
    };
    figures.push(fig);
    const thresholds = input.ivThresholds ?? DEFAULT_IV_THRESHOLDS;
    const anyFine = sorted.some((r) => r.fineIv !== undefined);
    const anyChance = anyFine && sorted.some((r) => r.chanceIv !== undefined);
    const rows = sorted.map((r) => {
      const strength = ivStrength(r.iv, thresholds);
      const fine = anyFine ? `<td class="num">${r.fineIv === undefined ? '–' : dec(r.fineIv, 4)}</td>` : '';
      const chance = anyChance ? `<td class="num">${r.chanceIv === undefined ? '–' : dec(r.chanceIv, 4)}</td>` : '';
      const shape = anyFine ? `<td>${esc(r.type === 'category' ? 'category' : (r.trend ?? '–'))}</td>` : '';
      return `<tr${r.selected ? ' class="selected"' : ''}><td>${esc(r.feature)}</td><td>${esc(r.party)}</td>${fine}${chance}<td class="num">${dec(r.iv, 4)}</td><td class="num">${int(r.bins)}</td>${shape}<td class="iv-${strength.replace(/ /g, '-')}">${strength}</td><td>${r.selected ? '✔ selected' : '<span class="dim">no</span>'}</td></tr>`;
    });
    const selected = sorted.filter((r) => r.selected).length;
    const warnings = input.binningWarnings ?? [];
    const warningHtml =
      warnings.length > 0
        ? `<div class="warning"><strong>Binning lost the information of ${warnings.length === 1 ? 'a feature' : `${warnings.length} features`}:</strong><ul>${warnings.map((w) => `<li>${esc(w)}</li>`).join('')}</ul></div>\n`
        : '';
    const head = anyFine
      ? ['feature', 'party', 'fine-bin IV', ...(anyChance ? ['of it chance'] : []), 'IV', 'bins', 'trend', 'strength', 'in model']
      : ['feature', 'party', 'IV', 'bins', 'strength', 'in model'];
    sections.push(
      section(
        'features',
        'Features: information value',
        `<p>${input.notes?.iv ? esc(input.notes.iv) : `${int(selected)} of ${int(sorted.length)} candidate features selected.`} IV below 0.02 is useless, below 0.1 weak, below 0.3 medium, then strong; from ${dec(thresholds.caution, 2)} very strong (as delinquency history often is); from ${dec(thresholds.leakage, 2)}, check that the feature is not recorded after the outcome.${anyFine ? ' Fine-bin IV is what the feature held before its bins were merged under the binning constraints.' : ''}${anyChance ? ' Of it, chance is what a feature unrelated to defaults reaches on the same fine bins and rows (about (bins − 1) × (1/defaults + 1/non-defaults)): on a few hundred rows most of the fine-bin IV of a weak feature; warnings count only the IV above it.' : ''} Bins are the value bins <code>max_bins</code> bounds (numeric bins, or groups of levels); a feature's special-value bins and its missing-value bin come on top.</p>\n` +
          warningHtml +
          `<div class="row">${figureHtml(fig)}<div>${table(head, rows, { className: 'iv' })}</div></div>`,
      ),
    );
  } else {
    sections.push(section('features', 'Features: information value', note('No information-value analysis was supplied for this job; section omitted.')));
  }

  /* Features: gain importance (trees) */
  const importance = input.importance?.filter((r) => r.gain > 0) ?? [];
  if (importance.length > 0) {
    const sorted = [...importance].sort((a, b) => b.gain - a.gain || a.feature.localeCompare(b.feature));
    const total = sorted.reduce((s, r) => s + r.gain, 0);
    const byParty = new Map<string, number>();
    for (const r of sorted) byParty.set(r.party, (byParty.get(r.party) ?? 0) + r.gain);
    const fig: Figure = {
      file: 'importance.svg',
      svg: await importanceChart(sorted.map((r) => ({ label: `${r.feature} (${r.party})`, party: r.party, value: r.gain / total }))),
      caption: "Each feature's share of the trees' total split gain, coloured by the party that holds it.",
    };
    figures.push(fig);
    const partyRows = [...byParty].sort((a, b) => b[1] - a[1]).map(([party, gain]) => [esc(party), dec(gain, 2), pct(gain / total)]);
    const featureRows = sorted.map((r) => [esc(r.feature), esc(r.party), dec(r.gain, 2), pct(r.gain / total)]);
    sections.push(
      section(
        'importance',
        'Features: gain importance',
        `<p>The loss reduction of every split the trees make, summed per feature and per party: what each party's data brings to the model. A feature no tree splits on is left out.</p>\n` +
          `<div class="row">${figureHtml(fig)}<div>${table(['party', 'gain', 'share'], partyRows, { numeric: [1, 2] })}${table(['feature', 'party', 'gain', 'share'], featureRows, { numeric: [2, 3] })}</div></div>`,
      ),
    );
  }

  /* Reason codes (trees) */
  const reasons = input.reasons;
  if (reasons && reasons.rows > 0) {
    const rows = [...reasons.features]
      .filter((f) => f.any > 0)
      .sort((a, b) => b.first - a.first || b.any - a.any || a.feature.localeCompare(b.feature))
      .map((f) => [esc(f.feature), esc(f.party), int(f.first), pct(f.first / reasons.rows), int(f.any), pct(f.any / reasons.rows)]);
    sections.push(
      section(
        'reasons',
        'Reason codes',
        `<p>Each scored enterprise gets up to ${int(reasons.count)} reason codes: the features, named with their party, that raised its PD most (each split's change of the tree's value credited to the split's feature, along the enterprise's path through every tree). How often each feature is a reason on the ${int(reasons.rows)} held-out enterprises:</p>\n` +
          table(['feature', 'party', 'main reason', 'share', `among the ${reasons.count}`, 'share'], rows, { numeric: [2, 3, 4, 5] }),
      ),
    );
  }

  /* Scorecard */
  const sc = input.scorecard;
  if (sc && sc.features.length > 0) {
    const hasCount = sc.features.some((f) => f.bins.some((b) => b.count !== undefined));
    const hasRate = sc.features.some((f) => f.bins.some((b) => b.eventRate !== undefined));
    const head = ['feature', 'party', 'bin', ...(hasCount ? ['enterprises'] : []), ...(hasRate ? ['default rate'] : []), 'WOE', 'points'];
    const rows = sc.features.flatMap((f) =>
      f.bins.map((b, i) => {
        const lead = i === 0 ? `<td rowspan="${f.bins.length}" class="feature">${esc(f.feature)}</td><td rowspan="${f.bins.length}">${esc(f.party)}</td>` : '';
        const extra = (hasCount ? `<td class="num">${b.count === undefined ? '–' : int(b.count)}</td>` : '') + (hasRate ? `<td class="num">${pct(b.eventRate)}</td>` : '');
        return `<tr${i === 0 ? ' class="first"' : ''}>${lead}<td>${esc(b.label)}</td>${extra}<td class="num">${dec(b.woe, 3)}</td><td class="num"><strong>${esc(Math.round(b.points))}</strong></td></tr>`;
      }),
    );
    sections.push(
      section(
        'scorecard',
        'Scorecard',
        `<p>Base score ${esc(dec(sc.baseScore, 0))} at good:bad odds of ${esc(dec(sc.baseOdds, sc.baseOdds % 1 === 0 ? 0 : 2))}:1; every ${esc(dec(sc.pdo, 0))} points double the odds (PDO). ` +
          `Every applicant starts from ${esc(dec(sc.basePoints, 0))} base points and adds the points of the bin each feature falls in; higher scores are safer.</p>\n` +
          table(head, rows, { className: 'scorecard' }),
      ),
    );
  } else {
    sections.push(section('scorecard', 'Scorecard', note('This model has no points scorecard; section omitted.')));
  }

  /* Stability */
  const st = input.stability;
  if (st && (st.scorePsi !== null || st.features.length > 0)) {
    const status = (psi: number) => {
      const s = psiStatus(psi);
      return `<td class="psi-${s.replace(/ /g, '-')}">${s}</td>`;
    };
    const rows: string[] = [];
    if (st.scorePsi !== null) rows.push(`<tr class="first"><td><strong>model score</strong></td><td>–</td><td class="num">${dec(st.scorePsi, 4)}</td>${status(st.scorePsi)}</tr>`);
    for (const f of [...st.features].sort((a, b) => b.psi - a.psi)) {
      rows.push(`<tr><td>${esc(f.feature)}</td><td>${esc(f.party)}</td><td class="num">${dec(f.psi, 4)}</td>${status(f.psi)}</tr>`);
    }
    sections.push(
      section(
        'stability',
        'Stability',
        `<p>Population stability index between the training population and the held-out one: below 0.1 stable, 0.1 to 0.25 a moderate shift to watch, 0.25 or more a significant shift.${st.scorePsi === null ? ' No score PSI was computed.' : ''}${scoreNoise(st, ev.n)}</p>\n` +
          notHeldHtml(st) +
          table(['feature', 'party', 'PSI', 'reading'], rows, { className: 'stability' }),
      ),
    );
  } else {
    sections.push(section('stability', 'Stability', note('No population stability figures were supplied; section omitted.')));
  }

  /* Fairness */
  const fa = input.fairness;
  if (fa && fa.groups.length > 0) {
    const key = (s: string) => s.toLowerCase().replace(/[^a-z0-9]/g, '');
    const flagged = new Set(fa.flagged.map(key));
    const metrics = [
      { key: 'defaultRate', title: 'default rate', fmt: (v: number | null) => pct(v) },
      { key: 'approvalRate', title: 'approval rate', fmt: (v: number | null) => pct(v) },
      { key: 'auc', title: 'AUC', fmt: (v: number | null) => dec(v) },
      { key: 'ks', title: 'KS', fmt: (v: number | null) => dec(v) },
    ] as const;
    const isFlagged = (k: string) => flagged.has(key(k));
    const th = (m: (typeof metrics)[number]) => `<th class="num${isFlagged(m.key) ? ' flag' : ''}">${esc(m.title)}${isFlagged(m.key) ? ' ⚑' : ''}</th>`;
    const head = `<thead><tr><th>${esc(fa.column)}</th><th class="num">enterprises</th><th class="num">defaults</th>${metrics.map(th).join('')}</tr></thead>`;
    const rows = fa.groups.map(
      (g) =>
        `<tr><td>${esc(g.group)}</td><td class="num">${int(g.n)}</td><td class="num">${int(g.defaults)}</td>` +
        metrics.map((m) => `<td class="num${isFlagged(m.key) ? ' flag-col' : ''}">${m.fmt(g[m.key])}</td>`).join('') +
        '</tr>',
    );
    const gapRow =
      `<tr class="gap"><td><strong>largest gap</strong></td><td></td><td></td>` +
      metrics.map((m) => `<td class="num${isFlagged(m.key) ? ' flag' : ''}">${m.key === 'auc' || m.key === 'ks' ? dec(fa.gaps[m.key]) : pp(fa.gaps[m.key])}</td>`).join('') +
      '</tr>';
    const verdict =
      fa.flagged.length > 0
        ? `<p class="flag-note">⚑ Gap above ${esc(dec(fa.maxGap, 3))} (${pp(fa.maxGap)} for rates) for: ${fa.flagged.map((f) => `<strong>${esc(metrics.find((m) => key(m.key) === key(f))?.title ?? f)}</strong>`).join(', ')}. Review before approval.</p>`
        : `<p class="ok">No gap between groups exceeds ${esc(dec(fa.maxGap, 3))} (${pp(fa.maxGap)} for rates).</p>`;
    sections.push(
      section(
        'fairness',
        `Fairness by ${fa.column}`,
        `<p>Outcomes and model quality per group of <code>${esc(fa.column)}</code> at the cut-off PD ${esc(dec(fa.cutoff, 2))}. ` +
          `A gap is the largest difference between two groups, in percentage points (pp) for rates.</p>\n<table class="fairness">${head}<tbody>${rows.join('\n')}\n${gapRow}</tbody></table>\n${verdict}`,
      ),
    );
  } else {
    sections.push(section('fairness', 'Fairness', note('No fairness breakdown was supplied; section omitted.')));
  }

  const generated = input.generatedAt ?? new Date().toISOString();
  const hosts = job.hosts ?? [];
  const parties = job.participants
    ? `<dt>participants</dt><dd>${job.participants.map(esc).join(', ')} <span class="dim">(each holds the labels and features of its own customers)</span></dd>`
    : `<dt>guest (labels)</dt><dd>${esc(job.guest ?? '–')}</dd>\n<dt>hosts</dt><dd>${hosts.length > 0 ? hosts.map(esc).join(', ') : '–'}</dd>`;
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Model report: ${esc(job.name)}</title>
<style>${CSS}</style></head>
<body>
<header>
<h1>Model report: ${esc(job.name)}</h1>
<dl>
<dt>job</dt><dd><code>${esc(job.id)}</code></dd>
<dt>purpose</dt><dd>${esc(job.purpose)}</dd>
${parties}
<dt>finished</dt><dd>${esc(job.finishedAt)}</dd>
<dt>report made</dt><dd>${esc(generated)}</dd>
</dl>
<p class="dim">${esc(input.notes?.heldOut ?? `Figures computed at the guest on ${int(ev.n)} held-out enterprises the model did not see in training.`)} No party's raw data is in this report.</p>
<nav><ol>${contents.map((c) => `<li><a href="#${c.id}">${esc(c.title)}</a></li>`).join('')}</ol></nav>
</header>
<main>
${sections.join('\n')}
</main>
<footer class="dim">fedcredit model report · ${esc(job.id)}</footer>
</body></html>
`;
  return { html, figures: Object.fromEntries(figures.map((f) => [f.file, f.svg])) };
}

/**
 * Write the page to `outFile` and each figure to `<basename>-figures/<name>.svg` beside it. Returns the paths
 * written: the page, then the figures.
 */
export async function writeModelReport(input: ModelReportInput, outFile: string): Promise<{ html: string; figures: string[] }> {
  const report = await modelReport(input);
  const folder = join(dirname(outFile), `${basename(outFile, extname(outFile))}-figures`);
  await mkdir(folder, { recursive: true });
  await writeFile(outFile, report.html);
  const figures: string[] = [];
  for (const [name, svg] of Object.entries(report.figures)) {
    const file = join(folder, name);
    await writeFile(file, svg);
    figures.push(file);
  }
  return { html: outFile, figures };
}

const CSS = `
:root{--ink:#1d1d1f;--dim:#666;--rule:#d0d0d0;--bad:#b00020;--ok:#176b2c;--flag-bg:#fde7ea;--sel-bg:#eef4fb}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--ink);margin:2em auto;max-width:1180px;padding:0 1.5em}
h1{font-size:1.7em;margin:0 0 .4em}h2{font-size:1.3em;border-bottom:2px solid var(--ink);padding-bottom:.15em;margin:1.8em 0 .7em}h3{font-size:1.05em;margin:0 0 .4em}
header dl{display:grid;grid-template-columns:max-content 1fr;gap:.15em 1em;margin:0 0 .6em}header dt{color:var(--dim)}header dd{margin:0}
nav ol{display:flex;flex-wrap:wrap;gap:.2em 1.4em;padding:0;margin:.6em 0 0;list-style:none;counter-reset:s}nav li{counter-increment:s}nav li::before{content:counter(s) ". ";color:var(--dim)}
a{color:#1a5fb4}
.dim{color:var(--dim)}.note{color:var(--dim);font-style:italic;border-left:3px solid var(--rule);padding:.2em .8em}
.ok{color:var(--ok)}.flag-note{color:var(--bad)}
.row{display:flex;flex-wrap:wrap;gap:1.5em 2.5em;align-items:flex-start}
.charts{display:flex;flex-wrap:wrap;gap:1.5em 2em;align-items:flex-start}
figure{margin:0 0 1em;max-width:100%;display:table}figure svg{display:block;max-width:100%;height:auto}
figcaption{display:table-caption;caption-side:bottom;font-size:12.5px;color:var(--dim);margin-top:.3em}
table{border-collapse:collapse;margin:0 0 1em;font-variant-numeric:tabular-nums}
th,td{border-bottom:1px solid var(--rule);padding:4px 10px;text-align:left;vertical-align:top}
thead th{border-bottom:2px solid var(--ink);font-weight:600;white-space:nowrap}
.num{text-align:right}
table.kv td:first-child{color:var(--dim)}table.kv td.num{font-weight:600;font-size:1.05em}
table.confusion td:first-child{white-space:nowrap}
tr.selected{background:var(--sel-bg)}
.iv-useless{color:var(--dim)}.iv-strong,.iv-very-strong{color:var(--ok);font-weight:600}.iv-check-for-leakage{color:#8a5a00;font-weight:600}.warning{border-left:3px solid #c98a00;padding:.2em .8em;background:#fff8e6}
table.scorecard tr.first td{border-top:2px solid #999}table.scorecard td.feature{font-weight:600}
.psi-stable{color:var(--ok)}.psi-moderate-shift{color:#a35f00;font-weight:600}.psi-significant-shift{color:var(--bad);font-weight:700;background:var(--flag-bg)}
tr.gap td{border-top:2px solid var(--ink)}
.flag{background:var(--flag-bg);color:var(--bad);font-weight:700}.flag-col{background:#fff5f6}
code{font-size:12.5px}
footer{margin-top:3em;border-top:1px solid var(--rule);padding-top:.5em;font-size:12px}
@media print{
  @page{size:A4;margin:14mm}
  body{margin:0;max-width:none;padding:0;font-size:10.5pt}
  nav{display:none}
  a{color:inherit;text-decoration:none}
  h2{break-after:avoid;page-break-after:avoid}
  figure,table.kv,table.confusion,tr{break-inside:avoid;page-break-inside:avoid}
  .flag,.flag-col,tr.selected,.psi-significant-shift{-webkit-print-color-adjust:exact;print-color-adjust:exact}
}
`;
