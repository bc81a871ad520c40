/**
 * A vertical-boost job's parties on the UCI hetero split (../shared/datasets), in memory, after their alignment: each
 * party bins its own columns for the trees from the job's binning and boosting sections, the guest and the host
 * boost over the in-memory port, and the federated model equals the central GBDT on the same aligned rows and bins.
 */
import { describe, expect, it } from 'vitest';
import { BinningSpec, BoostingSpec } from '../src/config/schemas.js';
import { auc } from '../src/metrics.js';
import { boost, localOracle, predictMargin, type GbdtModel } from '../src/model/gbdt.js';
import { guestBoost } from '../src/vertical/boost/guest.js';
import { hostBoost } from '../src/vertical/boost/host.js';
import { gbdtParams, jobRows, partDigest, scoringBins, treeDigest, treeFeatures } from '../src/vertical/boost/party.js';
import type { LoadedDataset } from '../src/data/csv.js';
import { guestScore, hostScore } from '../src/vertical/boost/score.js';
import { MemoryFederation } from '../src/vertical/lr/memory-port.js';
import { plaintextOpener } from '../src/vertical/lr/opener.js';
import { UCI_GUEST_FEATURES, UCI_HOST_FEATURES, uciAligned, verticalEngines } from './helpers/vertical.js';

