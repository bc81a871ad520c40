/**
 * The payloads parties of a vertical LR job send one another, by kind, each with its codec: a step names a kind and
 * gets back the value it expects, never bare bytes or a bare string. The bytes are those the protocol has always
 * sent (docs/protocol-vertical.md). Each kind says in a data owner's words what it carries: RELAY_CONTENT, with the
 * PSI's kinds, is what a participant's egress report shows.
 */
import type { ImposedTrend } from '../../credit/binning.js';
import type { ScorecardFeature, ScoredPoints } from '../../credit/scorecard.js';
import { float64Bytes, toFloat64 } from '../../fl/vector-codec.js';
import { PSI_MESSAGES, PSI_STREAMS, streamOf, type PsiMessage, type PsiStream } from '../../psi/kinds.js';
import { frame, json, parseJson, unframe } from '../binning.js';
import { BOOST_PAYLOADS } from '../boost/payloads.js';

export interface Codec<T> {
  encode(value: T): Uint8Array;
  decode(bytes: Uint8Array): T;
}

const bytes: Codec<Uint8Array> = { encode: (b) => b, decode: (b) => b };
const jsonOf = <T>(): Codec<T> => ({ encode: (v) => json(v), decode: (b) => parseJson<T>(b) });

/** What the guest tells a host about each of its features after binning. */
export interface HostBinResult {
  feature: string;
  /** Fine bins of each final bin: contiguous runs for a number (null: fine bins kept), sets of levels for a category. */
  groups: number[][] | null;
  woe: number[];
  iv: number;
  fineIv: number;
  trend?: ImposedTrend;
  selected: boolean;
}

/** What a host sends in the clear beside its encrypted per-bin label sums. */
export interface HostBinSums {
  features: string[];
  /** Training rows per fine bin of each feature. */
  totals: number[][];
  /** Features (by index) packed into each ciphertext. */
  groups: number[][];
  categories?: boolean[];
}

/** A payload kind: its codec, and what it carries in a data owner's words (the egress report shows it). */
const kind = <T>(codec: Codec<T>, what: string) => ({ ...codec, what });

const float64s: Codec<Float64Array> = { encode: float64Bytes, decode: toFloat64 };

export const LR_PAYLOADS = {
  'bin.labels': kind(
    {
      encode: (v: { galoisKeys: Uint8Array; publicKey: Uint8Array; labels: Uint8Array[] }) => frame([v.galoisKeys, v.publicKey, ...v.labels]),
      decode: (b: Uint8Array) => {
        const [galoisKeys, publicKey, ...labels] = unframe(b);
        return { galoisKeys: galoisKeys ?? new Uint8Array(), publicKey: publicKey ?? new Uint8Array(), labels };
      },
    },
    "the guest's training labels, CKKS-encrypted under its own key, and its rotation and public keys",
  ),
  'bin.sums': kind(
    {
      encode: (v: { sums: HostBinSums; ciphers: Uint8Array[] }) => frame([json(v.sums), ...v.ciphers]),
      decode: (b: Uint8Array) => {
        const [head, ...ciphers] = unframe(b);
        return { sums: parseJson<HostBinSums>(head ?? new Uint8Array()), ciphers };
      },
    },
    "CKKS ciphertexts of the number of defaults in each bin of this party's features (each slot masked), and the number of training rows in each bin, in the clear",
  ),
  'bin.result': kind(jsonOf<HostBinResult[]>(), "for each of the host's features: which fine bins merge, the WOE of each bin, the IV, and whether it is kept"),
  /** A host's [[0.25·u]] for one batch. */
  'train.partial': kind(bytes, "CKKS ciphertext of 0.25 x this party's partial scores for one mini-batch"),
  /** The guest's [[d]] for one batch. */
  'train.fore_gradient': kind(bytes, 'CKKS ciphertext of the fore-gradient of one mini-batch'),
  'scorecard.slope': kind(jsonOf<{ a: number }>(), "the calibration slope of the guest's model (one number)"),
  'scorecard.part': kind(jsonOf<ScorecardFeature[]>(), "this party's scorecard: the bounds, WOE and points of the bins of each of its features (no data)"),
  'fairness.groups': kind(jsonOf<string[]>(), 'the group (data.group_columns) of each held-out enterprise, in the shared order'),
  /** A host's partial scores masked pairwise with the other hosts (validation, evaluation and scoring). */
  'score.share': kind(float64s, 'partial scores masked pairwise with the other hosts (only their sum opens)'),
  'score.points_share': kind(float64s, 'scorecard points masked pairwise with the other hosts (only their sum opens)'),
  'score.reasons': kind(jsonOf<ScoredPoints['points'][number][][]>(), "for each scored enterprise, this party's features that cost it the most points, with the points"),
  'score.feature_psi': kind(jsonOf<Record<string, number> | null>(), "the stability index of each of this party's binned features on the batch (one number per feature)"),
  ...BOOST_PAYLOADS,
} satisfies Record<string, { encode(value: never): Uint8Array; decode(bytes: Uint8Array): unknown; what: string }>;

/** The payload kinds that carry a host's masked share of a secure sum (PeerPort.sendScoreShare). */
export type ShareKind = 'score.share' | 'score.points_share';

export type PayloadKind = keyof typeof LR_PAYLOADS;
export type PayloadOf<K extends PayloadKind> = ReturnType<(typeof LR_PAYLOADS)[K]['decode']>;

export function encodePayload<K extends PayloadKind>(kind: K, value: PayloadOf<K>): Uint8Array {
  return (LR_PAYLOADS[kind] as unknown as Codec<PayloadOf<K>>).encode(value);
}

export function decodePayload<K extends PayloadKind>(kind: K, bytes: Uint8Array): PayloadOf<K> {
  return LR_PAYLOADS[kind].decode(bytes) as PayloadOf<K>;
}

/**
 * What every kind the parties of a vertical job relay to one another carries, in a data owner's words: the payloads
 * above and the PSI's (src/psi/kinds.ts). A participant's egress report reads it (participant/own-record.ts).
 */
export const RELAY_CONTENT: Readonly<Record<PayloadKind | PsiStream | PsiMessage, string>> = {
  ...PSI_STREAMS,
  ...(Object.fromEntries(Object.entries(PSI_MESSAGES).map(([k, v]) => [k, v.what])) as Record<PsiMessage, string>),
  ...(Object.fromEntries(Object.entries(LR_PAYLOADS).map(([k, v]) => [k, v.what])) as Record<PayloadKind, string>),
};

/** What a relayed kind carries, a PSI stream's chunk under its stream; its acknowledgements carry nothing. */
export function relayContent(kind: string): string {
  const chunk = streamOf(kind);
  if (chunk?.ack) return `acknowledgements that chunks of ${chunk.stream} arrived (empty)`;
  return RELAY_CONTENT[(chunk?.stream ?? kind) as keyof typeof RELAY_CONTENT] ?? kind;
}
