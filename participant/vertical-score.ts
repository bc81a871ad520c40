/**
 * A participant's side of a scoring job (docs/protocol-vertical.md §5): it scores with the model part it kept
 * from the training job. The guest reads the ids to score from its own score-requests folder, aligns them with
 * each host by PSI, receives the hosts' masked partial-score shares and writes the probabilities of default to
 * its job folder; nothing of it leaves the guest.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { BoostingSpec, type VerticalScoreSpec } from '../src/config/schemas.js';
import type { LoadedDataset } from '../src/data/csv.js';
import { ErrorCode, errorMessage, FedcreditError } from '../src/errors.js';
import type { Logger } from '../src/log.js';
import { prepareIds, type IdFormat } from '../src/psi/ids.js';
import { scoringSalt } from '../src/psi/scoring.js';
import { guestScoringAlign, hostScoringAlign } from '../src/vertical/lr/align.js';
import { partScores, type ModelPart } from '../src/vertical/party-model.js';
import { populationStabilityIndex, psiFromCounts } from '../src/evaluation.js';
import { layoutBinCount, layoutBinIndex, type BinLayout } from '../src/credit/bin-layout.js';
import { cellValue } from '../src/credit/bin-layout.js';
import { readTestScores } from '../src/credit/test-scores.js';
import { assembleScorecard, reasonCodes, reasonText, scoreRecord, type Scorecard, type ScorecardPart, type ScoredPoints } from '../src/credit/scorecard.js';
import type { StepRequest } from '../src/wire/messages.js';
import type { PeerPort } from '../src/vertical/lr/port.js';
import { reasonCodes as treeReasonCodes } from '../src/model/gbdt.js';
import { guestScore, hostScore } from '../src/vertical/boost/score.js';
import { binTotals, scoringBins, type BoostGuestPart, type BoostHostPart } from '../src/vertical/boost/party.js';
import { BATCH_REPORT_FILE, SCORECARD_FILE, TEST_SCORES_FILE, type BatchReport } from '../src/paths.js';
import type { ScoringQuota } from './scoring-quota.js';
import { PartyChannel, type PartyIo, type StepHandler } from './vertical-channel.js';
import { JobFolder, readJobFile } from './job-store.js';
import type { JobBinding, KeyBinding } from '../src/crypto/key-binding.js';
import type { BoxKeyPair } from '../src/crypto/sealed-box.js';

/**
 * Read an id list: one id per line (the first field of each). A header row is skipped: `id`, `enterprise_id`, or a
 * row naming `idColumn` (the guest's data.id_column), whose column then holds the ids, so an extract of the guest's
 * own file (`app_id,name,...`) serves as it is.
 */
export function readIdList(file: string, idColumn?: string): string[] {
  let rows: string[][];
  try {
    rows = (parse(readFileSync(file, 'utf8'), { bom: true, relax_column_count: true, skip_empty_lines: true, trim: true }) as string[][]).filter((r) => r.some((c) => c.length > 0));
  } catch (err) {
    throw new FedcreditError(
      ErrorCode.DATA_REJECTED,
      `cannot read the id list ${file}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`,
      'give a CSV file of ids, one per line (a header row naming the id column is skipped)',
    );
  }
  const header = rows[0]?.map((c) => c.toLowerCase()) ?? [];
  let column = 0;
  if (idColumn !== undefined && header.includes(idColumn.toLowerCase())) column = header.indexOf(idColumn.toLowerCase());
  else if (!/^(enterprise_)?id$/.test(header[0] ?? '')) return rows.map((r) => r[0]!).filter((id) => id.length > 0);
  return rows
    .slice(1)
    .map((r) => r[column] ?? '')
    .filter((id) => id.length > 0);
}

/**
 * The guest's list of ids to score: it scores only a request its owner left in its score-requests folder
 * (`fedcredit score` writes it there, and the job deletes it once read), so a scoring job it did not ask for, or
 * one asked again, is refused before its data, its quota or a key is touched.
 */
export function requestedIdList(requestsDir: string, spec: Pick<VerticalScoreSpec, 'ids_file'>, org: string): string {
  const file = join(requestsDir, spec.ids_file);
  if (!existsSync(file))
    throw new FedcreditError(
      ErrorCode.JOB_REFUSED,
      `${org} scores only ids its owner listed in its score-requests folder, and no list ${spec.ids_file} is there: ${org} did not ask for this scoring job (or an earlier job read the list)`,
      "score with `fedcredit score` on the guest's node, which writes the list there (pass --config with this participant's config) and submits the job",
    );
  return file;
}

