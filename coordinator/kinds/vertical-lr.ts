/**
 * A vertical-lr job on the coordinator: VerticalRun, the arbiter; after a restart it reruns the interrupted step, or,
 * stopped before its keys were recorded in place, restarts its collective key's ceremony or sends its keys again.
 */
import { ceremonyRestarts, VerticalJobSpec } from '../../src/config/schemas.js';
import { VerticalRun } from '../vertical-run.js';
import type { CoordinatorKind } from './kind.js';
import { keysResumePoint, present, verticalResumePoint } from './vertical-resume.js';

export const verticalLr: CoordinatorKind<'vertical-lr'> = {
  start: (id, spec, submitter, ctx) => new VerticalRun(id, spec, submitter, ctx),
  resume({ id, submitter, file, features, entries }, { stateDir }) {
    const spec = VerticalJobSpec.parse(present({ ...file, features }));
    if (!entries.some((e) => e.entry.kind === 'keys_ready')) {
      const job = { id, parties: [spec.guest, ...spec.hosts], scheme: spec.encryption.scheme, bound: ceremonyRestarts({ encryption: spec.encryption }) };
      const keys = keysResumePoint(job, entries, stateDir);
      return 'reason' in keys ? keys : { start: (ctx) => new VerticalRun(id, spec, submitter, ctx, undefined, keys) };
    }
    const resume = verticalResumePoint(id, spec.encryption.scheme, entries, stateDir);
    return 'reason' in resume ? resume : { start: (ctx) => new VerticalRun(id, spec, submitter, ctx, resume) };
  },
};
