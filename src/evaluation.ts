/**
 * What a credit modeller reports beyond AUC and KS (issue 7, evaluation): Gini, lift and gain by decile, the
 * confusion at a cut-off, calibration by bin, and the population stability index between two score batches.
 * Labels are 1 for default; `pd` are probabilities of default (higher = riskier).
 */
import { auc, binaryMetrics, ks } from './metrics.js';

export interface DecileRow {
  /** 1 = the riskiest tenth. */
  decile: number;
  count: number;
  defaults: number;
  defaultRate: number;
  /** Default rate of this decile over the overall default rate. */
  lift: number;
  /** Share of all defaults caught in this and the riskier deciles. */
  cumulativeGain: number;
}

export interface Confusion {
  cutoff: number;
  /** Declined (pd ≥ cutoff) and defaulted. */
  truePositives: number;
  falsePositives: number;
  trueNegatives: number;
  falseNegatives: number;
  /** Share approved (pd < cutoff). */
  approvalRate: number;
  /** Default rate among the approved. */
  approvedDefaultRate: number;
}

export interface CalibrationBin {
  meanPd: number;
  observedRate: number;
  count: number;
}

export interface CreditEvaluation {
  n: number;
  defaults: number;
  auc: number;
  ks: number;
  gini: number;
  deciles: DecileRow[];
  confusion: Confusion;
  calibration: CalibrationBin[];
}

/** Row indices ordered by risk, riskiest first; ties keep their input order, so the result is deterministic. */
function byRiskDescending(pd: ArrayLike<number>): number[] {
  return Array.from({ length: pd.length }, (_, i) => i).sort((a, b) => pd[b]! - pd[a]! || a - b);
}

/** Split `order` into `k` groups of (nearly) equal size, the first groups taking the remainder. */
function groupsOf(order: number[], k: number): number[][] {
  const out: number[][] = [];
  let start = 0;
  for (let g = 0; g < k; g++) {
    const size = Math.floor(order.length / k) + (g < order.length % k ? 1 : 0);
    out.push(order.slice(start, start + size));
    start += size;
  }
  return out;
}

export function liftTable(labels: ArrayLike<number>, pd: ArrayLike<number>, groups = 10): DecileRow[] {
  const totalDefaults = Array.from(labels).reduce((s, y) => s + y, 0);
  const overall = totalDefaults / labels.length;
  let caught = 0;
  return groupsOf(byRiskDescending(pd), groups).map((rows, i) => {
    const defaults = rows.reduce((s, r) => s + labels[r]!, 0);
    caught += defaults;
    const rate = rows.length > 0 ? defaults / rows.length : 0;
    return { decile: i + 1, count: rows.length, defaults, defaultRate: rate, lift: overall > 0 ? rate / overall : Number.NaN, cumulativeGain: totalDefaults > 0 ? caught / totalDefaults : Number.NaN };
  });
}

export function confusionAt(labels: ArrayLike<number>, pd: ArrayLike<number>, cutoff: number): Confusion {
  let tp = 0,
    fp = 0,
    tn = 0,
    fn = 0;
  for (let i = 0; i < labels.length; i++) {
    const declined = pd[i]! >= cutoff;
    const bad = labels[i] === 1;
    if (declined && bad) tp++;
    else if (declined) fp++;
    else if (bad) fn++;
    else tn++;
  }
  const approved = tn + fn;
  return {
    cutoff,
    truePositives: tp,
    falsePositives: fp,
    trueNegatives: tn,
    falseNegatives: fn,
    approvalRate: approved / labels.length,
    approvedDefaultRate: approved > 0 ? fn / approved : Number.NaN,
  };
}

/** Mean predicted PD against the observed default rate, in `bins` equal-count bins of PD (ordered by `logOdds`, see evaluateCredit). */
export function calibrationBins(labels: ArrayLike<number>, pd: ArrayLike<number>, bins = 10, logOdds: ArrayLike<number> = pd): CalibrationBin[] {
  return groupsOf(byRiskDescending(logOdds).reverse(), bins)
    .filter((rows) => rows.length > 0)
    .map((rows) => ({
      meanPd: rows.reduce((s, r) => s + pd[r]!, 0) / rows.length,
      observedRate: rows.reduce((s, r) => s + labels[r]!, 0) / rows.length,
      count: rows.length,
    }));
}

/** Shares below this floor are raised to it, so that an empty bin gives a large but finite PSI term. */
const PSI_SHARE_FLOOR = 1e-4;

/**
 * Population stability index from the counts of two batches over the same bins: Σ (a − e)·ln(a / e) over the bins'
 * shares, each share floored at 1e-4 so that an empty bin counts as a large but finite shift.
 */
