/** The participant's half of every job kind, by name (one per kind of src/jobs/registry.ts, or this does not compile). */
import type { JobSpec } from '../../src/config/schemas.js';
import type { JobKindName } from '../../src/jobs/kind.js';
import { horizontal } from './horizontal.js';
import type { ParticipantKind } from './kind.js';
import { verticalBoost } from './vertical-boost.js';
import { verticalLr } from './vertical-lr.js';
import { verticalScore } from './vertical-score.js';

const KINDS: { [K in JobKindName]: ParticipantKind<K> } = {
  horizontal,
  'vertical-lr': verticalLr,
  'vertical-boost': verticalBoost,
  'vertical-score': verticalScore,
};

export function participantKindOf(spec: JobSpec): ParticipantKind {
  return KINDS[spec.kind] as ParticipantKind;
}
