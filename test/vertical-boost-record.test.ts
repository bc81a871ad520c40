/**
 * The record of a vertical-boost job's trees (src/vertical/boost/record.ts), on the UCI hetero split in memory: what
 * the guest logs of every tree it grows (kept or dropped by early stopping, on its own features or with the host's)
 * is the protocol's schedule for the logged shape, the node rows add up, and the host's own digest of the asks it
 * answered is the digest of the asks the guest logged for it: what `fedcredit audit replay` relies on.
 */
import { describe, expect, it } from 'vitest';
import { BinningSpec, BoostingSpec } from '../src/config/schemas.js';
import { guestBoost } from '../src/vertical/boost/guest.js';
import { hostBoost } from '../src/vertical/boost/host.js';
import { gbdtParams, jobRows, treeFeatures } from '../src/vertical/boost/party.js';
import { asksDigest, GuestAskLog, loggedAsks, protocolLevels, recordHostAsks } from '../src/vertical/boost/record.js';
import { MemoryFederation } from '../src/vertical/lr/memory-port.js';
import { plaintextOpener } from '../src/vertical/lr/opener.js';
import type { TreeRecord } from '../src/vertical/step-reports.js';
import { UCI_GUEST_FEATURES, UCI_HOST_FEATURES, uciAligned, verticalEngines } from './helpers/vertical.js';

describe('the record of the trees', () => {
  const engines = verticalEngines();

  it("logs every grown tree's shape and asks as the protocol schedules them, and the host's view agrees", async () => {
    const { guest, host, alignment } = await uciAligned(2000);
    const binning = BinningSpec.parse({ fine_bins: 8 });
    // A steep learning rate and a short patience, so that early stopping drops trees; the first tree on the guest's features only.
    const boosting = BoostingSpec.parse({ trees: 8, depth: 3, learning_rate: 1, early_stopping_patience: 2, guest_only_trees: 1 });
    const { rows, train, valid } = jobRows(alignment);
    const labels = Float64Array.from(rows, (r) => guest.y![r]!);
    const mine = treeFeatures(guest, 'bank', UCI_GUEST_FEATURES, alignment, binning, boosting);
    const theirs = treeFeatures(host, 'tax-bureau', UCI_HOST_FEATURES, alignment, binning, boosting);
    const fed = new MemoryFederation('bank', ['tax-bureau'], plaintextOpener, 600_000);
    try {
      const log = new GuestAskLog(fed.port('bank', 0), mine.bins, Uint32Array.from([...train, ...valid]).sort());
      const view = recordHostAsks(fed.port('tax-bureau', 0));
      const grown: TreeRecord[] = [];
      const [model] = await Promise.all([
        guestBoost(log.port, { engine: engines.guest, features: mine.info, bins: mine.bins, labels, train, valid, params: gbdtParams(boosting) }, (t, m) => {
          grown.push(log.treeRecord(t, m, ['tax-bureau']));
        }),
        hostBoost(view.port, { engine: engines.host, features: theirs.info.map(({ owner: _, ...f }) => f), bins: theirs.bins, minNodeRows: 20 }),
      ]);
      const trees = grown.map((t) => ({ ...t, kept: t.tree < model.trees.length }));
      console.log(`record: ${trees.length} trees grown, ${model.trees.length} kept; validation AUC ${trees.map((t) => t.validation_auc?.toFixed(4)).join(' ')}`);
      expect(trees.map((t) => t.tree)).toEqual(trees.map((_, i) => i));
      expect(model.trees.length).toBeGreaterThan(0);
      for (const t of trees) {
        expect(t.nodes[0]!.rows).toBe(train.length + valid.length);
        for (const n of t.nodes) if (n.owner) expect(t.nodes[n.left!]!.rows + t.nodes[n.right!]!.rows).toBe(n.rows);
        // The guest's logged asks are the schedule the replay derives from the logged shape.
        expect(t.levels).toEqual(protocolLevels(t.nodes, ['tax-bureau'], boosting.depth, t.tree < boosting.guest_only_trees));
      }
      // The guest-only tree asked the host nothing and is split by the guest alone; later trees asked the host.
      expect(trees[0]!.levels.every((l) => Object.keys(l.histograms).length === 0 && Object.keys(l.splits).length === 0)).toBe(true);
      expect(trees[0]!.nodes.every((n) => n.owner === undefined || n.owner === 'bank')).toBe(true);
      expect(trees[1]!.levels[0]!.histograms).toEqual({ 'tax-bureau': [0] });
      expect(trees.some((t) => t.nodes.some((n) => n.owner === 'tax-bureau'))).toBe(true);
      // What the host saw is what the guest logged for it, to the digest.
      const asks = loggedAsks(trees, 'tax-bureau');
      expect(view.asks).toEqual(asks);
      expect(asksDigest(view.asks)).toBe(asksDigest(asks));
    } finally {
      fed.dispose();
    }
  }, 900_000);
});
