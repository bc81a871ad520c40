/**
 * Credit models as TensorFlow.js layers models, with flat weight vectors for federated averaging and a seeded,
 * deterministic local training loop (same seed, same data, same weights: the plaintext and CKKS federations of
 * a test differ only by CKKS noise).
 */
import type * as TF from '@tensorflow/tfjs';
import type { Tf } from './tf.js';
import type { ModelSpec } from '../config/model-spec.js';
import { Rng, seededShuffle } from '../random.js';

export function buildModel(tf: Tf, spec: ModelSpec, inputDim: number, seed: number): TF.Sequential {
  const model = tf.sequential();
  const init = (k: number) => tf.initializers.glorotUniform({ seed: seed * 7919 + k });
  if (spec.type === 'logistic') {
    model.add(tf.layers.dense({ units: 1, inputShape: [inputDim], activation: 'sigmoid', kernelInitializer: 'zeros' }));
  } else {
    spec.hidden.forEach((units, i) => model.add(tf.layers.dense({ units, activation: spec.activation, kernelInitializer: init(i), ...(i === 0 ? { inputShape: [inputDim] } : {}) })));
    model.add(tf.layers.dense({ units: 1, activation: 'sigmoid', kernelInitializer: init(spec.hidden.length) }));
  }
  return model;
}

