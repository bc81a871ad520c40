/**
 * One party's slice of a vertical logistic regression: its own feature columns on the aligned rows, standardised
 * on its own training rows, and its own weights and optimiser state. Adam and SGD act coordinate by coordinate, so
 * each party updating its own slice with its own gradient is exactly the centralised update.
 */
import type { LoadedDataset } from '../data/csv.js';
import type { BinLayout } from '../credit/bin-layout.js';
import { cellWoe } from './binning.js';
import { sha256 } from '../bytes.js';

export interface Alignment {
  /** Row indices into the party's dataset, in the order all parties share. */
  train: Uint32Array;
  validation: Uint32Array;
  test: Uint32Array;
}

export interface OptimizerSettings {
  optimizer: 'sgd' | 'adam';
  learningRate: number;
  lrDecay: number;
  l2: number;
}

/** What a party keeps of a trained vertical model (its part only) and what scoring needs. */
export interface ModelPart {
  format: 'fedcredit-vertical-part/1';
  jobId: string;
  organisation: string;
  role: 'guest' | 'host';
  features: string[];
  mean: number[];
  scale: number[];
  clip: number;
  /** Winsorising bounds per feature (the party's own training quantiles), applied before standardising; absent: none. */
  clipLow?: number[];
  clipHigh?: number[];
  weights: number[];
  /** Guest only. */
  intercept?: number;
  /** Guest only: probability of default = sigmoid(a * score + b), fitted on the validation rows. */
  calibration?: { a: number; b: number };
  epoch: number;
  /** How a raw value becomes the model's input: standardised (mean, scale, clip) or its bin's WOE (`bins`). */
  transform?: 'standardise' | 'woe';
  /** With binning, per feature: its bin layout (edges, special values or category levels), each bin's WOE, and the
   * training rows per bin (for stability). */
  bins?: PartBins[];
}

export interface PartBins extends BinLayout {
  woe: number[];
  trainCounts: number[];
  /** WOE of an enterprise this party does not hold (binning.not_held; absent: 0, neutral). */
  notHeldWoe?: number;
}

/** The model input of feature j of a part for a stored cell (NaN = missing; a category's cell is its level's index
 * into `levels`). */
export function partInput(part: ModelPart, j: number, x: number, levels?: readonly string[]): number {
  if (part.transform === 'woe') {
    const bins = part.bins![j]!;
    return cellWoe(x, { ...bins, feature: part.features[j]!, iv: 0, selected: true }, levels);
  }
  const v = part.clipLow ? winsorise(x, part.clipLow[j]!, part.clipHigh![j]!) : x;
  return standardised(v, part.mean[j]!, part.scale[j]!, part.clip);
}

/** The model input of feature j for an enterprise the party does not hold: neutral (0: WOE 0, or the mean when
 * standardised) unless the job declared a WOE for it. */
export function notHeldInput(part: ModelPart, j: number): number {
  return part.transform === 'woe' ? (part.bins![j]!.notHeldWoe ?? 0) : 0;
}

/** x clipped to [low, high]; NaN (missing) stays NaN. */
function winsorise(x: number, low: number, high: number): number {
  return Math.min(high, Math.max(low, x));
}

/** Bounds of a feature without a value: no clipping (finite, so a model part stays valid JSON). */
const FLOAT32_MAX = 3.4028234663852886e38;

/** A raw feature value as the model sees it: imputed to the training mean (0), standardised, clipped. */
export function standardised(x: number, mean: number, scale: number, clip: number): number {
  if (Number.isNaN(x)) return 0;
  const z = (x - mean) / scale;
  return clip > 0 ? Math.min(clip, Math.max(-clip, z)) : z;
}

/**
 * A party's partial scores of dataset rows with a kept model part. Where row is -1 (an enterprise the party does
 * not hold) every feature takes notHeldInput: not the missing bin, since "no record at this party" and "a record
 * with a blank field" are different facts.
 */
export function partScores(part: ModelPart, data: LoadedDataset, rows: ArrayLike<number>): Float64Array {
  const idx = part.features.map((f) => data.features.indexOf(f));
  const width = data.features.length;
  const out = new Float64Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    let s = 0;
    for (let j = 0; j < idx.length; j++) s += part.weights[j]! * (r < 0 ? notHeldInput(part, j) : partInput(part, j, data.x[r * width + idx[j]!]!, data.levels?.[part.features[j]!]));
    out[i] = s;
  }
  return out;
}

