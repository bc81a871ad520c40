/**
 * Scoring a batch of aligned applicants with a vertically boosted model, one round per batch: the guest asks each
 * host, for the split ids of that host its model uses, which branch each applicant takes; the host answers a bit per
 * applicant and split, nothing else (not the bins, not the cut points). The guest then walks the trees, its own
 * splits by its own bins, and gets each applicant's margin and per-feature contributions (reason codes).
 */
import { ErrorCode, FedcreditError } from '../../errors.js';
import { binRouter, scoreRows, type GbdtModel } from '../../model/gbdt.js';
import type { PeerPort } from '../lr/port.js';
import type { HostSplit } from './host.js';

const bitsFor = (rows: number) => new Uint8Array(Math.ceil(rows / 8));

/** The guest's side: margins and per-feature contributions of `rows` applicants (its own features binned in `bins`). */
export async function guestScore(port: PeerPort, model: GbdtModel, bins: readonly Uint16Array[], rows: number): Promise<ReturnType<typeof scoreRows>> {
  const routes = new Map<string, Map<number, Uint8Array>>();
  await Promise.all(
    port.hosts.map(async (host) => {
      const ids = [...new Set(model.trees.flatMap((t) => t.nodes.flatMap((n) => (n.kind === 'split' && 'owner' in n.ref && n.ref.owner === host ? [n.ref.id] : []))))].sort((a, b) => a - b);
      await port.send(host, 'boost.score_ask', { rows, ids });
      const bits = await port.receive(host, 'boost.routes');
      if (bits.length !== ids.length || bits.some((b) => b.length !== bitsFor(rows).length)) {
        throw new FedcreditError(
          ErrorCode.PROTOCOL,
          `${host} answered ${bits.length} routes of the wrong size for ${ids.length} splits of ${rows} rows`,
          `check ${host}'s fedcredit version and score again`,
        );
      }
      routes.set(host, new Map(ids.map((id, i) => [id, bits[i]!])));
    }),
  );
  const own = binRouter(bins);
  return scoreRows(model, rows, (t, i, split, row) => {
    if ('leftBins' in split.ref) return own(t, i, split, row);
    const bits = routes.get(split.ref.owner)?.get(split.ref.id);
    if (!bits) throw new RangeError(`no route for ${split.ref.owner}'s split ${split.ref.id}`);
    return (bits[row >> 3]! & (1 << (row & 7))) !== 0;
  });
}

/** A host's side: for each asked split id, a bit per applicant, set when its split sends the applicant left. */
export async function hostScore(port: PeerPort, splits: readonly HostSplit[], bins: readonly Uint16Array[]): Promise<void> {
  const { rows, ids } = await port.receive(port.guest, 'boost.score_ask');
  const available = bins[0]?.length ?? 0;
  if (!Number.isInteger(rows) || rows !== available) {
    throw new FedcreditError(ErrorCode.PROTOCOL, `the guest asked routes for ${rows} applicants; this party holds ${available} in the batch`, 'align the batch again and score again');
  }
  const answer = ids.map((id) => {
    const split = splits[id];
    if (!split) throw new FedcreditError(ErrorCode.PROTOCOL, `the guest asked for split ${id}, which this party's model part does not have`, 'score with the model part of the same training job');
    const left = new Set(split.leftBins);
    const column = bins[split.feature]!;
    const bits = bitsFor(rows);
    for (let r = 0; r < rows; r++) if (left.has(column[r]!)) bits[r >> 3]! |= 1 << (r & 7);
    return bits;
  });
  await port.send(port.guest, 'boost.routes', answer);
}
