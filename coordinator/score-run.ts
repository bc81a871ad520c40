/**
 * Scoring new enterprises with a trained vertical model (docs/protocol-vertical.md §5, docs/protocol-boost.md): the
 * guest's list of ids is aligned with each host by PSI (a host learns only which of the listed enterprises it holds);
 * with a linear model every host sends a pairwise-masked share of its partial scores and the guest adds its own part
 * and the calibration, with trees every host says which branch its splits send each enterprise. Scores stay with the
 * guest; the coordinator learns counts.
 */
import type { VerticalScoreSpec } from '../src/config/schemas.js';
import { ErrorCode, FedcreditError } from '../src/errors.js';
import { hex, sha256 } from '../src/bytes.js';
import type { JobContext } from './job-base.js';
import { VerticalBase, type VerticalResumePoint } from './vertical-run.js';
import { SCORING_STEP_REPORTS } from '../src/vertical/step-reports.js';
import { SCORED_KINDS } from '../src/jobs/vertical-score.js';

/** What the coordinator knows of the training job a scoring job names. */
export interface TrainedModel {
  kind: string;
  state: string;
  submitter: string;
  participants: string[];
  modelSha256: Uint8Array;
}

export class ScoreRun extends VerticalBase<typeof SCORING_STEP_REPORTS, VerticalScoreSpec> {
  protected readonly stepReports = SCORING_STEP_REPORTS;

  constructor(
    id: string,
    spec: VerticalScoreSpec,
    submitter: string,
    ctx: JobContext,
    private readonly model: TrainedModel | undefined,
    resume?: VerticalResumePoint,
  ) {
    super(id, spec, submitter, ctx, resume);
  }

  get rounds(): number {
    return 1;
  }

  protected get scheme(): 'none' {
    return 'none';
  }

  protected get timing() {
    return this.spec;
  }

  protected get partyFeatures(): null {
    return null;
  }

  async run(): Promise<void> {
    this.state = 'running';
    try {
      // The rest of the job file, so that a restarted coordinator can resume the job.
      const file = { ids_file: this.spec.ids_file, id_format: this.spec.id_format ?? null, step_timeout_s: this.spec.step_timeout_s, grace_period_s: this.spec.grace_period_s };
      if (!this.replay)
        await this.record('job_submitted', {
          name: this.spec.name,
          kind: this.spec.kind,
          purpose: this.spec.purpose,
          submitter: this.submitter,
          model_job: this.spec.model_job,
          guest: this.spec.guest,
          hosts: this.spec.hosts,
          ...file,
        });
      const m = this.model;
      const scored = SCORED_KINDS.join(' or ');
      if (!m || !(SCORED_KINDS as readonly string[]).includes(m.kind) || m.state !== 'succeeded') {
        throw new FedcreditError(
          ErrorCode.NOT_FOUND,
          m ? `job ${this.spec.model_job} is a ${m.kind} job in state ${m.state}, not a finished ${scored} job` : `this coordinator knows no job ${this.spec.model_job}`,
          `name a ${scored} job that succeeded on this coordinator (\`fedcredit job status <id>\`)`,
        );
      }
      if (m.participants.join(',') !== this.participants.join(',')) {
        throw new FedcreditError(
          ErrorCode.JOB_INVALID,
          `the scoring job names ${this.participants.join(', ')} but ${this.spec.model_job} was trained by ${m.participants.join(', ')}`,
          'name the same guest and hosts as the training job',
        );
      }
      if (this.replay) {
        // The parties hold the job in memory (the guest its list of ids, read and deleted at the offer).
        await this.awaitParties();
        await this.recordResumption();
      } else {
        await this.keys(await this.offer(JSON.stringify(this.spec)));
      }
      this.emit('psi', 'aligning the enterprises to score with each host (PSI)');
      await this.runStep('psi', 0, 0);
      this.emit('score', "computing the scores (each party its partial score; the hosts' shares masked)");
      const reports = await this.runStep('score', 0, 0);
      const guest = reports.get(this.spec.guest)!.report;
      // Each party's feature stability on the batch (aggregates it computed on its own features).
      const featurePsi = Object.fromEntries([...reports].map(([org, r]) => [org, r.report.feature_psi ?? null]));
      const report: Record<string, unknown> = { ...guest, feature_psi: featurePsi };
      const summary = Buffer.from(JSON.stringify({ jobId: this.id, model_job: this.spec.model_job, model_sha256: hex(m.modelSha256), ...report }, null, 2));
      this.modelSha256 = sha256(summary);
      this.artifact = summary;
      await this.record('scores_produced', { model_job: this.spec.model_job, model_sha256: hex(m.modelSha256), ...report });
      this.state = 'succeeded';
      this.roundsDone = 1;
      this.emit('done', `${String(report.scored)} of ${String(report.requested)} enterprises scored; the scores are with ${this.spec.guest}`);
      await this.recordForAll('job_ended', { state: 'succeeded', message: this.message });
      await this.broadcast({ body: 'jobEnded', jobEnded: { state: 'succeeded', message: 'scores produced', modelSha256: this.modelSha256 } });
    } catch (err) {
      await this.fail(err);
    } finally {
      this.endWatchers();
    }
  }
}
