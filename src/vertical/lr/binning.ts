/**
 * The binning step of vertical LR (docs/protocol-vertical.md, "Binning, WOE and IV"). Every party bins its own
 * features on the training rows. The guest counts defaults per bin of its own features, and of each host's through
 * per-bin label sums under its own CKKS key; it settles every feature's bins (merging fine bins when the job asks
 * for optimal binning), computes WOE and IV, and tells each host the merge plan and the WOE of its bins. Features
 * below the IV threshold leave the model. The step writes nothing: its facts go back to the party.
 */
import type { VerticalJobSpec } from '../../config/schemas.js';
import type { LoadedDataset } from '../../data/csv.js';
import { ErrorCode, FedcreditError } from '../../errors.js';
import type { CkksEngine } from '../../he/engine.js';
import { generateKeys } from '../../he/key-ceremony.js';
import { binAssignments, binCount, binCounts, binTotals, quantileEdges, applyMerge, mergeCounts, type BinCounts, type ImposedTrend } from '../../credit/binning.js';
import { valueBinCount } from '../../credit/bin-layout.js';
import { featureStatistics, type FeatureStatistics } from '../../credit/statistics.js';
import { binningConflict, binningWarnings, featureBinning, settleBins, settleCategoryBins } from '../../credit/settle.js';
import { featureColumn, type BinnedFeature, type IvRow } from '../binning.js';
import { columnGroups, encryptRowValues, hostBinSums } from '../label-sums.js';
import { ckksOpener } from './opener.js';
import type { HostBinResult } from './payloads.js';
import type { PeerPort } from './port.js';

export type BinningSpec = NonNullable<VerticalJobSpec['binning']>;

/** What a party bins. */
export interface BinningInputs {
  spec: BinningSpec;
  /** This party's features (the job's columns it brings). */
  features: string[];
  data: LoadedDataset;
  /** The aligned training rows (dataset row numbers). */
  train: Uint32Array;
  /** Guest: the label of each training row, in the order of `train`. */
  labels?: Float64Array;
  engine: CkksEngine;
}

/** A feature's statistics on the training rows (a category's: its count of levels, no moments). */
export type BinnedStatistics = FeatureStatistics & { levels?: number };

/** What the binning step leaves a party. */
export interface BinningFacts {
  /** This party's features with their bins, WOE and IV (the model uses the selected ones). */
  binned: BinnedFeature[];
  /** The owner's own record of its features on the job's training rows; shared only if its policy allows. */
  statistics: BinnedStatistics[];
  /** Guest: the IV of every party's features, and the warnings about strong features binning lost. */
  ivTable?: IvRow[];
  warnings: string[];
  /** Guest: rows and defaults per final bin of every host feature. */
  hostCounts: Record<string, BinCounts>;
}

/** Edges k + 0.5 between `numericBins` positions: stand-ins for a host's fine bins (the guest merges bins by
 * position, never seeing the host's cut points), and the fine bins of a categorical column (a level's code k falls
 * in bin k). */
const ordinalEdges = (numericBins: number): number[] => Array.from({ length: Math.max(0, numericBins - 1) }, (_, i) => i + 0.5);

/** Every party's start: its columns on the training rows, their fine bins and statistics. */
function fineBins(inputs: BinningInputs) {
  const { spec, features, data, train } = inputs;
  const fineMax = spec.method === 'optimal' ? spec.fine_bins : spec.max_bins;
  const levels = features.map((f) => data.levels?.[f]);
  const conflict = binningConflict(
    spec,
    features.map((name, j) => ({ name, category: !!levels[j] })),
  );
  if (conflict) throw new FedcreditError(ErrorCode.JOB_INVALID, `${conflict[0]}: ${conflict[1]}`, "correct the job's binning section and submit the job again");
  const specials = features.map((f, j) => (levels[j] ? [] : featureBinning(spec, f).specials));
  const columns = features.map((f) => featureColumn(data, f, train));
  // A category's fine bins are its levels (code k in bin k); a number's come from its own exact quantiles.
  const fineEdges = columns.map((v, j) => (levels[j] ? ordinalEdges(Math.max(1, levels[j]!.length)) : quantileEdges(v, fineMax, specials[j])));
  const statistics = features.map((f, j): BinnedStatistics => {
    const s = featureStatistics(f, columns[j]!);
    return levels[j] ? { ...s, mean: null, sd: null, min: null, max: null, levels: new Set(Array.from(columns[j]!).filter((x) => !Number.isNaN(x))).size } : s;
  });
  return { columns, fineEdges, specials, statistics };
}