/**
 * The id format a scoring job aligns with: the model job's `alignment.id_format`, as this node kept it in the model
 * job's folder. A scoring job that names another format is refused: its ids would not match the training's.
 */
export function modelIdFormat(modelDir: string, spec: Pick<VerticalScoreSpec, 'model_job' | 'id_format'>, job = readJobFile(modelDir)): IdFormat {
  const trained = (job?.spec as { alignment?: { id_format?: IdFormat } } | undefined)?.alignment?.id_format;
  const format = trained ?? spec.id_format ?? 'uscc';
  if (spec.id_format && spec.id_format !== format) {
    throw new FedcreditError(
      ErrorCode.JOB_INVALID,
      `the scoring job asks for id_format ${spec.id_format} but the model's job ${spec.model_job} aligned its ids as ${format}`,
      `leave id_format (--id-format) out of the scoring job (\`fedcredit score\` takes the model's), or give ${format}`,
    );
  }
  return format;
}

/**
 * Refuses a guest's linear model part whose calibration cannot give PDs: a slope that is not a positive finite
 * number (a fit that diverged, as fedcredit's before the line search could at a high learning rate) would reverse or
 * saturate them. `part` is the parsed model-part.json.
 */
export function checkPartCalibration(part: { format: string; role?: string; calibration?: { a: number; b: number } }, modelJob: string, org: string): void {
  if (part.format !== 'fedcredit-vertical-part/1' || part.role !== 'guest') return;
  const c = part.calibration;
  if (c && c.a > 0 && Number.isFinite(c.a) && Number.isFinite(c.b)) return;
  throw new FedcreditError(
    ErrorCode.JOB_INVALID,
    `job ${modelJob}'s model part at ${org} holds the calibration ${c ? `a = ${c.a}, b = ${c.b}` : 'none'}: its PDs would be reversed or all 0 or 1 (a calibration fit that diverged; so were its published test AUC and KS)`,
    'train the model again with this version of fedcredit (its calibration fit converges, or says why it could not)',
  );
}

type Reason = ScoredPoints['points'][number];

/** Rows per bin of a layout; a level unseen in training is in no bin and not counted (its share shows as drift
 * of the others). */
function layoutTotals(values: (number | string | undefined)[], layout: BinLayout): number[] {
  const totals = new Array<number>(layoutBinCount(layout)).fill(0);
  for (const v of values) {
    const b = layoutBinIndex(v, layout);
    if (b >= 0) totals[b]!++;
  }
  return totals;
}

/** The part a party kept from the training job: a vertical-lr job's weights, or a vertical-boost job's trees (the
 * guest) or splits (a host). */
type KeptPart = ModelPart | BoostGuestPart | BoostHostPart;

export class ScoringParty implements StepHandler {
  /** The job's step runner and messaging: payloads sealed to peers, relayed by the coordinator. */
  readonly channel: PartyChannel;
  private readonly kept: KeptPart;
  /** With a scorecard: this party's features only, and (guest) the base points. */
  private readonly card?: { part: Scorecard; reasonCodes: number };
  /** Guest: the requested ids it can score (valid and in its data, normalised, in request order) and their rows. */
  private queries: { ids: string[]; rows: Int32Array } = { ids: [], rows: new Int32Array(0) };
  private readonly requested: number;
  private readonly invalid: number;
  private notInGuestData = 0;
  private aligned?: Int32Array;
  private coverage: { host: string; match: Int32Array }[] = [];
  /** The data owner's caps on scoring (consent.scoring), set by the node before the job is accepted. */
  quota?: ScoringQuota;

  /** Set by the node before the job is accepted (src/crypto/key-binding.ts); absent with --insecure. */
  set binding(binding: JobBinding | undefined) {
    this.channel.binding = binding;
  }

  get box(): BoxKeyPair {
    return this.channel.box;
  }

  get role(): 'guest' | 'host' {
    return this.channel.role;
  }

