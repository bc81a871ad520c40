/**
 * Settling a feature's final bins from the counts of its fine bins, by the job's binning options: `quantile` keeps
 * the fine bins; `optimal` merges adjacent ones (mergeBins) under the credit constraints. Pure functions on counts,
 * shared by both kinds of job: the vertical guest calls them on label sums (a host's fine bins by position, without
 * their cut points), the horizontal coordinator on the aggregate of the participants' secure histograms.
 *
 * Categories (settleCategoryBins): one fine bin per level; levels under rare_share of the rows pooled into one; the
 * units sorted by default rate and merged as an ordered feature with an ascending trend (as optbinning does), so
 * each final bin is a set of levels.
 */
import type { BinningSpec } from '../config/schemas.js';
import { mergeBins, mergeCounts, type BinCounts, type ImposedTrend, type MonotonicTrend } from './binning.js';
import { chanceIv, woeIv } from './woe.js';

export type { BinningSpec };

/** A feature's binning options: the job-wide ones with the feature's own (`binning.features.<name>`) on top. */
export interface FeatureBinning {
  /** As the job declares it (undefined: as the owner's data schema says). */
  type?: 'number' | 'category';
  monotonic: MonotonicTrend;
  maxBins: number;
  minBinShare: number;
  specials: number[];
  rareShare: number;
  unseen: string;
  /** Declared levels of a category (horizontal jobs count rows per level in this order). */
  levels?: string[];
  notHeld: 'neutral' | 'missing' | number;
}

export function featureBinning(spec: BinningSpec, feature: string): FeatureBinning {
  const own = spec.features?.[feature] ?? {};
  return {
    ...(own.type ? { type: own.type } : {}),
    monotonic: own.monotonic ?? spec.monotonic ?? 'auto',
    maxBins: own.max_bins ?? spec.max_bins,
    minBinShare: own.min_bin_share ?? spec.min_bin_share,
    specials: own.special_values ?? [],
    rareShare: own.rare_share ?? spec.rare_share ?? 0.01,
    unseen: own.unseen ?? spec.unseen ?? 'neutral',
    ...(own.levels ? { levels: own.levels } : {}),
    notHeld: own.not_held ?? spec.not_held ?? 'neutral',
  };
}

export interface SettledBins {
  edges: number[];
  /** Special values, each with its bin between the numeric bins and the missing bin. */
  specials: number[];
  /** Fine numeric bins merged into each final numeric bin (null: kept as they are). */
  groups: number[][] | null;
  counts: BinCounts;
  woe: number[];
  iv: number;
  /** IV of the fine bins: what merging started from. */
  fineIv: number;
  /** The fine-bin IV a feature unrelated to the label would reach on the same bins (woe.ts chanceIv). */
  chanceIv: number;
  /** The default-rate trend the final bins follow (null: the fine bins kept as they are). */
  trend: ImposedTrend | null;
}

/**
 * From fine bins and their counts (numeric bins, then one per special value of the feature, then missing), the final
 * bins by the job's method, with their WOE, the feature's IV and its fine-bin IV.
 */
export function settleBins(fineEdges: number[], fine: BinCounts, spec: BinningSpec, feature = ''): SettledBins {
  const opts = featureBinning(spec, feature);
  const fineIv = woeIv(fine).iv;
  const chance = chanceIv(fine);
  if (spec.method === 'quantile') {
    const { woe, iv } = woeIv(fine);
    return { edges: fineEdges, specials: opts.specials, groups: null, counts: fine, woe, iv, fineIv, chanceIv: chance, trend: null };
  }
  const plan = mergeBins(fineEdges, fine, { method: spec.merge, maxBins: opts.maxBins, minBinShare: opts.minBinShare, monotonic: opts.monotonic, specials: opts.specials.length });
  const counts = mergeCounts(fine, plan.groups, opts.specials.length);
  const { woe, iv } = woeIv(counts);
  return { edges: plan.edges, specials: opts.specials, groups: plan.groups, counts, woe, iv, fineIv, chanceIv: chance, trend: plan.trend };
}

