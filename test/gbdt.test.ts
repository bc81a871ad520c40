/**
 * The central GBDT (src/model/gbdt.ts) on real credit data: its held-out AUC against the figures issue 21 quotes
 * for a plain central GBDT (UCI 0.776, Give Me Some Credit 0.866), monotone constraints that hold for every
 * applicant, early stopping, histogram subtraction and row subsampling.
 */
import { describe, expect, it } from 'vitest';
import { auc } from '../src/metrics.js';
import { boost, buildHistogram, DEFAULT_GBDT_PARAMS, featureOffsets, gainImportance, localOracle, predictMargin, type GbdtParams } from '../src/model/gbdt.js';
import { gmscTrees, uciTrees, type TreeData } from './helpers/credit-trees.js';

const testAuc = (data: TreeData, margin: Float64Array) =>
  auc(
    Float64Array.from(data.test, (r) => data.labels[r]!),
    Float64Array.from(data.test, (r) => margin[r]!),
  );

async function train(data: TreeData, params: Partial<GbdtParams>) {
  const p = { ...DEFAULT_GBDT_PARAMS, ...params };
  const model = await boost(localOracle(data.features, data.bins), { labels: data.labels, train: data.train, valid: data.valid }, p);
  return { model, margin: predictMargin(model, data.bins, data.labels.length) };
}

describe('central GBDT on UCI default of credit card clients', () => {
  const data = uciTrees();
  it('reaches the held-out AUC of a plain central GBDT, and early stopping keeps the best validation round', async () => {
    const { model, margin } = await train(data, { trees: 300, depth: 4, learningRate: 0.05, earlyStoppingRounds: 30, subsample: 0.8 });
    expect(testAuc(data, margin)).toBeGreaterThan(0.77);
    expect(model.trees.length).toBeLessThan(model.validationAuc.length);
    const best = Math.max(...model.validationAuc);
    expect(model.validationAuc[model.trees.length - 1]).toBe(best);
  });
});

describe('central GBDT on Give Me Some Credit', () => {
  const data = gmscTrees();
  it('reaches the held-out AUC of a plain central GBDT, with missing incomes sent the learned way', async () => {
    const { model, margin } = await train(data, { trees: 150, depth: 4, learningRate: 0.1 });
    expect(testAuc(data, margin)).toBeGreaterThan(0.86);
    // MonthlyIncome is NA for a fifth of the borrowers: some of its splits send them left, with the low incomes.
    const income = data.features.findIndex((f) => f.name === 'MonthlyIncome');
    const missingBin = data.features[income]!.bins - 1;
    const incomeSplits = model.trees.flatMap((t) => t.nodes).filter((n) => n.kind === 'split' && n.feature === income);
    expect(incomeSplits.some((n) => n.kind === 'split' && 'leftBins' in n.ref && n.ref.leftBins.includes(missingBin))).toBe(true);
  });
});

