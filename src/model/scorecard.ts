/**
 * The points scorecard of a horizontal logistic model trained on WOE. Every participant holds every feature, so the
 * coordinator builds the whole card from the published weights and the bins (which the preprocessing carries); the
 * auditor's replay rebuilds it the same way and compares the bytes.
 */
import type { z } from 'zod';
import type { ScorecardSpec } from '../config/schemas.js';
import { assembleScorecard, basePoints, featurePoints, scoreRange, type Scorecard } from '../credit/scorecard.js';
import { scorecardToPmml } from '../credit/pmml.js';
import { layoutOfBins } from '../credit/bin-layout.js';
import type { Preprocessing } from './preprocess.js';

/** Who holds a feature's points in a horizontal job: every participant holds every feature. */
export const HORIZONTAL_PARTY = 'federation';

/**
 * Calibration of the log-odds before scaling: a = 1, b = 0. The points are the model's own log-odds: logistic
 * regression fitted by log-loss on every participant's training rows reproduces the training default rate on
 * average, so no Platt step is fitted (the evaluation's calibration table shows how well PDs match on validation rows).
 */
export const HORIZONTAL_CALIBRATION = { a: 1, b: 0 } as const;

export interface HorizontalScorecard {
  card: Scorecard;
  json: string;
  pmml: string;
  /** Lowest and highest score the card can give. */
  range: [number, number];
}

/**
 * The card of a logistic model on WOE: weights are TensorFlow.js's flat order for one dense unit (kernel per feature,
 * then the bias), features and bins as in `prep`.
 */
export function horizontalScorecard(weights: Float32Array, prep: Preprocessing, spec: z.infer<typeof ScorecardSpec>, modelName: string): HorizontalScorecard {
  const bins = prep.bins ?? [];
  const dim = prep.features.length;
  if (bins.length !== dim || dim === 0) throw new RangeError('a scorecard needs every model feature binned and read as WOE');
  if (weights.length !== dim + 1) throw new RangeError(`a logistic model on ${dim} features has ${dim + 1} weights, got ${weights.length}`);
  const scaling = { baseScore: spec.base_score, baseOdds: spec.base_odds, pdo: spec.pdo, decimals: spec.decimals };
  const parts = bins.map((b, j) => {
    const layout = layoutOfBins(b);
    return featurePoints(b.feature, HORIZONTAL_PARTY, layout.edges, b.woe, weights[j]!, HORIZONTAL_CALIBRATION.a, scaling, { events: b.events, totals: b.totals }, layout);
  });
  const card = assembleScorecard(scaling, basePoints(weights[dim]!, HORIZONTAL_CALIBRATION, scaling), parts);
  return {
    card,
    json: JSON.stringify(card, null, 2),
    pmml: scorecardToPmml(card, { modelName, reasonCodes: spec.reason_codes }),
    range: scoreRange(card),
  };
}
