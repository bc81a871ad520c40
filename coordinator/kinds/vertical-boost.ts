/**
 * A vertical-boost job on the coordinator: BoostRun relays the parties' payloads and records each tree; after a
 * restart it reruns the interrupted step (the trees are grown in one step, so an interrupted boost step grows them
 * all again, at every party, from the seed).
 */
import { VerticalBoostSpec } from '../../src/config/schemas.js';
import { BoostRun } from '../boost-run.js';
import type { CoordinatorKind } from './kind.js';
import { present, verticalResumePoint } from './vertical-resume.js';

export const verticalBoost: CoordinatorKind<'vertical-boost'> = {
  start: (id, spec, submitter, ctx) => new BoostRun(id, spec, submitter, ctx),
  resume({ id, submitter, file, features, entries }, { stateDir }) {
    const spec = VerticalBoostSpec.parse(present({ ...file, features }));
    const resume = verticalResumePoint(id, 'none', entries, stateDir);
    return 'reason' in resume ? resume : { start: (ctx) => new BoostRun(id, spec, submitter, ctx, resume) };
  },
};