export function modelPartDigest(part: ModelPart): Uint8Array {
  return sha256(JSON.stringify(part));
}

export class PartyModel {
  readonly dim: number;
  readonly mean: Float64Array;
  readonly scale: Float64Array;
  /** Winsorising bounds per feature, or undefined when the model does not winsorise. */
  readonly clipLow?: Float64Array;
  readonly clipHigh?: Float64Array;
  /** Feature weights, then (guest only) the intercept. */
  weights: Float64Array;
  private m: Float64Array;
  private v: Float64Array;
  private t = 0;

  constructor(
    private readonly data: LoadedDataset,
    readonly featureIdx: number[],
    trainRows: Uint32Array,
    readonly clip: number,
    readonly hasIntercept: boolean,
    /** false: the columns are used as they are (WOE values), mean 0 and scale 1. */
    standardise = true,
    /** Share of the training rows clipped at each tail (the party's exact quantiles) before standardising; 0: none. */
    winsorize = 0,
  ) {
    this.dim = featureIdx.length;
    this.mean = new Float64Array(this.dim);
    this.scale = new Float64Array(this.dim).fill(1);
    const width = data.features.length;
    if (standardise && winsorize > 0) {
      this.clipLow = new Float64Array(this.dim).fill(-FLOAT32_MAX);
      this.clipHigh = new Float64Array(this.dim).fill(FLOAT32_MAX);
      for (let j = 0; j < this.dim; j++) {
        const values = Float64Array.from(trainRows, (r) => data.x[r * width + featureIdx[j]!]!)
          .filter((v) => !Number.isNaN(v))
          .sort();
        if (values.length === 0) continue;
        this.clipLow[j] = values[Math.floor(winsorize * (values.length - 1))]!;
        this.clipHigh[j] = values[Math.ceil((1 - winsorize) * (values.length - 1))]!;
      }
    }
    for (let j = 0; standardise && j < this.dim; j++) {
      let n = 0;
      let sum = 0;
      let sq = 0;
      for (const r of trainRows) {
        let x = data.x[r * width + featureIdx[j]!]!;
        if (Number.isNaN(x)) continue;
        if (this.clipLow) x = winsorise(x, this.clipLow[j]!, this.clipHigh![j]!);
        n++;
        sum += x;
        sq += x * x;
      }
      const mean = n > 0 ? sum / n : 0;
      const sd = n > 1 ? Math.sqrt(Math.max(0, sq / n - mean * mean)) : 0;
      this.mean[j] = mean;
      this.scale[j] = sd > 1e-12 ? sd : 1;
    }
    const size = this.dim + (hasIntercept ? 1 : 0);
    this.weights = new Float64Array(size);
    this.m = new Float64Array(size);
    this.v = new Float64Array(size);
  }

  /** Winsorised, standardised, imputed (to the training mean, i.e. 0) and clipped value of feature j in dataset row r. */
  value(r: number, j: number): number {
    const x = this.data.x[r * this.data.features.length + this.featureIdx[j]!]!;
    return standardised(this.clipLow ? winsorise(x, this.clipLow[j]!, this.clipHigh![j]!) : x, this.mean[j]!, this.scale[j]!, this.clip);
  }

  /** Columns of the batch (plus the constant intercept column for the guest), each of length rows.length. */
  columns(rows: ArrayLike<number>): Float64Array[] {
    const cols: Float64Array[] = [];
    for (let j = 0; j < this.dim; j++) {
      const c = new Float64Array(rows.length);
      for (let i = 0; i < rows.length; i++) c[i] = this.value(rows[i]!, j);
      cols.push(c);
    }
    if (this.hasIntercept) cols.push(new Float64Array(rows.length).fill(1));
    return cols;
  }

