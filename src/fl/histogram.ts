/**
 * Binning a horizontal federation's features from secure histograms (the `histogram` secure sum).
 *
 * Fine bins. Every party (and the auditor's replay) derives the same fine bins per feature (FineGrid). A number: edges
 * from the federation-wide quantile sketch (src/fl/quantile-search.ts: fineEdges, fine_bins for `optimal`, max_bins for
 * `quantile`), which the `quantiles` secure sums opened before, then one cell per declared special value
 * (binning.features.<name>.special_values), then the missing cell: the bin layout of src/credit/bin-layout.ts. A
 * category: one cell per level the job declares (binning.features.<name>.levels), in that order, then the missing cell.
 * Declared levels are the common vocabulary: no participant says which levels it holds, and a level no participant
 * holds simply counts zero everywhere.
 *
 * Contribution. Per feature, the rows and the defaults of the participant's training rows in each fine cell:
 * [totals(cells), events(cells)] feature after feature. The coordinator opens only the sum over the participants, which
 * is exactly the counts binCounts gives on the pooled rows with those bins (for a category: the federation-wide rows
 * and defaults per declared level). settleBins / settleCategoryBins then merge them and compute WOE and IV, as on
 * pooled data and as a vertical job does.
 */
import { binCount, binIndex, type BinCounts } from '../credit/binning.js';
import { valueBinCount } from '../credit/bin-layout.js';
import { binningWarnings, featureBinning, settleBins, settleCategoryBins, type BinningSpec, type IvOutcome } from '../credit/settle.js';
import { ErrorCode, FedcreditError, errorMessage } from '../errors.js';
import type { FeatureBins, Preprocessing } from '../model/preprocess.js';
import { fineEdges, type QuantileSearch } from './quantile-search.js';

/** One feature's fine cells: numeric edges and special values, or the declared levels of a category. */
export interface FineGrid {
  edges: number[];
  specials: number[];
  /** A category: its declared levels (cells hold a level's position in this list; edges and specials are empty). */
  levels?: string[];
}

/** What the quantile search and the histograms need to know of each feature before any count: its special values,
 * and whether it is a category (no quantiles). */
export function searchLayouts(spec: BinningSpec | undefined, features: readonly string[]): { specials: number[]; category: boolean }[] {
  return features.map((f) => {
    const opts = spec ? featureBinning(spec, f) : undefined;
    return { specials: opts?.levels ? [] : (opts?.specials ?? []), category: !!opts?.levels };
  });
}

/** The declared levels of each categorical feature of a job (binning.features.<name>.levels). */
export function declaredLevels(spec: BinningSpec | undefined, features: readonly string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const f of features) {
    const levels = spec?.features[f]?.levels;
    if (levels) out[f] = levels;
  }
  return out;
}

/**
 * Row-major x (columns `features`) with each categorical column's cells turned from positions in the data's own level
 * list (`levels`, as src/data/csv.ts reads it) into positions in the job's declared list; x itself when the job
 * declares no category. Throws naming the level for one the job does not declare (an offer is refused before that).
 */
export function toDeclaredLevels(x: Float32Array, features: readonly string[], levels: Readonly<Record<string, readonly string[]>> | undefined, spec: BinningSpec | undefined): Float32Array {
  const declared = declaredLevels(spec, features);
  const maps = features.map((f) => {
    const list = declared[f];
    if (!list) return undefined;
    const own = levels?.[f];
    if (!own) throw new RangeError(`the job declares ${f} a category, but the data reads it as a number`);
    return own.map((l) => {
      const at = list.indexOf(l);
      if (at < 0) throw new RangeError(`level ${JSON.stringify(l)} of ${f} is not in binning.features.${f}.levels`);
      return at;
    });
  });
  if (maps.every((m) => !m)) return x;
  const dim = features.length;
  const out = Float32Array.from(x);
  for (let i = 0; i < out.length; i++) {
    const map = maps[i % dim];
    if (map && !Number.isNaN(out[i]!)) out[i] = map[out[i]!]!;
  }
  return out;
}

/** Every feature's fine cells from the finished quantile search. */
export function fineGridsOf(search: QuantileSearch, spec: BinningSpec, features: readonly string[]): FineGrid[] {
  const bins = spec.method === 'quantile' ? spec.max_bins : spec.fine_bins;
  return features.map((f, j) => {
    const opts = featureBinning(spec, f);
    if (opts.levels) return { edges: [], specials: [], levels: opts.levels };
    return { edges: fineEdges(search.sketches[j]!, bins), specials: opts.specials };
  });
}

/** Cells of a fine grid, the missing cell included. */
export function gridCells(g: FineGrid): number {
  return g.levels ? g.levels.length + 1 : binCount(g.edges, g.specials);
}

