/**
 * The scorecard step of vertical LR: points per bin. Each party turns its own coefficients and WOE into points (it
 * needs the calibration slope, which the guest sends) and keeps them; hosts send their table (bins and points, no
 * data) to the guest, which assembles the scorecard with the base points.
 */
import type { VerticalJobSpec } from '../../config/schemas.js';
import type { BinCounts } from '../../credit/binning.js';
import { assembleScorecard, basePoints, featurePoints, scoreRange, type Scorecard, type ScorecardFeature, type ScorecardPart } from '../../credit/scorecard.js';
import { layoutOf, type BinnedFeature } from '../binning.js';
import type { PartyModel } from '../party-model.js';
import { notHeldWoe } from './finalize.js';
import type { PeerPort } from './port.js';
import type { TrainingState } from './state.js';
import { sha256Hex } from '../../bytes.js';

export interface ScorecardInputs {
  card: NonNullable<VerticalJobSpec['scorecard']>;
  binning: NonNullable<VerticalJobSpec['binning']>;
  model: PartyModel;
  binned: BinnedFeature[];
}

const scalingOf = (card: ScorecardInputs['card']) => ({ baseScore: card.base_score, baseOdds: card.base_odds, pdo: card.pdo, decimals: card.decimals });

/** The points of this party's selected features, which it keeps. */
function ownPoints(port: PeerPort, inputs: ScorecardInputs, slope: number): ScorecardFeature[] {
  const weights = inputs.model.weights;
  return inputs.binned
    .filter((b) => b.selected)
    .map((b, j) =>
      featurePoints(b.feature, port.self, b.edges, b.woe, weights[j]!, slope, scalingOf(inputs.card), b.trainEvents ? { events: b.trainEvents, totals: b.trainCounts } : undefined, {
        ...layoutOf(b),
        notHeldWoe: notHeldWoe(inputs.binning, b),
      }),
    );
}

export interface GuestScorecard {
  /** The guest's own part, kept beside its model part. */
  kept: ScorecardPart;
  scorecard: Scorecard;
  /** The scorecard as the guest writes it (its SHA-256 is in the report). */
  json: string;
  report: Record<string, unknown>;
}

/** The guest sends the slope, takes the hosts' tables and assembles the scorecard, annotating the hosts' bins with what binning taught it. */
export async function guestScorecard(state: TrainingState, port: PeerPort, inputs: ScorecardInputs & { hostCounts: Record<string, BinCounts> }): Promise<GuestScorecard> {
  const { card, model } = inputs;
  const calibration = state.calibration!;
  const slope = calibration.a;
  await Promise.all(port.hosts.map((h) => port.send(h, 'scorecard.slope', { a: slope })));
  const own = ownPoints(port, inputs, slope);
  const kept: ScorecardPart = { reasonCodes: card.reason_codes, features: own };
  const hostParts = await Promise.all(port.hosts.map((h) => port.receive(h, 'scorecard.part')));
  // The rows and default rate of each host bin, which the guest learned when binning, for the bank's own table.
  const annotated = hostParts.flat().map((f) => {
    const counts = inputs.hostCounts[f.feature];
    if (!counts) return f;
    return { ...f, bins: f.bins.map((b) => ({ ...b, count: counts.totals[b.bin]!, ...(counts.totals[b.bin]! > 0 ? { eventRate: counts.events[b.bin]! / counts.totals[b.bin]! } : {}) })) };
  });
  const scaling = scalingOf(card);
  const base = basePoints(model.weights[model.dim]!, calibration, scaling);
  const scorecard = assembleScorecard(scaling, base, [...own, ...annotated]);
  const json = JSON.stringify(scorecard, null, 2);
  return {
    kept,
    scorecard,
    json,
    report: { features: scorecard.features.length, base_points: base, score_range: scoreRange(scorecard), scorecard_sha256: sha256Hex(json) },
  };
}

/** A host turns its bins into points with the guest's slope, keeps them and sends its table to the guest. */
export async function hostScorecard(port: PeerPort, inputs: ScorecardInputs): Promise<{ kept: ScorecardPart; report: Record<string, unknown> }> {
  const { a: slope } = await port.receive(port.guest, 'scorecard.slope');
  const own = ownPoints(port, inputs, slope);
  await port.send(port.guest, 'scorecard.part', own);
  return { kept: { reasonCodes: inputs.card.reason_codes, features: own }, report: { features: own.length } };
}
