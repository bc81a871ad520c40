/**
 * The pieces of a vertical job's binning step that need no channel: the bins a party keeps, the WOE view of its
 * data, and the framing of the step's payloads. (Settling bins from counts is src/credit/settle.ts, shared with
 * horizontal jobs.)
 */
import type { LoadedDataset } from '../data/csv.js';
import { cellValue, layoutWoe, type BinLayout } from '../credit/bin-layout.js';
import type { ImposedTrend } from '../credit/binning.js';
import { ErrorCode, FedcreditError } from '../errors.js';

/** A feature's final bins as its owner keeps them (numeric: edges and special values; categorical: the levels of
 * each bin and the unseen treatment; see BinLayout). */
export interface BinnedFeature extends BinLayout {
  feature: string;
  woe: number[];
  /** Training rows per bin. */
  trainCounts: number[];
  /** Defaults per bin: known to the guest for its own features only. */
  trainEvents?: number[];
  iv: number;
  /** IV of the fine bins before merging. */
  fineIv?: number;
  /** Guest's own features: the fine-bin IV a feature unrelated to the label reaches by chance. */
  chanceIv?: number;
  /** The default-rate trend of the final numeric bins (absent: fine bins kept, or a category). */
  trend?: ImposedTrend;
  selected: boolean;
}

/** A row of the IV table the guest learns (and publishes with the model). */
export interface IvRow {
  feature: string;
  party: string;
  type?: 'number' | 'category';
  iv: number;
  /** IV of the fine bins, before merging: what the feature could give. */
  fineIv?: number;
  /** The part of fineIv a feature unrelated to the label reaches on the same bins by chance (credit/woe.ts chanceIv). */
  chanceIv?: number;
  bins: number;
  trend?: ImposedTrend;
  selected: boolean;
}

/** Just the bin layout of a binned feature (what a model part and a scorecard keep). */
export function layoutOf(f: BinLayout): BinLayout {
  if (f.categories) return { edges: [], categories: f.categories, unseen: f.unseen ?? 'neutral' };
  return { edges: f.edges, ...(f.specials && f.specials.length > 0 ? { specials: f.specials } : {}) };
}

/** WOE of a stored cell (NaN: missing); an unseen level as the feature's unseen treatment says (neutral: 0). */
export function cellWoe(x: number, f: BinnedFeature, levels: readonly string[] | undefined): number {
  return layoutWoe(f.feature, cellValue(x, f.categories ? levels : undefined), f, f.woe);
}

/** Values of one feature on the given dataset rows (NaN = missing). */
export function featureColumn(data: LoadedDataset, feature: string, rows: ArrayLike<number>): Float64Array {
  const j = data.features.indexOf(feature);
  const width = data.features.length;
  return Float64Array.from({ length: rows.length }, (_, i) => data.x[rows[i]! * width + j]!);
}

/** The party's dataset seen through the WOE of its binned features: one column per feature, every row. */
export function woeDataset(data: LoadedDataset, features: BinnedFeature[]): LoadedDataset {
  const width = data.features.length;
  const idx = features.map((f) => data.features.indexOf(f.feature));
  // Held-out rows may hold levels no training row has: `reject` is for scoring, here they are neutral.
  features = features.map((f) => (f.unseen === 'reject' ? { ...f, unseen: 'neutral' } : f));
  const x = new Float32Array(data.rows * features.length);
  for (let r = 0; r < data.rows; r++) {
    features.forEach((f, j) => {
      x[r * features.length + j] = cellWoe(data.x[r * width + idx[j]!]!, f, data.levels?.[f.feature]);
    });
  }
  return { ...data, features: features.map((f) => f.feature), x };
}

/**
 * What a party's model reads: its features as they are (standardised by the model), or after binning only the
 * selected ones, as WOE values (used as they are) when the job trains on WOE.
 */
export function modelInputs(
  data: LoadedDataset,
  features: string[],
  binned: BinnedFeature[] | undefined,
  woeTransform: boolean,
): { data: LoadedDataset; features: string[]; featureIdx: number[]; standardise: boolean } {
  const selected = binned?.filter((b) => b.selected);
  if (!selected) return { data, features, featureIdx: features.map((f) => data.features.indexOf(f)), standardise: true };
  const names = selected.map((b) => b.feature);
  if (woeTransform) return { data: woeDataset(data, selected), features: names, featureIdx: names.map((_, j) => j), standardise: false };
  return { data, features: names, featureIdx: names.map((f) => data.features.indexOf(f)), standardise: true };
}

/** Several byte strings as one payload: a count, then each length and its bytes (all lengths uint32 LE). */
export function frame(parts: Uint8Array[]): Uint8Array {
  const total = 4 + parts.reduce((n, p) => n + 4 + p.length, 0);
  const out = Buffer.alloc(total);
  out.writeUInt32LE(parts.length, 0);
  let o = 4;
  for (const p of parts) {
    out.writeUInt32LE(p.length, o);
    out.set(p, o + 4);
    o += 4 + p.length;
  }
  return out;
}

export function unframe(bytes: Uint8Array): Uint8Array[] {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bad = () => new FedcreditError(ErrorCode.PROTOCOL, 'a binning payload is malformed', 'run the same fedcredit version on every party and restart the job');
  if (buf.length < 4) throw bad();
  const count = buf.readUInt32LE(0);
  const parts: Uint8Array[] = [];
  let o = 4;
  for (let i = 0; i < count; i++) {
    if (o + 4 > buf.length) throw bad();
    const n = buf.readUInt32LE(o);
    if (o + 4 + n > buf.length) throw bad();
    parts.push(buf.subarray(o + 4, o + 4 + n));
    o += 4 + n;
  }
  if (o !== buf.length) throw bad();
  return parts;
}

export const json = (value: unknown): Uint8Array => Buffer.from(JSON.stringify(value));
export const parseJson = <T>(bytes: Uint8Array): T => JSON.parse(Buffer.from(bytes).toString('utf8')) as T;
