/**
 * A points scorecard from a logistic regression on WOE values (as in Siddiqi, "Credit Risk Scorecards").
 *
 * Model. Log-odds of default z = β0 + Σ_j β_j·WOE_j(x_j); a Platt calibration gives logit(pd) = a·z + b.
 * Scaling. score = offset + factor·ln(odds good:bad), factor = pdo / ln 2, offset = baseScore − factor·ln(baseOdds),
 * so the score is baseScore at odds baseOdds:1 and rises by pdo each time the odds double. As ln(odds good) =
 * −logit(pd), the score splits into additive points:
 *   basePoints     = offset − factor·(a·β0 + b)
 *   points(j, bin) = −factor·a·β_j·WOE_j,bin
 * Every party can compute the points of its own features from its coefficients, its WOE and the public a and scaling.
 *
 * Rounding. basePoints and every bin's points are rounded to `decimals` places, and the score is DEFINED as
 * basePoints + Σ points (rounded to `decimals` places to remove floating-point noise, which does not change it), so
 * the points printed on the card add up to the score exactly and any engine holding the same table scores the same.
 *
 * Reason codes (adverse-action reasons). A feature's baseline is the highest points any of its bins gives
 * (PMML baselineMethod="max"); a record's reasons are its features ranked by points lost against that baseline,
 * baseline − points, largest first (PMML reasonCodeAlgorithm="pointsBelow"), ties by feature name. The JSON card
 * stores the baseline per feature, scorecardToPmml writes it as each Characteristic's baselineScore, and reasonCodes ranks
 * the same way, so JSON, PMML and TypeScript give the same reasons.
 */
import { binCount, layoutBinIndex, unseenBin, type BinCounts, type BinLayout } from './bin-layout.js';

export interface ScorecardScaling {
  /** Score at odds baseOdds : 1 (good : bad), e.g. 600. */
  baseScore: number;
  /** e.g. 50 for 50:1. */
  baseOdds: number;
  /** Points to double the odds, e.g. 20. */
  pdo: number;
  /** Decimal places of basePoints and points, e.g. 2. */
  decimals: number;
}

export interface ScorecardBin {
  /** Bin index in the feature's binning (numeric bins 0 … edges.length or the category groups, then one per special
   * value, then the missing bin). */
  bin: number;
  /** "(-inf, 1.5]", "(1.5, 3.5]", "(3.5, +inf)", "= 98" (a special value), "A40, A46" (category levels) or "missing". */
  label: string;
  /** Exclusive lower bound; null for the first numeric bin and the missing bin. */
  lower: number | null;
  /** Inclusive upper bound; null for the last numeric bin and the missing bin. */
  upper: number | null;
  missing: boolean;
  /** A special value's own bin. */
  special?: number;
  /** A categorical feature's bin: its levels. */
  categories?: string[];
  woe: number;
  points: number;
  /** Training rows in the bin, when counts were given. */
  count?: number;
  /** Training default rate of the bin, when counts were given and the bin has rows. */
  eventRate?: number;
}

export interface ScorecardFeature {
  feature: string;
  party: string;
  coefficient: number;
  /** Reason-code baseline: the highest points of the feature's bins (PMML Characteristic/@baselineScore). */
  baselineScore: number;
  bins: ScorecardBin[];
  /** Categorical features: how a level unseen in training scores (`neutral`: 0 points, `reject`, or a level). */
  unseen?: string;
  /** Points of an enterprise the feature's party does not hold (0 = neutral, the points of WOE 0). */
  notHeldPoints?: number;
}

export interface Scorecard {
  format: 'fedcredit-scorecard/1';
  scaling: ScorecardScaling;
  factor: number;
  offset: number;
  basePoints: number;
  /** Sorted by feature name (so that the card does not depend on the order in which parties sent their parts). */
  features: ScorecardFeature[];
}

/** What a party keeps of a vertical job's scorecard (scorecard-part.json): the points of its own features. */
export interface ScorecardPart {
  /** Reasons per scored enterprise (the job's scorecard.reason_codes). */
  reasonCodes: number;
  features: ScorecardFeature[];
}

