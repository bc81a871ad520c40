/**
 * Every job kind, by name. The type requires one entry per kind of the job-file union (src/config/schemas.ts
 * `JobSpec`), so a kind added there and not here does not compile; coordinator/kinds/ and participant/kinds/ hold
 * the runners' halves under the same rule.
 */
import type { JobSpec } from '../config/schemas.js';
import { horizontal } from './horizontal.js';
import type { JobKind, JobKindName } from './kind.js';
import { verticalBoost } from './vertical-boost.js';
import { verticalLr } from './vertical-lr.js';
import { verticalScore } from './vertical-score.js';

const KINDS: { [K in JobKindName]: JobKind<K> } = {
  horizontal,
  'vertical-lr': verticalLr,
  'vertical-boost': verticalBoost,
  'vertical-score': verticalScore,
};

/** The kind of a parsed job file. */
export function kindOf(spec: JobSpec): JobKind {
  return KINDS[spec.kind] as JobKind;
}

/** The kind a ledger or a peer names, if this version knows it. */
export function jobKind(name: unknown): JobKind | undefined {
  return typeof name === 'string' && Object.hasOwn(KINDS, name) ? (KINDS[name as JobKindName] as JobKind) : undefined;
}
