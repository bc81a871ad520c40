/**
 * AUC and KS are what a credit modeller reads off a federated run to decide whether the model is any good; they
 * must be exact, including with the heavy score ties that binned or rounded probabilities produce.
 */
import { describe, expect, it } from 'vitest';
import { auc, binaryMetrics, ks, ScoreCells } from '../src/metrics.js';
import { Rng } from '../src/random.js';

/** AUC as the share of (positive, negative) pairs the model orders correctly, ties counting half: O(n²). */
function bruteAuc(labels: number[], scores: number[]): number {
  let credit = 0;
  let pairs = 0;
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] !== 1) continue;
    for (let j = 0; j < labels.length; j++) {
      if (labels[j] !== 0) continue;
      pairs++;
      if (scores[i]! > scores[j]!) credit += 1;
      else if (scores[i] === scores[j]) credit += 0.5;
    }
  }
  return credit / pairs;
}

/** KS by sweeping every cut-off "score ≥ t" over the distinct scores: max |TPR − FPR|. */
function bruteKs(labels: number[], scores: number[]): number {
  const pos = labels.filter((l) => l === 1).length;
  const neg = labels.length - pos;
  let best = 0;
  for (const t of new Set(scores)) {
    let tp = 0;
    let fp = 0;
    for (let i = 0; i < labels.length; i++) {
      if (scores[i]! >= t) labels[i] === 1 ? tp++ : fp++;
    }
    best = Math.max(best, Math.abs(tp / pos - fp / neg));
  }
  return best;
}

describe('AUC and KS on hand-computed cases', () => {
  it('perfect separation gives AUC 1 and KS 1', () => {
    const labels = [1, 0, 1, 0, 1, 0];
    const scores = [0.9, 0.1, 0.8, 0.2, 0.7, 0.3];
    expect(auc(labels, scores)).toBe(1);
    expect(ks(labels, scores)).toBe(1);
  });

  it('inverted scores give AUC 0 (KS, an absolute gap, is still 1)', () => {
    const labels = [1, 0, 1, 0, 1, 0];
    const scores = [0.1, 0.9, 0.2, 0.8, 0.3, 0.7];
    expect(auc(labels, scores)).toBe(0);
    expect(ks(labels, scores)).toBe(1);
  });

  it('all-equal scores give AUC 0.5 and KS 0 (the model tells nobody apart)', () => {
    const labels = [1, 0, 0, 1, 0, 0, 0];
    const scores = new Array(labels.length).fill(0.42);
    expect(auc(labels, scores)).toBe(0.5);
    expect(ks(labels, scores)).toBe(0);
  });

  it('a tie between a positive and a negative counts half: AUC 0.625, KS 0.5', () => {
    // Pairs (pos, neg): (0.7, 0.7) tie → ½, (0.7, 0.2) → 1, (0.4, 0.7) → 0, (0.4, 0.2) → 1: 2.5 / 4.
    // Cut-offs: ≥0.7 → TPR ½, FPR ½; ≥0.4 → 1, ½; ≥0.2 → 1, 1. KS = ½.
    const labels = [1, 0, 1, 0];
    const scores = [0.7, 0.7, 0.4, 0.2];
    expect(auc(labels, scores)).toBe(0.625);
    expect(ks(labels, scores)).toBe(0.5);
  });

  it('tied groups move together: AUC 5/9, KS 1/3', () => {
    // pos {0.9, 0.5, 0.3}, neg {0.9, 0.5, 0.1}: 0.9 → ½+1+1, 0.5 → 0+½+1, 0.3 → 0+0+1 = 5 of 9 pairs.
    // Cut-offs: ≥0.9 → ⅓ vs ⅓; ≥0.5 → ⅔ vs ⅔; ≥0.3 → 1 vs ⅔; ≥0.1 → 1 vs 1. KS = ⅓.
    const labels = [1, 0, 0, 1, 1, 0];
    const scores = [0.9, 0.9, 0.5, 0.5, 0.3, 0.1];
    expect(auc(labels, scores)).toBeCloseTo(5 / 9, 15);
    expect(ks(labels, scores)).toBeCloseTo(1 / 3, 15);
  });

  it('does not depend on the order the rows come in', () => {
    const labels = [0, 1, 0, 1, 1, 0];
    const scores = [0.1, 0.5, 0.9, 0.3, 0.9, 0.5];
    const perm = [5, 2, 0, 4, 1, 3];
    expect(
      auc(
        perm.map((i) => labels[i]!),
        perm.map((i) => scores[i]!),
      ),
    ).toBe(auc(labels, scores));
    expect(
      ks(
        perm.map((i) => labels[i]!),
        perm.map((i) => scores[i]!),
      ),
    ).toBe(ks(labels, scores));
    expect(auc(labels, scores)).toBe(bruteAuc(labels, scores));
  });

  it('accepts typed arrays as well as plain arrays', () => {
    const labels = Float32Array.from([1, 0, 1, 0]);
    const scores = Float64Array.from([0.7, 0.7, 0.4, 0.2]);
    expect(auc(labels, scores)).toBe(0.625);
    expect(ks(labels, scores)).toBe(0.5);
  });

  it('is NaN when one class is absent, for AUC, KS and binaryMetrics', () => {
    expect(auc([1, 1, 1], [0.2, 0.5, 0.9])).toBeNaN();
    expect(ks([1, 1, 1], [0.2, 0.5, 0.9])).toBeNaN();
    expect(auc([0, 0], [0.2, 0.5])).toBeNaN();
    expect(ks([0, 0], [0.2, 0.5])).toBeNaN();
    expect(auc([], [])).toBeNaN();
    const m = binaryMetrics([0, 0, 0], [0.1, 0.2, 0.3]);
    expect(m.auc).toBeNaN();
    expect(m.ks).toBeNaN();
    expect(m.n).toBe(3);
    expect(m.positives).toBe(0);
  });

  it('refuses labels and scores of different lengths', () => {
    expect(() => auc([1, 0], [0.5])).toThrow(RangeError);
    expect(() => ks([1, 0], [0.5, 0.2, 0.1])).toThrow(RangeError);
  });
});

