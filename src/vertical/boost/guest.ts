/**
 * The guest's side of vertical gradient boosting (docs/protocol-boost.md): it holds the labels and its own CKKS
 * key, grows every tree with the central GBDT's grower (src/model/gbdt.ts), and answers the grower's questions
 * through a SplitOracle: its own features' histograms and partitions from its own bins, the hosts' from the hosts —
 * encrypted per-bin sums of its [[g + i·h]] that it decrypts, and the rows each chosen host split sends left.
 */
import { ErrorCode, FedcreditError } from '../../errors.js';
import type { CkksEngine } from '../../he/engine.js';
import { generateKeys } from '../../he/key-ceremony.js';
import { boost, buildHistogram, featureOffsets, rowsGoingLeft, type FeatureInfo, type GbdtModel, type GbdtParams, type Histogram, type SplitOracle } from '../../model/gbdt.js';
import { nextPowerOfTwo, sharedBabySteps } from '../../he/packing.js';
import { BinSums, cheaperFromKeptBase, columnGroups, encryptRowValues, membership, openBinSums, repeatRows, rowRepeats, touchedChunks } from '../label-sums.js';
import type { PeerPort } from '../lr/port.js';
import type { HostFeature, NodeGradients } from './payloads.js';

export interface BoostGuestInputs {
  engine: CkksEngine;
  /** The guest's features (owner: the guest) and their bins over the job's aligned rows. */
  features: FeatureInfo[];
  bins: Uint16Array[];
  /** Labels of the aligned rows (read on training rows only). */
  labels: Float64Array;
  train: Uint32Array;
  valid: Uint32Array;
  params: GbdtParams;
}

/** A host's layout, checked: what the guest's split search relies on. */
function checkLayout(host: string, layout: HostFeature[]): FeatureInfo[] {
  return layout.map((f, j) => {
    const ok =
      Number.isInteger(f.bins) &&
      f.bins >= 1 &&
      f.bins <= 0x10000 &&
      Number.isInteger(f.ordered) &&
      f.ordered >= 0 &&
      f.ordered <= f.bins &&
      (f.categorical ? f.ordered === 0 && f.monotone === 0 : f.ordered >= 1) &&
      [-1, 0, 1].includes(f.monotone);
    if (!ok)
      throw new FedcreditError(ErrorCode.PROTOCOL, `${host} described its feature ${j} (${String(f.name)}) with an impossible bin layout`, `check ${host}'s fedcredit version and restart the job`);
    return { name: f.name, owner: host, bins: f.bins, ordered: f.ordered, categorical: f.categorical, monotone: f.monotone };
  });
}

function sameRows(a: Uint32Array, b: Uint32Array): boolean {
  return a.length === b.length && a.every((r, i) => r === b[i]);
}