export function psiFromCounts(expected: readonly number[], actual: readonly number[]): number {
  if (expected.length !== actual.length) {
    throw new RangeError(`expected has ${expected.length} bins and actual ${actual.length}; PSI compares the same bins`);
  }
  const shares = (counts: readonly number[], name: string) => {
    let total = 0;
    for (const c of counts) {
      if (!(c >= 0) || !Number.isFinite(c)) throw new RangeError(`${name} holds the count ${c}; counts must be finite and ≥ 0`);
      total += c;
    }
    if (total === 0) throw new RangeError(`${name} holds no rows`);
    return counts.map((c) => Math.max(c / total, PSI_SHARE_FLOOR));
  };
  const e = shares(expected, 'expected');
  const a = shares(actual, 'actual');
  return e.reduce((s, ei, i) => s + (a[i]! - ei) * Math.log(a[i]! / ei), 0);
}

/**
 * Population stability index between a reference batch (`expected`, e.g. the training scores) and a new one
 * (`actual`), over `bins` bins cut at the reference's quantiles: Σ (a − e)·ln(a / e) over the bins' shares, with
 * empty shares floored at 1e-4 (see psiFromCounts). Below 0.1 is usually read as stable, above 0.25 as a shift.
 */
export function populationStabilityIndex(expected: ArrayLike<number>, actual: ArrayLike<number>, bins = 10): number {
  const sorted = Float64Array.from(expected).sort();
  const edges = Array.from({ length: bins - 1 }, (_, i) => sorted[Math.floor(((i + 1) * sorted.length) / bins)]!);
  const counts = (values: ArrayLike<number>) => {
    const out = new Array<number>(bins).fill(0);
    for (let i = 0; i < values.length; i++) {
      let b = 0;
      while (b < edges.length && values[i]! >= edges[b]!) b++;
      out[b]!++;
    }
    return out;
  };
  return psiFromCounts(counts(expected), counts(actual));
}

/**
 * The PSI two batches of `n1` and `n2` drawn from one population show by chance, over `bins` bins: about
 * (bins − 1)·(1/n1 + 1/n2) on average, as a PSI is then close to a chi-square of bins − 1 degrees of freedom times
 * (1/n1 + 1/n2); `p95` is that chi-square's 95th percentile (Wilson–Hilferty) times the same factor. Small batches show
 * a "shift" by chance alone: 100 enterprises against 143 reach 0.15 on average.
 */
export function psiNoise(n1: number, n2: number, bins = 10): { mean: number; p95: number } {
  const df = bins - 1;
  const factor = 1 / n1 + 1 / n2;
  const v = 2 / (9 * df);
  return { mean: df * factor, p95: df * (1 - v + 1.6449 * Math.sqrt(v)) ** 3 * factor };
}

/**
 * Standard error of an AUC measured on `defaults` and `nonDefaults` rows (Hanley and McNeil, Radiology 1982): with
 * Q1 = A/(2 − A) and Q2 = 2A²/(1 + A), SE² = [A(1 − A) + (D − 1)(Q1 − A²) + (N − 1)(Q2 − A²)] / (D·N).
 */
export function aucStandardError(auc: number, defaults: number, nonDefaults: number): number {
  const q1 = auc / (2 - auc);
  const q2 = (2 * auc * auc) / (1 + auc);
  return Math.sqrt((auc * (1 - auc) + (defaults - 1) * (q1 - auc * auc) + (nonDefaults - 1) * (q2 - auc * auc)) / (defaults * nonDefaults));
}

/**
 * A published validation AUC with its two uncertainties told apart: the sampling error of its rows (Hanley–McNeil),
 * which says whether another model's AUC differs from it, and the bound of reading it from a histogram of PD cells.
 */
export function validationAucText(e: { auc: number; aucMaxError: number; n: number; defaults: number }): string {
  const se = e.defaults > 0 && e.defaults < e.n ? `standard error ${aucStandardError(e.auc, e.defaults, e.n - e.defaults).toFixed(3)}; ` : '';
  return `AUC ${e.auc.toFixed(4)} (${se}read from the PD histogram to within ±${e.aucMaxError.toFixed(4)})`;
}

/**
 * The standard error of a validation AUC above which the AUC cannot choose between epochs or rounds: their AUCs
 * commonly differ by less than 0.02 (1,000 validation rows at a 22% default rate and an AUC of 0.77 stay under
 * it; 62 rows with 19 defaults give about 0.065).
 */
export const VALIDATION_AUC_SE_BOUND = 0.02;

/**
 * The warning for a model chosen by a validation AUC too uncertain to choose (its standard error above
 * VALIDATION_AUC_SE_BOUND), naming the rows, defaults, the error and `fix`; undefined when the rows can choose.
 */
export function validationSizeWarning(validation: { rows: number; defaults: number; auc: number }, chose: string, fix: string): string | undefined {
  const { rows, defaults, auc } = validation;
  if (!(defaults > 0 && defaults < rows && Number.isFinite(auc))) return undefined;
  const se = aucStandardError(auc, defaults, rows - defaults);
  if (!(se > VALIDATION_AUC_SE_BOUND)) return undefined;
  return `the validation set is too small to choose ${chose}: on ${rows} validation rows, ${defaults} of them defaults, the validation AUC has a standard error of ${se.toFixed(3)} (Hanley–McNeil), above ${VALIDATION_AUC_SE_BOUND} and more than epochs or rounds usually differ by; ${fix}`;
}

