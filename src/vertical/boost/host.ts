/**
 * A host's side of vertical gradient boosting (docs/protocol-boost.md): it describes its features' bin layouts,
 * then answers the guest's asks until the end: for a level, the encrypted, masked per-bin sums of the guest's
 * [[g]] and [[h]] over each asked node's rows (the label-sums kernel, src/vertical/label-sums.ts, with the rows
 * outside the node in no bin); for a split on one of its features, the rows that go left and an opaque id. It keeps
 * every split's bins (hence its cut points) to itself: the returned table is its part of the model.
 */
import { ErrorCode, FedcreditError } from '../../errors.js';
import type { CkksEngine } from '../../he/engine.js';
import { rowsGoingLeft } from '../../model/gbdt.js';
import { columnGroups, hostBinSums } from '../label-sums.js';
import type { PeerPort } from '../lr/port.js';
import type { HostFeature, NodeAsk } from './payloads.js';

export interface BoostHostInputs {
  engine: CkksEngine;
  features: HostFeature[];
  /** Bins of each feature over the job's aligned rows. */
  bins: Uint16Array[];
}

/** A split of this host: its feature (by position) and the bins sent left. */
export interface HostSplit {
  feature: number;
  leftBins: number[];
}

/** No bin: a row outside the node adds to no per-bin sum. */
const OUTSIDE = 0xffff;

const deviates = (what: string) => new FedcreditError(ErrorCode.PROTOCOL, `the guest asked ${what}`, 'the guest deviates from the protocol or runs another version; restart the job');

function checkRows(rows: number[], n: number): Uint32Array {
  const out = Uint32Array.from(rows);
  for (let i = 0; i < out.length; i++) if (out[i]! >= n || (i > 0 && out[i]! <= out[i - 1]!) || out[i] !== rows[i]) throw deviates('for rows that are not ascending job rows');
  return out;
}

/** Serve the guest's asks until it ends the training; returns this host's splits by id. */
export async function hostBoost(port: PeerPort, inputs: BoostHostInputs): Promise<HostSplit[]> {
  const { engine, features, bins } = inputs;
  const n = bins[0]?.length ?? 0;
  const { galoisKeys } = await port.receive(port.guest, 'boost.keys');
  await port.send(port.guest, 'boost.layout', features);
  const splits: HostSplit[] = [];
  let chunks: { g: Uint8Array[]; h: Uint8Array[] } | undefined;
  for (;;) {
    const ask = await port.receive(port.guest, 'boost.ask');
    port.checkpoint();
    if (ask.kind === 'end') return splits;
    if (ask.kind === 'histograms') {
      if (ask.gradients) chunks = ask.gradients;
      if (!chunks) throw deviates('for histograms before sending the gradients');
      const masked = ask.nodes.flatMap((node: NodeAsk) => {
        const rows = checkRows(node.rows, n);
        return bins.map((column) => {
          const m = new Uint16Array(n).fill(OUTSIDE);
          for (const r of rows) m[r] = column[r]!;
          return m;
        });
      });
      const sizes = ask.nodes.flatMap(() => features.map((f) => f.bins));
      const groups = columnGroups(sizes);
      const sums = (values: Uint8Array[]) =>
        groups.map((group) =>
          hostBinSums(
            engine,
            values,
            galoisKeys,
            group.map((e) => masked[e]!),
            group.map((e) => sizes[e]!),
          ),
        );
      await port.send(port.guest, 'boost.histograms', { groups, g: sums(chunks.g), h: sums(chunks.h) });
      continue;
    }
    const answers = ask.splits.map((s) => {
      const column = bins[s.feature];
      if (!column || !Number.isInteger(s.feature)) throw deviates(`to split on feature ${s.feature}, which this party does not have`);
      if (s.leftBins.some((b) => !Number.isInteger(b) || b < 0 || b >= features[s.feature]!.bins)) throw deviates(`for bins of ${features[s.feature]!.name} that it does not have`);
      splits.push({ feature: s.feature, leftBins: [...s.leftBins] });
      return { id: splits.length - 1, left: Array.from(rowsGoingLeft(column, checkRows(s.rows, n), s.leftBins)) };
    });
    await port.send(port.guest, 'boost.partition', answers);
  }
}
