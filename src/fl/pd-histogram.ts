/**
 * Evaluating a horizontal model without pooling its scores (the `evaluation` secure sum).
 *
 * Contribution. Each participant scores its validation rows with the final model and counts them in 200 cells of
 * predicted PD on [0, 1] (cell c holds c/200 ≤ pd < (c+1)/200, pd = 1 in the last): rows, defaults and the sum of
 * PD per cell, then the confusion counts at the job's decline cut-off computed on its exact PDs:
 *   [rows(200), defaults(200), pdSum(200), truePositives, falsePositives, trueNegatives, falseNegatives]
 * The coordinator opens only the sum over the participants.
 *
 * What the aggregate gives, and how exactly:
 * - AUC counts a default and a non-default in the same cell as a tie (½). The exact AUC of the pooled rows differs by
 *   at most Σ_c defaults_c·goods_c / (2·D·G), which is reported as `aucMaxError`.
 * - KS is the largest gap between the cumulative default and non-default shares at cell boundaries: a lower bound of
 *   the exact KS, off by at most the share of one cell.
 * - Deciles (riskiest first) split a cell across two deciles in proportion, assuming its defaults are spread evenly.
 * - Calibration groups whole cells into about ten equally full groups; the mean PD and observed default rate of each
 *   group are exact for the rows in it.
 * - The confusion table at the cut-off is exact (counted on each participant's exact PDs).
 *
 * The opened cells themselves are kept in the figures (`pdHistogram`: rows, defaults and PD sum per cell), so that a
 * report can draw ROC, KS and the PD distribution from the published model alone (`rowsFromPdHistogram`).
 */
import type { CalibrationBin, CreditEvaluation, DecileRow } from '../evaluation.js';
import { roundCount } from './histogram.js';

export const PD_CELLS = 200;
export const EVALUATION_LENGTH = 3 * PD_CELLS + 4;

export function pdCell(pd: number): number {
  if (!(pd >= 0 && pd <= 1)) throw new RangeError(`a predicted PD of ${pd} is outside [0, 1]`);
  return Math.min(PD_CELLS - 1, Math.floor(pd * PD_CELLS));
}

/** One participant's evaluation vector from its validation labels and predicted PDs. */
export function localPdHistogram(labels: ArrayLike<number>, pd: ArrayLike<number>, cutoff: number): Float64Array {
  const out = new Float64Array(EVALUATION_LENGTH);
  const c0 = 3 * PD_CELLS;
  for (let i = 0; i < labels.length; i++) {
    const p = pd[i]!;
    const cell = pdCell(p);
    const bad = labels[i] === 1;
    out[cell]! += 1;
    if (bad) out[PD_CELLS + cell]! += 1;
    out[2 * PD_CELLS + cell]! += p;
    const declined = p >= cutoff;
    out[c0 + (declined ? (bad ? 0 : 1) : bad ? 3 : 2)]! += 1;
  }
  return out;
}

/** The opened cells of predicted PD over all contributors' validation rows. */
export interface PdHistogram {
  /** PD_CELLS: cell c holds c/cells ≤ pd < (c+1)/cells (pd = 1 in the last). */
  cells: number;
  /** Rows and defaults per cell (integers: the opened sums rounded). */
  rows: number[];
  defaults: number[];
  /** Sum of predicted PD per cell (0 for an empty cell, whose opened sum is only CKKS noise). */
  pdSum: number[];
}

export interface HistogramEvaluation extends CreditEvaluation {
  /** The exact AUC of the pooled rows lies within auc ± aucMaxError. */
  aucMaxError: number;
  method: string;
  pdHistogram: PdHistogram;
}

/**
 * The figures of an opened evaluation aggregate (see the module comment), or the reason they cannot be computed (no
 * validation rows, or a single class).
 */
export function evaluationFromPdHistogram(values: Float64Array, cutoff: number): HistogramEvaluation | { reason: string } {
  if (values.length !== EVALUATION_LENGTH) throw new RangeError(`an evaluation aggregate of ${values.length} values; expected ${EVALUATION_LENGTH}`);
  const rows = Array.from(values.subarray(0, PD_CELLS), roundCount);
  const bads = Array.from(values.subarray(PD_CELLS, 2 * PD_CELLS), roundCount);
  const pdSum = Array.from(values.subarray(2 * PD_CELLS, 3 * PD_CELLS));
  const [tp, fp, tn, fn] = Array.from(values.subarray(3 * PD_CELLS), roundCount) as [number, number, number, number];
  const goods = rows.map((r, c) => r - bads[c]!);
  const n = rows.reduce((s, r) => s + r, 0);
  const d = bads.reduce((s, b) => s + b, 0);
  const g = n - d;
  if (n === 0) return { reason: 'no participant has validation rows (training.validation_fraction is 0?)' };
  if (d === 0 || g === 0) return { reason: `the validation rows hold a single class (${d} defaults, ${g} non-defaults)` };

  // AUC: a default ranks above every non-default in a lower cell, ties within its own cell.
  let goodsBelow = 0;
  let pairs = 0;
  let tied = 0;
  for (let c = 0; c < PD_CELLS; c++) {
    pairs += bads[c]! * (goodsBelow + goods[c]! / 2);
    tied += bads[c]! * goods[c]!;
    goodsBelow += goods[c]!;
  }
  const auc = pairs / (d * g);

  let ks = 0;
  let cumBad = 0;
  let cumGood = 0;
  for (let c = 0; c < PD_CELLS; c++) {
    cumBad += bads[c]!;
    cumGood += goods[c]!;
    ks = Math.max(ks, Math.abs(cumBad / d - cumGood / g));
  }

  const approved = tn + fn;
  return {
    n,
    defaults: d,
    auc,
    ks,
    gini: 2 * auc - 1,
    deciles: decilesOf(rows, bads, n, d),
    confusion: {
      cutoff,
      truePositives: tp,
      falsePositives: fp,
      trueNegatives: tn,
      falseNegatives: fn,
      approvalRate: (tn + fn) / n,
      approvedDefaultRate: approved > 0 ? fn / approved : Number.NaN,
    },
    calibration: calibrationOf(rows, bads, pdSum, n),
    aucMaxError: tied / (2 * d * g),
    method: `secure histogram of predicted PD in ${PD_CELLS} cells of width 1/${PD_CELLS}: AUC within aucMaxError of the exact one, KS at cell boundaries, deciles splitting cells in proportion; confusion exact`,
    pdHistogram: { cells: PD_CELLS, rows, defaults: bads, pdSum: pdSum.map((v, c) => (rows[c] === 0 ? 0 : v)) },
  };
}