  /** This party's signed statement that its per-job box key is its own, for its JobAccepted. */
  boxKeyBinding(): KeyBinding | null {
    return this.channel.boxKeyBinding();
  }
  /** The model job's id format: the ids are aligned as they were in training. */
  private readonly idFormat: IdFormat;
  /** The job's folder on this node: the guest's prepared ids for the PSI. */
  private readonly folder: JobFolder;

  constructor(
    readonly id: string,
    readonly spec: VerticalScoreSpec,
    readonly org: string,
    private readonly data: LoadedDataset,
    io: PartyIo,
    private readonly log: Logger,
    private readonly jobDir: string,
    private readonly modelDir: string,
    /** The guest's list of ids to score, found at the offer (requestedIdList); a host has none. */
    idsFile: string | undefined,
  ) {
    this.channel = new PartyChannel(id, org, spec.guest, io, log, spec.step_timeout_s * 1000, this);
    this.folder = new JobFolder(jobDir);
    const partFile = join(modelDir, 'model-part.json');
    if (!existsSync(partFile)) {
      throw new FedcreditError(
        ErrorCode.NOT_FOUND,
        `${org} holds no model part of job ${spec.model_job}`,
        'score with a vertical-lr or vertical-boost job this participant took part in and that succeeded',
      );
    }
    this.kept = JSON.parse(readFileSync(partFile, 'utf8')) as KeptPart;
    checkPartCalibration(this.kept, spec.model_job, org);
    const columns = this.kept.format === 'fedcredit-vertical-part/1' ? this.kept.features : this.kept.binning.map((b) => b.name);
    const missing = columns.filter((f) => !data.features.includes(f));
    if (missing.length > 0)
      throw new FedcreditError(ErrorCode.DATA_SCHEMA, `the model part uses columns this participant no longer declares: ${missing.join(', ')}`, 'restore the columns in the data section');
    this.idFormat = modelIdFormat(modelDir, spec);
    const cardFile = join(modelDir, 'scorecard-part.json');
    if (existsSync(cardFile)) {
      const kept = JSON.parse(readFileSync(cardFile, 'utf8')) as ScorecardPart;
      const fullFile = join(modelDir, SCORECARD_FILE);
      if (this.linear.role === 'guest' && !existsSync(fullFile)) {
        throw new FedcreditError(ErrorCode.NOT_FOUND, `${fullFile} is missing: the training job's scorecard is not where the bank kept it`, 'restore the job folder from backup, or retrain the model');
      }
      const full = this.linear.role === 'guest' ? (JSON.parse(readFileSync(fullFile, 'utf8')) as Scorecard) : undefined;
      const scaling = full?.scaling ?? { baseScore: 0, baseOdds: 1, pdo: 1, decimals: 10 };
      this.card = { part: assembleScorecard(scaling, full?.basePoints ?? 0, kept.features), reasonCodes: kept.reasonCodes };
    }
    if (this.channel.role === 'host') {
      this.requested = this.invalid = 0;
      return;
    }
    if (!idsFile) throw new FedcreditError(ErrorCode.PROTOCOL, `${org} is the guest of scoring job ${id} but holds no list of ids to score`, "score with `fedcredit score` on the guest's node");
    const raw = readIdList(idsFile);
    const own = prepareIds(data.ids, this.idFormat);
    const queries = prepareIds(raw, this.idFormat);
    const rowOf = new Map(own.ids.map((v, i) => [v, own.rows[i]!]));
    const inData = queries.ids.filter((v) => rowOf.has(v));
    this.requested = raw.length;
    this.invalid = queries.invalid.count;
    this.notInGuestData = queries.ids.length - inData.length;
    this.queries = { ids: inData, rows: Int32Array.from(inData, (v) => rowOf.get(v)!) };
    // The request file held ids of the bank's applicants: once read, it is not kept around.
    rmSync(idsFile, { force: true });
  }

  /** PSI of this batch's scores against the held-out scores the guest kept from the training job; null without them. */
  private stabilityAgainstTest(scores: Float64Array): number | null {
    const file = join(this.modelDir, TEST_SCORES_FILE);
    if (scores.length === 0 || !existsSync(file)) return null;
    let reference: number[];
    try {
      reference = readTestScores(file).scores;
    } catch (err) {
      // The score PSI is a figure of the batch report, not the scores: a held-out file it cannot read costs only it.
      this.log.warn({ job: this.id, file, err: errorMessage(err) }, 'the held-out scores cannot be read; the batch report gives no score PSI');
      return null;
    }
    return reference.length >= 10 ? populationStabilityIndex(reference, scores) : null;
  }

