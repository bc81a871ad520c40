/**
 * A vertical-lr job on the coordinator: VerticalRun, the arbiter; after a restart it reruns the interrupted step, or,
 * stopped during a collective key's ceremony, restarts the ceremony.
 */
import { ceremonyRestarts, VerticalJobSpec } from '../../src/config/schemas.js';
import { VerticalRun } from '../vertical-run.js';
import type { CoordinatorKind } from './kind.js';
import { ceremonyResumePoint } from './ceremony-resume.js';
import { present, verticalResumePoint } from './vertical-resume.js';

export const verticalLr: CoordinatorKind<'vertical-lr'> = {
  start: (id, spec, submitter, ctx) => new VerticalRun(id, spec, submitter, ctx),
  resume({ id, submitter, file, features, entries }, { stateDir }) {
    const spec = VerticalJobSpec.parse(present({ ...file, features }));
    if (spec.encryption.scheme === 'ckks-threshold' && !entries.some((e) => e.entry.kind === 'keys_ready')) {
      const parties = [spec.guest, ...spec.hosts];
      const ceremony = ceremonyResumePoint({ id, parties, shareholders: parties.length + 1, bound: ceremonyRestarts({ encryption: spec.encryption }) }, entries, stateDir);
      return 'reason' in ceremony ? ceremony : { start: (ctx) => new VerticalRun(id, spec, submitter, ctx, undefined, ceremony) };
    }
    const resume = verticalResumePoint(id, spec.encryption.scheme, entries, stateDir);
    return 'reason' in resume ? resume : { start: (ctx) => new VerticalRun(id, spec, submitter, ctx, resume) };
  },
};