describe('AUC and KS against brute force on 2,000 random points with many ties', () => {
  // Scores rounded to a few levels (as binned scorecards produce), labels drawn with a default rate that rises
  // with the score so the model has real but imperfect skill.
  const cases: { seed: number; levels: number }[] = [
    { seed: 1, levels: 5 },
    { seed: 2, levels: 20 },
    { seed: 3, levels: 101 },
    { seed: 4, levels: 1000 },
    { seed: 5, levels: 2 },
  ];
  for (const { seed, levels } of cases) {
    it(`seed ${seed}, scores on ${levels} levels`, () => {
      const rng = new Rng(seed);
      const n = 2000;
      const labels: number[] = [];
      const scores: number[] = [];
      for (let i = 0; i < n; i++) {
        const s = Math.floor(rng.next() * levels) / levels;
        scores.push(s);
        labels.push(rng.bernoulli(0.1 + 0.5 * s) ? 1 : 0);
      }
      const ties = n - new Set(scores).size;
      expect(ties).toBeGreaterThan(n / 2);
      const m = binaryMetrics(labels, scores);
      const expectedAuc = bruteAuc(labels, scores);
      const expectedKs = bruteKs(labels, scores);
      expect(m.auc).toBeCloseTo(expectedAuc, 12);
      expect(m.ks).toBeCloseTo(expectedKs, 12);
      expect(m.auc).toBeGreaterThan(0.5); // the labels do depend on the score
      expect(m.positives).toBe(labels.filter((l) => l === 1).length);
      expect(m.n).toBe(n);
    });
  }

  it('ScoreCells, fed a block at a time, gives the exact AUC to within its stated bound, and that bound is small', () => {
    const rng = new Rng(17);
    const labels: number[] = [];
    const scores: number[] = [];
    for (let i = 0; i < 200_000; i++) {
      const bad = rng.bernoulli(0.2);
      labels.push(bad ? 1 : 0);
      // Scores crowded in [0.05, 0.45], as a credit model's PDs are, with exact ties among them.
      scores.push(Math.round(Math.min(0.45, Math.max(0.05, rng.normal(bad ? 0.25 : 0.18, 0.07))) * 1e6) / 1e6);
    }
    const cells = new ScoreCells();
    for (let start = 0; start < labels.length; start += 30_000) cells.add(labels.slice(start, start + 30_000), scores.slice(start, start + 30_000));
    const exact = auc(labels, scores);
    expect(Math.abs(cells.auc() - exact)).toBeLessThanOrEqual(cells.aucMaxError());
    expect(cells.aucMaxError()).toBeLessThan(1e-4);
    expect(new ScoreCells().auc()).toBeNaN();
    expect(() => new ScoreCells().add([1], [1.5])).toThrow(/outside \[0, 1\]/);
  });
});