/**
 * The whole evaluation of a model's PDs on held-out rows; `cutoff` is the PD from which applications are declined.
 * `logOdds`, when the PDs are σ of a score, is that score (any increasing function of the PD): AUC, KS and the order of
 * deciles and calibration bins are computed on it, so PDs a float rounds to the same value (0 or 1 for large scores)
 * still rank as the model does.
 */
export function evaluateCredit(labels: ArrayLike<number>, pd: ArrayLike<number>, cutoff: number, logOdds: ArrayLike<number> = pd): CreditEvaluation {
  if (logOdds.length !== pd.length) throw new RangeError(`pd (${pd.length}) and logOdds (${logOdds.length}) differ in length`);
  const m = binaryMetrics(labels, logOdds);
  return {
    n: m.n,
    defaults: m.positives,
    auc: m.auc,
    ks: m.ks,
    gini: 2 * m.auc - 1,
    deciles: liftTable(labels, logOdds),
    confusion: confusionAt(labels, pd, cutoff),
    calibration: calibrationBins(labels, pd, 10, logOdds),
  };
}

/** Default rate, approval rate and discrimination of one group of applicants. */
export interface GroupFigures {
  group: string;
  n: number;
  defaults: number;
  defaultRate: number;
  /** Share approved: pd < cutoff, as in confusionAt. */
  approvalRate: number;
  /** null when the group holds a single class. */
  auc: number | null;
  ks: number | null;
}

export interface FairnessReport {
  /** The column the groups come from, e.g. "Sex". */
  column: string;
  cutoff: number;
  maxGap: number;
  /** Sorted by group name. */
  groups: GroupFigures[];
  /** Largest minus smallest value over the groups (auc and ks over the groups where they are defined; null if none). */
  gaps: { defaultRate: number; approvalRate: number; auc: number | null; ks: number | null };
  /** Names of the figures whose gap exceeds maxGap, in the order defaultRate, approvalRate, auc, ks. */
  flagged: string[];
}

/**
 * Figures per group of a protected or sensitive column (sex, age band, region) and the gap between the best- and
 * worst-off group for each: a first check that a model treats groups alike (approval-rate gap: demographic parity;
 * AUC / KS gap: equal ranking quality). `groups[i]` is row i's group; labels are 1 for default. AUC and KS rank on
 * `logOdds` (see evaluateCredit).
 */
export function fairnessByGroup(
  column: string,
  labels: ArrayLike<number>,
  pd: ArrayLike<number>,
  groups: readonly string[],
  cutoff: number,
  maxGap: number,
  logOdds: ArrayLike<number> = pd,
): FairnessReport {
  if (labels.length !== pd.length || labels.length !== groups.length || labels.length !== logOdds.length) {
    throw new RangeError(`labels (${labels.length}), pd (${pd.length}), logOdds (${logOdds.length}) and groups (${groups.length}) differ in length`);
  }
  const rowsOf = new Map<string, number[]>();
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] !== 0 && labels[i] !== 1) throw new RangeError(`label of row ${i} is ${labels[i]}; labels must be 0 or 1`);
    const rows = rowsOf.get(groups[i]!);
    if (rows) rows.push(i);
    else rowsOf.set(groups[i]!, [i]);
  }
  const names = [...rowsOf.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const figures = names.map((group): GroupFigures => {
    const rows = rowsOf.get(group)!;
    const y = rows.map((r) => labels[r]!);
    const p = rows.map((r) => pd[r]!);
    const t = rows.map((r) => logOdds[r]!);
    const defaults = y.reduce((s, v) => s + v, 0);
    const approved = p.reduce((s, v) => s + (v < cutoff ? 1 : 0), 0);
    const twoClasses = defaults > 0 && defaults < rows.length;
    return {
      group,
      n: rows.length,
      defaults,
      defaultRate: defaults / rows.length,
      approvalRate: approved / rows.length,
      auc: twoClasses ? auc(y, t) : null,
      ks: twoClasses ? ks(y, t) : null,
    };
  });
  const gap = (values: (number | null)[]): number | null => {
    const defined = values.filter((v): v is number => v !== null);
    return defined.length === 0 ? null : Math.max(...defined) - Math.min(...defined);
  };
  const gaps = {
    defaultRate: gap(figures.map((g) => g.defaultRate)) ?? 0,
    approvalRate: gap(figures.map((g) => g.approvalRate)) ?? 0,
    auc: gap(figures.map((g) => g.auc)),
    ks: gap(figures.map((g) => g.ks)),
  };
  const flagged = (['defaultRate', 'approvalRate', 'auc', 'ks'] as const).filter((k) => gaps[k] !== null && gaps[k] > maxGap);
  return { column, cutoff, maxGap, groups: figures, gaps, flagged };
}