/**
 * Check a PD histogram read from a file (a published artifact): PD_CELLS cells, whole non-negative rows, defaults
 * between 0 and the rows of their cell, finite PD sums. Throws a RangeError naming the first problem.
 */
export function checkPdHistogram(h: unknown): PdHistogram {
  const v = h as Partial<PdHistogram> | null;
  if (!v || typeof v !== 'object') throw new RangeError('the PD histogram is missing');
  if (v.cells !== PD_CELLS) throw new RangeError(`the PD histogram has ${String(v.cells)} cells; expected ${PD_CELLS}`);
  for (const key of ['rows', 'defaults', 'pdSum'] as const) {
    const a = v[key];
    if (!Array.isArray(a) || a.length !== PD_CELLS || !a.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      throw new RangeError(`the PD histogram's ${key} is not a list of ${PD_CELLS} finite numbers`);
    }
  }
  for (let c = 0; c < PD_CELLS; c++) {
    const r = v.rows![c]!;
    const d = v.defaults![c]!;
    if (!Number.isInteger(r) || r < 0 || !Number.isInteger(d) || d < 0 || d > r) throw new RangeError(`PD histogram cell ${c} has ${d} defaults out of ${r} rows`);
  }
  return v as PdHistogram;
}

/**
 * The rows a PD histogram describes, and nothing more: every row of cell c at the cell's mean PD (its PD sum over its
 * rows, kept inside the cell's bounds against rounding noise), with as many defaults as the cell counts. ROC and KS
 * curves of these rows are the histogram's own: their AUC (ties within a cell count ½) and KS (at cell boundaries)
 * equal `evaluationFromPdHistogram`'s.
 */
export function rowsFromPdHistogram(h: PdHistogram): { labels: Uint8Array; pd: Float64Array } {
  const n = h.rows.reduce((s, r) => s + r, 0);
  const labels = new Uint8Array(n);
  const pd = new Float64Array(n);
  let i = 0;
  for (let c = 0; c < h.cells; c++) {
    const r = h.rows[c]!;
    if (r === 0) continue;
    const lo = c / h.cells;
    const hi = c === h.cells - 1 ? 1 : (c + 1) / h.cells;
    const mean = Math.min(hi, Math.max(lo, h.pdSum[c]! / r));
    for (let k = 0; k < r; k++, i++) {
      pd[i] = mean;
      labels[i] = k < h.defaults[c]! ? 1 : 0;
    }
  }
  return { labels, pd };
}

/** Ten groups of (nearly) equal size from the riskiest cell down, as liftTable sizes them; cells split in proportion. */
function decilesOf(rows: number[], bads: number[], n: number, d: number): DecileRow[] {
  const overall = d / n;
  const out: DecileRow[] = [];
  let cell = PD_CELLS - 1;
  let leftInCell = rows[cell]!;
  let caught = 0;
  for (let k = 0; k < 10; k++) {
    const size = Math.floor(n / 10) + (k < n % 10 ? 1 : 0);
    let need = size;
    let defaults = 0;
    while (need > 0 && cell >= 0) {
      if (leftInCell === 0) {
        cell--;
        leftInCell = cell >= 0 ? rows[cell]! : 0;
        continue;
      }
      const take = Math.min(need, leftInCell);
      defaults += (bads[cell]! * take) / rows[cell]!;
      leftInCell -= take;
      need -= take;
    }
    caught += defaults;
    const rate = size > 0 ? defaults / size : 0;
    out.push({ decile: k + 1, count: size, defaults, defaultRate: rate, lift: overall > 0 ? rate / overall : Number.NaN, cumulativeGain: d > 0 ? caught / d : Number.NaN });
  }
  return out;
}

/** Whole cells, lowest PD first, grouped until each group reaches about a tenth of the rows. */
function calibrationOf(rows: number[], bads: number[], pdSum: number[], n: number): CalibrationBin[] {
  const out: CalibrationBin[] = [];
  let count = 0;
  let defaults = 0;
  let sum = 0;
  let seen = 0;
  for (let c = 0; c < PD_CELLS; c++) {
    count += rows[c]!;
    defaults += bads[c]!;
    sum += pdSum[c]!;
    seen += rows[c]!;
    if (count > 0 && (seen >= ((out.length + 1) * n) / 10 || c === PD_CELLS - 1)) {
      out.push({ meanPd: sum / count, observedRate: defaults / count, count });
      count = 0;
      defaults = 0;
      sum = 0;
    }
  }
  return out;
}
