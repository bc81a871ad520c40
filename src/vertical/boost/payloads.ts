/**
 * The payloads of vertical gradient boosting (docs/protocol-boost.md), by kind, with their codecs; the vertical
 * payload table (src/vertical/lr/payloads.ts) includes them, so a step names a kind and gets back the value it
 * expects. Row lists are indices into the job's aligned rows; ciphertexts are framed after a JSON head.
 */
import type { FeatureInfo } from '../../model/gbdt.js';
import { frame, json, parseJson, unframe } from '../binning.js';
import { ErrorCode, FedcreditError } from '../../errors.js';

/** What a host says of each of its features: its bins' layout and constraint (never its cut points). */
export type HostFeature = Omit<FeatureInfo, 'owner'>;

/** The rows of a node whose histogram the guest asks for. */
export interface NodeAsk {
  node: number;
  rows: number[];
}

/** A split the guest chose on a host's feature: the host's feature (by position) and the bins that go left. */
export interface SplitAsk {
  node: number;
  rows: number[];
  feature: number;
  leftBins: number[];
}

/** The guest's encrypted g + i·h of a node's rows (encryptRowValues with the hessians as imaginary parts), 4,096 rows per ciphertext in the order of the node's rows. */
export interface NodeGradients {
  gh: Uint8Array[];
}

/** What the guest asks a host, in turn: a level's histograms (with each node's [[g + i·h]]), splits' partitions, or the end. */
export type BoostAsk =
  | { kind: 'histograms'; tree: number; level: number; nodes: NodeAsk[]; gradients: NodeGradients[] }
  | { kind: 'splits'; tree: number; level: number; splits: SplitAsk[] }
  | { kind: 'end' };

/** A host's encrypted per-bin sums of g + i·h: its features packed into groups (columnGroups), one ciphertext per
 * (node, group), nodes in ask order. */
export interface BoostHistograms {
  groups: number[][];
  sums: Uint8Array[];
}

const malformed = (what: string) => new FedcreditError(ErrorCode.PROTOCOL, `a ${what} payload is malformed`, 'run the same fedcredit version on every party and restart the job');

export const BOOST_PAYLOADS = {
  /** The guest's rotation keys (under its own CKKS key) for the hosts' histogram products, and its public key, with which a host re-randomises each histogram. */
  'boost.keys': {
    what: "the guest's CKKS rotation and public keys (public material under its own key, no data)",
    encode: (v: { galoisKeys: Uint8Array; publicKey: Uint8Array }) => frame([v.galoisKeys, v.publicKey]),
    decode: (b: Uint8Array) => {
      const [galoisKeys, publicKey, ...rest] = unframe(b);
      if (!galoisKeys || !publicKey || rest.length > 0) throw malformed('boost.keys');
      return { galoisKeys, publicKey };
    },
  },
  /** A host's features' layouts, in its order. */
  'boost.layout': {
    what: "for each of this party's features: how many bins it has, its kind and its monotone constraint (never its cut points)",
    encode: (v: HostFeature[]) => json(v),
    decode: (b: Uint8Array) => parseJson<HostFeature[]>(b),
  },
  'boost.ask': {
    what: "which rows of a tree node the guest asks histograms or a split for, with the CKKS ciphertexts of the gradient and hessian (as one complex value) of each asked node's rows",
    encode: (v: BoostAsk) => {
      if (v.kind !== 'histograms') return frame([json(v)]);
      const { gradients, ...head } = v;
      return frame([json({ ...head, chunks: gradients.map((n) => n.gh.length) }), ...gradients.flatMap((n) => n.gh)]);
    },
    decode: (b: Uint8Array): BoostAsk => {
      const [head, ...ciphers] = unframe(b);
      const ask = parseJson<BoostAsk & { chunks?: number[] }>(head ?? new Uint8Array());
      if (ask.kind !== 'histograms') return ask;
      const { chunks, ...rest } = ask;
      if (!Array.isArray(chunks) || chunks.some((c) => !Number.isInteger(c) || c < 0) || ciphers.length !== chunks.reduce((s, c) => s + c, 0)) throw malformed('boost.ask');
      let at = 0;
      const gradients = chunks.map((c) => {
        const node = { gh: ciphers.slice(at, at + c) };
        at += c;
        return node;
      });
      return { ...rest, gradients };
    },
  },
  'boost.histograms': {
    what: "CKKS ciphertexts of the gradient and hessian sums (as one complex value) in each bin of this party's features for each asked node (each slot masked)",
    encode: (v: BoostHistograms) => frame([json({ groups: v.groups, count: v.sums.length }), ...v.sums]),
    decode: (b: Uint8Array): BoostHistograms => {
      const [head, ...ciphers] = unframe(b);
      const { groups, count } = parseJson<{ groups: number[][]; count: number }>(head ?? new Uint8Array());
      if (ciphers.length !== count) throw malformed('boost.histograms');
      return { groups, sums: ciphers };
    },
  },
  /** Scoring a batch: how many rows (the batch's aligned order) and which of the host's split ids the model uses. */
  'boost.score_ask': {
    what: "how many enterprises of a scoring batch and which of the host's split ids the model uses",
    encode: (v: { rows: number; ids: number[] }) => json(v),
    decode: (b: Uint8Array) => parseJson<{ rows: number; ids: number[] }>(b),
  },
  /** For each asked split id, in order: a bit per row (row r in byte r >> 3, bit r & 7), set when the row goes left. */
  'boost.routes': {
    what: 'for each split of this party the model uses: one bit per scored enterprise saying which branch it takes',
    encode: (v: Uint8Array[]) => frame(v),
    decode: (b: Uint8Array) => unframe(b),
  },
  /** For each split asked, in order: the rows that go left and the host's opaque id of the split. */
  'boost.partition': {
    what: "for each split on this party's features: the rows of the node that go left, and the split's opaque id (never its threshold)",
    encode: (v: { id: number; left: number[] }[]) => json(v),
    decode: (b: Uint8Array) => parseJson<{ id: number; left: number[] }[]>(b),
  },
};