  /** This party's partial scores Σ_j x_ij w_j (+ intercept) of the rows. */
  scores(rows: ArrayLike<number>, weights: Float64Array = this.weights): Float64Array {
    const out = new Float64Array(rows.length);
    for (let i = 0; i < rows.length; i++) {
      let s = this.hasIntercept ? weights[this.dim]! : 0;
      for (let j = 0; j < this.dim; j++) s += this.value(rows[i]!, j) * weights[j]!;
      out[i] = s;
    }
    return out;
  }

  /** One optimiser step with the party's gradient (already averaged over the batch); L2 spares the intercept. */
  step(gradient: Float64Array, epoch: number, o: OptimizerSettings): void {
    const lr = o.learningRate / (1 + o.lrDecay * epoch);
    this.t++;
    for (let j = 0; j < this.weights.length; j++) {
      const g = gradient[j]! + (j < this.dim ? o.l2 * this.weights[j]! : 0);
      if (o.optimizer === 'sgd') {
        this.weights[j]! -= lr * g;
        continue;
      }
      this.m[j] = 0.9 * this.m[j]! + 0.1 * g;
      this.v[j] = 0.999 * this.v[j]! + 0.001 * g * g;
      const mHat = this.m[j]! / (1 - 0.9 ** this.t);
      const vHat = this.v[j]! / (1 - 0.999 ** this.t);
      this.weights[j]! -= (lr * mHat) / (Math.sqrt(vHat) + 1e-8);
    }
  }

  /** Optimiser state, to roll a step back when it has to be re-run. */
  snapshot(): { weights: Float64Array; m: Float64Array; v: Float64Array; t: number } {
    return { weights: this.weights.slice(), m: this.m.slice(), v: this.v.slice(), t: this.t };
  }

  restore(s: { weights: Float64Array; m: Float64Array; v: Float64Array; t: number }): void {
    this.weights = s.weights.slice();
    this.m = s.m.slice();
    this.v = s.v.slice();
    this.t = s.t;
  }

  digest(): Uint8Array {
    return sha256(new Uint8Array(this.weights.buffer, this.weights.byteOffset, this.weights.byteLength));
  }
}

/** A Platt calibration PD = σ(a·z + b) of the model's log-odds z; a > 0, so PDs rank as the scores do. */
export interface Calibration {
  a: number;
  b: number;
}

/**
 * Platt scaling: fit PD = σ(a·z + b) to the labels of the validation scores `z` by maximum likelihood (Newton's method
 * with a backtracking line search, so a fit started far from the optimum, as with the large scores of a high learning
 * rate, converges instead of overshooting into saturated PDs). A fit that does not exist is never used silently:
 * - scores that separate defaults from non-defaults have no maximum-likelihood fit (the slope grows without bound and
 *   every PD ends at 0 or 1); the fit is then regularised with Platt's prior (targets (N₊+1)/(N₊+2) and 1/(N₋+2)
 *   instead of 1 and 0), and `warning` says so;
 * - with one class absent, a slope a ≤ 0 (validation scores that do not rank defaults: the PDs would reverse or flatten
 *   the model's ranking) or a fit that does not converge, the PDs are the model's own log-odds (a = 1, b = 0), and
 *   `warning` says why.
 */
export function fitCalibration(z: Float64Array, y: ArrayLike<number>): { calibration: Calibration; warning?: string } {
  const own = (why: string) => ({ calibration: { a: 1, b: 0 }, warning: `${why}; the PDs are the model's own log-odds, not calibrated` });
  let defaults = 0;
  for (let i = 0; i < z.length; i++) defaults += y[i]!;
  const goods = z.length - defaults;
  if (defaults === 0 || goods === 0) return own(`the ${z.length} validation enterprises hold ${defaults === 0 ? 'no default' : 'only defaults'}, so no calibration can be fitted`);
  const separated = separates(z, y);
  const targets = separated ? { bad: (defaults + 1) / (defaults + 2), good: 1 / (goods + 2) } : { bad: 1, good: 0 };
  // Fitted on the scores over their standard deviation, so that the tolerances do not depend on the scores' scale.
  const mean = z.reduce((s, v) => s + v, 0) / z.length;
  const sd = Math.sqrt(z.reduce((s, v) => s + (v - mean) ** 2, 0) / z.length);
  const scale = sd > 0 && Number.isFinite(sd) ? sd : 1;
  const scaled = plattNewton(
    z.map((v) => v / scale),
    y,
    targets,
    Math.log((defaults + 1) / (goods + 1)),
  );
  const fit = scaled && { a: scaled.a / scale, b: scaled.b };
  if (!fit) return own(`the calibration fit on the ${z.length} validation scores did not converge`);
  if (!(fit.a > 0)) return own(`the validation scores of the kept epoch do not rank defaults (calibration slope ${fit.a.toPrecision(3)})`);
  if (!separated) return { calibration: fit };
  return {
    calibration: fit,
    warning: `the validation scores of the kept epoch separate defaults from non-defaults completely, so their calibration has no maximum-likelihood fit; it is regularised with Platt's prior (slope ${fit.a.toPrecision(3)}): check the PDs against the observed default rates before using them`,
  };
}

