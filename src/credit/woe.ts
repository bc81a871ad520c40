/**
 * Weight of evidence and information value of a binned feature (as in Siddiqi, "Credit Risk Scorecards").
 *
 *   WOE_b = ln( (good_b / goodTotal) / (event_b / eventTotal) )      positive = safer than average
 *   IV    = Σ_b (good_b / goodTotal − event_b / eventTotal) · WOE_b
 *
 * Zero counts. A bin with rows but no events (or no goods) would get an infinite WOE. Such a bin gets 0.5 added to
 * BOTH its event and its good count (a Haldane–Anscombe style correction) before its shares are taken; the
 * denominators goodTotal and eventTotal stay the unadjusted totals, and the bin's IV term uses the same adjusted
 * shares as its WOE. An empty bin (no rows, e.g. no missing values in training) gets WOE 0 and IV 0, so it scores
 * like the average applicant.
 */
import { binIndex, type BinCounts } from './bin-layout.js';

export interface WoeResult {
  woe: number[];
  ivByBin: number[];
  iv: number;
}

/** WOE and IV term of one bin with `events` out of `total` rows, given the feature's totals (see the module comment). */
function binWoe(events: number, total: number, eventTotal: number, goodTotal: number): { woe: number; iv: number } {
  if (total === 0) return { woe: 0, iv: 0 };
  let e = events;
  let g = total - events;
  if (e === 0 || g === 0) {
    e += 0.5;
    g += 0.5;
  }
  const goodShare = g / goodTotal;
  const eventShare = e / eventTotal;
  const woe = Math.log(goodShare / eventShare);
  return { woe, iv: (goodShare - eventShare) * woe };
}

/** The IV term of one bin, as woeIv computes it (used by the 'iv' merge criterion). */
export function binInformationValue(events: number, total: number, eventTotal: number, goodTotal: number): number {
  return binWoe(events, total, eventTotal, goodTotal).iv;
}

/**
 * The IV a feature independent of the label reaches on these bins by chance: the mean of woeIv's IV over every way
 * to deal the same events into bins of the same totals (the labels shuffled). By linearity it is a sum over bins; a
 * bin of n rows holds e of the E events with the hypergeometric probability C(E,e)·C(N−E,n−e)/C(N,n), and its IV
 * term is the one woeIv gives it, zero-count correction included. For k non-empty bins it is about
 * (k−1)·(1/E + 1/G), G the non-events (IV ≈ χ²·(1/E + 1/G) under independence); the exact sum is a little higher where
 * bins are small. A fine-bin IV of a few hundred rows is largely this much.
 */
export function chanceIv(counts: BinCounts): number {
  const totals = counts.totals.map(Math.round);
  const events = counts.events.reduce((s, e) => s + Math.round(e), 0);
  const rows = totals.reduce((s, t) => s + t, 0);
  const goods = rows - events;
  if (events === 0 || goods === 0) return 0;
  const logFactorial = logFactorials(rows);
  const logChoose = (n: number, k: number) => logFactorial[n]! - logFactorial[k]! - logFactorial[n - k]!;
  let iv = 0;
  for (const n of totals) {
    if (n === 0) continue;
    // Beyond 12 standard deviations of the hypergeometric the probabilities are below 1e-30: left out.
    const mean = (n * events) / rows;
    const spread = 12 * Math.sqrt((mean * goods * (rows - n)) / (rows * Math.max(1, rows - 1))) + 1;
    const lo = Math.max(0, n - goods, Math.floor(mean - spread));
    const hi = Math.min(n, events, Math.ceil(mean + spread));
    const base = logChoose(rows, n);
    for (let e = lo; e <= hi; e++) iv += Math.exp(logChoose(events, e) + logChoose(goods, n - e) - base) * binWoe(e, n, events, goods).iv;
  }
  return iv;
}

/** log(i!) for i = 0..n: one table, grown as needed, serves every feature of a binning (8 bytes per row). */
let logFactorialTable = new Float64Array(1);
function logFactorials(n: number): Float64Array {
  if (logFactorialTable.length <= n) {
    const grown = new Float64Array(n + 1);
    grown.set(logFactorialTable);
    for (let i = Math.max(2, logFactorialTable.length); i <= n; i++) grown[i] = grown[i - 1]! + Math.log(i);
    logFactorialTable = grown;
  }
  return logFactorialTable;
}

/** WOE per bin, IV per bin and the feature's IV. Throws if every row is of one class. */
export function woeIv(counts: BinCounts): WoeResult {
  if (counts.events.length !== counts.totals.length) {
    throw new RangeError(`counts have ${counts.events.length} event and ${counts.totals.length} total entries`);
  }
  let eventTotal = 0;
  let rowTotal = 0;
  for (let b = 0; b < counts.totals.length; b++) {
    const e = counts.events[b]!;
    const t = counts.totals[b]!;
    if (!(e >= 0 && t >= e) || !Number.isFinite(t)) throw new RangeError(`bin ${b} has ${e} events out of ${t} rows`);
    eventTotal += e;
    rowTotal += t;
  }
  const goodTotal = rowTotal - eventTotal;
  if (eventTotal === 0 || goodTotal === 0) {
    throw new Error(`WOE needs both classes, but the counts hold ${eventTotal} events and ${goodTotal} non-events`);
  }
  const woe: number[] = [];
  const ivByBin: number[] = [];
  let iv = 0;
  for (let b = 0; b < counts.totals.length; b++) {
    const r = binWoe(counts.events[b]!, counts.totals[b]!, eventTotal, goodTotal);
    woe.push(r.woe);
    ivByBin.push(r.iv);
    iv += r.iv;
  }
  return { woe, ivByBin, iv };
}

/** The WOE of the bin `x` falls in (NaN: the missing bin's). */
export function woeOf(x: number, edges: readonly number[], woe: readonly number[], specials: readonly number[] = []): number {
  return woe[binIndex(x, edges, specials)]!;
}
