/**
 * Discrimination metrics for binary credit models. Labels are 1 for default ("bad"), 0 for good; scores are
 * probabilities of default (higher = riskier).
 */

export interface BinaryMetrics {
  auc: number;
  ks: number;
  n: number;
  positives: number;
}

function checkInputs(labels: ArrayLike<number>, scores: ArrayLike<number>): void {
  if (labels.length !== scores.length) {
    throw new RangeError(`labels (${labels.length}) and scores (${scores.length}) differ in length`);
  }
}

interface TiedGroups {
  positives: number;
  negatives: number;
  /** Class counts per group of equal scores, from the highest score down. */
  groups: { pos: number; neg: number }[];
}

/** One sort, shared by every metric: groups of tied scores with their class counts. */
function tiedGroups(labels: ArrayLike<number>, scores: ArrayLike<number>): TiedGroups {
  checkInputs(labels, scores);
  const order = new Uint32Array(scores.length);
  for (let i = 0; i < order.length; i++) order[i] = i;
  order.sort((a, b) => scores[b]! - scores[a]!);
  const groups: { pos: number; neg: number }[] = [];
  let positives = 0;
  let negatives = 0;
  for (let i = 0; i < order.length; i++) {
    const row = order[i]!;
    if (i === 0 || scores[row] !== scores[order[i - 1]!]) groups.push({ pos: 0, neg: 0 });
    const group = groups[groups.length - 1]!;
    if (labels[row]! > 0.5) {
      group.pos++;
      positives++;
    } else {
      group.neg++;
      negatives++;
    }
  }
  return { positives, negatives, groups };
}

/** Mann-Whitney: each negative is outranked by the positives above its group and ties with those in it. */
function aucOf({ positives, negatives, groups }: TiedGroups): number {
  if (positives === 0 || negatives === 0) return Number.NaN;
  let positivesAbove = 0;
  let credit = 0;
  for (const g of groups) {
    credit += g.neg * (positivesAbove + g.pos / 2);
    positivesAbove += g.pos;
  }
  return credit / (positives * negatives);
}

/** Largest gap between the cumulative shares of bads and goods, the cut-off moving one tied group at a time. */
function ksOf({ positives, negatives, groups }: TiedGroups): number {
  if (positives === 0 || negatives === 0) return Number.NaN;
  let cumPos = 0;
  let cumNeg = 0;
  let best = 0;
  for (const g of groups) {
    cumPos += g.pos;
    cumNeg += g.neg;
    best = Math.max(best, Math.abs(cumPos / positives - cumNeg / negatives));
  }
  return best;
}

/** ROC AUC by the rank-sum (Mann-Whitney) formula with ties given half credit. NaN when one class is absent. */
export function auc(labels: ArrayLike<number>, scores: ArrayLike<number>): number {
  return aucOf(tiedGroups(labels, scores));
}

/**
 * Kolmogorov-Smirnov statistic: the largest gap between the cumulative share of bads and of goods as the cut-off
 * moves down the score. Tied scores move together. NaN when one class is absent.
 */
export function ks(labels: ArrayLike<number>, scores: ArrayLike<number>): number {
  return ksOf(tiedGroups(labels, scores));
}

export function binaryMetrics(labels: ArrayLike<number>, scores: ArrayLike<number>): BinaryMetrics {
  const groups = tiedGroups(labels, scores);
  return { auc: aucOf(groups), ks: ksOf(groups), n: labels.length, positives: groups.positives };
}
