/**
 * The record of a vertical-boost job's trees (docs/audit-ledger.md, `tree_built`), and what an auditor derives from
 * it. The guest reports every tree it grew: its digest, the validation AUC after it, whether the model keeps it, its
 * shape (each node's rows, a split's owner and children: no feature, bin or value) and, level by level, the nodes it
 * asked each host about. A host reports a digest of the asks it answered, as it received them. The replay
 * (src/audit/replay-boost.ts) checks the asks against the protocol's schedule for the logged shape, and each host's
 * digest against the asks the guest logged for it: a guest that asked other than it logged is caught by the host's
 * own report.
 */
import { sha256Hex } from '../../bytes.js';
import { rowsGoingLeft, type GbdtModel } from '../../model/gbdt.js';
import type { PeerPort } from '../lr/port.js';
import type { TreeRecord } from '../step-reports.js';
import type { BoostAsk } from './payloads.js';
import { treeDigest } from './party.js';

type NodeRecord = TreeRecord['nodes'][number];
type LevelRecord = TreeRecord['levels'][number];

/** One ask as both ends can state it: its kind, tree, and each node with its row count (never the rows). */
export type AskSummary = ['histograms' | 'splits', number, [node: number, rows: number][]] | ['end'];

export function askSummary(ask: BoostAsk): AskSummary {
  if (ask.kind === 'end') return ['end'];
  const nodes = ask.kind === 'histograms' ? ask.nodes : ask.splits;
  return [ask.kind, ask.tree, nodes.map((x) => [x.node, x.rows.length])];
}

/** The digest of a party's asks in order: what a host reports and the replay recomputes from the logged trees. */
export function asksDigest(asks: readonly AskSummary[]): string {
  return sha256Hex(JSON.stringify(asks));
}

/** A host's view: every ask it receives through `port`, summarised. */
export function recordHostAsks(port: PeerPort): { port: PeerPort; asks: AskSummary[] } {
  const asks: AskSummary[] = [];
  return {
    asks,
    port: {
      ...port,
      receive: async (from, kind) => {
        const value = await port.receive(from, kind);
        if (kind === 'boost.ask') asks.push(askSummary(value as BoostAsk));
        return value;
      },
    },
  };
}

/**
 * The guest's view: the nodes it asks each host about, and the rows each host split sends left (to count every
 * node's rows). `treeRecord` turns them into the record of a grown tree.
 */
export class GuestAskLog {
  /** Per tree, per host, in order: the node ids of each histograms ask and each splits ask. */
  private readonly asked = new Map<number, Map<string, { histograms: number[][]; splits: number[][] }>>();
  private readonly lefts = new Map<string, Uint32Array>();
  readonly port: PeerPort;

  constructor(
    port: PeerPort,
    /** The guest's bins of its own features (the model's first features), over the job's rows. */
    private readonly bins: readonly Uint16Array[],
    /** The rows every tree holds at its root: training and validation (src/model/gbdt.ts `boost`). */
    private readonly rows: Uint32Array,
  ) {
    const pending = new Map<string, { tree: number; nodes: number[] }>();
    this.port = {
      ...port,
      send: async (to, kind, value) => {
        if (kind === 'boost.ask') {
          const ask = value as BoostAsk;
          if (ask.kind !== 'end') {
            const byHost = this.asked.get(ask.tree) ?? new Map();
            this.asked.set(ask.tree, byHost);
            const mine = byHost.get(to) ?? { histograms: [], splits: [] };
            byHost.set(to, mine);
            if (ask.kind === 'histograms') mine.histograms.push(ask.nodes.map((x) => x.node));
            else {
              mine.splits.push(ask.splits.map((x) => x.node));
              pending.set(to, { tree: ask.tree, nodes: ask.splits.map((x) => x.node) });
            }
          }
        }
        return port.send(to, kind, value);
      },
      receive: async (from, kind) => {
        const value = await port.receive(from, kind);
        const asked = pending.get(from);
        if (kind === 'boost.partition' && asked) {
          (value as { left: number[] }[]).forEach((p, i) => this.lefts.set(`${asked.tree}/${asked.nodes[i]}`, Uint32Array.from(p.left)));
          pending.delete(from);
        }
        return value;
      },
    };
  }

