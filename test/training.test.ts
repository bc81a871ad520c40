/** Local training as a participant runs it: deterministic for a seed, and FedProx really pulls towards the global model. */
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { UCI, UCI_FEATURES, uciHomoSpec } from './helpers/federation.js';
import { loadDataset } from '../src/data/csv.js';
import { splitRows } from '../src/data/split.js';
import { buildModel, getFlatWeights, setFlatWeights, trainModel } from '../src/model/network.js';
import { loadTf } from '../src/model/tf.js';

describe('local training', async () => {
  const { tf } = await loadTf();
  const data = await loadDataset(uciHomoSpec(join(UCI, 'fate_default_credit_homo_host_1.csv')));
  const { train } = splitRows(data, UCI_FEATURES.map((_, i) => i), 0.2, 1);
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
});
