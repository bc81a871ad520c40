/**
 * Points scorecards: the scaling a credit officer reads off the card, points that add up to the score, reason codes,
 * and a PMML export that an independent PMML evaluator (test/helpers/pmml-scorecard.ts) scores exactly as we do,
 * on a scorecard built from the UCI "default of credit card clients" data.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import { binCounts, mergeBins, mergeCounts, quantileEdges, binIndex } from '../src/credit/binning.js';
import { scorecardToPmml } from '../src/credit/pmml.js';
import {
  assembleScorecard,
  basePoints,
  featurePoints,
  reasonCodes,
  reasonText,
  scalingOf,
  scoreRecord,
  type Scorecard,
  type ScorecardFeature,
  type ScorecardScaling,
} from '../src/credit/scorecard.js';
import { woeIv, woeOf } from '../src/credit/woe.js';
import { auc } from '../src/metrics.js';
import { fitLogistic } from '../src/model/newton-lr.js';
import { Rng } from '../src/random.js';
import { evaluatePmmlScorecard, readPmmlScorecard } from './helpers/pmml-scorecard.js';

const SCALING: ScorecardScaling = { baseScore: 600, baseOdds: 50, pdo: 20, decimals: 2 };
const logit = (p: number) => Math.log(p / (1 - p));

/** A card with no features: the score is the base points alone. */
function scoreAtPd(pd: number, calibration = { a: 1, b: 0 }, scaling = SCALING): number {
  // Choose the intercept so that a·β0 + b = logit(pd).
  const intercept = (logit(pd) - calibration.b) / calibration.a;
  return basePoints(intercept, calibration, scaling);
}

describe('scaling', () => {
  it('600 points at odds 50:1, 20 points to double the odds', () => {
    const { factor, offset } = scalingOf(SCALING);
    expect(factor).toBeCloseTo(20 / Math.LN2, 12);
    expect(offset).toBeCloseTo(600 - (20 / Math.LN2) * Math.log(50), 12);
    expect(scoreAtPd(1 / 51)).toBe(600);
    expect(scoreAtPd(1 / 101)).toBe(620);
    expect(scoreAtPd(1 / 26)).toBe(580);
    expect(scoreAtPd(1 / 201)).toBe(640);
    // The Platt calibration is part of the map from model log-odds to score.
    expect(scoreAtPd(1 / 101, { a: 0.8, b: -0.3 })).toBe(620);
  });

  it('with 10 decimals the score is offset − factor·(a·z + b) for random models and records', () => {
    const rng = new Rng(5);
    const scaling = { ...SCALING, decimals: 10 };
    const { factor, offset } = scalingOf(scaling);
    for (let trial = 0; trial < 20; trial++) {
      const calibration = { a: rng.uniform(0.5, 1.5), b: rng.uniform(-0.5, 0.5) };
      const intercept = rng.uniform(-3, 0);
      const model = Array.from({ length: 6 }, (_, j) => {
        const edges = Array.from({ length: 1 + rng.int(6) }, (_, k) => k * 10 + rng.next()).sort((a, b) => a - b);
        const woe = Array.from({ length: edges.length + 2 }, () => rng.uniform(-2, 2));
        return { name: `f${j}`, edges, woe, beta: rng.uniform(-1.5, 0.2) };
      });
      const parts = model.map((m) => featurePoints(m.name, j2party(m.name), m.edges, m.woe, m.beta, calibration.a, scaling));
      const card = assembleScorecard(scaling, basePoints(intercept, calibration, scaling), parts);
      for (let r = 0; r < 50; r++) {
        const record: Record<string, number> = {};
        let z = intercept;
        for (const m of model) {
          const x = rng.next() < 0.1 ? Number.NaN : rng.uniform(-5, 70);
          record[m.name] = x;
          z += m.beta * m.woe[binIndex(x, m.edges)]!;
        }
        expect(Math.abs(scoreRecord(card, record).score - (offset - factor * (calibration.a * z + calibration.b)))).toBeLessThan(1e-6);
      }
    }
  });
});

function j2party(feature: string): string {
  return Number(feature.slice(1)) % 2 === 0 ? 'bank' : 'tax-bureau';
}