export function getFlatWeights(model: TF.LayersModel): Float32Array {
  const parts = model.getWeights().map((w) => w.dataSync() as Float32Array);
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

export function setFlatWeights(tf: Tf, model: TF.LayersModel, flat: Float32Array): void {
  const current = model.getWeights();
  const total = current.reduce((n, w) => n + w.size, 0);
  if (flat.length !== total) throw new RangeError(`model has ${total} weights, got ${flat.length}`);
  let offset = 0;
  const next = current.map((w) => {
    const t = tf.tensor(flat.subarray(offset, offset + w.size), w.shape, 'float32');
    offset += w.size;
    return t;
  });
  model.setWeights(next);
  next.forEach((t) => t.dispose());
}

export interface TrainOptions {
  epochs: number;
  batchSize: number;
  learningRate: number;
  optimizer: 'sgd' | 'adam';
  seed: number;
  /** FedProx: adds (mu/2)·||w − w_global||² to the local loss. 0 = plain FedAvg. */
  proximalMu?: number;
  globalWeights?: Float32Array;
}

/**
 * Training rows as blocks read one at a time: data on disk streams through them. Each epoch visits the blocks in a
 * shuffled order and shuffles the rows within each block.
 */
export interface RowBlocks {
  count: number;
  block(index: number): { x: Float32Array; y: Float32Array };
}

/** Mini-batch training on row-major x (rows × dim) and labels y, calling `afterEpoch` after each epoch. Returns the mean
 * training log-loss of the last epoch. */
export function trainModel(tf: Tf, model: TF.LayersModel, x: Float32Array, y: Float32Array, dim: number, opts: TrainOptions, afterEpoch?: (epoch: number) => void): number {
  const trainer = new Trainer(tf, model, dim, opts);
  try {
    for (let epoch = 0; epoch < opts.epochs; epoch++) {
      for (const _ of trainer.fitBlock(x, y));
      trainer.endEpoch();
      afterEpoch?.(epoch);
    }
    return trainer.lastEpochLoss;
  } finally {
    trainer.dispose();
  }
}

/**
 * trainModel over blocks, giving the event loop a turn at least every TURN_MS: a long pass over many rows must not
 * stop the node answering its connection's keepalive pings.
 */
export async function trainOnBlocks(tf: Tf, model: TF.LayersModel, data: RowBlocks, dim: number, opts: TrainOptions): Promise<number> {
  const trainer = new Trainer(tf, model, dim, opts);
  try {
    // One clock for the whole pass: a block trains in less than TURN_MS, so a clock per block would never yield.
    let turn = performance.now();
    for (let epoch = 0; epoch < opts.epochs; epoch++) {
      for (const b of data.count > 1 ? trainer.shuffle(data.count) : [0]) {
        const { x, y } = data.block(b);
        for (const _ of trainer.fitBlock(x, y)) {
          if (performance.now() - turn < TURN_MS) continue;
          await new Promise((r) => setImmediate(r));
          turn = performance.now();
        }
      }
      trainer.endEpoch();
    }
    return trainer.lastEpochLoss;
  } finally {
    trainer.dispose();
  }
}

const TURN_MS = 200;

/** One local training run: the optimiser, the FedProx anchors, the shuffling stream and the epoch's loss. */
class Trainer {
  lastEpochLoss = 0;
  private readonly optimizer: TF.Optimizer;
  private readonly mu: number;
  private readonly anchors: TF.Tensor[];
  private readonly rng: Rng;
  private lossSum = 0;
  private seen = 0;

  constructor(
    private readonly tf: Tf,
    private readonly model: TF.LayersModel,
    private readonly dim: number,
    private readonly opts: TrainOptions,
  ) {
    this.optimizer = opts.optimizer === 'adam' ? tf.train.adam(opts.learningRate) : tf.train.sgd(opts.learningRate);
    this.mu = opts.proximalMu ?? 0;
    this.anchors = this.mu > 0 && opts.globalWeights ? splitLike(tf, model, opts.globalWeights) : [];
    this.rng = new Rng(opts.seed);
  }

  shuffle(n: number): Uint32Array {
    return seededShuffle(n, this.rng);
  }

  /** Train on one block's rows, shuffled; yields after each mini-batch. */
  *fitBlock(x: Float32Array, y: Float32Array): Generator<void> {
    const { tf, model, dim, anchors, mu } = this;
    const rows = y.length;
    const order = this.shuffle(rows);
    for (let start = 0; start < rows; start += this.opts.batchSize) {
      const idx = order.subarray(start, Math.min(rows, start + this.opts.batchSize));
      const xb = new Float32Array(idx.length * dim);
      const yb = new Float32Array(idx.length);
      idx.forEach((r, i) => {
        xb.set(x.subarray(r * dim, (r + 1) * dim), i * dim);
        yb[i] = y[r]!;
      });
      const cost = tf.tidy(() => {
        const xs = tf.tensor2d(xb, [idx.length, dim]);
        const ys = tf.tensor2d(yb, [idx.length, 1]);
        return this.optimizer.minimize(() => {
          const fit = tf.losses.logLoss(ys, model.apply(xs) as TF.Tensor) as TF.Scalar;
          if (anchors.length === 0) return fit;
          const trainable = model.trainableWeights.map((w) => w.read());
          const prox = trainable.reduce((acc, w, i) => acc.add(tf.sum(tf.square(tf.sub(w, anchors[i]!)))), tf.scalar(0));
          return fit.add(prox.mul(mu / 2)) as TF.Scalar;
        }, true) as TF.Scalar;
      });
      this.lossSum += cost.dataSync()[0]! * idx.length;
      this.seen += idx.length;
      cost.dispose();
      yield;
    }
  }

  endEpoch(): void {
    this.lastEpochLoss = this.lossSum / this.seen;
    this.lossSum = 0;
    this.seen = 0;
  }

  dispose(): void {
    this.optimizer.dispose();
    this.anchors.forEach((t) => t.dispose());
  }
}

function splitLike(tf: Tf, model: TF.LayersModel, flat: Float32Array): TF.Tensor[] {
  let offset = 0;
  return model.trainableWeights.map((w) => {
    const size = w.shape.reduce<number>((a, b) => a * (b ?? 1), 1);
    const t = tf.tensor(flat.subarray(offset, offset + size), w.shape as number[], 'float32');
    offset += size;
    return t;
  });
}

/** Probabilities of default for row-major x. */
export function predict(tf: Tf, model: TF.LayersModel, x: Float32Array, dim: number): Float32Array {
  const rows = x.length / dim;
  const out = new Float32Array(rows);
  const batch = 4096;
  for (let start = 0; start < rows; start += batch) {
    const n = Math.min(batch, rows - start);
    const p = tf.tidy(() => model.predict(tf.tensor2d(x.subarray(start * dim, (start + n) * dim), [n, dim])) as TF.Tensor);
    out.set(p.dataSync() as Float32Array, start);
    p.dispose();
  }
  return out;
}

/** Mean binary log-loss, clipped like TensorFlow's. */
export function logLoss(y: ArrayLike<number>, p: ArrayLike<number>): number {
  const eps = 1e-7;
  let sum = 0;
  for (let i = 0; i < y.length; i++) {
    const q = Math.min(1 - eps, Math.max(eps, p[i]!));
    sum -= y[i]! * Math.log(q) + (1 - y[i]!) * Math.log(1 - q);
  }
  return y.length ? sum / y.length : Number.NaN;
}