export interface ScoredPoints {
  score: number;
  /** One entry per feature, in the card's order; `baseline` is that feature's baselineScore. `bin` is -1 for an
   * unseen level scored neutral and for a value the party does not hold (`notHeld`), which is never a reason. */
  points: { feature: string; party: string; bin: number; points: number; baseline: number; notHeld?: boolean }[];
}

function checkScaling(s: ScorecardScaling): void {
  if (!Number.isFinite(s.baseScore)) throw new RangeError(`baseScore must be finite, got ${s.baseScore}`);
  if (!(s.baseOdds > 0) || !Number.isFinite(s.baseOdds)) throw new RangeError(`baseOdds must be > 0, got ${s.baseOdds}`);
  if (!(s.pdo > 0) || !Number.isFinite(s.pdo)) throw new RangeError(`pdo must be > 0, got ${s.pdo}`);
  if (!Number.isInteger(s.decimals) || s.decimals < 0 || s.decimals > 15) {
    throw new RangeError(`decimals must be an integer from 0 to 15, got ${s.decimals}`);
  }
}

/** `x` rounded half away from zero on its exact decimal value to `decimals` places; never -0. */
function roundTo(x: number, decimals: number): number {
  if (!Number.isFinite(x)) throw new RangeError(`cannot round ${x} to points: check the coefficients and WOE for NaN or infinity`);
  const r = Number(x.toFixed(decimals));
  return r === 0 ? 0 : r;
}

/** factor = pdo / ln 2 and offset = baseScore − factor·ln(baseOdds). */
export function scalingOf(s: ScorecardScaling): { factor: number; offset: number } {
  checkScaling(s);
  const factor = s.pdo / Math.LN2;
  return { factor, offset: s.baseScore - factor * Math.log(s.baseOdds) };
}

function binLabel(lower: number | null, upper: number | null): string {
  // For people: six significant digits (edges are midpoints such as 0.10999999999999999); bounds keep full precision.
  const show = (x: number) => String(Number(x.toPrecision(6)));
  return `(${lower === null ? '-inf' : show(lower)}, ${upper === null ? '+inf)' : `${show(upper)}]`}`;
}

/** What a feature's bins look like beyond numeric edges, and how the cases outside them score. */
export interface FeaturePointsLayout {
  specials?: number[];
  categories?: string[][];
  unseen?: string;
  /** WOE of an enterprise the feature's party does not hold (default 0, neutral). */
  notHeldWoe?: number;
}

/**
 * One party's part of the card: the points of its feature's bins, −factor·a·β·WOE rounded to `decimals` places.
 * `counts` (optional) adds each bin's training row count and default rate; `layout` gives special values,
 * categories and the not-held WOE.
 */
export function featurePoints(
  feature: string,
  party: string,
  edges: readonly number[],
  woe: readonly number[],
  coefficient: number,
  slopeA: number,
  scaling: ScorecardScaling,
  counts?: BinCounts,
  layout: FeaturePointsLayout = {},
): ScorecardFeature {
  const specials = layout.specials ?? [];
  const categories = layout.categories;
  const valueBins = categories ? categories.length : edges.length + 1;
  const bins = categories ? valueBins + 1 : binCount(edges, specials);
  if (woe.length !== bins) throw new RangeError(`feature ${feature}: ${woe.length} WOE values for ${bins} bins`);
  if (counts && (counts.totals.length !== bins || counts.events.length !== bins)) {
    throw new RangeError(`feature ${feature}: counts do not have ${bins} bins`);
  }
  if (!Number.isFinite(coefficient) || !Number.isFinite(slopeA)) {
    throw new RangeError(`feature ${feature}: coefficient ${coefficient} and slope ${slopeA} must be finite`);
  }
  const { factor } = scalingOf(scaling);
  const pointsOf = (w: number) => roundTo(-factor * slopeA * coefficient * w, scaling.decimals);
  const out: ScorecardBin[] = [];
  for (let k = 0; k < bins; k++) {
    const missing = k === bins - 1;
    const special = !missing && k >= valueBins ? specials[k - valueBins] : undefined;
    const numeric = !missing && special === undefined && !categories;
    const lower = !numeric || k === 0 ? null : edges[k - 1]!;
    const upper = !numeric || k === edges.length ? null : edges[k]!;
    const label = missing ? 'missing' : special !== undefined ? `= ${special}` : categories ? categories[k]!.join(', ') : binLabel(lower, upper);
    const bin: ScorecardBin = { bin: k, label, lower, upper, missing, woe: woe[k]!, points: pointsOf(woe[k]!) };
    if (special !== undefined) bin.special = special;
    if (categories && !missing) bin.categories = [...categories[k]!];
    if (counts) {
      bin.count = counts.totals[k]!;
      if (counts.totals[k]! > 0) bin.eventRate = counts.events[k]! / counts.totals[k]!;
    }
    out.push(bin);
  }
  return {
    feature,
    party,
    coefficient,
    baselineScore: Math.max(...out.map((b) => b.points)),
    bins: out,
    ...(categories ? { unseen: layout.unseen ?? 'neutral' } : {}),
    notHeldPoints: pointsOf(layout.notHeldWoe ?? 0),
  };
}