/** Whether a threshold on the scores separates the classes (ties at the threshold allowed): a logistic fit on them diverges. */
function separates(z: Float64Array, y: ArrayLike<number>): boolean {
  let maxBad = -Infinity,
    minBad = Infinity,
    maxGood = -Infinity,
    minGood = Infinity;
  for (let i = 0; i < z.length; i++) {
    if (y[i] === 1) {
      maxBad = Math.max(maxBad, z[i]!);
      minBad = Math.min(minBad, z[i]!);
    } else {
      maxGood = Math.max(maxGood, z[i]!);
      minGood = Math.min(minGood, z[i]!);
    }
  }
  return maxGood <= minBad || maxBad <= minGood;
}

/**
 * Minimise the cross-entropy of σ(a·z + b) against `targets` (per class) by Newton's method with a backtracking line
 * search (after Lin, Lin and Weng, "A note on Platt's probabilistic outputs for support vector machines", 2007),
 * from a = 0 and b = `b0`. Undefined when it does not converge.
 */
function plattNewton(z: Float64Array, y: ArrayLike<number>, targets: { bad: number; good: number }, b0: number): Calibration | undefined {
  const target = (i: number) => (y[i] === 1 ? targets.bad : targets.good);
  // −t·log σ(f) − (1−t)·log(1 − σ(f)), without overflow for any f.
  const loss = (a: number, b: number) => {
    let sum = 0;
    for (let i = 0; i < z.length; i++) {
      const f = a * z[i]! + b;
      sum += f >= 0 ? (1 - target(i)) * f + Math.log1p(Math.exp(-f)) : -target(i) * f + Math.log1p(Math.exp(f));
    }
    return sum;
  };
  let a = 0;
  let b = b0;
  let value = loss(a, b);
  for (let it = 0; it < 100; it++) {
    let ga = 0,
      gb = 0,
      haa = 1e-12,
      hab = 0,
      hbb = 1e-12;
    for (let i = 0; i < z.length; i++) {
      const f = a * z[i]! + b;
      const p = f >= 0 ? 1 / (1 + Math.exp(-f)) : Math.exp(f) / (1 + Math.exp(f));
      const r = p - target(i);
      const w = p * (1 - p);
      ga += r * z[i]!;
      gb += r;
      haa += w * z[i]! * z[i]!;
      hab += w * z[i]!;
      hbb += w;
    }
    // Converged when the gradient is small per enterprise.
    if (Math.abs(ga) + Math.abs(gb) < 1e-11 * z.length * (1 + Math.abs(a) + Math.abs(b))) return { a, b };
    const det = haa * hbb - hab * hab;
    if (!(det > 0)) return undefined;
    const da = -(hbb * ga - hab * gb) / det;
    const db = -(haa * gb - hab * ga) / det;
    const slope = ga * da + gb * db;
    let step = 1;
    for (; step >= 1e-10; step /= 2) {
      const next = loss(a + step * da, b + step * db);
      if (next <= value + 1e-4 * step * slope) {
        value = next;
        break;
      }
    }
    if (step < 1e-10) return Number.isFinite(a) && Number.isFinite(b) && Math.abs(ga) + Math.abs(gb) < 1e-6 * z.length ? { a, b } : undefined;
    a += step * da;
    b += step * db;
    if (Math.abs(step * da) + Math.abs(step * db) < 1e-12 * (1 + Math.abs(a) + Math.abs(b))) return { a, b };
  }
  return undefined;
}