describe('credit-grade controls', () => {
  const data = uciTrees({ monotone: { PAY_0: 1, LIMIT_BAL: -1 } });
  const pay0 = data.features.findIndex((f) => f.name === 'PAY_0');
  const limit = data.features.findIndex((f) => f.name === 'LIMIT_BAL');

  /** Whether every one of `rows` sees its margin move only in `direction` as feature f's ordered bin rises. */
  function monotoneFor(model: Awaited<ReturnType<typeof train>>['model'], f: number, direction: 1 | -1, rows: Uint32Array): boolean {
    const bins = data.bins.map((b) => Uint16Array.from(rows, (r) => b[r]!));
    let previous: Float64Array | undefined;
    for (let b = 0; b < data.features[f]!.ordered; b++) {
      bins[f]!.fill(b);
      const margin = predictMargin(model, bins, rows.length);
      if (previous && margin.some((m, i) => direction * (m - previous![i]!) < -1e-12)) return false;
      previous = margin;
    }
    return true;
  }

  it('monotone constraints hold for every applicant: PD rises with payment delay and falls with the credit limit', async () => {
    const sample = data.test.subarray(0, 400);
    const constrained = await train(data, { trees: 60, depth: 4, learningRate: 0.1 });
    expect(monotoneFor(constrained.model, pay0, 1, sample)).toBe(true);
    expect(monotoneFor(constrained.model, limit, -1, sample)).toBe(true);
    expect(testAuc(data, constrained.margin)).toBeGreaterThan(0.76);
    // Without the constraints the same trees break it for some applicant: the check above can fail.
    const free = { ...data, features: data.features.map((f) => ({ ...f, monotone: 0 as const })) };
    const unconstrained = await boost(localOracle(free.features, free.bins), { labels: data.labels, train: data.train, valid: data.valid }, { ...DEFAULT_GBDT_PARAMS, trees: 60 });
    expect(monotoneFor(unconstrained, limit, -1, sample)).toBe(false);
  });

  it('histogram subtraction: the larger child built as parent minus the smaller equals the one built from its rows', () => {
    const offsets = featureOffsets(data.features);
    const g = Float64Array.from(data.labels, (y, r) => 0.3 - y + (r % 7) / 100);
    const h = Float64Array.from(data.labels, (_, r) => 0.2 + (r % 5) / 100);
    const left = data.train.filter((r) => data.bins[pay0]![r]! <= 2);
    const right = data.train.filter((r) => data.bins[pay0]![r]! > 2);
    const parent = buildHistogram(data.bins, offsets, data.train, g, h);
    const small = buildHistogram(data.bins, offsets, right, g, h);
    const direct = buildHistogram(data.bins, offsets, left, g, h);
    parent.g.forEach((v, b) => expect(v - small.g[b]!).toBeCloseTo(direct.g[b]!, 9));
    parent.h.forEach((v, b) => expect(v - small.h[b]!).toBeCloseTo(direct.h[b]!, 9));
  });

  it('row subsampling is seeded: the same seed grows the same trees, another seed others; gain importance ranks PAY_0 first', async () => {
    const params = { trees: 5, subsample: 0.5 };
    const a = await train(data, { ...params, seed: 3 });
    const b = await train(data, { ...params, seed: 3 });
    const c = await train(data, { ...params, seed: 4 });
    expect(b.model.trees).toEqual(a.model.trees);
    expect(c.model.trees).not.toEqual(a.model.trees);
    const importance = gainImportance(a.model);
    expect(importance.indexOf(Math.max(...importance))).toBe(pay0);
  });

  it('GOSS grows each tree on the largest gradients and a weighed draw of the rest, and keeps the held-out AUC', async () => {
    const goss = { topRate: 0.2, otherRate: 0.1 };
    const oracle = localOracle(data.features, data.bins);
    const perTree: { used: number; weight: number; topMin: number; restMax: number }[] = [];
    const counting = {
      ...oracle,
      startTree: async (t: number, g: Float64Array, h: Float64Array, only?: string) => {
        // With weight w, g = w·(p − y) and h = w·p(1 − p), so h / |g| is p or 1 − p and w = g² / (|g| − h).
        const used = Array.from(data.train).filter((r) => h[r]! > 0);
        const weights = used.map((r) => ({ w: g[r]! ** 2 / (Math.abs(g[r]!) - h[r]!), residual: Math.abs(g[r]!) / (g[r]! ** 2 / (Math.abs(g[r]!) - h[r]!)) }));
        const top = weights.filter((x) => Math.abs(x.w - 1) < 1e-6);
        const rest = weights.filter((x) => Math.abs(x.w - 1) >= 1e-6);
        expect(rest.every((x) => Math.abs(x.w - 8) < 1e-6)).toBe(true);
        perTree.push({
          used: used.length,
          weight: weights.reduce((s, x) => s + x.w, 0),
          topMin: Math.min(...top.map((x) => x.residual)),
          restMax: Math.max(...rest.map((x) => x.residual)),
        });
        await oracle.startTree?.(t, g, h, only);
      },
    };
    const params = { ...DEFAULT_GBDT_PARAMS, trees: 30, depth: 4, learningRate: 0.2, goss };
    const model = await boost(counting, { labels: data.labels, train: data.train, valid: data.valid }, params);
    const full = await train(data, { trees: 30, depth: 4, learningRate: 0.2 });
    // 20% + 10% of the training rows per tree.
    const n = data.train.length;
    for (const t of perTree) {
      expect(t.used).toBe(Math.round(0.2 * n) + Math.round(0.1 * n));
      // The weighed draw stands for the 80% it was drawn from: the weights add up to about every training row.
      expect(t.weight / n).toBeGreaterThan(0.99);
      expect(t.weight / n).toBeLessThan(1.01);
      // The kept rows are those of the largest gradients.
      expect(t.topMin).toBeGreaterThanOrEqual(t.restMax - 1e-9);
    }
    const gossAuc = testAuc(data, predictMargin(model, data.bins, data.labels.length));
    expect(gossAuc).toBeGreaterThan(testAuc(data, full.margin) - 0.005);
    // Seeded: the same seed grows the same trees.
    const again = await boost(localOracle(data.features, data.bins), { labels: data.labels, train: data.train, valid: data.valid }, params);
    expect(again.trees).toEqual(model.trees);
  });

  it('the first trees can be grown from the guest features alone', async () => {
    const split = uciTrees({ ownerOf: (f) => (f.startsWith('BILL_AMT') || f.startsWith('PAY_AMT') || f === 'AGE' ? 'bureau' : 'bank') });
    const { model } = await train(split, { trees: 4, guestOnlyTrees: 2 });
    const owners = model.trees.map((t) => new Set(t.nodes.flatMap((n) => (n.kind === 'split' ? [split.features[n.feature]!.owner] : []))));
    expect([...owners[0]!, ...owners[1]!].every((o) => o === 'bank')).toBe(true);
    expect(owners.slice(2).some((o) => o.has('bureau'))).toBe(true);
  });
});
