/**
 * A host's side of vertical gradient boosting (docs/protocol-boost.md): it describes its features' bin layouts,
 * then answers the guest's asks until the end: for a level, the encrypted, masked per-bin sums of the guest's
 * [[g + i·h]] of each asked node's rows (the label-sums kernel, src/vertical/label-sums.ts, over the node's
 * rows, from the node's own ciphertexts or from its tree's root's with the node's rows as weights); for a split on
 * one of its features, the rows that go left and an opaque id. It keeps every split's bins (hence its cut points)
 * to itself: the returned table is its part of the model.
 */
import { availableParallelism } from 'node:os';
import { ErrorCode, FedcreditError } from '../../errors.js';
import type { CkksEngine } from '../../he/engine.js';
import { rowsGoingLeft } from '../../model/gbdt.js';
import { BinSums, columnGroups, nodeFromBase, rowRepeats, type NodeValues } from '../label-sums.js';
import type { PeerPort } from '../lr/port.js';
import type { HostFeature, NodeAsk } from './payloads.js';

export interface BoostHostInputs {
  engine: CkksEngine;
  features: HostFeature[];
  /** Bins of each feature over the job's aligned rows. */
  bins: Uint16Array[];
  /** The fewest rows of a node this host answers for, and of each side of a split (consent.min_node_rows; default 1). */
  minNodeRows?: number;
  /** Worker threads for the histograms (BinSums); every core by default. */
  threads?: number;
}

/** A split of this host: its feature (by position) and the bins sent left. */
export interface HostSplit {
  feature: number;
  leftBins: number[];
}

const deviates = (what: string) => new FedcreditError(ErrorCode.PROTOCOL, `the guest asked ${what}`, 'the guest deviates from the protocol or runs another version; restart the job');

function checkRows(rows: number[], n: number): Uint32Array {
  const out = Uint32Array.from(rows);
  for (let i = 0; i < out.length; i++) if (out[i]! >= n || (i > 0 && out[i]! <= out[i - 1]!) || out[i] !== rows[i]) throw deviates('for rows that are not ascending job rows');
  return out;
}

/** A guest that asks about fewer rows than the floor could learn single enterprises' bins: refused, naming the floor. */
function checkNodeSize(what: string, rows: number, floor: number): void {
  if (rows < floor) {
    throw new FedcreditError(
      ErrorCode.PROTOCOL,
      `the guest asked for ${what} of ${rows} rows; this party answers only for nodes and split sides of at least ${floor} rows (consent.min_node_rows)`,
      `an honest guest asks no smaller node when boosting.min_child_weight allows none (see consent.min_node_rows in docs/configuration.md): check the job's boosting.min_child_weight, else the guest deviates from the protocol and the job should run without it`,
    );
  }
}

/** Serve the guest's asks until it ends the training; returns this host's splits by id. */
export async function hostBoost(port: PeerPort, inputs: BoostHostInputs): Promise<HostSplit[]> {
  const { engine, features, bins } = inputs;
  const n = bins[0]?.length ?? 0;
  const floor = inputs.minNodeRows ?? 1;
  const guestKeys = await port.receive(port.guest, 'boost.keys');
  await port.send(port.guest, 'boost.layout', features);
  const splits: HostSplit[] = [];
  /** The current tree's root: its rows and [[g + i·h]], from which the guest may ask the sums of any of its nodes. */
  let root: { tree: number; rows: Uint32Array; gh: Uint8Array[] } | undefined;
  const groups = columnGroups(features.map((f) => f.bins));
  const kernel = new BinSums(
    engine,
    groups.map((group) => ({ bins: group.map((f) => bins[f]!), binCounts: group.map((f) => features[f]!.bins) })),
    { keep: BinSums.keepable(engine, n, groups.length), threads: inputs.threads ?? availableParallelism() },
  );
  try {
    for (;;) {
      const ask = await port.receive(port.guest, 'boost.ask');
      port.checkpoint();
      if (ask.kind === 'end') return splits;
      if (ask.kind === 'histograms') {
        if (ask.gradients.length !== ask.nodes.length) throw deviates(`for ${ask.nodes.length} histograms with the gradients of ${ask.gradients.length} nodes`);
        const nodes = (ask.nodes as NodeAsk[]).map((node, i): NodeValues => {
          if (node.rows.length === 0) throw deviates('for the histogram of an empty node');
          checkNodeSize(`the histogram of node ${node.node}`, node.rows.length, floor);
          const rows = checkRows(node.rows, n);
          const { gh } = ask.gradients[i]!;
          if (gh.length > 0) {
            if (ask.level === 0) {
              root = { tree: ask.tree, rows, gh };
              return { values: [gh], rows };
            }
            // Below the root, the rows of a node's last chunk may come repeated (rowRepeats).
            return { values: [gh], rows, repeats: rowRepeats(rows.length, kernel.periods, engine.slotCount) };
          }
          // No ciphertexts: the node's sums from its tree's root's [[g + i·h]], the rows outside the node weighted 0.
          if (ask.level === 0 || root?.tree !== ask.tree) throw deviates(`for node ${node.node}'s histogram from the [[g + i·h]] of tree ${ask.tree}'s root, which it did not send`);
          try {
            return nodeFromBase([root.gh], rows, root.rows);
          } catch {
            throw deviates(`for node ${node.node}'s histogram from its root's [[g + i·h]] with rows that are not the root's`);
          }
        });
        // The level's nodes at once: the worker threads share all their chunks.
        const sums = (await kernel.nodeSums(nodes, guestKeys)).flatMap(([perGroup]) => perGroup!);
        await port.send(port.guest, 'boost.histograms', { groups, sums });
        continue;
      }
      const answers = ask.splits.map((s) => {
        const column = bins[s.feature];
        if (!column || !Number.isInteger(s.feature)) throw deviates(`to split on feature ${s.feature}, which this party does not have`);
        if (s.leftBins.some((b) => !Number.isInteger(b) || b < 0 || b >= features[s.feature]!.bins)) throw deviates(`for bins of ${features[s.feature]!.name} that it does not have`);
        const left = rowsGoingLeft(column, checkRows(s.rows, n), s.leftBins);
        checkNodeSize(`a split of node ${s.node}`, Math.min(left.length, s.rows.length - left.length), floor);
        splits.push({ feature: s.feature, leftBins: [...s.leftBins] });
        return { id: splits.length - 1, left: Array.from(left) };
      });
      await port.send(port.guest, 'boost.partition', answers);
    }
  } finally {
    await kernel.dispose();
  }
}
