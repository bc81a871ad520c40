/** A scoring job on the coordinator: ScoreRun, with the training job whose model it uses. */
import { VerticalScoreSpec } from '../../src/config/schemas.js';
import { ScoreRun } from '../score-run.js';
import type { CoordinatorKind } from './kind.js';
import { present, verticalResumePoint } from './vertical-resume.js';

export const verticalScore: CoordinatorKind<'vertical-score'> = {
  refuseSubmitter(spec, submitter, deps) {
    const model = deps.trainedModel(spec.model_job);
    if (!model || model.submitter === submitter || model.participants[0] === submitter) return undefined;
    return {
      details: `${submitter} may not score with job ${spec.model_job}'s model: a model is used only by the organisation that submitted its job or its guest (${model.participants[0]})`,
      fields: { submitter, modelJob: spec.model_job },
    };
  },
  start: (id, spec, submitter, ctx, deps) => new ScoreRun(id, spec, submitter, ctx, deps.trainedModel(spec.model_job)),
  resume({ id, submitter, file, entries }, { stateDir }) {
    if (file.ids_file === undefined) return { reason: 'a scoring job recorded by an older coordinator is not resumed; run `fedcredit score` again' };
    const spec = VerticalScoreSpec.parse(present(file));
    const resume = verticalResumePoint(id, 'none', entries, stateDir);
    return 'reason' in resume ? resume : { start: (ctx, deps) => new ScoreRun(id, spec, submitter, ctx, deps.trainedModel(spec.model_job), resume) };
  },
};
