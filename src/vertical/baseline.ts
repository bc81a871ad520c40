/**
 * What a vertical job is measured against, computed where all columns are at hand (the demo's synthetic world, a
 * test on public data): the same aligned enterprises, the same split and the same per-party preprocessing as the
 * federated job, with the model fitted centrally on (a) the guest's columns alone and (b) every party's columns
 * pooled (the upper bound federation can reach). A vertical-lr job is measured against a logistic regression (with a
 * binning job, on the job's bins and WOE), a vertical-boost job against the central GBDT of src/model/gbdt.ts on the
 * job's rows, bins and settings.
 */
import type { VerticalBoostSpec, VerticalJobSpec } from '../config/schemas.js';
import type { LoadedDataset } from '../data/csv.js';
import { holdoutOf } from '../data/split.js';
import { binaryMetrics, type BinaryMetrics } from '../metrics.js';
import { fitLogistic } from '../model/newton-lr.js';
import { prepareIds } from '../psi/ids.js';
import { PartyModel } from './party-model.js';
import { modelInputs, type BinnedFeature } from './binning.js';
import { boost, localOracle, predictMargin } from '../model/gbdt.js';
import { gbdtParams, jobRows, treeFeatures } from './boost/party.js';

export interface PartyData {
  organisation: string;
  data: LoadedDataset;
  /** Features the job uses for this party. */
  features: string[];
  /** The party's bins from the job (binning.json), for a job that binned its features. */
  binned?: BinnedFeature[];
}

export interface VerticalBaselines {
  intersection: number;
  guestOnly: BinaryMetrics;
  pooled: BinaryMetrics;
}

/** A party with its rows by id. */
type IndexedParty = PartyData & { rowOf: Map<string, number> };

/**
 * A logistic regression on the columns of `parties` (`parties[0]`, the guest, holds the labels), each preprocessed as
 * the job does on its training rows, fitted on the training and validation rows, measured on the test rows.
 */
function centralLogistic(parties: IndexedParty[], spec: VerticalJobSpec, ids: { train: string[]; fit: string[]; test: string[] }): BinaryMetrics {
  const t = spec.training;
  const guest = parties[0]!;
  const models = parties.map((p) => {
    const input = modelInputs(p.data, p.features, p.binned, spec.binning?.woe_transform ?? false);
    return new PartyModel(
      input.data,
      input.featureIdx,
      Uint32Array.from(ids.train, (id) => p.rowOf.get(id)!),
      input.standardise ? t.clip : 0,
      false,
      input.standardise,
      t.winsorize,
    );
  });
  const matrix = (rows: string[]) => {
    const dim = models.reduce((n, m) => n + m.dim, 0);
    const x = new Float64Array(rows.length * dim);
    rows.forEach((id, i) => {
      let o = i * dim;
      parties.forEach((p, k) => {
        const r = p.rowOf.get(id)!;
        for (let j = 0; j < models[k]!.dim; j++) x[o++] = models[k]!.value(r, j);
      });
    });
    return { x, dim };
  };
  const labels = (rows: string[]) => Float64Array.from(rows, (id) => guest.data.y![guest.rowOf.get(id)!]!);
  const fit = matrix(ids.fit);
  const model = fitLogistic(fit.x, labels(ids.fit), fit.dim);
  const test = matrix(ids.test);
  const scores = ids.test.map((_, i) => model.score(test.x.subarray(i * test.dim, (i + 1) * test.dim)));
  return binaryMetrics(labels(ids.test), scores);
}

/** `parties[0]` is the guest (it holds the labels). */
export function verticalBaselines(parties: PartyData[], spec: VerticalJobSpec): VerticalBaselines {
  const t = spec.training;
  const indexed = parties.map((p) => {
    const prepared = prepareIds(p.data.ids, spec.alignment.id_format);
    return { ...p, rowOf: new Map(prepared.ids.map((id, i) => [id, prepared.rows[i]!])), ids: prepared.ids };
  });
  const shared = indexed[0]!.ids.filter((id) => indexed.every((p) => p.rowOf.has(id)));
  const part = (id: string) => holdoutOf(id, t.seed, t.test_fraction, t.validation_fraction);
  const ids = { train: shared.filter((id) => part(id) === 'train'), fit: shared.filter((id) => part(id) !== 'test'), test: shared.filter((id) => part(id) === 'test') };
  return { intersection: shared.length, guestOnly: centralLogistic(indexed.slice(0, 1), spec, ids), pooled: centralLogistic(indexed, spec, ids) };
}