/** A small hand-made card: three features of one edge each. */
function handCard(): Scorecard {
  const f = (feature: string, party: string, points: [number, number, number]): ScorecardFeature => ({
    feature,
    party,
    coefficient: -1,
    baselineScore: Math.max(...points),
    bins: [
      { bin: 0, label: '(-inf, 10]', lower: null, upper: 10, missing: false, woe: 0, points: points[0] },
      { bin: 1, label: '(10, +inf)', lower: 10, upper: null, missing: false, woe: 0, points: points[1] },
      { bin: 2, label: 'missing', lower: null, upper: null, missing: true, woe: 0, points: points[2] },
    ],
  });
  return assembleScorecard(SCALING, 500.1, [f('utilisation', 'bank', [30.1, -12.2, 0]), f('arrears', 'tax-bureau', [25.05, -20.3, -5]), f('electricity', 'power-company', [10, 0.2, -5])]);
}

describe('points and reason codes', () => {
  it('the points on the card add up to the score, to the cent', () => {
    const card = handCard();
    expect(card.features.map((f) => f.feature)).toEqual(['arrears', 'electricity', 'utilisation']);
    const scored = scoreRecord(card, { utilisation: 50, arrears: 3, electricity: Number.NaN });
    expect(scored.points.map((p) => [p.feature, p.bin, p.points])).toEqual([
      ['arrears', 0, 25.05],
      ['electricity', 2, -5],
      ['utilisation', 1, -12.2],
    ]);
    expect(scored.score).toBe(507.95);
    // A feature left out of the record is missing.
    expect(scoreRecord(card, { utilisation: 10, arrears: 10.0001 }).score).toBe(Number((500.1 + 30.1 - 20.3 - 5).toFixed(2)));
  });

  it('reason codes: the features that lost the most points against their best bin, ties by feature name', () => {
    const card = handCard();
    // arrears lost 25.05 − (−20.3) = 45.35, utilisation 30.1 − (−12.2) = 42.3, electricity 10 − 0.2 = 9.8.
    const scored = scoreRecord(card, { utilisation: 11, arrears: 11, electricity: 11 });
    expect(reasonCodes(scored.points, 2).map((p) => p.feature)).toEqual(['arrears', 'utilisation']);
    expect(reasonCodes(scored.points, 5).map((p) => p.feature)).toEqual(['arrears', 'utilisation', 'electricity']);
    // All in their best bin: every feature lost 0; ties go by name.
    const best = scoreRecord(card, { utilisation: 1, arrears: 1, electricity: 1 });
    expect(reasonCodes(best.points, 3).map((p) => p.feature)).toEqual(['arrears', 'electricity', 'utilisation']);
    // As scores.csv writes them: the points lost, and a feature that lost none as (0), never (-0).
    expect(reasonCodes(scored.points, 2).map((p) => reasonText(p, 2))).toEqual(['arrears (-45.35)', 'utilisation (-42.3)']);
    expect(reasonCodes(best.points, 1).map((p) => reasonText(p, 2, true))).toEqual([`${best.points.find((p) => p.feature === 'arrears')!.party}/arrears (0)`]);
  });

  it('refuses inconsistent parts: a feature twice, or a baseline that is not the best points', () => {
    const card = handCard();
    expect(() => assembleScorecard(SCALING, 0, [card.features[0]!, card.features[0]!])).toThrow(/appears twice/);
    expect(() => assembleScorecard(SCALING, 0, [{ ...card.features[0]!, baselineScore: 0 }])).toThrow(/baselineScore/);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// A scorecard for the UCI data, three parties' features, and its PMML.

const UCI = new URL('../../shared/datasets/uci_default_credit/UCI_Credit_Card.csv', import.meta.url);
const FEATURES: [string, string][] = [
  ['PAY_0', 'bank'],
  ['PAY_2', 'bank'],
  ['LIMIT_BAL', 'bank'],
  ['BILL_AMT1', 'tax-bureau'],
  ['PAY_AMT1', 'tax-bureau'],
  ['PAY_AMT2', 'tax-bureau'],
  ['AGE', 'platform'],
  ['EDUCATION', 'platform'],
];
const CALIBRATION = { a: 0.97, b: 0.03 };

function buildUciScorecard() {
  const rows = parse(readFileSync(UCI, 'utf8'), { columns: true, skip_empty_lines: true }) as Record<string, string>[];
  const column = (name: string) => Float64Array.from(rows, (r) => Number(r[name]));
  const y = column('default.payment.next.month');
  const n = y.length;
  const binned = FEATURES.map(([feature, party]) => {
    const values = column(feature);
    const fine = quantileEdges(values, 50);
    const fineCounts = binCounts(values, y, fine);
    const plan = mergeBins(fine, fineCounts, { method: 'iv', maxBins: 6, minBinShare: 0.05 });
    const counts = mergeCounts(fineCounts, plan.groups);
    const { woe } = woeIv(counts);
    return { feature, party, values, edges: plan.edges, counts, woe, x: Float64Array.from(values, (v) => woeOf(v, plan.edges, woe)) };
  });
  const dim = binned.length;
  const design = new Float64Array(n * dim);
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) design[i * dim + j] = binned[j]!.x[i]!;
  const fit = fitLogistic(design, y, dim);
  const parts = binned.map((b, j) => featurePoints(b.feature, b.party, b.edges, b.woe, fit.weights[j]!, CALIBRATION.a, SCALING, b.counts));
  const card = assembleScorecard(SCALING, basePoints(fit.intercept, CALIBRATION, SCALING), parts);
  const records = rows.map((_, i) => Object.fromEntries(binned.map((b) => [b.feature, b.values[i]!])) as Record<string, number>);
  return { card, fit, binned, y, records, design, dim };
}

describe('a scorecard for UCI credit-card default', () => {
  const { card, fit, binned, y, records, design, dim } = buildUciScorecard();

  it('safer bins get more points, the score ranks defaulters low, and it tracks the model to rounding', () => {
    const pay0 = card.features.find((f) => f.feature === 'PAY_0')!;
    expect(pay0.coefficient).toBeLessThan(0);
    const edges = binned.find((b) => b.feature === 'PAY_0')!.edges;
    expect(pay0.bins[binIndex(-1, edges)]!.points).toBeGreaterThan(pay0.bins[binIndex(2, edges)]!.points + 50);
    expect(pay0.bins[binIndex(2, edges)]!.eventRate!).toBeGreaterThan(0.5);
    expect(pay0.bins.reduce((s, b) => s + (b.count ?? 0), 0)).toBe(y.length);

    const scores = records.map((r) => scoreRecord(card, r).score);
    expect(
      auc(
        y,
        scores.map((s) => -s),
      ),
    ).toBeGreaterThan(0.75);
    const { factor, offset } = scalingOf(SCALING);
    const tolerance = 0.005 * (card.features.length + 1) + 1e-9;
    for (let i = 0; i < records.length; i += 97) {
      const z = fit.score(design.subarray(i * dim, (i + 1) * dim));
      expect(Math.abs(scores[i]! - (offset - factor * (CALIBRATION.a * z + CALIBRATION.b)))).toBeLessThanOrEqual(tolerance);
    }
  });

  const pmml = scorecardToPmml(card, { modelName: 'uci-default', reasonCodes: 3 });

  it('the PMML is well-formed XML with the declared PMML 4.4 structure', () => {
    expect(XMLValidator.validate(pmml)).toBe(true);
    const model = readPmmlScorecard(pmml);
    expect(model.version).toBe('4.4');
    expect(model.xmlns).toBe('http://www.dmg.org/PMML-4_4');
    const header = (model.tree.PMML as Record<string, Record<string, unknown>>).Header!;
    expect((header.Application as Record<string, string>)['@_name']).toBe('fedcredit');
    expect(model.dataFields).toEqual(card.features.map((f) => ({ name: f.feature, optype: 'continuous', dataType: 'double' })));
    expect(model.miningFields).toEqual(card.features.map((f) => ({ name: f.feature, usageType: 'active', invalidValueTreatment: 'asIs' })));
    expect(model.outputFields).toEqual([
      { name: 'score', feature: 'predictedValue', rank: null },
      { name: 'reasonCode1', feature: 'reasonCode', rank: 1 },
      { name: 'reasonCode2', feature: 'reasonCode', rank: 2 },
      { name: 'reasonCode3', feature: 'reasonCode', rank: 3 },
    ]);
    expect(model.scorecard).toEqual({
      modelName: 'uci-default',
      functionName: 'regression',
      initialScore: card.basePoints,
      useReasonCodes: true,
      reasonCodeAlgorithm: 'pointsBelow',
      baselineMethod: 'max',
      baselineScore: null,
    });
    expect(model.characteristics).toHaveLength(card.features.length);
    card.features.forEach((f, j) => {
      const c = model.characteristics[j]!;
      expect(c.reasonCode).toBe(f.feature);
      expect(c.baselineScore).toBe(Math.max(...f.bins.map((b) => b.points)));
      const numeric = f.bins.slice(0, -1);
      // Missing first, then the numeric bins ascending.
      expect(c.attributes.map((a) => a.partialScore)).toEqual([f.bins[f.bins.length - 1]!.points, ...numeric.map((b) => b.points)]);
      expect(c.attributes[0]!.predicate).toEqual({ kind: 'simple', field: f.feature, operator: 'isMissing' });
      expect(c.attributes[1]!.predicate).toEqual({ kind: 'simple', field: f.feature, operator: 'lessOrEqual', value: numeric[0]!.upper });
      expect(c.attributes[c.attributes.length - 1]!.predicate).toEqual({ kind: 'simple', field: f.feature, operator: 'greaterThan', value: numeric[numeric.length - 1]!.lower });
      for (let k = 1; k < numeric.length - 1; k++) {
        expect(c.attributes[k + 1]!.predicate).toEqual({
          kind: 'compound',
          booleanOperator: 'and',
          children: [
            { kind: 'simple', field: f.feature, operator: 'greaterThan', value: numeric[k]!.lower },
            { kind: 'simple', field: f.feature, operator: 'lessOrEqual', value: numeric[k]!.upper },
          ],
        });
      }
    });
  });

  it('an independent PMML evaluator gives the same score and top-3 reason codes on 500 records, missing values and edges included', () => {
    const model = readPmmlScorecard(pmml);
    const rng = new Rng(2024);
    for (let r = 0; r < 500; r++) {
      const record = { ...records[rng.int(records.length)]! };
      for (const f of card.features) {
        const u = rng.next();
        if (u < 0.08) record[f.feature] = Number.NaN;
        else if (u < 0.1) delete record[f.feature];
        else if (u < 0.14) {
          // Exactly on an edge: belongs to the bin below it.
          const uppers = f.bins.filter((b) => b.upper !== null).map((b) => b.upper!);
          if (uppers.length > 0) record[f.feature] = uppers[rng.int(uppers.length)]!;
        }
      }
      const ours = scoreRecord(card, record);
      const theirs = evaluatePmmlScorecard(model, record);
      expect(Math.abs(theirs.score - ours.score)).toBeLessThan(1e-9);
      expect(theirs.reasonCodes).toEqual(reasonCodes(ours.points, 3).map((p) => p.feature));
    }
  });

  it('escapes names that XML would misread', () => {
    const name = `ratio <debt & "income"> 'net'`;
    const part = featurePoints(name, 'bank', [1.5], [0.4, -0.6, 0], -0.8, 1, SCALING);
    const odd = assembleScorecard(SCALING, 512.34, [part]);
    const xml = scorecardToPmml(odd, { modelName: 'a&b' });
    expect(XMLValidator.validate(xml)).toBe(true);
    const model = readPmmlScorecard(xml);
    expect(model.dataFields[0]!.name).toBe(name);
    expect(model.scorecard.modelName).toBe('a&b');
    for (const x of [1, 2, Number.NaN]) expect(evaluatePmmlScorecard(model, { [name]: x }).score).toBeCloseTo(scoreRecord(odd, { [name]: x }).score, 9);
    expect(new XMLParser().parse(xml)).toBeTruthy();
  });
});