/** The cell of a value: for a category, x is the position of its level among the declared ones (NaN: missing). */
function gridCell(x: number, g: FineGrid): number {
  if (g.levels) return Number.isNaN(x) ? g.levels.length : x;
  return binIndex(x, g.edges, g.specials);
}

export function histogramLength(grids: FineGrid[]): number {
  return grids.reduce((n, g) => n + 2 * gridCells(g), 0);
}

/** One participant's histogram vector over its training rows: per feature, rows then defaults per fine cell. A
 * category's cells hold declared level positions (the participant translates its own level list first). */
export function localHistogram(x: Float32Array, y: Float32Array, grids: FineGrid[]): Float64Array {
  const dim = grids.length;
  const out = new Float64Array(histogramLength(grids));
  const offsets: number[] = [];
  let o = 0;
  for (const g of grids) {
    offsets.push(o);
    o += 2 * gridCells(g);
  }
  for (let r = 0; r < y.length; r++) {
    const bad = y[r] === 1;
    for (let j = 0; j < dim; j++) {
      const g = grids[j]!;
      const cell = gridCell(x[r * dim + j]!, g);
      out[offsets[j]! + cell]! += 1;
      if (bad) out[offsets[j]! + gridCells(g) + cell]! += 1;
    }
  }
  return out;
}

/** A count from an opened aggregate: an integer up to CKKS noise of order 1e-9, rounded (and never -0). */
export const roundCount = (v: number): number => Math.round(v) + 0;

/** Per feature, the rows and defaults per fine bin of an opened histogram aggregate, rounded to integers. */
export function cellCounts(values: Float64Array, grids: FineGrid[]): BinCounts[] {
  if (values.length !== histogramLength(grids)) throw new RangeError(`a histogram of ${values.length} values for grids needing ${histogramLength(grids)}`);
  let o = 0;
  return grids.map((g) => {
    const cells = gridCells(g);
    const totals = Array.from(values.subarray(o, o + cells), roundCount);
    const events = Array.from(values.subarray(o + cells, o + 2 * cells), roundCount);
    o += 2 * cells;
    return { events, totals };
  });
}

/** One row of the IV table a horizontal job records (`binning_completed`). */
export interface HorizontalBinnedFeature extends FeatureBins {
  /** IV of the fine cells, before merging. */
  fineIv: number;
  /** The fine-bin IV a feature unrelated to the label reaches on the same cells by chance (credit/woe.ts chanceIv). */
  chanceIv: number;
  selected: boolean;
}

/**
 * Every feature's final bins, WOE, IV and fine-bin IV from the opened histogram aggregate, selected by iv_threshold:
 * numbers by settleBins (special values keep their own bins), categories by settleCategoryBins (rare levels grouped,
 * levels no training row holds left in no bin: scored as `unseen` says). Throws a FedcreditError naming the feature
 * if its counts cannot be binned (e.g. the training rows hold a single class).
 */
export function binsFromHistogram(features: string[], grids: FineGrid[], values: Float64Array, spec: BinningSpec): HorizontalBinnedFeature[] {
  const cells = cellCounts(values, grids);
  return features.map((feature, j) => {
    const grid = grids[j]!;
    try {
      if (grid.levels) {
        const levels = grid.levels;
        const settled = settleCategoryBins(cells[j]!, spec, feature);
        if (settled.groups.length === 0) throw new Error('no training row holds any of its declared levels');
        return {
          feature,
          edges: [],
          categories: settled.groups.map((g) => ({ levels: g.map((l) => levels[l]!) })),
          unseen: featureBinning(spec, feature).unseen,
          woe: settled.woe,
          events: settled.counts.events,
          totals: settled.counts.totals,
          iv: settled.iv,
          fineIv: settled.fineIv,
          chanceIv: settled.chanceIv,
          selected: settled.iv >= spec.iv_threshold,
        };
      }
      const settled = settleBins([...grid.edges], cells[j]!, spec, feature);
      return {
        feature,
        edges: settled.edges,
        ...(settled.specials.length > 0 ? { specials: settled.specials } : {}),
        woe: settled.woe,
        events: settled.counts.events,
        totals: settled.counts.totals,
        iv: settled.iv,
        fineIv: settled.fineIv,
        chanceIv: settled.chanceIv,
        selected: settled.iv >= spec.iv_threshold,
      };
    } catch (err) {
      throw new FedcreditError(
        ErrorCode.JOB_FAILED,
        `binning feature ${feature} failed: ${errorMessage(err)}`,
        "binning needs defaults and non-defaults among the participants' training rows; check the label columns",
      );
    }
  });
}

/** The IV table of a binned job: every candidate feature with its fine-bin IV, its chance level and final IV (for binningWarnings). */
export function ivOutcomes(binned: readonly HorizontalBinnedFeature[]): IvOutcome[] {
  return binned.map((b) => ({ feature: b.feature, fineIv: b.fineIv, chanceIv: b.chanceIv, iv: b.iv, selected: b.selected }));
}