/**
 * The guest's own columns alone, on the job's aligned enterprises (its aligned-ids.csv) with the job's split, bins
 * and preprocessing: what the federated model is compared with in the guest's model report. Every id must be in
 * the guest's data, as it was when the job ran.
 */
export function guestAloneMetrics(guest: PartyData, spec: VerticalJobSpec, aligned: AlignedIds): BinaryMetrics {
  // aligned-ids.csv holds the ids as the data does (before normalisation).
  const rowOf = new Map(guest.data.ids.map((id, r) => [id, r]));
  const missing = [...aligned.train, ...aligned.validation, ...aligned.test].filter((id) => !rowOf.has(id)).length;
  if (missing > 0) throw new RangeError(`${missing} of the job's aligned enterprises are no longer in ${guest.organisation}'s data`);
  // In the guest's row order, as verticalBaselines orders the shared ids.
  const byRow = (rows: string[]) => [...rows].sort((a, b) => rowOf.get(a)! - rowOf.get(b)!);
  return centralLogistic([{ ...guest, rowOf }], spec, { train: byRow(aligned.train), fit: byRow([...aligned.train, ...aligned.validation]), test: byRow(aligned.test) });
}

/** A job's aligned enterprises by part, as the guest's record of them (aligned-ids.csv: `id,part` lines) holds them. */
export interface AlignedIds {
  train: string[];
  validation: string[];
  test: string[];
}

/** The guest's aligned-ids.csv, read back. */
export function parseAlignedIds(csv: string): AlignedIds {
  const out: AlignedIds = { train: [], validation: [], test: [] };
  for (const line of csv.trim().split('\n').slice(1)) {
    const [id, part] = line.split(',') as [string, keyof AlignedIds];
    if (!(part in out)) throw new RangeError(`aligned-ids.csv has a row in part ${part}`);
    out[part].push(id);
  }
  return out;
}

/**
 * Central trees on the job's rows in its order (the guest's record), bins and settings, over the columns of the
 * first `upto` parties (`parties[0]` is the guest), measured on the test rows.
 */
function centralTrees(parties: PartyData[], spec: VerticalBoostSpec, aligned: AlignedIds): { rows: number; measure: (upto: number) => Promise<BinaryMetrics> } {
  const binned = parties.map((p) => {
    const rowOf = new Map(p.data.ids.map((id, r) => [id, r]));
    const rows = (ids: string[]) =>
      Uint32Array.from(ids, (id) => {
        const r = rowOf.get(id);
        if (r === undefined) throw new RangeError(`${p.organisation} holds no enterprise ${id} of the job's rows`);
        return r;
      });
    const alignment = { train: rows(aligned.train), validation: rows(aligned.validation), test: rows(aligned.test) };
    return { features: treeFeatures(p.data, p.organisation, p.features, alignment, spec.binning, spec.boosting), alignment };
  });
  const guest = parties[0]!;
  const { rows, train, valid, test } = jobRows(binned[0]!.alignment);
  const labels = Float64Array.from(rows, (r) => guest.data.y![r]!);
  const measure = async (upto: number): Promise<BinaryMetrics> => {
    const info = binned.slice(0, upto).flatMap((b) => b.features.info);
    const bins = binned.slice(0, upto).flatMap((b) => b.features.bins);
    const model = await boost(localOracle(info, bins), { labels, train, valid }, gbdtParams(spec.boosting));
    const testBins = bins.map((c) => Uint16Array.from(test, (r) => c[r]!));
    return binaryMetrics(
      Float64Array.from(test, (r) => labels[r]!),
      predictMargin(model, testBins, test.length),
    );
  };
  return { rows: rows.length, measure };
}

/** `parties[0]` is the guest; `aligned`: the job's rows (the guest's record), so the central trees see the job's rows in its order. */
export async function boostBaselines(parties: PartyData[], spec: VerticalBoostSpec, aligned: AlignedIds): Promise<VerticalBaselines> {
  const trees = centralTrees(parties, spec, aligned);
  return { intersection: trees.rows, guestOnly: await trees.measure(1), pooled: await trees.measure(parties.length) };
}

/** The guest's own columns alone, as trees grown centrally on the job's rows, bins and settings (boostBaselines' guestOnly). */
export async function guestAloneTrees(guest: PartyData, spec: VerticalBoostSpec, aligned: AlignedIds): Promise<BinaryMetrics> {
  return centralTrees([guest], spec, aligned).measure(1);
}
