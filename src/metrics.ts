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

export interface TiedGroups {
  positives: number;
  negatives: number;
  /** Class counts per group of equal scores, from the highest score down (or the lowest up, when ascending). */
  groups: { value: number; pos: number; neg: number }[];
}

/** One sort, shared by every metric and curve: groups of tied scores with their class counts. */
export function tiedGroups(labels: ArrayLike<number>, scores: ArrayLike<number>, order: 'descending' | 'ascending' = 'descending'): TiedGroups {
  checkInputs(labels, scores);
  const rows = new Uint32Array(scores.length);
  for (let i = 0; i < rows.length; i++) rows[i] = i;
  rows.sort(order === 'descending' ? (a, b) => scores[b]! - scores[a]! : (a, b) => scores[a]! - scores[b]!);
  const groups: { value: number; pos: number; neg: number }[] = [];
  let positives = 0;
  let negatives = 0;
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    if (i === 0 || scores[row] !== scores[rows[i - 1]!]) groups.push({ value: scores[row]!, pos: 0, neg: 0 });
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

/**
 * Class counts in equal cells of a score on [0, 1]: AUC over any number of rows in constant memory, for passes that
 * see the rows a block at a time. A positive and a negative in the same cell count as a tie, so the AUC is within
 * aucMaxError() of the exact one (about 1e-5 for 65,536 cells and scores spread over a tenth of [0, 1]).
 */
export class ScoreCells {
  private readonly pos: Float64Array;
  private readonly neg: Float64Array;

  constructor(readonly cells = 65_536) {
    this.pos = new Float64Array(cells);
    this.neg = new Float64Array(cells);
  }

  add(labels: ArrayLike<number>, scores: ArrayLike<number>): void {
    checkInputs(labels, scores);
    for (let i = 0; i < labels.length; i++) {
      const s = scores[i]!;
      if (!(s >= 0 && s <= 1)) throw new RangeError(`a score of ${s} is outside [0, 1]`);
      const cell = Math.min(this.cells - 1, Math.floor(s * this.cells));
      if (labels[i]! > 0.5) this.pos[cell]! += 1;
      else this.neg[cell]! += 1;
    }
  }

  auc(): number {
    return aucOf(this.groups());
  }

  /** The exact AUC of the rows added lies within auc() ± this. */
  aucMaxError(): number {
    const { positives, negatives } = this.groups();
    let same = 0;
    for (let c = 0; c < this.cells; c++) same += this.pos[c]! * this.neg[c]!;
    return same / (2 * positives * negatives);
  }

  private groups(): TiedGroups {
    const groups: { value: number; pos: number; neg: number }[] = [];
    let positives = 0;
    let negatives = 0;
    for (let c = this.cells - 1; c >= 0; c--) {
      const pos = this.pos[c]!;
      const neg = this.neg[c]!;
      if (pos + neg === 0) continue;
      groups.push({ value: c / this.cells, pos, neg });
      positives += pos;
      negatives += neg;
    }
    return { positives, negatives, groups };
  }
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
