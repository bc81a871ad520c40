/**
 * A participant's side of a vertical-boost job (docs/protocol-boost.md): the align step of vertical-lr, then the
 * trees (src/vertical/boost/: the guest grows them with its own CKKS key, a host answers its asks), the party's
 * model part kept in the job folder and committed to, and the guest's evaluation on the held-out enterprises, whose
 * hosts answer one scoring round. Party-to-party payloads are sealed to the recipient and relayed by the coordinator.
 *
 * The trees are grown in one step whose state lives in memory: a party that restarts mid-job cannot rejoin it.
 */
import type { VerticalBoostSpec } from '../src/config/schemas.js';
import { ErrorCode, FedcreditError } from '../src/errors.js';
import { evaluateCredit } from '../src/evaluation.js';
import { testScoresCsv } from '../src/credit/test-scores.js';
import type { ModelReportInput } from '../src/report/model-report.js';
import { CkksEngine } from '../src/he/engine.js';
import { VERTICAL_CKKS_PARAMS } from '../src/he/params.js';
import type { Logger } from '../src/log.js';
import type { JobBinding, KeyBinding } from '../src/crypto/key-binding.js';
import type { BoxKeyPair } from '../src/crypto/sealed-box.js';
import type { StepRequest } from '../src/wire/messages.js';
import type { Alignment } from '../src/vertical/party-model.js';
import type { PeerPort } from '../src/vertical/lr/port.js';
import { guestBoost } from '../src/vertical/boost/guest.js';
import { hostBoost } from '../src/vertical/boost/host.js';
import { guestScore, hostScore } from '../src/vertical/boost/score.js';
import { asksDigest, GuestAskLog, recordHostAsks } from '../src/vertical/boost/record.js';
import type { TreeRecord } from '../src/vertical/step-reports.js';
import { gbdtParams, jobRows, partDigest, treeFeatures, type BoostGuestPart, type BoostHostPart, type TreeFeatures } from '../src/vertical/boost/party.js';
import { guestFairness, hostSendsGroups } from '../src/vertical/lr/evaluate.js';
import { gainImportance, reasonFrequencies, type GbdtModel } from '../src/model/gbdt.js';
import { JOB_FILES, JobFolder } from './job-store.js';
import { PartyChannel, type PartyIo, type StepHandler } from './vertical-channel.js';
import { alignStep, readAlignment, writeAlignedIds, type PartyData } from './vertical-job.js';

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

/** What the model report shows of the trees: gain importance per feature and party, and the held-out enterprises' reason codes. */
function treeReport(model: GbdtModel, contributions: readonly Float64Array[], rows: number, count: number): Pick<ModelReportInput, 'importance' | 'reasons'> {
  const gain = gainImportance(model);
  const { first, any } = reasonFrequencies(model, contributions, rows, count);
  return {
    importance: model.features.map((f, j) => ({ feature: f.name, party: f.owner, gain: gain[j]! })),
    reasons: { count, rows, features: model.features.map((f, j) => ({ feature: f.name, party: f.owner, first: first[j]!, any: any[j]! })) },
  };
}

export class BoostParty implements StepHandler {
  readonly channel: PartyChannel;
  private readonly folder: JobFolder;
  private readonly log: Logger;
  private engine?: CkksEngine;
  private alignment?: Alignment;
  private binned?: TreeFeatures;
  private part?: BoostGuestPart | BoostHostPart;

  constructor(
    readonly id: string,
    readonly spec: VerticalBoostSpec,
    readonly org: string,
    private readonly source: PartyData,
    readonly features: string[],
    io: PartyIo,
    log: Logger,
    jobDir: string,
    /** As a host: the fewest rows of a node it answers for (consent.min_node_rows). */
    private readonly minNodeRows: number,
  ) {
    this.channel = new PartyChannel(id, org, spec.guest, io, log, spec.training.step_timeout_s * 1000, this);
    this.folder = new JobFolder(jobDir);
    this.log = log.child({ job: id });
  }

  set binding(binding: JobBinding | undefined) {
    this.channel.binding = binding;
  }

  get box(): BoxKeyPair {
    return this.channel.box;
  }

  boxKeyBinding(): KeyBinding | null {
    return this.channel.boxKeyBinding();
  }

  beginStep(_step: number, _retry: boolean, kind: string): void {
    if (kind !== 'psi' && !this.alignment) {
      this.alignment = readAlignment(this.folder);
      writeAlignedIds(this.folder, this.source.load().ids, this.alignment);
      this.folder.removePsi();
    }
  }

  stateDigest(): Uint8Array {
    return this.part ? Buffer.from(partDigest(this.part), 'hex') : new Uint8Array();
  }

  async execute(step: number, req: StepRequest): Promise<Record<string, unknown>> {
    if (req.step === 'psi') return alignStep(this.channel, this.folder, this.source, this.spec, this.log, step, req.attempt);
    const port = this.channel.port(step, req.attempt);
    switch (req.step) {
      case 'boost':
        return this.boost(port);
      case 'finalize':
        return this.finalize();
      case 'evaluate':
        return this.evaluate(port);
      default:
        throw new FedcreditError(
          ErrorCode.PROTOCOL,
          `the coordinator asked for a ${req.step} step, which a vertical-boost job does not have`,
          'run the same fedcredit version at the coordinator and every party',
        );
    }
  }