export interface SettledCategories {
  /** Fine bins (level positions) of each final bin, final bins in ascending default rate; levels without
   * training rows are in none (they are unseen). */
  groups: number[][];
  /** Final bins, then the missing bin. */
  counts: BinCounts;
  woe: number[];
  iv: number;
  fineIv: number;
  chanceIv: number;
}

/**
 * Final bins of a categorical feature from the counts of its levels (one fine bin per level, then the missing bin):
 * levels held by fewer than rare_share of all rows pooled into one unit, the units ordered by default rate and
 * merged as an ordered feature under an ascending trend, max_bins and min_bin_share (`quantile`: every unit kept).
 */
export function settleCategoryBins(fine: BinCounts, spec: BinningSpec, feature = ''): SettledCategories {
  const opts = featureBinning(spec, feature);
  const levels = fine.totals.length - 1;
  const fineIv = woeIv(fine).iv;
  const chance = chanceIv(fine);
  const rows = fine.totals.reduce((s, t) => s + t, 0);
  const seen = Array.from({ length: levels }, (_, l) => l).filter((l) => fine.totals[l]! > 0);
  const rare = seen.filter((l) => fine.totals[l]! < opts.rareShare * rows);
  const units: number[][] = seen.filter((l) => !rare.includes(l)).map((l) => [l]);
  if (rare.length > 0) units.push(rare);
  const unitCounts = units.map((u) => ({ events: u.reduce((s, l) => s + fine.events[l]!, 0), total: u.reduce((s, l) => s + fine.totals[l]!, 0) }));
  // Ascending default rate (cross-multiplied, exact on counts); ties by first level, so the order is deterministic.
  const order = units.map((_, u) => u).sort((a, b) => unitCounts[a]!.events * unitCounts[b]!.total - unitCounts[b]!.events * unitCounts[a]!.total || units[a]![0]! - units[b]![0]!);
  const missing = { events: fine.events[levels]!, total: fine.totals[levels]! };
  if (units.length === 0) {
    const counts = { events: [missing.events], totals: [missing.total] };
    return { groups: [], counts, woe: [0], iv: 0, fineIv, chanceIv: chance };
  }
  const ordered: BinCounts = {
    events: [...order.map((u) => unitCounts[u]!.events), missing.events],
    totals: [...order.map((u) => unitCounts[u]!.total), missing.total],
  };
  const unitGroups =
    spec.method === 'quantile'
      ? order.map((_, k) => [k])
      : mergeBins(
          Array.from({ length: order.length - 1 }, (_, k) => k),
          ordered,
          { method: spec.merge, maxBins: opts.maxBins, minBinShare: opts.minBinShare, monotonic: 'ascending' },
        ).groups;
  const groups = unitGroups.map((g) => g.flatMap((k) => units[order[k]!]!).sort((a, b) => a - b));
  const counts = mergeCounts(ordered, unitGroups);
  const { woe, iv } = woeIv(counts);
  return { groups, counts, woe, iv, fineIv, chanceIv: chance };
}

/** A feature's IV before and after merging, and whether it stayed in the model (a row of the IV table). */
export interface IvOutcome {
  feature: string;
  party?: string;
  /** Absent: the fine bins were kept (no merge), so the same as iv. */
  fineIv?: number;
  /** The part of fineIv a feature unrelated to the label reaches by chance (absent: records made before it was). */
  chanceIv?: number;
  iv: number;
  selected: boolean;
}

/** Share of its fine-bin IV above chance a feature may lose in merging before a warning names it. */
export const IV_LOSS_WARNING = 0.5;

