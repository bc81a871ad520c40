/** Local training as a participant runs it: deterministic for a seed, and FedProx really pulls towards the global model. */
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { UCI, UCI_FEATURES, uciHomoSpec } from './helpers/federation.js';
import { loadDataset } from '../src/data/csv.js';
import { splitRows } from '../src/data/split.js';
import { buildModel, getFlatWeights, setFlatWeights, trainModel, trainOnBlocks } from '../src/model/network.js';
import { loadTf } from '../src/model/tf.js';

describe('local training', async () => {
  const { tf } = await loadTf();
  const data = await loadDataset(uciHomoSpec(join(UCI, 'fate_default_credit_homo_host_1.csv')));
  const { train } = splitRows(
    data,
    UCI_FEATURES.map((_, i) => i),
    0.2,
    1,
  );
  const dim = UCI_FEATURES.length;
  const spec = { type: 'mlp' as const, hidden: [16], activation: 'relu' as const };

  function trainFrom(global: Float32Array, proximalMu: number, seed = 5): Float32Array {
    const model = buildModel(tf, spec, dim, 3);
    setFlatWeights(tf, model, global);
    trainModel(tf, model, train.x, train.y, dim, { epochs: 2, batchSize: 64, learningRate: 0.05, optimizer: 'sgd', seed, proximalMu, globalWeights: global });
    const w = getFlatWeights(model);
    model.dispose();
    return w;
  }
  const distance = (a: Float32Array, b: Float32Array) => Math.sqrt(a.reduce((s, v, i) => s + (v - b[i]!) ** 2, 0));

  const start = getFlatWeights(buildModel(tf, spec, dim, 3));

  it('is deterministic for a seed, and a different seed gives different weights', () => {
    expect(Array.from(trainFrom(start, 0))).toEqual(Array.from(trainFrom(start, 0)));
    expect(distance(trainFrom(start, 0, 5), trainFrom(start, 0, 6))).toBeGreaterThan(1e-4);
  });

  it("FedProx's proximal term keeps the local model closer to the global one, more so as mu grows", () => {
    const plain = distance(trainFrom(start, 0), start);
    const prox = distance(trainFrom(start, 1), start);
    const strong = distance(trainFrom(start, 10), start);
    console.log(`||w - w_global||: FedAvg ${plain.toFixed(4)}, FedProx mu=1 ${prox.toFixed(4)}, mu=10 ${strong.toFixed(4)}`);
    expect(prox).toBeLessThan(plain);
    expect(strong).toBeLessThan(prox);
  });

  it('gives the event loop turns during a pass over many small blocks (keepalive pings must be answered)', async () => {
    // Each block takes at least 40 ms to read, as a block from disk might, and trains in well under the 200 ms
    // between turns; 30 of them take at least 1.2 s, so the pass must yield several times on any machine.
    const rows = 64;
    const blocks = {
      count: 30,
      block: (b: number) => {
        const until = performance.now() + 40;
        while (performance.now() < until);
        return { x: train.x.subarray(b * rows * dim, (b + 1) * rows * dim), y: train.y.subarray(b * rows, (b + 1) * rows) };
      },
    };
    let turns = 0;
    let counting = true;
    const count = () => {
      turns++;
      if (counting) setImmediate(count);
    };
    setImmediate(count);
    const model = buildModel(tf, spec, dim, 3);
    await trainOnBlocks(tf, model, blocks, dim, { epochs: 1, batchSize: 64, learningRate: 0.05, optimizer: 'sgd', seed: 1 });
    counting = false;
    model.dispose();
    expect(turns).toBeGreaterThanOrEqual(4);
  });
});
