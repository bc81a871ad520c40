/**
 * What a credit modeller reports beyond AUC and KS (issue 7, evaluation): Gini, lift and gain by decile, the
 * confusion at a cut-off, calibration by bin, and the population stability index between two score batches.
 * Labels are 1 for default; `pd` are probabilities of default (higher = riskier).
 */
import { binaryMetrics } from './metrics.js';

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
  let tp = 0, fp = 0, tn = 0, fn = 0;
  for (let i = 0; i < labels.length; i++) {
    const declined = pd[i]! >= cutoff;
    const bad = labels[i] === 1;
    if (declined && bad) tp++;
    else if (declined) fp++;
    else if (bad) fn++;
    else tn++;
  }
  const approved = tn + fn;
  return { cutoff, truePositives: tp, falsePositives: fp, trueNegatives: tn, falseNegatives: fn, approvalRate: approved / labels.length, approvedDefaultRate: approved > 0 ? fn / approved : Number.NaN };
}

/** Mean predicted PD against the observed default rate, in `bins` equal-count bins of PD. */
export function calibrationBins(labels: ArrayLike<number>, pd: ArrayLike<number>, bins = 10): CalibrationBin[] {
  return groupsOf(byRiskDescending(pd).reverse(), bins)
    .filter((rows) => rows.length > 0)
    .map((rows) => ({
      meanPd: rows.reduce((s, r) => s + pd[r]!, 0) / rows.length,
      observedRate: rows.reduce((s, r) => s + labels[r]!, 0) / rows.length,
      count: rows.length,
    }));
}

/**
 * Population stability index between a reference batch (`expected`, e.g. the training scores) and a new one
 * (`actual`), over `bins` bins cut at the reference's quantiles: Σ (a − e)·ln(a / e) over the bins' shares, with
 * empty shares floored at 1e-4. Below 0.1 is usually read as stable, above 0.25 as a shift.
 */
export function populationStabilityIndex(expected: ArrayLike<number>, actual: ArrayLike<number>, bins = 10): number {
  const sorted = Float64Array.from(expected).sort();
  const edges = Array.from({ length: bins - 1 }, (_, i) => sorted[Math.floor(((i + 1) * sorted.length) / bins)]!);
  const shares = (values: ArrayLike<number>) => {
    const counts = new Array<number>(bins).fill(0);
    for (let i = 0; i < values.length; i++) {
      let b = 0;
      while (b < edges.length && values[i]! >= edges[b]!) b++;
      counts[b]!++;
    }
    return counts.map((c) => Math.max(c / values.length, 1e-4));
  };
  const e = shares(expected);
  const a = shares(actual);
  return e.reduce((s, ei, i) => s + (a[i]! - ei) * Math.log(a[i]! / ei), 0);
}

/** The whole evaluation of a model's PDs on held-out rows; `cutoff` is the PD from which applications are declined. */
export function evaluateCredit(labels: ArrayLike<number>, pd: ArrayLike<number>, cutoff: number): CreditEvaluation {
  const m = binaryMetrics(labels, pd);
  return {
    n: m.n,
    defaults: m.positives,
    auc: m.auc,
    ks: m.ks,
    gini: 2 * m.auc - 1,
    deciles: liftTable(labels, pd),
    confusion: confusionAt(labels, pd, cutoff),
    calibration: calibrationBins(labels, pd),
  };
}
