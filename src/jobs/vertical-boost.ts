/** Vertical gradient-boosted trees: different features of the same enterprises, aligned by PSI (docs/protocol-boost.md). */
import { VerticalBoostSpec } from '../config/schemas.js';
import { replayBoostJob } from '../audit/replay-boost.js';
import { binningRefusal, columnRefusal, fairnessRefusal, roundsRefusal } from './consent.js';
import type { DataOwner, JobKind, Refusal } from './kind.js';

/** The owner's columns the job uses. */
const columns = (spec: VerticalBoostSpec, owner: DataOwner): string[] => spec.features?.[owner.org] ?? owner.offered;

/**
 * A host answers no node smaller than consent.min_node_rows (src/vertical/boost/host.ts); a child of hessian sum w
 * holds at least w / m rows, m the largest hessian of a row (¼, times (1 − top_rate) / other_rate under GOSS, which
 * weighs its drawn rows up), so a job whose min_child_weight allows smaller children would fail at that host
 * mid-training: it is refused at the offer instead.
 */
function nodeFloorRefusal(spec: VerticalBoostSpec, owner: DataOwner): Refusal | undefined {
  const floor = owner.consent.min_node_rows;
  const { goss, min_child_weight } = spec.boosting;
  const rowHessian = 0.25 * (goss ? Math.max(1, (1 - goss.top_rate) / goss.other_rate) : 1);
  const smallest = Math.ceil(min_child_weight / rowHessian);
  if (owner.org === spec.guest || smallest >= floor) return undefined;
  return [
    'consent.min_node_rows',
    `the job's boosting.min_child_weight (${min_child_weight}) allows tree nodes of ${smallest} rows${goss ? ' (GOSS weighs a drawn row up to a hessian of ' + rowHessian + ')' : ''}; ${owner.org} answers only for nodes of at least ${floor} rows (set min_child_weight to at least ${floor * rowHessian}, or the data owner lowers consent.min_node_rows)`,
  ];
}

export const verticalBoost: JobKind<'vertical-boost'> = {
  name: 'vertical-boost',
  schema: VerticalBoostSpec,
  parties: (spec) => [spec.guest, ...spec.hosts],
  consentKind: 'vertical-boost',
  policy: {
    columns,
    refusal(spec, owner) {
      const features = columns(spec, owner);
      const category = features.find((f) => f in spec.boosting.monotone && f in owner.levels);
      return (
        roundsRefusal(spec.boosting.trees, 'trees', owner) ??
        columnRefusal(features, owner) ??
        binningRefusal(spec.binning, features, owner) ??
        nodeFloorRefusal(spec, owner) ??
        fairnessRefusal(spec.fairness, owner) ??
        (category ? ['boosting.monotone', `the job constrains ${category}, a category of ${owner.org}: its levels have no order (remove boosting.monotone.${category})`] : undefined)
      );
    },
  },
  finished: {
    plannedUnits(submitted) {
      const trees = (submitted.boosting as Record<string, unknown> | undefined)?.trees;
      return typeof trees === 'number' && Number.isFinite(trees) ? trees : Number.NaN;
    },
    producesModel: true,
  },
  audit: { replay: replayBoostJob },
};