  private get aligned(): Alignment {
    if (!this.alignment) throw new FedcreditError(ErrorCode.PROTOCOL, 'a step of the trees was asked before the alignment', 'restart the job');
    return this.alignment;
  }

  /** The trees: every party bins its columns for them; the guest grows them, a host answers its asks. */
  private async boost(port: PeerPort): Promise<Record<string, unknown>> {
    const data = this.source.load();
    const a = this.aligned;
    const binned = treeFeatures(data, this.org, this.features, a, this.spec.binning, this.spec.boosting);
    this.binned = binned;
    const engine = (this.engine ??= await CkksEngine.create(VERTICAL_CKKS_PARAMS));
    if (this.channel.role === 'host') {
      // The asks as this host received them: its report lets an auditor check the guest's record of them.
      const view = recordHostAsks(port);
      const splits = await hostBoost(view.port, { engine, features: binned.info.map(({ owner: _, ...f }) => f), bins: binned.bins, minNodeRows: this.minNodeRows });
      this.part = { format: 'fedcredit-boost-host/1', binning: binned.binning, splits };
      return { features: binned.info.length, splits: splits.length, asks: view.asks.length, asks_sha256: asksDigest(view.asks) };
    }
    if (!data.y) throw new FedcreditError(ErrorCode.JOB_INVALID, `${this.org} is the job's guest but its data has no labels`, 'set data.label_column in its configuration');
    const { rows, train, valid } = jobRows(a);
    const labels = Float64Array.from(rows, (r) => data.y![r]!);
    const log = new GuestAskLog(port, binned.bins, Uint32Array.from([...train, ...valid]).sort());
    const trees: TreeRecord[] = [];
    const model = await guestBoost(log.port, { engine, features: binned.info, bins: binned.bins, labels, train, valid, params: gbdtParams(this.spec.boosting) }, (t, grown) => {
      trees.push(log.treeRecord(t, grown, port.hosts));
      this.log.info({ tree: t }, 'tree grown');
    });
    this.part = { format: 'fedcredit-boost-guest/1', model, binning: binned.binning };
    return { features: binned.info.length, trees: trees.map((t) => ({ ...t, kept: t.tree < model.trees.length })) };
  }

  /** The party's part, kept in its job folder (it never leaves this node); the report commits to it. */
  private finalize(): Record<string, unknown> {
    if (!this.part) throw new FedcreditError(ErrorCode.PROTOCOL, 'the parts were asked before the trees', 'restart the job');
    this.folder.write(JOB_FILES.modelPart, JSON.stringify(this.part, null, 2));
    this.log.info({ file: this.folder.path(JOB_FILES.modelPart) }, 'model part kept (it never leaves this node)');
    return { part_sha256: partDigest(this.part) };
  }

  /** The held-out enterprises scored in one round: the guest evaluates, a host answers the branches of its splits. */
  private async evaluate(port: PeerPort): Promise<Record<string, unknown>> {
    const binned = this.binned;
    const part = this.part;
    if (!binned || !part) throw new FedcreditError(ErrorCode.PROTOCOL, 'the evaluation was asked before the trees', 'restart the job');
    const { test } = jobRows(this.aligned);
    const batch = binned.bins.map((c) => Uint16Array.from(test, (r) => c[r]!));
    const data = this.source.load();
    const rows = this.aligned.test;
    if (part.format === 'fedcredit-boost-host/1') {
      await hostSendsGroups(port, this.spec.fairness, rows, data.groups);
      await hostScore(port, part.splits, batch);
      return { rows: test.length };
    }
    const scored = await guestScore(port, part.model, batch, test.length);
    const labels = Float64Array.from(rows, (r) => data.y![r]!);
    const pd = Array.from(scored.margin, sigmoid);
    // The guest's own record of the held-out scores and the aggregates of its report (`fedcredit report`).
    this.folder.write(JOB_FILES.testScores, testScoresCsv({ ids: Array.from(rows, (r) => data.ids[r]!), labels, scores: scored.margin, pd }));
    if (rows.length === 0) return { rows: 0, test_auc: null, test_ks: null };
    const cutoff = this.spec.evaluation.decline_cutoff;
    // Ranked on the margin: PDs of large margins round to the same float and would tie.
    const evaluation = evaluateCredit(labels, pd, cutoff, scored.margin);
    const fairness = await guestFairness(port, this.spec.fairness, { rows, groups: data.groups, labels, pd, logOdds: scored.margin, cutoff });
    const report: Omit<ModelReportInput, 'test'> = {
      job: { id: this.id, name: this.spec.name, purpose: this.spec.purpose, guest: this.org, hosts: [...port.hosts], finishedAt: new Date().toISOString() },
      evaluation,
      // One point per tree: the validation AUC after it.
      validationAuc: part.model.validationAuc.map((auc, t) => ({ epoch: t + 1, auc })),
      ...treeReport(part.model, scored.contributions, rows.length, this.spec.boosting.reason_codes),
      ...(fairness ? { fairness } : {}),
    };
    this.folder.write(JOB_FILES.modelReport, JSON.stringify(report, null, 2));
    return { rows: test.length, test_auc: evaluation.auc, test_ks: evaluation.ks, evaluation, ...(fairness ? { fairness } : {}) };
  }

  dispose(): void {
    this.engine?.dispose();
  }
}