/** offset − factor·(a·β0 + b), rounded to `decimals` places. */
export function basePoints(intercept: number, calibration: { a: number; b: number }, scaling: ScorecardScaling): number {
  const { factor, offset } = scalingOf(scaling);
  return roundTo(offset - factor * (calibration.a * intercept + calibration.b), scaling.decimals);
}

/** The layout of a card feature: its edges, special values and categories, read back from its bins. */
function layoutOf(f: ScorecardFeature): BinLayout {
  const value = f.bins.filter((b) => !b.missing && b.special === undefined);
  if (value.some((b) => b.categories)) return { edges: [], categories: value.map((b) => b.categories ?? []), unseen: f.unseen ?? 'neutral' };
  return { edges: value.slice(0, -1).map((b) => b.upper!), specials: f.bins.filter((b) => b.special !== undefined).map((b) => b.special!) };
}

/** Checks one feature's bins: value bins (numeric ones in order with matching bounds, or category groups), then the
 * special values, then the missing bin. */
function checkFeature(f: ScorecardFeature): void {
  const n = f.bins.length;
  if (n < 2) throw new RangeError(`feature ${f.feature} has ${n} bins; a feature has at least one value bin and the missing bin`);
  const categorical = f.bins.some((b) => b.categories);
  const valueBins = f.bins.filter((b) => !b.missing && b.special === undefined).length;
  for (let k = 0; k < n; k++) {
    const b = f.bins[k]!;
    const last = k === n - 1;
    const inOrder = b.bin === k && b.missing === last && (b.special !== undefined) === (!last && k >= valueBins) && !!b.categories === (categorical && k < valueBins);
    if (!inOrder) throw new RangeError(`feature ${f.feature}: bin ${k} is out of order (bins are value ones, then special values, then the missing one)`);
    if (!Number.isFinite(b.points)) throw new RangeError(`feature ${f.feature}: bin ${k} has points ${b.points}`);
    if (k >= valueBins || categorical) continue;
    const lower = k === 0 ? null : f.bins[k - 1]!.upper;
    const upper = b.upper;
    if (b.lower !== lower || (k === valueBins - 1) !== (upper === null) || (upper !== null && lower !== null && !(upper > lower))) {
      throw new RangeError(`feature ${f.feature}: bounds of bin ${k} do not follow on from bin ${k - 1}`);
    }
  }
  if (categorical) {
    const levels = f.bins.flatMap((b) => b.categories ?? []);
    if (new Set(levels).size !== levels.length) throw new RangeError(`feature ${f.feature}: a level is in two bins`);
    const unseen = f.unseen ?? 'neutral';
    if (unseen !== 'neutral' && unseen !== 'reject' && !levels.includes(unseen))
      throw new RangeError(`feature ${f.feature}: unseen levels are to score as ${JSON.stringify(unseen)}, which is in no bin`);
  }
  const max = Math.max(...f.bins.map((b) => b.points));
  if (f.baselineScore !== max) throw new RangeError(`feature ${f.feature}: baselineScore ${f.baselineScore} is not its highest points ${max}`);
}

