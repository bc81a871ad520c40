/** A vertical-boost job on the coordinator: BoostRun relays the parties' payloads and records each tree. */
import { BoostRun } from '../boost-run.js';
import type { CoordinatorKind } from './kind.js';

export const verticalBoost: CoordinatorKind<'vertical-boost'> = {
  start: (id, spec, submitter, ctx) => new BoostRun(id, spec, submitter, ctx),
  // The trees are grown in one step whose state only the guest holds: a restart loses it.
  resume: () => ({ reason: 'a vertical-boost job does not survive a restart of the coordinator (its trees are grown in one step); resubmit the job' }),
};