  /** The record of tree `t` of `model` (just grown); `kept` is settled once early stopping has decided. */
  treeRecord(t: number, model: GbdtModel, hosts: readonly string[]): TreeRecord {
    const tree = model.trees[t]!;
    const nodes: NodeRecord[] = new Array(tree.nodes.length);
    const depth: number[] = new Array(tree.nodes.length).fill(0);
    const inLeft = new Uint8Array((this.rows.at(-1) ?? -1) + 1);
    const visit = (i: number, rows: Uint32Array) => {
      const n = tree.nodes[i]!;
      if (n.kind === 'leaf') {
        nodes[i] = { rows: rows.length };
        return;
      }
      const owner = model.features[n.feature]!.owner;
      nodes[i] = { rows: rows.length, owner, left: n.left, right: n.right };
      const left = 'leftBins' in n.ref ? rowsGoingLeft(this.bins[n.feature]!, rows, n.ref.leftBins) : (this.lefts.get(`${t}/${i}`) ?? new Uint32Array());
      for (const r of left) inLeft[r] = 1;
      const right = rows.filter((r) => inLeft[r] === 0);
      for (const r of left) inLeft[r] = 0;
      depth[n.left] = depth[n.right] = depth[i]! + 1;
      visit(n.left, left);
      visit(n.right, right);
    };
    visit(0, this.rows);
    const asked = this.asked.get(t);
    const levels: LevelRecord[] = [];
    const levelOf = (node: number) => {
      const l = depth[node]!;
      while (levels.length <= l) levels.push({ level: levels.length, nodes: [], histograms: {}, splits: {} });
      return levels[l]!;
    };
    tree.nodes.forEach((_, i) => levelOf(i).nodes.push(i));
    for (const host of hosts) {
      for (const which of ['histograms', 'splits'] as const) {
        for (const ask of asked?.get(host)?.[which] ?? []) {
          // An ask's nodes share a level; an ask of no node is logged at level 0 (the schedule check names it).
          const level = levelOf(ask[0] ?? 0);
          level[which][host] = [...(level[which][host] ?? []), ...ask];
        }
      }
    }
    return { tree: t, sha256: treeDigest(tree), validation_auc: model.validationAuc[t] ?? null, kept: true, nodes, levels };
  }
}

/**
 * What the protocol asks each host at each level of a tree of this shape (src/model/gbdt.ts `growTree`, the guest's
 * oracle in ./guest.ts): the histograms of the root, then of the smaller child of each split (the left one on a
 * tie), to every host; the splits at that level on a host's features, to that host. A tree on the guest's features
 * only asks nothing. Levels go on while a level has a node and fewer than `depth` levels were split.
 */
export function protocolLevels(nodes: readonly NodeRecord[], hosts: readonly string[], depth: number, guestOnly: boolean): LevelRecord[] {
  const levels: LevelRecord[] = [];
  let frontier = [0];
  let built = [0];
  for (let level = 0; frontier.length > 0; level++) {
    const splits = frontier.filter((i) => nodes[i]?.owner !== undefined);
    const record: LevelRecord = { level, nodes: frontier, histograms: {}, splits: {} };
    if (level < depth && !guestOnly) {
      for (const h of hosts) {
        record.histograms[h] = built;
        const mine = splits.filter((i) => nodes[i]!.owner === h);
        if (mine.length > 0) record.splits[h] = mine;
      }
    }
    levels.push(record);
    frontier = splits.flatMap((i) => [nodes[i]!.left!, nodes[i]!.right!]);
    built = splits.map((i) => {
      const { left, right } = nodes[i]!;
      return nodes[left!]!.rows <= nodes[right!]!.rows ? left! : right!;
    });
  }
  return levels;
}

/** The asks a host answered, as the guest's logged trees say they were sent: ends with the `end` ask. */
export function loggedAsks(trees: readonly TreeRecord[], host: string): AskSummary[] {
  const asks: AskSummary[] = [];
  for (const t of trees) {
    const rows = (ids: number[]): [number, number][] => ids.map((i) => [i, t.nodes[i]?.rows ?? -1]);
    for (const level of t.levels) {
      const h = level.histograms[host];
      const s = level.splits[host];
      if (h) asks.push(['histograms', t.tree, rows(h)]);
      if (s) asks.push(['splits', t.tree, rows(s)]);
    }
  }
  asks.push(['end']);
  return asks;
}
