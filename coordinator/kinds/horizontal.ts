/**
 * A horizontal job on the coordinator: JobRun; after a restart it continues from the round after the last closed one,
 * or, stopped during a collective key's ceremony, restarts the ceremony.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ceremonyRestarts, HorizontalJobSpec } from '../../src/config/schemas.js';
import { toFloat32 } from '../../src/fl/vector-codec.js';
import { selectRound } from '../../src/fl/fedavg.js';
import type { Preprocessing } from '../../src/model/preprocess.js';
import { JobRun } from '../job-run.js';
import type { CoordinatorKind } from './kind.js';
import { ceremonyResumePoint } from './ceremony-resume.js';
import { hex } from '../../src/bytes.js';

export const horizontal: CoordinatorKind<'horizontal'> = {
  start: (id, spec, submitter, ctx) => new JobRun(id, spec, submitter, ctx),
  resume({ id, submitter, file, features, entries: list }, { ledgerDir, stateDir }) {
    const spec = HorizontalJobSpec.parse({ ...file, ...(features ? { features } : {}) });
    const prep = list.find((e) => e.entry.kind === 'preprocessing_ready')?.body as Preprocessing | undefined;
    // Stopped during a collective key's ceremony: the ceremony starts again (nothing is encrypted under a key before it is in place).
    if (!prep && spec.encryption.scheme === 'ckks-threshold') {
      const parties = spec.participants;
      const ceremony = ceremonyResumePoint({ id, parties, shareholders: parties.length, bound: ceremonyRestarts(spec) }, list, stateDir);
      return 'reason' in ceremony ? ceremony : { start: (ctx) => new JobRun(id, spec, submitter, ctx, undefined, ceremony) };
    }
    if (!prep) return { reason: 'the coordinator restarted before the job had its keys and feature statistics; resubmit the job' };
    const rounds = list.filter((e) => e.entry.kind === 'round_closed');
    const closed = rounds.at(-1);
    const modelOf = (e: (typeof rounds)[number] | undefined) => {
      const ref = e?.entry.blobs.find((b) => b.name === 'model');
      return ref ? toFloat32(readFileSync(join(ledgerDir, 'blobs', hex(ref.sha256)))) : undefined;
    };
    const history = rounds.map((e) => {
      const b = e.body as { round: number; validation_auc: number | null };
      return { round: b.round, validationAuc: b.validation_auc };
    });
    const chosen = selectRound(history, spec.training.model_selection);
    const resume = {
      // A binned job's preprocessing carries the bins and WOE every participant transforms its rows with.
      preprocessing: {
        features: prep.features,
        mean: prep.mean,
        scale: prep.scale,
        bins: prep.bins ?? [],
        clipLow: (prep as { clip_low?: number[] }).clip_low ?? [],
        clipHigh: (prep as { clip_high?: number[] }).clip_high ?? [],
      },
      roundsDone: closed ? (closed.body as { round: number }).round : 0,
      weights: modelOf(closed),
      history,
      selected: modelOf(rounds.find((e) => (e.body as { round: number }).round === chosen)),
    };
    return { start: (ctx) => new JobRun(id, spec, submitter, ctx, resume) };
  },
};
