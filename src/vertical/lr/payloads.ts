/**
 * The payloads parties of a vertical LR job send one another, by kind, each with its codec: a step names a kind and
 * gets back the value it expects, never bare bytes or a bare string. The bytes are those the protocol has always
 * sent (docs/protocol-vertical.md); participant/own-record.ts says in a data owner's words what each kind carries.
 */
import type { ImposedTrend } from '../../credit/binning.js';
import type { ScorecardFeature } from '../../credit/scorecard.js';
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

export const LR_PAYLOADS = {
  /** The guest's rotation keys and its training labels encrypted under its own key, for a host's label sums. */
  'bin.labels': {
    encode: (v: { galoisKeys: Uint8Array; labels: Uint8Array[] }) => frame([v.galoisKeys, ...v.labels]),
    decode: (b: Uint8Array) => {
      const [galoisKeys, ...labels] = unframe(b);
      return { galoisKeys: galoisKeys ?? new Uint8Array(), labels };
    },
  },
  'bin.sums': {
    encode: (v: { sums: HostBinSums; ciphers: Uint8Array[] }) => frame([json(v.sums), ...v.ciphers]),
    decode: (b: Uint8Array) => {
      const [head, ...ciphers] = unframe(b);
      return { sums: parseJson<HostBinSums>(head ?? new Uint8Array()), ciphers };
    },
  },
  'bin.result': jsonOf<HostBinResult[]>(),
  /** A host's [[0.25·u]] for one batch. */
  'train.partial': bytes,
  /** The guest's [[d]] for one batch. */
  'train.fore_gradient': bytes,
  'scorecard.slope': jsonOf<{ a: number }>(),
  'scorecard.part': jsonOf<ScorecardFeature[]>(),
  'fairness.groups': jsonOf<string[]>(),
  ...BOOST_PAYLOADS,
} satisfies Record<string, { encode(value: never): Uint8Array; decode(bytes: Uint8Array): unknown }>;

export type PayloadKind = keyof typeof LR_PAYLOADS;
export type PayloadOf<K extends PayloadKind> = ReturnType<(typeof LR_PAYLOADS)[K]['decode']>;

export function encodePayload<K extends PayloadKind>(kind: K, value: PayloadOf<K>): Uint8Array {
  return (LR_PAYLOADS[kind] as unknown as Codec<PayloadOf<K>>).encode(value);
}

export function decodePayload<K extends PayloadKind>(kind: K, bytes: Uint8Array): PayloadOf<K> {
  return LR_PAYLOADS[kind].decode(bytes) as PayloadOf<K>;
}
