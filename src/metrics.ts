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

/** Indices of `scores` sorted by descending score. */
function descendingOrder(scores: ArrayLike<number>): Uint32Array {
  const order = new Uint32Array(scores.length);
  for (let i = 0; i < order.length; i++) order[i] = i;
  order.sort((a, b) => scores[b]! - scores[a]!);
  return order;
}

/**
 * ROC AUC by the rank-sum (Mann-Whitney) formula with ties given half credit. NaN when one class is absent.
 */
export function auc(labels: ArrayLike<number>, scores: ArrayLike<number>): number {
  checkInputs(labels, scores);
  const order = descendingOrder(scores);
  let pos = 0;
  let neg = 0;
  for (let i = 0; i < labels.length; i++) labels[i]! > 0.5 ? pos++ : neg++;
  if (pos === 0 || neg === 0) return Number.NaN;
  // Walk groups of tied scores from the highest; each negative in a group is outranked by the positives above
  // it and ties with the positives in its group.
  let positivesAbove = 0;
  let credit = 0;
  for (let start = 0; start < order.length; ) {
    let end = start;
    let groupPos = 0;
    let groupNeg = 0;
    const s = scores[order[start]!]!;
    while (end < order.length && scores[order[end]!] === s) {
      labels[order[end]!]! > 0.5 ? groupPos++ : groupNeg++;
      end++;
    }
    credit += groupNeg * (positivesAbove + groupPos / 2);
    positivesAbove += groupPos;
    start = end;
  }
  return credit / (pos * neg);
}

/**
 * Kolmogorov-Smirnov statistic: the largest gap between the cumulative share of bads and of goods as the cut-off
 * moves down the score. Tied scores move together. NaN when one class is absent.
 */
export function ks(labels: ArrayLike<number>, scores: ArrayLike<number>): number {
  checkInputs(labels, scores);
  const order = descendingOrder(scores);
  let pos = 0;
  let neg = 0;
  for (let i = 0; i < labels.length; i++) labels[i]! > 0.5 ? pos++ : neg++;
  if (pos === 0 || neg === 0) return Number.NaN;
  let cumPos = 0;
  let cumNeg = 0;
  let best = 0;
  for (let i = 0; i < order.length; i++) {
    labels[order[i]!]! > 0.5 ? cumPos++ : cumNeg++;
    const nextTied = i + 1 < order.length && scores[order[i + 1]!] === scores[order[i]!];
    if (!nextTied) best = Math.max(best, Math.abs(cumPos / pos - cumNeg / neg));
  }
  return best;
}

export function binaryMetrics(labels: ArrayLike<number>, scores: ArrayLike<number>): BinaryMetrics {
  let positives = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i]! > 0.5) positives++;
  return { auc: auc(labels, scores), ks: ks(labels, scores), n: labels.length, positives };
}
