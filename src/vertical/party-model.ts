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

/** Platt scaling: fit sigmoid(a z + b) to labels by Newton's method (2 parameters). */
export function fitCalibration(z: Float64Array, y: ArrayLike<number>): { a: number; b: number } {
  let a = 1;
  let b = 0;
  for (let it = 0; it < 50; it++) {
    let ga = 0,
      gb = 0,
      haa = 0,
      hab = 0,
      hbb = 0;
    for (let i = 0; i < z.length; i++) {
      const p = 1 / (1 + Math.exp(-(a * z[i]! + b)));
      const r = p - y[i]!;
      const w = p * (1 - p) + 1e-12;
      ga += r * z[i]!;
      gb += r;
      haa += w * z[i]! * z[i]!;
      hab += w * z[i]!;
      hbb += w;
    }
    const det = haa * hbb - hab * hab;
    if (!(Math.abs(det) > 1e-18)) break;
    const da = (hbb * ga - hab * gb) / det;
    const db = (haa * gb - hab * ga) / det;
    a -= da;
    b -= db;
    if (Math.abs(da) + Math.abs(db) < 1e-10) break;
  }
  return { a, b };
}
