/**
 * One vertical-boost job, driven by the coordinator (docs/protocol-boost.md): offer -> the job's box keys and PSI
 * salt -> PSI -> the trees -> every party's part committed -> evaluation on held-out enterprises -> a manifest.
 *
 * The coordinator is no arbiter here: the guest holds its own CKKS key for the gradients and hessians, and drives
 * the trees over the PeerPort in one step; the coordinator relays the parties' sealed payloads unread (recorded by
 * digest and size with the step) and records a `tree_built` entry per tree the guest grew (src/vertical/boost/record.ts:
 * its digest, whether the model keeps it, the validation AUC after it, its shape and the asks of each level).
 */
import { join } from 'node:path';
import type { VerticalBoostSpec } from '../src/config/schemas.js';
import { ErrorCode, FedcreditError } from '../src/errors.js';
import { sha256, hex } from '../src/bytes.js';
import { BOOST_STEP_REPORTS, TreeRecord } from '../src/vertical/step-reports.js';
import { packArtifact, writeArtifact } from '../src/model/artifact.js';
import { VerticalBase } from './vertical-run.js';

export class BoostRun extends VerticalBase<typeof BOOST_STEP_REPORTS, VerticalBoostSpec> {
  protected readonly stepReports = BOOST_STEP_REPORTS;

  get rounds(): number {
    return this.spec.boosting.trees;
  }

  protected get scheme(): 'none' {
    return 'none';
  }

  protected get timing() {
    return this.spec.training;
  }

  protected get partyFeatures() {
    return this.spec.features;
  }

  async run(): Promise<void> {
    this.state = 'running';
    try {
      if (this.replay) await this.rejoin();
      else await this.start();
      const psi = await this.align();
      const trees = await this.grow();
      const parts = await this.runStep('finalize', 0, 0);
      const evaluation = (await this.runStep('evaluate', 0, 0)).get(this.spec.guest)!.report;
      await this.publish(trees, parts, evaluation, psi);
    } catch (err) {
      await this.fail(err);
    } finally {
      this.endWatchers();
    }
  }

  /**
   * After a coordinator restart: the parties accepted the job and hold its box keys (the coordinator holds no CKKS
   * key here), so no offer and no keys; the completed steps are read back from the ledger, the interrupted one runs
   * again at every party.
   */
  private async rejoin(): Promise<void> {
    await this.awaitParties();
    await this.recordResumption();
  }

  /** A new job: recorded, offered to its parties, box keys and the PSI salt sent. */
  private async start(): Promise<void> {
    await this.recordSubmission(this.spec, {
      evaluation: this.spec.evaluation,
      binning: this.spec.binning,
      boosting: this.spec.boosting,
    });
    await this.keys(await this.offer(JSON.stringify(this.spec)));
  }

  /** The boost step: the guest grows the trees with the hosts; one ledger entry per tree it grew. */
  private async grow(): Promise<{ sha256: string; validation_auc: number | null }[]> {
    const b = this.spec.boosting;
    this.emit('training', `growing up to ${b.trees} trees of depth ${b.depth} (the guest's CKKS key; hosts return masked per-bin sums)`);
    const reports = await this.runStep('boost', 0, 0);
    const grown = reports.get(this.spec.guest)!.report.trees ?? [];
    const trees = grown.filter((t) => t.kept);
    if (trees.length === 0 || grown.length > b.trees || grown.some((t, i) => t.tree !== i)) {
      throw new FedcreditError(
        ErrorCode.PROTOCOL,
        `${this.spec.guest} reports ${grown.length} trees grown and ${trees.length} kept for a job of at most ${b.trees}`,
        'run the same fedcredit version at every party and restart the job',
      );
    }
    // Every tree grown, kept or not, with its shape and the asks of each level: the replay checks the schedule.
    for (const tree of grown) {
      // Once: a coordinator resumed after the boost step finds them in the ledger already.
      await this.recordOnce('tree_built', TreeRecord.parse(tree));
      this.roundsDone = tree.tree + 1;
    }
    const last = trees[trees.length - 1]!;
    this.emit('training', `${trees.length} of ${grown.length} trees kept (validation AUC ${Number(last.validation_auc).toFixed(4)})`);
    return trees;
  }

  private async publish(trees: { sha256: string }[], parts: Map<string, { report: { part_sha256: string } }>, evaluation: Record<string, unknown>, psi: Record<string, unknown>): Promise<void> {
    this.emit('publish', 'publishing the model manifest (each party keeps its own part)');
    const manifest = {
      format: 'fedcredit-vertical-boost/1',
      jobId: this.id,
      kind: this.spec.kind,
      guest: this.spec.guest,
      hosts: this.spec.hosts,
      trees: trees.map((t) => t.sha256),
      // Each party's commitment to its part: the parts themselves never leave their owners.
      parts: Object.fromEntries([...parts].map(([org, r]) => [org, { sha256: r.report.part_sha256 }])),
      intersection: psi.intersection,
      test: { rows: evaluation.rows, auc: evaluation.test_auc, ks: evaluation.test_ks, evaluation: evaluation.evaluation ?? null },
      createdAt: new Date().toISOString(),
    };
    const bytes = Buffer.from(JSON.stringify(manifest, null, 2));
    this.modelSha256 = sha256(bytes);
    await writeArtifact(join(this.stateDir, 'jobs', this.id, 'model'), { 'manifest.json': bytes });
    await this.record('model_published', { model_sha256: hex(this.modelSha256), trees: trees.length, parts: manifest.parts, test: manifest.test }, [{ name: 'manifest.json', bytes }]);
    this.artifact = packArtifact({ 'manifest.json': bytes });
    this.state = 'succeeded';
    this.emit('done', `model published: test AUC ${Number(evaluation.test_auc).toFixed(4)}, KS ${Number(evaluation.test_ks).toFixed(4)} on ${String(evaluation.rows)} held-out enterprises`);
    await this.recordForAll('job_ended', { state: 'succeeded', model_sha256: hex(this.modelSha256), rounds: trees.length, message: this.message });
    await this.broadcast({ body: 'jobEnded', jobEnded: { state: 'succeeded', message: 'model published', modelSha256: this.modelSha256 } });
  }
}
