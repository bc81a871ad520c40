/** A vertical-lr job on the coordinator: VerticalRun, the arbiter; after a restart it reruns the interrupted step. */
import { VerticalJobSpec } from '../../src/config/schemas.js';
import { VerticalRun } from '../vertical-run.js';
import type { CoordinatorKind } from './kind.js';
import { present, verticalResumePoint } from './vertical-resume.js';

export const verticalLr: CoordinatorKind<'vertical-lr'> = {
  start: (id, spec, submitter, ctx) => new VerticalRun(id, spec, submitter, ctx),
  resume({ id, submitter, file, features, entries }, { stateDir }) {
    const spec = VerticalJobSpec.parse(present({ ...file, features }));
    const resume = verticalResumePoint(id, spec.encryption.scheme, entries, stateDir);
    return 'reason' in resume ? resume : { start: (ctx) => new VerticalRun(id, spec, submitter, ctx, resume) };
  },
};
