/**
 * Unit tests of three protocol pieces that the end-to-end tests only reach through real processes: the hosts'
 * pairwise-masked secure sum, the FedAvg step every side applies to an opened aggregate, and a vertical party's
 * slice of the logistic regression (whose split update must equal the centralised one).
 */
import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { maskedShare, openShares, type MaskPeer } from '../src/vertical/secure-sum.js';
import { aggregateLoss, aggregateSamples, applyAggregate } from '../src/fl/fedavg.js';
import { fitCalibration, PartyModel, standardised } from '../src/vertical/party-model.js';
import type { LoadedDataset } from '../src/data/csv.js';
import { Rng } from '../src/random.js';

/** Every host's peers: one shared secret per pair, the same bytes on both sides. */
function pairwiseSecrets(hosts: string[]): Map<string, MaskPeer[]> {
  const peers = new Map<string, MaskPeer[]>(hosts.map((h) => [h, []]));
  for (let i = 0; i < hosts.length; i++) {
    for (let j = i + 1; j < hosts.length; j++) {
      const secret = randomBytes(32);
      peers.get(hosts[i]!)!.push({ organisation: hosts[j]!, secret });
      peers.get(hosts[j]!)!.push({ organisation: hosts[i]!, secret });
    }
  }
  return peers;
}

describe('pairwise-masked secure sum', () => {
  const hosts = ['platform', 'power-company', 'tax-bureau'];
  const rng = new Rng(11);
  const values = hosts.map(() => Float64Array.from({ length: 2000 }, () => (rng.next() - 0.5) * 40));

  it("the masks cancel: the guest opens the sum of the hosts' values to the fixed-point resolution (2^-24)", () => {
    const peers = pairwiseSecrets(hosts);
    const shares = hosts.map((h, k) => maskedShare(values[k]!, h, peers.get(h)!, 'job-1|step-7|validate'));
    const sum = openShares(shares);
    for (let i = 0; i < sum.length; i++) expect(Math.abs(sum[i]! - (values[0]![i]! + values[1]![i]! + values[2]![i]!))).toBeLessThanOrEqual(1.5 * 2 ** -24);
  });

  it("one host's share says nothing of its values: uniform over [0, 2^52), uncorrelated with them", () => {
    const peers = pairwiseSecrets(hosts);
    const share = maskedShare(values[0]!, hosts[0]!, peers.get(hosts[0]!)!, 'job-1|step-7|validate');
    // The pairwise secrets are fresh random bytes, so both bounds are 5.5 standard errors (a false failure below 1e-7
    // each; at 4.5, as before, one run in 90,000 failed): the mean of n uniforms has standard error 1/√(12n), a
    // correlation with independent values 1/√n.
    const mean = share.reduce((a, b) => a + b, 0) / share.length / 2 ** 52;
    expect(Math.abs(mean - 0.5)).toBeLessThan(5.5 / Math.sqrt(12 * share.length));
    const v = values[0]!;
    const mv = v.reduce((a, b) => a + b, 0) / v.length;
    const ms = share.reduce((a, b) => a + b, 0) / share.length;
    let cov = 0,
      vv = 0,
      ss = 0;
    for (let i = 0; i < v.length; i++) {
      cov += (v[i]! - mv) * (share[i]! - ms);
      vv += (v[i]! - mv) ** 2;
      ss += (share[i]! - ms) ** 2;
    }
    expect(Math.abs(cov / Math.sqrt(vv * ss))).toBeLessThan(5.5 / Math.sqrt(v.length));
  });

  it('shares made for another step or purpose do not cancel (masks are never reused)', () => {
    const peers = pairwiseSecrets(hosts);
    const shares = hosts.map((h, k) => maskedShare(values[k]!, h, peers.get(h)!, k === 0 ? 'job-1|step-8|validate' : 'job-1|step-7|validate'));
    const sum = openShares(shares);
    const off = sum.filter((s, i) => Math.abs(s - (values[0]![i]! + values[1]![i]! + values[2]![i]!)) > 1).length;
    expect(off).toBeGreaterThan(sum.length * 0.99);
  });

  it('with a single host the share is its fixed-point value; out-of-range values are refused by name', () => {
    const one = Float64Array.from([1.5, -2.25, 0]);
    expect(Array.from(openShares([maskedShare(one, 'tax-bureau', [], 'c')]))).toEqual([1.5, -2.25, 0]);
    expect(() => maskedShare(Float64Array.from([2 ** 27]), 'tax-bureau', [], 'c')).toThrow(/index 0 cannot enter a secure sum/);
    expect(() => maskedShare(Float64Array.from([0, NaN]), 'tax-bureau', [], 'c')).toThrow(/index 1/);
    expect(() => openShares([new Float64Array(2), new Float64Array(3)])).toThrow(/differ in length/);
  });
});

