/** The coordinator's half of every job kind, by name (one per kind of src/jobs/registry.ts, or this does not compile). */
import type { JobSpec } from '../../src/config/schemas.js';
import type { JobKindName } from '../../src/jobs/kind.js';
import { horizontal } from './horizontal.js';
import type { CoordinatorKind } from './kind.js';
import { verticalBoost } from './vertical-boost.js';
import { verticalLr } from './vertical-lr.js';
import { verticalScore } from './vertical-score.js';

const KINDS: { [K in JobKindName]: CoordinatorKind<K> } = {
  horizontal,
  'vertical-lr': verticalLr,
  'vertical-boost': verticalBoost,
  'vertical-score': verticalScore,
};

export function coordinatorKindOf(spec: JobSpec): CoordinatorKind {
  return KINDS[spec.kind] as CoordinatorKind;
}

/** The kind a ledger names, if this version runs it. */
export function coordinatorKind(name: unknown): CoordinatorKind | undefined {
  return typeof name === 'string' && Object.hasOwn(KINDS, name) ? (KINDS[name as JobKindName] as CoordinatorKind) : undefined;
}