/** A categorical feature as its owner keeps it: the levels of each final bin (from the fine bins' groups). */
function categoryBins(
  spec: BinningSpec,
  feature: string,
  levels: string[],
  groups: number[][],
  woe: number[],
  totals: number[],
  events?: number[],
): Pick<BinnedFeature, 'edges' | 'categories' | 'unseen' | 'trainCounts' | 'trainEvents'> {
  const seen = groups.flat();
  if (seen.some((l) => !Number.isInteger(l) || l < 0 || l >= Math.max(1, levels.length)) || new Set(seen).size !== seen.length || woe.length !== groups.length + 1) {
    throw new FedcreditError(ErrorCode.PROTOCOL, `the guest sent a grouping of ${feature}'s levels that does not fit them`, 'restart the job');
  }
  const categories = groups.map((g) => g.map((l) => levels[l]!));
  const unseen = featureBinning(spec, feature).unseen;
  if (unseen !== 'neutral' && unseen !== 'reject' && !categories.some((c) => c.includes(unseen))) {
    throw new FedcreditError(
      ErrorCode.JOB_INVALID,
      `binning.features.${feature}.unseen names the level ${JSON.stringify(unseen)}, which no training row of ${feature} holds (levels: ${categories.flat().slice(0, 20).join(', ')})`,
      `name a level seen in training, or set binning.features.${feature}.unseen to neutral or reject`,
    );
  }
  const sum = (xs: number[], g: number[]) => g.reduce((n, l) => n + xs[l]!, 0);
  const missing = totals.length - 1;
  return {
    edges: [],
    categories,
    unseen,
    trainCounts: [...groups.map((g) => sum(totals, g)), totals[missing]!],
    ...(events ? { trainEvents: [...groups.map((g) => sum(events, g)), events[missing]!] } : {}),
  };
}

/** The guest settles one feature's final bins from its fine counts: by position, so it need not see the values. */
function settle(spec: BinningSpec, feature: string, category: boolean, fine: BinCounts, specials: number): HostBinResult & { counts: BinCounts; chanceIv: number } {
  if (category) {
    const s = settleCategoryBins(fine, spec, feature);
    return { feature, groups: s.groups, woe: s.woe, iv: s.iv, fineIv: s.fineIv, chanceIv: s.chanceIv, selected: s.iv >= spec.iv_threshold, counts: s.counts };
  }
  const numeric = fine.totals.length - 1 - specials;
  if (numeric < 1)
    throw new FedcreditError(
      ErrorCode.PROTOCOL,
      `${feature} came with ${fine.totals.length} fine bins, too few for its ${specials} special values`,
      'run the same job spec on every party and restart the job',
    );
  const s = settleBins(ordinalEdges(numeric), fine, spec, feature);
  return { feature, groups: s.groups, woe: s.woe, iv: s.iv, fineIv: s.fineIv, chanceIv: s.chanceIv, ...(s.trend ? { trend: s.trend } : {}), selected: s.iv >= spec.iv_threshold, counts: s.counts };
}

/** The guest settles its own features' bins from its labels, and each host's from per-bin label sums. */
export async function guestBinning(inputs: BinningInputs, port: PeerPort): Promise<BinningFacts> {
  const { spec, features, data, engine } = inputs;
  const { columns, fineEdges, specials, statistics } = fineBins(inputs);
  const y = inputs.labels!;
  const binned: BinnedFeature[] = features.map((feature, j) => {
    const levels = data.levels?.[feature];
    const fine = binCounts(columns[j]!, y, fineEdges[j]!, specials[j]);
    const s = settle(spec, feature, !!levels, fine, specials[j]!.length);
    const common = { feature, woe: s.woe, iv: s.iv, fineIv: s.fineIv, chanceIv: s.chanceIv, selected: s.selected };
    if (levels) return { ...common, ...categoryBins(spec, feature, levels, s.groups!, s.woe, fine.totals, fine.events) };
    const edges = s.groups ? applyMerge(fineEdges[j]!, s.groups) : fineEdges[j]!;
    return { ...common, edges, ...(specials[j]!.length > 0 ? { specials: specials[j] } : {}), ...(s.trend ? { trend: s.trend } : {}), trainCounts: s.counts.totals, trainEvents: s.counts.events };
  });
  const ivRow = (party: string, b: { feature: string; iv: number; fineIv: number; chanceIv: number; trend?: ImposedTrend; selected: boolean }, bins: number, category: boolean): IvRow => ({
    feature: b.feature,
    party,
    type: category ? 'category' : 'number',
    iv: b.iv,
    fineIv: b.fineIv,
    chanceIv: b.chanceIv,
    bins,
    ...(b.trend ? { trend: b.trend } : {}),
    selected: b.selected,
  });
  const hostCounts: Record<string, BinCounts> = {};
  const keys = generateKeys(engine, 'arbiter');
  try {
    // The label sums are the guest's to open, under a key of its own.
    const opener = ckksOpener(engine, keys.secretKey);
    // Hosts multiply and rotate with the rotation keys, and re-randomise what they return with the public key; they
    // never decrypt.
    const labels = { galoisKeys: keys.galoisKeys, publicKey: keys.publicKey, labels: encryptRowValues(engine, y, keys.publicKey) };
    await Promise.all(port.hosts.map((h) => port.send(h, 'bin.labels', labels)));
    const hostRows = await Promise.all(
      port.hosts.map(async (h) => {
        const { sums, ciphers } = await port.receive(h, 'bin.sums');
        const events: number[][] = sums.features.map(() => []);
        sums.groups.forEach((group, g) => {
          const counts = opener.openLabelSums(
            ciphers[g]!,
            group.reduce((n, f) => n + sums.totals[f]!.length, 0),
          );
          let o = 0;
          for (const f of group) {
            events[f] = counts.slice(o, o + sums.totals[f]!.length);
            o += sums.totals[f]!.length;
          }
        });
        const isCategory = (f: number) => sums.categories?.[f] ?? false;
        const specialCounts = sums.features.map((feature, f) => (isCategory(f) ? 0 : featureBinning(spec, feature).specials.length));
        const settled = sums.features.map((feature, f) => settle(spec, feature, isCategory(f), { events: events[f]!, totals: sums.totals[f]! }, specialCounts[f]!));
        // The chance level stays with the guest; a host could work it out (its bins' WOE with its rows give their defaults).
        const result: HostBinResult[] = settled.map(({ counts: _, chanceIv: __, ...r }) => r);
        if (!result.some((r) => r.selected)) {
          throw new FedcreditError(
            ErrorCode.JOB_FAILED,
            `none of ${h}'s features reaches the information value threshold of ${spec.iv_threshold} (${result.map((r) => `${r.feature} ${r.iv.toFixed(4)}`).join(', ')})`,
            `lower binning.iv_threshold, or leave ${h} out of the job`,
          );
        }
        await port.send(h, 'bin.result', result);
        sums.features.forEach((feature, f) => (hostCounts[feature] = settled[f]!.counts));
        return result.map((r, f): IvRow => ivRow(h, { ...r, chanceIv: settled[f]!.chanceIv }, valueBinCount(settled[f]!.woe.length, specialCounts[f]), isCategory(f)));
      }),
    );
    const ivTable = [
      ...binned.map((b) => ivRow(port.self, { ...b, fineIv: b.fineIv ?? b.iv, chanceIv: b.chanceIv ?? 0 }, valueBinCount(b.woe.length, b.specials?.length), !!b.categories)),
      ...hostRows.flat(),
    ];
    return { binned, statistics, ivTable, warnings: binningWarnings(ivTable, spec.iv_threshold), hostCounts };
  } finally {
    keys.secretKey.fill(0);
    engine.forgetSecretKey();
  }
}