/** The whole card from the base points and every party's features; features are sorted by name, names must be unique. */
export function assembleScorecard(scaling: ScorecardScaling, base: number, parts: ScorecardFeature[]): Scorecard {
  const { factor, offset } = scalingOf(scaling);
  if (!Number.isFinite(base)) throw new RangeError(`base points must be finite, got ${base}`);
  const features = [...parts].sort((x, y) => (x.feature < y.feature ? -1 : x.feature > y.feature ? 1 : 0));
  for (let i = 0; i < features.length; i++) {
    checkFeature(features[i]!);
    if (i > 0 && features[i]!.feature === features[i - 1]!.feature) {
      throw new RangeError(`feature ${features[i]!.feature} appears twice (parties ${features[i - 1]!.party} and ${features[i]!.party})`);
    }
  }
  return { format: 'fedcredit-scorecard/1', scaling: { ...scaling }, factor, offset, basePoints: base, features };
}

/** The lowest and highest score the card can give, rounded as its points are. */
export function scoreRange(card: Scorecard): [number, number] {
  const low = card.features.reduce((s, f) => s + Math.min(...f.bins.map((b) => b.points)), card.basePoints);
  const high = card.features.reduce((s, f) => s + Math.max(...f.bins.map((b) => b.points)), card.basePoints);
  return [roundTo(low, card.scaling.decimals), roundTo(high, card.scaling.decimals)];
}

/**
 * Score of one record: basePoints + the points of each feature's bin. A value is a number, or a level for a
 * categorical feature; a feature absent from `values` is missing. A feature named in `notHeld` (its party does not
 * hold the enterprise) scores its notHeldPoints (0, neutral, unless declared) and is never a reason; an unseen level
 * scores as the feature's `unseen` says.
 */
export function scoreRecord(card: Scorecard, values: Record<string, number | string>, notHeld: ReadonlySet<string> = new Set()): ScoredPoints {
  let sum = card.basePoints;
  const points: ScoredPoints['points'] = [];
  for (const f of card.features) {
    if (notHeld.has(f.feature)) {
      const p = f.notHeldPoints ?? 0;
      sum += p;
      points.push({ feature: f.feature, party: f.party, bin: -1, points: p, baseline: f.baselineScore, notHeld: true });
      continue;
    }
    const raw: unknown = Object.hasOwn(values, f.feature) ? values[f.feature] : undefined;
    const layout = layoutOf(f);
    if (raw !== undefined && typeof raw !== 'number' && !(layout.categories && typeof raw === 'string')) {
      throw new TypeError(`feature ${f.feature}: value ${String(raw)} is not a ${layout.categories ? 'level' : 'number'}`);
    }
    let bin = layoutBinIndex(raw as number | string | undefined, layout);
    if (bin < 0) bin = unseenBin(f.feature, String(raw), layout);
    const p = bin < 0 ? 0 : f.bins[bin]!.points;
    sum += p;
    points.push({ feature: f.feature, party: f.party, bin, points: p, baseline: f.baselineScore });
  }
  return { score: roundTo(sum, card.scaling.decimals), points };
}

/**
 * A reason as scores.csv writes it: the feature (after its party in a vertical job's file) and the points it lost,
 * rounded to the card's decimals: "bank/PAY_0 (-23)". A feature at its best bin lost nothing and shows "(0)", not
 * "(-0)".
 */
export function reasonText(reason: ScoredPoints['points'][number], decimals: number, withParty = false): string {
  const lost = Number((reason.baseline - reason.points).toFixed(decimals));
  return `${withParty ? `${reason.party}/` : ''}${reason.feature} (${lost > 0 ? `-${lost}` : '0'})`;
}

/**
 * The k main reasons for a low score: features ranked by points lost against their baseline (baseline − points,
 * the highest points of the feature), largest first, ties by feature name (as PMML pointsBelow with
 * baselineMethod="max"; a negative loss, impossible with that baseline, is never a reason).
 */
export function reasonCodes(points: ScoredPoints['points'], k: number): ScoredPoints['points'] {
  return points
    .filter((p) => !p.notHeld)
    .map((p) => ({ p, lost: p.baseline - p.points }))
    .filter(({ lost }) => lost >= 0)
    .sort((x, y) => y.lost - x.lost || (x.p.feature < y.p.feature ? -1 : x.p.feature > y.p.feature ? 1 : 0))
    .slice(0, Math.max(0, k))
    .map(({ p }) => p);
}