describe('FedAvg step from an opened aggregate', () => {
  it('is the sample-weighted average of the local models, with the weighted loss', () => {
    const global = Float32Array.from([0.5, -1, 2]);
    const locals = [
      { w: [0.7, -0.8, 2.1], n: 100, loss: 0.4 },
      { w: [0.1, -1.5, 1.0], n: 300, loss: 0.6 },
    ];
    const aggregate = new Float64Array(global.length + 2);
    for (const l of locals) {
      l.w.forEach((w, i) => (aggregate[i]! += l.n * (w - global[i]!)));
      aggregate[global.length]! += l.n;
      aggregate[global.length + 1]! += l.n * l.loss;
    }
    const next = applyAggregate(global, aggregate);
    for (let i = 0; i < global.length; i++) expect(next[i]).toBeCloseTo((100 * locals[0]!.w[i]! + 300 * locals[1]!.w[i]!) / 400, 6);
    expect(next).toBeInstanceOf(Float32Array);
    expect(aggregateSamples(global, aggregate)).toBe(400);
    expect(aggregateLoss(global, aggregate)).toBeCloseTo(0.55, 12);
  });
});

function dataset(columns: Float64Array[], rows: number): LoadedDataset {
  const width = columns.length;
  const x = new Float32Array(rows * width);
  for (let r = 0; r < rows; r++) for (let j = 0; j < width; j++) x[r * width + j] = columns[j]![r]!;
  return { ids: Array.from({ length: rows }, (_, r) => `id${r}`), features: columns.map((_, j) => `f${j}`), x, groups: {}, rows } as unknown as LoadedDataset;
}

describe("a vertical party's slice of the logistic regression", () => {
  const rows = 400;
  const rng = new Rng(3);
  const cols = Array.from({ length: 5 }, (_, j) => Float64Array.from({ length: rows }, () => rng.next() * (j + 1) * 10 - 3));
  cols[2]![7] = NaN;
  const train = Uint32Array.from({ length: rows }, (_, r) => r);
  const settings = { optimizer: 'adam' as const, learningRate: 0.05, lrDecay: 0.1, l2: 0.01 };

  it('two parties updating their own slices with their own gradient slices equal one party holding every column', () => {
    const whole = new PartyModel(dataset(cols, rows), [0, 1, 2, 3, 4], train, 5, true);
    const guest = new PartyModel(dataset(cols.slice(0, 2), rows), [0, 1], train, 5, true);
    const host = new PartyModel(dataset(cols.slice(2), rows), [0, 1, 2], train, 5, false);
    for (let step = 0; step < 25; step++) {
      // A gradient of the shape training produces: Xᵀd over the columns, then the intercept.
      const d = Float64Array.from({ length: rows }, () => rng.next() - 0.5);
      const grad = (m: PartyModel) => Float64Array.from(m.columns(train), (c) => c.reduce((acc, v, i) => acc + v * d[i]!, 0) / rows);
      const g = grad(whole);
      whole.step(g, Math.floor(step / 5), settings);
      guest.step(Float64Array.from([g[0]!, g[1]!, g[5]!]), Math.floor(step / 5), settings);
      host.step(g.subarray(2, 5), Math.floor(step / 5), settings);
    }
    expect(Array.from(guest.weights)).toEqual([whole.weights[0], whole.weights[1], whole.weights[5]]);
    expect(Array.from(host.weights)).toEqual(Array.from(whole.weights.subarray(2, 5)));
    const joint = guest.scores(train).map((s, i) => s + host.scores(train)[i]!);
    const all = whole.scores(train);
    for (let i = 0; i < rows; i++) expect(joint[i]).toBeCloseTo(all[i]!, 10);
  });

  it('a missing cell is the training mean (0 after standardising); values are clipped at ±clip', () => {
    const m = new PartyModel(dataset(cols, rows), [0, 1, 2, 3, 4], train, 2, false);
    expect(m.value(7, 2)).toBe(0);
    for (let r = 0; r < rows; r++) for (let j = 0; j < 5; j++) expect(Math.abs(m.value(r, j))).toBeLessThanOrEqual(2);
    expect(standardised(100, 0, 1, 5)).toBe(5);
    expect(standardised(3, 1, 2, 0)).toBe(1);
  });

  it('a step rolled back with restore re-runs to the same weights (a retried step computes what the first would have)', () => {
    const m = new PartyModel(dataset(cols, rows), [0, 1, 2, 3, 4], train, 5, true);
    const g = Float64Array.from({ length: 6 }, (_, j) => 0.1 * (j - 2));
    m.step(g, 0, settings);
    const before = m.snapshot();
    m.step(g, 0, settings);
    const once = m.weights.slice();
    m.restore(before);
    m.step(g, 0, settings);
    expect(Array.from(m.weights)).toEqual(Array.from(once));
  });

  it('Platt calibration recovers the slope and offset that generated the labels', () => {
    const n = 20000;
    const z = Float64Array.from({ length: n }, () => (rng.next() - 0.5) * 8);
    const y = Float64Array.from(z, (s) => (rng.next() < 1 / (1 + Math.exp(-(0.7 * s - 1.2))) ? 1 : 0));
    const {
      calibration: { a, b },
      warning,
    } = fitCalibration(z, y);
    expect(warning).toBeUndefined();
    expect(a).toBeCloseTo(0.7, 1);
    expect(b).toBeCloseTo(-1.2, 1);
  });
});