/**
 * Warnings for features whose strength binning lost. Only the fine-bin IV above its chance level counts as strength:
 * on a few hundred rows twenty fine bins reach an IV near 0.2 with no relation to the label, and merging that away
 * loses nothing real. Named: a feature dropped while its fine-bin IV above chance reaches the threshold, or kept with
 * a final IV below half of its fine-bin IV above chance. (The final IV is taken whole: its own chance part is small
 * beside the fine bins', and counting it errs towards silence only where little was there to lose.) A feature whose
 * fine bins do not reach the threshold above chance had nothing to lose.
 */
export function binningWarnings(rows: readonly IvOutcome[], ivThreshold: number): string[] {
  const out: string[] = [];
  for (const r of rows) {
    const fineIv = r.fineIv ?? r.iv;
    const real = fineIv - (r.chanceIv ?? 0);
    if (!(real >= ivThreshold) || real <= 0) continue;
    const who = r.party ? `${r.feature} (${r.party})` : r.feature;
    const chance = r.chanceIv === undefined ? '' : `, ${r.chanceIv.toFixed(4)} of it chance (what a feature unrelated to defaults reaches on these fine bins)`;
    const figures = `IV ${r.iv.toFixed(4)} in its final bins against ${fineIv.toFixed(4)} in its fine bins${chance}`;
    const fix = `set binning.features.${r.feature}.monotonic (none, peak or valley), max_bins or min_bin_share to keep it`;
    if (!r.selected) out.push(`${who} was dropped: ${figures}, threshold ${ivThreshold}; ${fix}`);
    else if (r.iv < (1 - IV_LOSS_WARNING) * real) {
      const lost = Math.round((100 * (real - r.iv)) / real);
      out.push(`${who} lost ${lost}% of its information value${r.chanceIv === undefined ? '' : ' above chance'} in merging: ${figures}; ${fix}`);
    }
  }
  return out;
}

/**
 * Why a job's binning options do not fit a party's features, as [config field, message naming the fix], or undefined
 * when they fit: a categorical feature without binning, a job that types a feature differently from the owner's data
 * schema, a monotonic trend or special values on a category, category options on a number.
 */
export function binningConflict(spec: BinningSpec | undefined, features: readonly { name: string; category: boolean }[]): [string, string] | undefined {
  if (!spec) {
    // Every category at once, so that the job is not refused once per category.
    const categories = features.filter((f) => f.category).map((f) => f.name);
    if (categories.length === 0) return undefined;
    if (categories.length === 1)
      return [
        'binning',
        `${categories[0]} is a category (type: category in the data schema): it enters a model through the WOE of its levels; add a binning: section to the job, or leave ${categories[0]} out`,
      ];
    return [
      'binning',
      `${categories.join(', ')} are categories (type: category in the data schema): each enters a model through the WOE of its levels; add a binning: section to the job, or leave them out`,
    ];
  }
  for (const { name, category } of features) {
    if (category && !spec.woe_transform)
      return ['binning.woe_transform', `${name} is a category: a model reads it only as the WOE of its level; set binning.woe_transform: true, or leave ${name} out`];
    const own = spec.features?.[name];
    if (!own) continue;
    const field = `binning.features.${name}`;
    if (own.type === 'category' && !category)
      return [`${field}.type`, `the job declares ${name} a category but the data owner's schema has it as a number; remove ${field}.type, or declare type: category in data.features`];
    if (own.type === 'number' && category) return [`${field}.type`, `the job declares ${name} a number but the data owner's schema has it as a category; remove ${field}.type, or set it to category`];
    if (category && own.monotonic !== undefined) return [`${field}.monotonic`, `${name} is a category: its levels have no order, so they are grouped by default rate; remove ${field}.monotonic`];
    if (category && own.special_values !== undefined)
      return [`${field}.special_values`, `${name} is a category: every level already gets its own WOE; remove ${field}.special_values (a code such as 98 is just a level)`];
    if (!category && (own.rare_share !== undefined || own.unseen !== undefined))
      return [field, `rare_share and unseen apply to categories, and ${name} is a number in the data owner's schema; remove them, or declare type: category in data.features`];
  }
  return undefined;
}