/** A host sends per-bin label sums of its fine bins and applies the guest's merge plan and WOE. */
export async function hostBinning(inputs: BinningInputs, port: PeerPort): Promise<BinningFacts> {
  const { spec, features, data, engine } = inputs;
  const { columns, fineEdges, specials, statistics } = fineBins(inputs);
  const { galoisKeys, publicKey, labels: chunks } = await port.receive(port.guest, 'bin.labels');
  const assigned = columns.map((v, j) => binAssignments(v, fineEdges[j]!, specials[j]));
  const sizes = fineEdges.map((e, j) => binCount(e, specials[j]));
  const groups = columnGroups(sizes);
  const ciphers = await hostBinSums(
    engine,
    chunks,
    { galoisKeys, publicKey },
    groups.map((g) => ({ bins: g.map((f) => assigned[f]!), binCounts: g.map((f) => sizes[f]!) })),
  );
  const totals = fineEdges.map((edges, j) => binTotals(columns[j]!, edges, specials[j]));
  const categories = features.map((f) => !!data.levels?.[f]);
  await port.send(port.guest, 'bin.sums', { sums: { features, totals, groups, categories }, ciphers });
  const result = await port.receive(port.guest, 'bin.result');
  if (result.length !== features.length || result.some((r, j) => r.feature !== features[j])) {
    throw new FedcreditError(ErrorCode.PROTOCOL, 'the guest returned bins for other features than this party sent', 'restart the job');
  }
  const binned = result.map((r, j): BinnedFeature => {
    const common = { feature: r.feature, woe: r.woe, iv: r.iv, fineIv: r.fineIv, selected: r.selected };
    const levels = data.levels?.[r.feature];
    if (levels) return { ...common, ...categoryBins(spec, r.feature, levels, r.groups ?? [], r.woe, totals[j]!) };
    const edges = r.groups ? applyMerge(fineEdges[j]!, r.groups) : fineEdges[j]!;
    const trainCounts = r.groups ? mergeCounts({ events: totals[j]!.map(() => 0), totals: totals[j]! }, r.groups, specials[j]!.length).totals : totals[j]!;
    if (r.woe.length !== binCount(edges, specials[j]))
      throw new FedcreditError(ErrorCode.PROTOCOL, `the guest sent ${r.woe.length} WOE values for ${binCount(edges, specials[j])} bins of ${r.feature}`, 'restart the job');
    return { ...common, edges, ...(specials[j]!.length > 0 ? { specials: specials[j] } : {}), ...(r.trend ? { trend: r.trend } : {}), trainCounts };
  });
  return { binned, statistics, warnings: [], hostCounts: {} };
}