/** Train the trees; the hosts keep their splits' bins, the guest's model names a host split by owner and id. */
export async function guestBoost(port: PeerPort, inputs: BoostGuestInputs, onTree?: (tree: number, model: GbdtModel) => void | Promise<void>): Promise<GbdtModel> {
  const { engine, labels } = inputs;
  const n = labels.length;
  const keys = generateKeys(engine, 'arbiter');
  try {
    await Promise.all(port.hosts.map((h) => port.send(h, 'boost.keys', { galoisKeys: keys.galoisKeys, publicKey: keys.publicKey })));
    const layouts = await Promise.all(port.hosts.map(async (h) => checkLayout(h, await port.receive(h, 'boost.layout'))));
    const own = inputs.features.length;
    const features = [...inputs.features, ...layouts.flat()];
    const offsets = featureOffsets(features);
    const ownOffsets = featureOffsets(inputs.features);
    // Index of each host's first feature among all features.
    const starts = layouts.map((_, k) => own + layouts.slice(0, k).reduce((s, l) => s + l.length, 0));
    const ownerOf = (feature: number) => {
      for (let k = port.hosts.length - 1; k >= 0; k--) if (feature >= starts[k]!) return k;
      return -1;
    };
    let tree = 0;
    let level = 0;
    let hostsAsked = true;
    const groupsOf = layouts.map((layout) => columnGroups(layout.map((f) => f.bins)));
    // A host keeps the diagonals of the first root it is asked about when they fit (BinSums.keepable): a node of a
    // tree with that root may then be summed from the root's [[g + i·h]], with no diagonal to encode.
    const countsOf = groupsOf.map((groups, k) => groups.map((group) => group.reduce((s, f) => s + layouts[k]![f]!.bins, 0)));
    const periodsOf = countsOf.map((counts) => counts.map(nextPowerOfTwo));
    const keepsRoot = groupsOf.map((groups) => BinSums.keepable(engine, n, groups.length));
    const babySteps = periodsOf.map((periods) => sharedBabySteps(Math.ceil(n / engine.slotCount), periods, engine.slotCount));
    let firstRoot: Uint32Array | undefined;
    let treeRoot: { rows: Uint32Array; kept: boolean } | undefined;

    const hostHistograms = async (k: number, nodes: { node: number; rows: Uint32Array }[], gradients: NodeGradients[], into: Histogram[]) => {
      const host = port.hosts[k]!;
      const layout = layouts[k]!;
      const expected = groupsOf[k]!;
      await port.send(host, 'boost.ask', {
        kind: 'histograms',
        tree,
        level,
        nodes: nodes.map((x) => ({ node: x.node, rows: Array.from(x.rows) })),
        gradients,
      });
      const reply = await port.receive(host, 'boost.histograms');
      if (JSON.stringify(reply.groups) !== JSON.stringify(expected) || reply.sums.length !== nodes.length * expected.length) {
        throw new FedcreditError(ErrorCode.PROTOCOL, `${host} packed its histograms otherwise than the protocol says`, `check ${host}'s fedcredit version and restart the job`);
      }
      nodes.forEach((_, i) =>
        expected.forEach((group, j) => {
          const count = countsOf[k]![j]!;
          const sums = reply.sums[i * expected.length + j]!;
          const g = openBinSums(engine, sums, count, keys.secretKey, 'real');
          const h = openBinSums(engine, sums, count, keys.secretKey, 'imaginary');
          let o = 0;
          for (const f of group) {
            const at = offsets[starts[k]! + f]!;
            const bins = layout[f]!.bins;
            into[i]!.g.set(g.subarray(o, o + bins), at);
            into[i]!.h.set(h.subarray(o, o + bins), at);
            o += bins;
          }
        }),
      );
    };

    const oracle: SplitOracle = {
      features,
      async startTree(t, _g, _h, only) {
        tree = t;
        level = 0;
        // A tree on the guest's features alone asks the hosts nothing.
        hostsAsked = only === undefined;
      },
      async histograms(nodes, g, h) {
        const out = nodes.map((x) => {
          const mine = buildHistogram(inputs.bins, ownOffsets, x.rows, g, h);
          const all = { g: new Float64Array(offsets[features.length]!), h: new Float64Array(offsets[features.length]!) };
          all.g.set(mine.g);
          all.h.set(mine.h);
          return all;
        });
        if (hostsAsked && port.hosts.length > 0) {
          if (level === 0) {
            firstRoot ??= nodes[0]!.rows;
            treeRoot = { rows: nodes[0]!.rows, kept: sameRows(firstRoot, nodes[0]!.rows) };
          }
          // Each node's g + i·h, of its rows only: a host's work is in proportion to the node's rows, and each of
          // its products and rotations serves g and h at once. Or none, where the host's kept diagonals of the
          // root make the node cheaper from the root's [[g + i·h]] (weighted by the node's rows) than from its own.
          // Below the root, the rows of a node's last chunk, when they fill at most half of it, go each repeated R
          // times (rowRepeats, R from the host's largest column group), so the host's products cover rows, not
          // empty slots.
          const sealed = new Map<string, NodeGradients>();
          const ownOf = (i: number, repeats: number) => {
            const rows = nodes[i]!.rows;
            let sent = sealed.get(`${i}/${repeats}`);
            if (!sent) {
              const real = repeatRows(
                Float64Array.from(rows, (r) => g[r]!),
                repeats,
                engine.slotCount,
              );
              sent = {
                gh: encryptRowValues(
                  engine,
                  real,
                  keys.publicKey,
                  repeatRows(
                    Float64Array.from(rows, (r) => h[r]!),
                    repeats,
                    engine.slotCount,
                  ),
                ),
              };
              sealed.set(`${i}/${repeats}`, sent);
            }
            return sent;
          };
          const touched = nodes.map((x) => (level > 0 && treeRoot?.kept ? touchedChunks(membership(treeRoot.rows, x.rows), engine.slotCount).length : undefined));
          const fromRoot: NodeGradients = { gh: [] };
          await Promise.all(
            port.hosts.map((_, k) => {
              const gradients = nodes.map((x, i) => {
                const t = touched[i];
                const repeats = level > 0 ? rowRepeats(x.rows.length, periodsOf[k]!, engine.slotCount) : 1;
                const cheaper = t !== undefined && keepsRoot[k]! && cheaperFromKeptBase(t, Math.ceil(x.rows.length / engine.slotCount), periodsOf[k]!, babySteps[k]!, repeats);
                return cheaper ? fromRoot : ownOf(i, repeats);
              });
              return hostHistograms(k, [...nodes], gradients, out);
            }),
          );
        }
        level++;
        return out;
      },
      async partition(splits) {
        const out: { left: Uint32Array; ref: { leftBins: number[] } | { owner: string; id: number } }[] = new Array(splits.length);
        splits.forEach((s, i) => {
          if (s.feature < own) out[i] = { left: rowsGoingLeft(inputs.bins[s.feature]!, s.rows, s.leftBins), ref: { leftBins: s.leftBins } };
        });
        await Promise.all(
          port.hosts.map(async (host, k) => {
            const mine = splits.map((s, i) => ({ s, i })).filter(({ s }) => ownerOf(s.feature) === k);
            if (mine.length === 0) return;
            await port.send(host, 'boost.ask', {
              kind: 'splits',
              tree,
              level,
              splits: mine.map(({ s }) => ({ node: s.node, rows: Array.from(s.rows), feature: s.feature - starts[k]!, leftBins: s.leftBins })),
            });
            const reply = await port.receive(host, 'boost.partition');
            if (reply.length !== mine.length) throw new FedcreditError(ErrorCode.PROTOCOL, `${host} answered ${reply.length} of ${mine.length} splits`, 'restart the job');
            mine.forEach(({ s, i }, j) => {
              const { id, left } = reply[j]!;
              const inNode = new Uint8Array(n);
              for (const r of s.rows) inNode[r] = 1;
              if (!Number.isInteger(id) || left.some((r) => inNode[r] !== 1)) {
                throw new FedcreditError(ErrorCode.PROTOCOL, `${host} sent rows of node ${s.node} that the node does not hold`, `${host} deviates from the protocol; restart the job without it`);
              }
              out[i] = { left: Uint32Array.from(left).sort(), ref: { owner: host, id } };
            });
          }),
        );
        return out;
      },
    };
    return await boost(oracle, { labels, train: inputs.train, valid: inputs.valid }, inputs.params, onTree);
  } finally {
    await Promise.all(port.hosts.map((h) => port.send(h, 'boost.ask', { kind: 'end' }).catch(() => undefined)));
    keys.secretKey.fill(0);
    engine.forgetSecretKey();
  }
}