describe('vertical-boost parties on the UCI hetero split', () => {
  const engines = verticalEngines();

  it('bins from the job file, boosts over the port and equals the central GBDT on the same aligned rows', async () => {
    const { guest, host, alignment } = await uciAligned(3000);
    const binning = BinningSpec.parse({ fine_bins: 16 });
    const boosting = BoostingSpec.parse({ trees: 4, depth: 3, learning_rate: 0.3, early_stopping_patience: 0, monotone: { x3: 'increasing' }, goss: {} });
    const params = gbdtParams(boosting);
    expect(params.goss).toEqual({ topRate: 0.2, otherRate: 0.1 });
    const { rows, train, valid, test } = jobRows(alignment);
    const labels = Float64Array.from(rows, (r) => guest.y![r]!);
    const mine = treeFeatures(guest, 'bank', UCI_GUEST_FEATURES, alignment, binning, boosting);
    const theirs = treeFeatures(host, 'tax-bureau', UCI_HOST_FEATURES, alignment, binning, boosting);
    expect(mine.info.find((f) => f.name === 'x3')?.monotone).toBe(1);
    // Validation and test rows are binned with the training rows' edges only.
    expect(mine.bins[0]).toHaveLength(rows.length);

    const central = await boost(localOracle([...mine.info, ...theirs.info], [...mine.bins, ...theirs.bins]), { labels, train, valid }, params);
    const fed = new MemoryFederation('bank', ['tax-bureau'], plaintextOpener, 600_000);
    try {
      const digests: string[] = [];
      const [model, splits] = await Promise.all([
        guestBoost(fed.port('bank', 0), { engine: engines.guest, features: mine.info, bins: mine.bins, labels, train, valid, params }, (t: number, m: GbdtModel) => {
          digests[t] = treeDigest(m.trees[t]!);
        }),
        hostBoost(fed.port('tax-bureau', 0), { engine: engines.host, features: theirs.info.map(({ owner: _, ...f }) => f), bins: theirs.bins }),
      ]);
      // One ledger digest per tree, from the guest's view: a host split is its owner and id, never its bins.
      expect(digests).toEqual(model.trees.map(treeDigest));
      expect(new Set(digests).size).toBe(model.trees.length);
      const hostNodes = model.trees.flatMap((t) => t.nodes.filter((n) => n.kind === 'split' && 'owner' in n.ref));
      expect(hostNodes.length).toBeGreaterThan(0);
      for (const n of hostNodes) expect(n.kind === 'split' && n.ref).not.toHaveProperty('leftBins');
      expect(splits.length).toBeGreaterThan(0);
      const hostPart = { format: 'fedcredit-boost-host/1' as const, binning: theirs.binning, splits };
      expect(partDigest(hostPart)).toMatch(/^[0-9a-f]{64}$/);
      expect(partDigest({ ...hostPart, splits: splits.slice(1) })).not.toBe(partDigest(hostPart));

      // The guest scores the held-out rows in one round; the AUC is the central model's on the same rows.
      const batch = (columns: Uint16Array[]) => columns.map((c) => Uint16Array.from(test, (r) => c[r]!));
      const [scored] = await Promise.all([guestScore(fed.port('bank', 1), model, batch(mine.bins), test.length), hostScore(fed.port('tax-bureau', 1), splits, batch(theirs.bins))]);
      const testLabels = Float64Array.from(test, (r) => labels[r]!);
      const federatedAuc = auc(testLabels, scored.margin);
      const centralAuc = auc(testLabels, predictMargin(central, batch([...mine.bins, ...theirs.bins]), test.length));
      expect(federatedAuc).toBeGreaterThan(0.72);
      expect(Math.abs(federatedAuc - centralAuc)).toBeLessThanOrEqual(0.002);
    } finally {
      fed.dispose();
    }
  }, 600_000);

  it('refuses a monotone constraint on a category, naming the feature and the fix', async () => {
    const { guest, alignment } = await uciAligned(300);
    const levels = { ...guest, levels: { x1: ['a', 'b'] } };
    const boosting = BoostingSpec.parse({ monotone: { x1: 'decreasing' } });
    expect(() => treeFeatures(levels, 'bank', ['x1'], alignment, BinningSpec.parse({}), boosting)).toThrow(/boosting\.monotone names x1, a category of bank/);
  });

  it('bins a scoring batch as training did: a category by its level (whatever order the file lists them in now), an unseen level and an enterprise not held in the missing bin', () => {
    const train = { train: Uint32Array.of(0, 1, 2, 3), validation: new Uint32Array(0), test: new Uint32Array(0) };
    // Training: x0 numeric, x1 a category whose file listed a, b, c (codes 0, 1, 2).
    const trained = {
      ids: ['e0', 'e1', 'e2', 'e3'],
      features: ['x0', 'x1'],
      x: Float32Array.of(1, 0, 2, 1, 3, 2, 4, 0),
      groups: {},
      levels: { x1: ['a', 'b', 'c'] },
      rows: 4,
    } as unknown as LoadedDataset;
    const { binning, bins } = treeFeatures(trained, 'bank', ['x0', 'x1'], train, BinningSpec.parse({ fine_bins: 4 }), BoostingSpec.parse({}));
    expect(binning[1]!.levels).toEqual(['a', 'b', 'c']);
    expect(binning[1]!.trainCounts).toEqual([2, 1, 1, 0]);
    // Today the file lists c, d, a, b: the same levels must land in the same bins, d (unseen) and a row not held in the missing bin.
    const today = {
      ids: ['n0', 'n1', 'n2', 'n3'],
      features: ['x0', 'x1'],
      x: Float32Array.of(2, 0, 3, 1, 1, 2, Number.NaN, 3),
      groups: {},
      levels: { x1: ['c', 'd', 'a', 'b'] },
      rows: 4,
    } as unknown as LoadedDataset;
    const scored = scoringBins(today, binning, [0, 1, 2, 3, -1]);
    expect(Array.from(scored[1]!)).toEqual([2, 3, 0, 1, 3]);
    const missing = binning[0]!.trainCounts.length - 1;
    expect(Array.from(scored[0]!)).toEqual([bins[0]![1]!, bins[0]![2]!, bins[0]![0]!, missing, missing]);
  });

  it('rejects more guest-only trees than trees in the job file', () => {
    expect(BoostingSpec.safeParse({ trees: 3, guest_only_trees: 4 }).success).toBe(false);
  });

  it('rejects GOSS together with row subsampling, and GOSS shares that add up to more than every row', () => {
    const both = BoostingSpec.safeParse({ subsample: 0.8, goss: {} });
    expect(both.error?.issues[0]?.message).toBe("goss chooses each tree's rows itself; remove subsample (0.8) or goss");
    const over = BoostingSpec.safeParse({ goss: { top_rate: 0.7, other_rate: 0.4 } });
    expect(over.error?.issues[0]?.message).toBe('top_rate + other_rate must be at most 1 (they are shares of the training rows)');
  });
});