  /** Per row, this party's points (base points included at the guest) and its k main reasons; row -1 = every feature missing. */
  private points(rows: ArrayLike<number>): { total: Float64Array; reasons: Reason[][] } {
    const { part, reasonCodes: k } = this.card!;
    const idx = part.features.map((f) => this.data.features.indexOf(f.feature));
    const width = this.data.features.length;
    const total = new Float64Array(rows.length);
    const reasons: Reason[][] = [];
    const allFeatures = new Set(part.features.map((f) => f.feature));
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!;
      // An enterprise this party does not hold scores each feature's notHeldPoints (neutral: 0), never a reason.
      const values: Record<string, number | string> = {};
      if (r >= 0) {
        part.features.forEach((f, j) => {
          const v = cellValue(this.data.x[r * width + idx[j]!]!, this.data.levels?.[f.feature]);
          if (v !== undefined) values[f.feature] = v;
        });
      }
      const scored = scoreRecord(part, values, r < 0 ? allFeatures : undefined);
      total[i] = scored.score;
      reasons.push(reasonCodes(scored.points, k));
    }
    return { total, reasons };
  }

  /** Stability of each of this party's binned features: PSI of the batch's bin shares against the training rows'. */
  private featurePsi(rows: ArrayLike<number>): Record<string, number> | null {
    if (this.kept.format !== 'fedcredit-vertical-part/1') return null;
    const bins = this.kept.bins;
    if (!bins) return null;
    const width = this.data.features.length;
    const out: Record<string, number> = {};
    this.kept.features.forEach((feature, j) => {
      const col = this.data.features.indexOf(feature);
      const held = Array.from(rows).filter((r) => r >= 0);
      if (held.length > 0)
        out[feature] = psiFromCounts(
          bins[j]!.trainCounts,
          layoutTotals(
            held.map((r) => cellValue(this.data.x[r * width + col]!, this.data.levels?.[feature])),
            bins[j]!,
          ),
        );
    });
    return out;
  }

  beginStep(): void {}

  stateDigest(): Uint8Array {
    return new Uint8Array();
  }

  async execute(step: number, req: StepRequest): Promise<Record<string, unknown>> {
    if (req.step === 'psi') {
      if (this.channel.role === 'guest' && this.queries.ids.length === 0) {
        // The fix names what was wrong: ids that fail the format's check, or valid ids the bank holds no data for.
        const hint =
          this.notInGuestData === 0
            ? `every requested id fails the ${this.idFormat} check of the model's job (${this.idFormat === 'uscc' ? '18 characters with a valid check digit' : 'a non-empty id'}): check the list`
            : this.invalid === 0
              ? `score enterprises ${this.org} holds data for: the model scores with the bank's own columns`
              : `fix the ids that fail the ${this.idFormat} check, and score enterprises ${this.org} holds data for`;
        throw new FedcreditError(
          ErrorCode.JOB_FAILED,
          `none of the ${this.requested} requested ids is a valid id in ${this.org}'s data (${this.invalid} invalid, ${this.notInGuestData} not in the data)`,
          hint,
        );
      }
      // The guest's own owner's cap on the ids of a request; a host counts them as they arrive (ScoringQuota).
      if (this.channel.role === 'guest') {
        const refusal = this.quota?.refusalForIds(this.requested);
        if (refusal) throw refusal;
      }
      // Every request against the model aligns with the same salt and per-model keys, so that a host's ids are
      // blinded once, not at every request (src/psi/scoring.ts).
      const salt = scoringSalt(this.spec.model_job);
      const port = this.channel.port(step, req.attempt);
      const log = this.log.child({ job: this.id, modelJob: this.spec.model_job });
      const psi = { modelFolder: this.modelDir, salt, format: this.idFormat, log };
      if (this.channel.role === 'host') {
        const quota = this.quota;
        const aligned = await hostScoringAlign(port, { ...psi, ids: this.data.ids, guestLink: quota ? (link) => quota.capGuestIds(link) : undefined });
        this.aligned = aligned.rows;
        return { held: this.aligned.filter((r) => r >= 0).length, blinded_all_ids: aligned.built };
      }
      const aligned = await guestScoringAlign(port, this.folder, { ...psi, queries: this.queries.ids });
      this.coverage = aligned.coverage;
      const fetched = aligned.fetched;
      return { requested: this.requested, host_sets_fetched: this.channel.hosts.filter((_, h) => fetched[h]) };
    }
    if (req.step !== 'score') throw new FedcreditError(ErrorCode.PROTOCOL, `a scoring job has no ${req.step} step`, 'upgrade the coordinator and participants to the same version');
    const port = this.channel.port(step, req.attempt);
    if (this.kept.format !== 'fedcredit-vertical-part/1') return this.scoreTrees(port, this.kept);
    if (this.channel.role === 'host') {
      const rows = this.aligned!;
      await port.sendScoreShare(partScores(this.linear, this.data, rows), 'score');
      if (this.card) {
        // Points travel like scores (masked shares); only each enterprise's k main reasons of this party go as they are.
        const { total, reasons } = this.points(rows);
        await port.sendScoreShare(total, 'points', 'score.points_share');
        await port.send(port.guest, 'score.reasons', reasons);
      }
      // Aggregates of this party's own features, for the bank's stability report.
      const featurePsi = this.featurePsi(rows);
      await port.send(port.guest, 'score.feature_psi', featurePsi);
      return { feature_psi: featurePsi };
    }
    const rows = this.queries.rows;
    const own = partScores(this.linear, this.data, rows);
    const hostSum = await port.receiveScoreSum(own.length);
    let points: { total: Float64Array; reasons: Reason[][] } | undefined;
    if (this.card) {
      points = this.points(rows);
      const hostPoints = await port.receiveScoreSum(own.length, 'score.points_share');
      const hostReasons = await Promise.all(port.hosts.map((h) => port.receive(h, 'score.reasons')));
      const decimals = this.card.part.scaling.decimals;
      for (let i = 0; i < own.length; i++) {
        points.total[i] = Number((points.total[i]! + hostPoints[i]!).toFixed(decimals));
        points.reasons[i] = reasonCodes([...points.reasons[i]!, ...hostReasons.flatMap((r) => r[i] ?? [])], this.card.reasonCodes);
      }
    }
    const { a, b } = this.linear.calibration!;
    const k = this.card?.reasonCodes ?? 0;
    const reasonHeader = Array.from({ length: k }, (_, j) => `,reason_${j + 1}`).join('');
    const lines = [`enterprise_id,pd,score,hosts_missing${points ? `,points${reasonHeader}` : ''}`];
    let partial = 0;
    const scores = new Float64Array(own.length);
    for (let i = 0; i < own.length; i++) {
      const z = own[i]! + hostSum[i]! + this.linear.intercept!;
      scores[i] = z;
      const missing = this.coverage.filter((c) => c.match[i]! < 0).map((c) => c.host);
      if (missing.length > 0) partial++;
      const reasons = points ? Array.from({ length: k }, (_, j) => `,${points.reasons[i]![j] ? reasonText(points.reasons[i]![j]!, this.card!.part.scaling.decimals, true) : ''}`).join('') : '';
      lines.push(`${this.queries.ids[i]},${(1 / (1 + Math.exp(-(a * z + b)))).toFixed(8)},${z.toFixed(8)},${missing.join(' ')}${points ? `,${points.total[i]}${reasons}` : ''}`);
    }
    writeFileSync(join(this.jobDir, 'scores.csv'), lines.join('\n') + '\n', { mode: 0o600 });
    this.log.info({ job: this.id, scored: own.length, file: join(this.jobDir, 'scores.csv') }, 'scores written (they stay on this node)');
    // Every party's feature stability, for the batch report.
    const featurePsi: Record<string, Record<string, number> | null> = { [this.org]: this.featurePsi(rows) };
    for (const h of port.hosts) featurePsi[h] = await port.receive(h, 'score.feature_psi');
    return this.batchReport(scores, featurePsi, partial);
  }

  /** The vertical-lr part (its weights, calibration, bins); a tree model's part has none of them. */
  private get linear(): ModelPart {
    if (this.kept.format !== 'fedcredit-vertical-part/1') throw new FedcreditError(ErrorCode.PROTOCOL, `job ${this.spec.model_job}'s model is trees, not a linear model`, 'score again');
    return this.kept;
  }

  /**
   * The batch's scores with a tree model, one round (src/vertical/boost/score.ts): a host answers which branch each
   * of its splits sends each enterprise; the guest walks the trees and writes the PDs with reason codes.
   */
  private async scoreTrees(port: PeerPort, part: BoostGuestPart | BoostHostPart): Promise<Record<string, unknown>> {
    if (part.format === 'fedcredit-boost-host/1') {
      // An enterprise this party does not hold goes down its splits as a missing value.
      await hostScore(port, part.splits, scoringBins(this.data, part.binning, this.aligned!));
      return { feature_psi: null };
    }
    const rows = this.queries.rows;
    const bins = scoringBins(this.data, part.binning, rows);
    const { margin, contributions } = await guestScore(port, part.model, bins, rows.length);
    const k = modelReasonCodes(this.modelDir);
    const reasonHeader = Array.from({ length: k }, (_, j) => `,reason_${j + 1}`).join('');
    const lines = [`enterprise_id,pd,score,hosts_missing${reasonHeader}`];
    let partial = 0;
    for (let i = 0; i < rows.length; i++) {
      const missing = this.coverage.filter((c) => c.match[i]! < 0).map((c) => c.host);
      if (missing.length > 0) partial++;
      // A host that does not hold the enterprise gives no reason for it (its splits took the missing-value branch).
      const reasons = treeReasonCodes(part.model, contributions, i, part.model.features.length)
        .filter((r) => !missing.includes(r.owner))
        .slice(0, k);
      const cells = Array.from({ length: k }, (_, j) => {
        const r = reasons[j];
        return `,${r ? `${r.owner}/${r.feature} (+${r.contribution.toFixed(4)})` : ''}`;
      }).join('');
      lines.push(`${this.queries.ids[i]},${(1 / (1 + Math.exp(-margin[i]!))).toFixed(8)},${margin[i]!.toFixed(8)},${missing.join(' ')}${cells}`);
    }
    writeFileSync(join(this.jobDir, 'scores.csv'), lines.join('\n') + '\n', { mode: 0o600 });
    this.log.info({ job: this.id, scored: rows.length, file: join(this.jobDir, 'scores.csv') }, 'scores written (they stay on this node)');
    // The guest's own features' stability: the batch's bin shares against its training rows'. A host answers
    // routes and nothing else, so its features' stability is not known here.
    const featurePsi: BatchReport['featurePsi'] = Object.fromEntries(port.hosts.map((org) => [org, null]));
    featurePsi[this.org] = Object.fromEntries(part.binning.map((b, j) => [b.name, psiFromCounts(b.trainCounts, binTotals(bins[j]!, b.trainCounts.length))]));
    return this.batchReport(margin, featurePsi, partial);
  }

  /**
   * The guest's batch report (`fedcredit report --batch`) and its step report: score stability against the training
   * job's held-out enterprises (read from this node's own record), every party's feature stability, the coverage.
   */
  private batchReport(scores: Float64Array, featurePsi: BatchReport['featurePsi'], partial: number): Record<string, unknown> {
    const scorePsi = this.stabilityAgainstTest(scores);
    const notHeld = Object.fromEntries(this.coverage.map((c) => [c.host, c.match.filter((j) => j < 0).length]));
    const batch: BatchReport = { modelJob: this.spec.model_job, scored: scores.length, scorePsi, featurePsi, notHeld };
    writeFileSync(join(this.jobDir, BATCH_REPORT_FILE), JSON.stringify(batch, null, 2), { mode: 0o600 });
    return {
      requested: this.requested,
      score_psi: scorePsi,
      feature_psi: featurePsi[this.org],
      invalid_ids: this.invalid,
      not_in_guest_data: this.notInGuestData,
      scored: scores.length,
      scored_without_some_host: partial,
      held_by_host: Object.fromEntries(this.coverage.map((c) => [c.host, c.match.filter((j) => j >= 0).length])),
      not_held_by_host: notHeld,
    };
  }
}

/** How many reason codes a tree model's scores carry: its job's boosting.reason_codes, as this node kept the job. */
function modelReasonCodes(modelDir: string): number {
  const spec = readJobFile(modelDir)?.spec as { boosting?: { reason_codes?: number } } | undefined;
  return spec?.boosting?.reason_codes ?? BoostingSpec.parse({}).reason_codes;
}