/** The figures of the `binning_completed` ledger entry (the coordinator writes them, the auditor's replay derives
 * them): every candidate's IV, fine-bin IV, chance level and selection, every feature's bins, and the warnings of features binning
 * lost (src/credit/settle.ts binningWarnings). */
export function binningRecord(binned: readonly HorizontalBinnedFeature[], spec: BinningSpec): { iv: Record<string, unknown>[]; bins: Record<string, unknown>[]; warnings: string[] } {
  return {
    iv: binned.map((b) => ({
      feature: b.feature,
      iv: b.iv,
      fine_iv: b.fineIv,
      chance_iv: b.chanceIv,
      bins: valueBinCount(b.woe.length, b.specials?.length),
      ...(b.categories ? { type: 'category' } : {}),
      selected: b.selected,
    })),
    bins: binned.map((b) => ({
      feature: b.feature,
      edges: b.edges,
      ...(b.specials ? { specials: b.specials } : {}),
      ...(b.categories ? { categories: b.categories.map((g) => g.levels), unseen: b.unseen } : {}),
      woe: b.woe,
      events: b.events,
      totals: b.totals,
    })),
    warnings: binningWarnings(ivOutcomes(binned), spec.iv_threshold),
  };
}

/**
 * Why this participant cannot count a horizontal job's categories, as [config field, message naming the fix]: a
 * category whose levels the job does not declare, or data holding levels the job does not list (counted, not named:
 * the message goes to the coordinator; `undeclared` receives the names for the participant's own log).
 */
export function categoryRefusal(
  spec: BinningSpec | undefined,
  features: readonly string[],
  levels: Readonly<Record<string, readonly string[]>> | undefined,
  undeclared: (feature: string, levels: string[]) => void = () => undefined,
): [string, string] | undefined {
  // Without a binning section a category cannot enter the job at all: binningConflict says so.
  if (!spec) return undefined;
  // Every category without its list at once, so that the job is not refused once per category.
  const unlisted = features.filter((f) => levels?.[f] && !spec.features[f]?.levels);
  if (unlisted.length === 1) {
    const f = unlisted[0]!;
    const field = `binning.features.${f}.levels`;
    return [
      field,
      `${f} is a category (type: category): a horizontal job counts its rows per level in an order the job declares; list every level in ${field}, with binning.features.${f}.type: category`,
    ];
  }
  if (unlisted.length > 1)
    return [
      `binning.features.${unlisted[0]}.levels`,
      `${unlisted.join(', ')} are categories (type: category): a horizontal job counts its rows per level in an order the job declares; list every level of each in binning.features.<name>.levels, with binning.features.<name>.type: category`,
    ];
  for (const f of features) {
    const own = levels?.[f];
    if (!own) continue;
    const declared = spec.features[f]!.levels!;
    const field = `binning.features.${f}.levels`;
    const missing = own.filter((l) => !declared.includes(l));
    if (missing.length > 0) {
      undeclared(f, missing);
      return [
        field,
        `${missing.length} level${missing.length > 1 ? 's' : ''} of ${f} in this participant's data ${missing.length > 1 ? 'are' : 'is'} not in ${field} (named in this participant's log only); add ${missing.length > 1 ? 'them' : 'it'} to the job's list, or correct the data`,
      ];
    }
  }
  return undefined;
}

/**
 * The preprocessing a binned job trains with: the selected features only; with woe_transform, each read as the WOE of
 * its bin (mean 0, scale 1: WOE is not standardised), else clipped and standardised as `base` says.
 */
export function preprocessingFromBins(base: Preprocessing, binned: HorizontalBinnedFeature[], woeTransform: boolean): Preprocessing {
  const selected = binned.filter((b) => b.selected);
  if (selected.length === 0) {
    const best = [...binned].sort((a, b) => b.iv - a.iv)[0];
    throw new FedcreditError(
      ErrorCode.JOB_FAILED,
      `no feature reaches binning.iv_threshold${best ? ` (the highest IV is ${best.iv.toFixed(4)}, of ${best.feature})` : ''}`,
      'lower binning.iv_threshold (0 keeps every feature) or add more informative features',
    );
  }
  const idx = selected.map((b) => base.features.indexOf(b.feature));
  if (woeTransform) {
    return {
      features: selected.map((b) => b.feature),
      mean: selected.map(() => 0),
      scale: selected.map(() => 1),
      bins: selected.map(({ selected: _, fineIv: __, chanceIv: ___, ...b }) => b),
    };
  }
  const clipped = base.clipLow && base.clipLow.length > 0 ? { clipLow: idx.map((i) => base.clipLow![i]!), clipHigh: idx.map((i) => base.clipHigh![i]!) } : {};
  return { features: selected.map((b) => b.feature), mean: idx.map((i) => base.mean[i]!), scale: idx.map((i) => base.scale[i]!), bins: [], ...clipped };
}
