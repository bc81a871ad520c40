/**
 * `fedcredit audit replay` of a horizontal job: re-execute it from its ledger with no raw data and no secret key;
 * and the report every kind's replay fills (src/jobs/replay.ts runs each job's replay).
 *
 * For every secure sum it re-adds the logged encrypted contributions (in the logged, canonical order) and checks
 * that the result is byte-for-byte the logged aggregate, so a coordinator that dropped, duplicated or swapped an
 * update is caught. For every training round it applies the logged opened aggregate to the round's logged global
 * model (the same applyAggregate the federation runs) and checks the resulting hash against the round's record and
 * the next round's starting model, up to the published model's weights.
 *
 * What the coordinator derived from opened aggregates is derived again and compared with what it recorded: the
 * preprocessing and federated statistics from the moments, the bins, WOE and IV from the histograms, the evaluation
 * and the opened PD cells it publishes from the PD histogram (whose sum must be of the published model: its round
 * starts from it), and the scorecard files from the published weights and bins. Under a collective key the key
 * ceremony and every collective decryption are checked too (./replay-threshold.ts).
 */
import type { readLedger } from '../ledger/read.js';
import { hex, sha256Hex } from '../bytes.js';
import { CkksEngine } from '../he/engine.js';
import { HorizontalVectors } from '../he/horizontal.js';
import { VectorCodec, toFloat32, toFloat64 } from '../fl/vector-codec.js';
import { applyAggregate, selectRound, type ModelSelection } from '../fl/fedavg.js';
import { canonicalOrder } from '../fl/secure-sum-round.js';
import { decodeMessage, encodeMessage } from '../wire/proto.js';
import type { EncryptedVector } from '../wire/messages.js';
import { BinningSpec, ScorecardSpec, ceremonyRestarts } from '../config/schemas.js';
import { canonicalJson } from '../ledger/canonical.js';
import { preprocessingFromMoments, statisticsFromMoments, type Preprocessing } from '../model/preprocess.js';
import { binningRecord, binsFromHistogram, declaredLevels, fineGridsOf, ivOutcomes, preprocessingFromBins, searchLayouts } from '../fl/histogram.js';
import { binningWarnings } from '../credit/settle.js';
import { QuantileSearch, preprocessingFromSearch } from '../fl/quantile-search.js';
import { evaluationFromPdHistogram } from '../fl/pd-histogram.js';
import { horizontalScorecard } from '../model/scorecard.js';
import { errorMessage } from '../errors.js';
import { startReplay, type ReplayJob, type ReplayRound } from './replay-job.js';
import { ThresholdReplay } from './replay-threshold.js';

export interface ReplayReport {
  ok: boolean;
  jobs: ReplayJob[];
  /** Jobs with nothing to replay (scoring jobs change no model), and what the record says of them. */
  notReplayed: { jobId: string; kind: string; what: string }[];
}

export interface BlobRef {
  name: string;
  sha256: Uint8Array;
  size: number;
}

type Entry = ReturnType<typeof readLedger>['entries'][number];

/** A horizontal job's replay (the kind's audit half, src/jobs/horizontal.ts). */
export async function replayHorizontalJob(jobId: string, entries: Entry[], blob: (ref: BlobRef) => Promise<Uint8Array>): Promise<ReplayJob> {
  const { job, fail } = startReplay(jobId);
  let codec: VectorCodec | undefined;
  let engine: CkksEngine | undefined;
  let threshold: ThresholdReplay | undefined;
  const rows: Record<string, number> = {};
  let updates = new Map<string, BlobRef>();
  let global: Float32Array | undefined;
  let expectedModel: string | undefined;
  let current: ReplayRound | undefined;
  // The job's settings and the opened aggregates the coordinator derived its steps from.
  let settings: { name: string; standardize: boolean; winsorize: number; binning?: unknown; scorecard?: unknown; cutoff: number; modelSelection?: ModelSelection } | undefined;
  // Every closed round's validation AUC and model hash: what the published model is selected from.
  const closedRounds: { round: number; validationAuc: number | null; model: string }[] = [];
  let selectionRecorded = false;
  const opened = new Map<string, { values: Float64Array; contributors: string[] }>();
  // The quantile search's opened aggregates in order, and the search replayed from them and the moments.
  const quantileRounds: Float64Array[] = [];
  let search: QuantileSearch | undefined;
  const replaySearch = (features: string[]) => {
    const moments = opened.get('moments')?.values;
    if (!moments) return undefined;
    const s = new QuantileSearch(moments, features.length, searchLayouts(settings?.binning ? BinningSpec.parse(settings.binning) : undefined, features));
    for (const values of quantileRounds) s.advance(values);
    return s.done ? s : undefined;
  };
  let binned: { base: Preprocessing; prep: Preprocessing } | undefined;
  // The evaluation as recorded (null: published without one); the artifact's fedcredit.json must carry the same.
  let recordedEvaluation: unknown;
  const derived: Record<string, boolean> = {};
  job.derived = derived;
  const same = (a: unknown, b: unknown) => canonicalJson(a) === canonicalJson(b);
  const derive = (seq: number, step: string, check: () => boolean, what: string) => {
    let ok: boolean;
    try {
      ok = check();
    } catch (err) {
      ok = false;
      what += ` (${errorMessage(err)})`;
    }
    derived[step] = ok;
    if (!ok) fail(seq, what);
  };
  try {
    for (const { seq, entry, body } of entries) {
      const b = body as Record<string, any>;
      const blobs = entry.blobs as BlobRef[];
      const named = (name: string) => blobs.find((r) => r.name === name);
      await threshold?.entry(
        entry.kind,
        b,
        async (name) => (named(name) ? blob(named(name)!) : undefined),
        (message) => fail(seq, message),
      );
      switch (entry.kind) {
        case 'job_submitted': {
          job.name = b.name;
          job.purpose = b.purpose;
          job.submitter = b.submitter;
          settings = {
            name: b.name,
            standardize: b.training?.standardize ?? true,
            winsorize: b.training?.winsorize ?? 0,
            binning: b.binning,
            scorecard: b.scorecard,
            cutoff: b.evaluation?.decline_cutoff ?? 0.2,
            // Ledgers of jobs from before model selection publish the last round's model and record no selection.
            modelSelection: b.training?.model_selection,
          };
          const enc = b.encryption;
          if (enc.scheme === 'ckks' || enc.scheme === 'ckks-threshold') {
            const params = { polyModulusDegree: enc.poly_modulus_degree, coeffModulusBits: enc.coeff_modulus_bits, scaleBits: enc.scale_bits };
            engine = await CkksEngine.create(params);
            const vectors = new HorizontalVectors(engine);
            codec = enc.scheme === 'ckks-threshold' ? VectorCodec.ckksCollective(vectors) : VectorCodec.ckks(vectors);
            if (enc.scheme === 'ckks-threshold') threshold = await ThresholdReplay.start(jobId, b.participants, params, enc.threshold, ceremonyRestarts({ encryption: enc }));
          } else {
            codec = VectorCodec.plaintext();
          }
          break;
        }
        case 'participant_consent':
          rows[b.participant] = b.train_rows;
          break;
        case 'round_opened': {
          updates = new Map();
          const start = named('global_weights');
          if (start) {
            const w = toFloat32(await blob(start));
            if (expectedModel && sha256Hex(new Uint8Array(w.buffer)) !== expectedModel) {
              fail(seq, `round ${b.round} starts from a model that is not the one the previous round produced`);
            }
            global = w;
          }
          current = { round: b.round, purpose: b.purpose, contributors: [], rowsByParty: {}, trainLoss: null, validationAuc: null, sumOk: false, modelOk: null };
          break;
        }
        case 'update_received':
          if (updates.has(b.participant)) fail(seq, `round ${b.round}: a second update from ${b.participant}`);
          updates.set(b.participant, named('update')!);
          break;
        case 'aggregate_produced': {
          if (!codec || !current) {
            fail(seq, 'an aggregate without a job or round before it');
            break;
          }
          const contributors: string[] = b.contributors;
          const received = canonicalOrder(updates.keys());
          if (JSON.stringify(contributors) !== JSON.stringify(received)) {
            fail(seq, `round ${b.round}: the aggregate names contributors [${contributors.join(', ')}] but updates were received from [${received.join(', ')}]`);
          }
          const vectors = await Promise.all(contributors.filter((c) => updates.has(c)).map(async (c) => decodeMessage<EncryptedVector>('EncryptedVector', await blob(updates.get(c)!))));
          const logged = named('aggregate')!;
          const recomputed = vectors.length ? sha256Hex(encodeMessage('EncryptedVector', codec.sum(vectors, b.purpose))) : '';
          current.sumOk = recomputed === hex(logged.sha256);
          if (!current.sumOk) fail(seq, `round ${b.round}: the logged aggregate is not the sum of the logged updates of ${received.join(', ')}`);
          current.contributors = contributors;
          current.rowsByParty = Object.fromEntries(contributors.map((c) => [c, rows[c] ?? 0]));
          break;
        }
        case 'aggregate_opened': {
          if (current && current.purpose !== 'update') opened.set(current.purpose, { values: new Float64Array(toFloat64(await blob(named('values')!))), contributors: current.contributors });
          if (current?.purpose === 'quantiles') quantileRounds.push(opened.get('quantiles')!.values);
          if (current?.purpose !== 'update' || !global) break;
          const values = toFloat64(await blob(named('values')!));
          const next = applyAggregate(global, new Float64Array(values));
          expectedModel = sha256Hex(new Uint8Array(next.buffer));
          break;
        }
        case 'round_closed':
          if (!current) break;
          current.trainLoss = b.train_loss;
          current.validationAuc = b.validation_auc;
          current.modelOk = expectedModel === b.model_sha256;
          if (!current.modelOk) fail(seq, `round ${b.round}: the logged model ${String(b.model_sha256).slice(0, 12)}… is not what the logged aggregate produces`);
          closedRounds.push({ round: b.round, validationAuc: b.validation_auc, model: b.model_sha256 });
          job.rounds.push(current);
          current = undefined;
          break;
        case 'statistics_completed': {
          const moments = opened.get('moments')?.values;
          derive(
            seq,
            'statistics',
            () => {
              if (!moments) return false;
              const features: string[] = b.features.map((f: { feature: string }) => f.feature);
              const categories = new Set(Object.keys(declaredLevels(settings?.binning ? BinningSpec.parse(settings.binning) : undefined, features)));
              return same(b.features, statisticsFromMoments(features, moments, categories));
            },
            'the recorded statistics do not follow from the logged moments aggregate',
          );
          break;
        }
        case 'quantiles_completed': {
          derive(
            seq,
            'quantiles',
            () => {
              const features: string[] = b.features.map((r: { feature: string }) => r.feature);
              search = replaySearch(features);
              if (!search) return false;
              const errors = search.rankErrors();
              return same(
                { rounds: b.rounds, features: b.features },
                { rounds: search.rounds, features: features.map((feature, j) => ({ feature, points: search!.sketches[j]!.points.length, rank_error: errors[j]! })) },
              );
            },
            'the recorded quantile search does not follow from the logged moments and quantile-count aggregates',
          );
          break;
        }
        case 'binning_completed': {
          const moments = opened.get('moments')?.values;
          const histogram = opened.get('histogram')?.values;
          derive(
            seq,
            'binning',
            () => {
              if (!moments || !histogram || !settings || !search) return false;
              const features: string[] = b.iv.map((r: { feature: string }) => r.feature);
              const spec = BinningSpec.parse(settings.binning);
              const bins = binsFromHistogram(features, fineGridsOf(search, spec, features), histogram, spec);
              const derived = binningRecord(bins, spec);
              // Ledgers written before fine-bin IVs and warnings were recorded carry neither; those written before
              // 2026-12-07 count every bin of a feature in `bins`, its special-value and missing bins included.
              const allBins = b.iv.some((r: { bins: unknown }, i: number) => r.bins !== derived.iv[i]?.bins && r.bins === bins[i]?.woe.length);
              const iv: Record<string, unknown>[] = allBins ? derived.iv.map((r, i) => ({ ...r, bins: bins[i]!.woe.length })) : derived.iv;
              // Those written before 2026-12-07 carry no chance levels, and their warnings counted the whole fine-bin IV.
              const withChance = b.iv.some((r: Record<string, unknown>) => 'chance_iv' in r);
              const rows = withChance ? iv : iv.map(({ chance_iv: _, ...r }) => r);
              const warnings = withChance
                ? derived.warnings
                : binningWarnings(
                    ivOutcomes(bins).map(({ chanceIv: _, ...r }) => r),
                    spec.iv_threshold,
                  );
              const recorded = {
                iv: b.iv.some((r: Record<string, unknown>) => 'fine_iv' in r) ? rows : rows.map(({ fine_iv: _, ...r }) => r),
                bins: derived.bins,
                ...(b.warnings !== undefined ? { warnings } : {}),
              };
              const base = baseOf(features, moments, settings, search);
              binned = { base, prep: preprocessingFromBins(base, bins, spec.woe_transform) };
              return same({ iv: b.iv, bins: b.bins, ...(b.warnings !== undefined ? { warnings: b.warnings } : {}) }, recorded);
            },
            'the recorded bins, WOE and IV do not follow from the logged moments and histogram aggregates',
          );
          break;
        }
        case 'preprocessing_ready': {
          const moments = opened.get('moments')?.values;
          derive(
            seq,
            'preprocessing',
            () => {
              if (!moments || !settings) return false;
              const expected = binned?.prep ?? baseOf(b.features, moments, settings, search);
              return same(
                { features: b.features, mean: b.mean, scale: b.scale, bins: b.bins ?? [], clip_low: b.clip_low ?? [], clip_high: b.clip_high ?? [] },
                { features: expected.features, mean: expected.mean, scale: expected.scale, bins: expected.bins ?? [], clip_low: expected.clipLow ?? [], clip_high: expected.clipHigh ?? [] },
              );
            },
            'the recorded preprocessing does not follow from the logged aggregates',
          );
          break;
        }
        case 'evaluation_completed': {
          recordedEvaluation = b.evaluation ?? null;
          const sum = opened.get('evaluation');
          if (b.evaluation === null && !sum) break;
          derive(
            seq,
            'evaluation',
            () => {
              if (!sum || !settings) return false;
              const figures = evaluationFromPdHistogram(sum.values, settings.cutoff);
              if ('reason' in figures) return b.evaluation === null;
              // The opened cells (pdHistogram) are compared too; records made before they were kept have none.
              const { pdHistogram, ...rest } = figures;
              const expected = b.evaluation && 'pdHistogram' in b.evaluation ? { ...rest, pdHistogram } : rest;
              return same(b.evaluation, JSON.parse(JSON.stringify({ contributors: sum.contributors, ...expected })));
            },
            'the recorded evaluation does not follow from the logged PD-histogram aggregate',
          );
          break;
        }
        case 'model_selected': {
          selectionRecorded = true;
          const chosen = settings?.modelSelection ? selectRound(closedRounds, settings.modelSelection) : undefined;
          const model = closedRounds.find((r) => r.round === chosen)?.model;
          derive(
            seq,
            'model selection',
            () => b.rule === settings?.modelSelection && b.round === chosen && b.model_sha256 === model,
            `the published round ${b.round} is not the one the job's rule (${settings?.modelSelection ?? 'none recorded'}) picks from the logged validation AUCs (round ${chosen ?? '?'})`,
          );
          expectedModel = model;
          break;
        }
        case 'model_published': {
          if (settings?.modelSelection && !selectionRecorded) fail(seq, 'the model was published without a model_selected entry saying which round it is');
          job.publishedModel = b.model_sha256;
          const weights = named('weights.bin');
          const weightsBytes = weights ? await blob(weights) : undefined;
          const weightsOk = weightsBytes ? sha256Hex(weightsBytes) === b.model_sha256 : false;
          job.publishedModelOk = b.model_sha256 === expectedModel && weightsOk;
          if (!job.publishedModelOk) fail(seq, 'the published model is not the model the logged rounds produce');
          // An evaluation is of the published model: its sum started from that model (checked at its round_opened).
          // The report of a downloaded model reads the evaluation (and its PD cells) from fedcredit.json: the same.
          const metadata = named('fedcredit.json');
          if (metadata && recordedEvaluation !== undefined) {
            const published = JSON.parse(Buffer.from(await blob(metadata)).toString('utf8')) as { evaluation?: unknown };
            derive(seq, 'published evaluation', () => same(published.evaluation ?? null, recordedEvaluation), 'the evaluation in the published fedcredit.json is not the recorded one');
          }
          const card = named('scorecard.json');
          if (card) {
            const pmml = named('scorecard.pmml');
            const cardBytes = await blob(card);
            const pmmlBytes = pmml ? await blob(pmml) : undefined;
            derive(
              seq,
              'scorecard',
              () => {
                if (!weightsBytes || !settings || !pmmlBytes) return false;
                const rebuilt = horizontalScorecard(toFloat32(weightsBytes), b.preprocessing, ScorecardSpec.parse(settings.scorecard), settings.name);
                return rebuilt.json === Buffer.from(cardBytes).toString('utf8') && rebuilt.pmml === Buffer.from(pmmlBytes).toString('utf8');
              },
              'the published scorecard is not the card of the published weights and bins',
            );
          }
          break;
        }
        case 'job_ended':
          job.state = b.state;
          break;
      }
      if (current && current.purpose !== 'update' && entry.kind === 'aggregate_opened') {
        job.rounds.push(current);
        current = undefined;
      }
    }
    if (job.state === 'succeeded' && job.publishedModel === null) job.failures.push('the job ended as succeeded but no model_published entry exists');
  } finally {
    engine?.dispose();
    threshold?.dispose();
  }
  return job;
}

export function formatReplay(report: ReplayReport): string {
  const lines: string[] = [];
  for (const job of report.jobs) {
    lines.push(`job ${job.jobId} "${job.name}" (${job.state}) submitted by ${job.submitter}: ${job.purpose}`);
    // A vertical-boost job's rounds are its trees: the messages of each, and whether the model keeps it.
    const trees = job.rounds[0]?.purpose === 'tree';
    const vertical = trees || job.rounds[0]?.purpose === 'epoch';
    if (job.rounds.length === 0) lines.push(`  no training ${job.state === 'failed' ? 'round in the record: the job failed before training began' : 'round in the record yet'}`);
    else
      lines.push(
        trees
          ? '   tree  step     parties (role)                                           val AUC  val KS   msgs kept'
          : vertical
            ? '  epoch  step     parties (role)                                           val AUC  val KS   msgs weights'
            : '  round  step        participants (training rows)                             loss     val AUC  sum  model',
      );
    for (const r of job.rounds) {
      const parties = r.contributors.map((c) => partyLabel(r, c)).join(', ');
      const metric = (v: number | null | undefined) => (v === null || v === undefined ? '  -   ' : v.toFixed(4));
      // A vertical epoch records no training loss (no party sees it): its validation AUC and KS instead.
      const figures = vertical ? `${metric(r.validationAuc)}   ${metric(r.validationKs)}` : `${r.trainLoss === null ? '   -   ' : r.trainLoss.toFixed(4)}   ${metric(r.validationAuc)}`;
      lines.push(
        `  ${String(r.round).padStart(5)}  ${r.purpose.padEnd(vertical ? 7 : 10)}  ${parties.padEnd(56)} ${figures}  ${r.sumOk ? 'OK ' : 'BAD'}  ${r.modelOk === null ? '-' : r.modelOk ? 'OK' : 'BAD'}`,
      );
    }
    const steps = Object.entries(job.derived ?? {});
    if (steps.length > 0) lines.push(`  derived again from the opened aggregates: ${steps.map(([step, ok]) => `${step} ${ok ? 'OK' : 'BAD'}`).join(', ')}`);
    const matches = trees
      ? "lists the kept trees of the record and commits to every party's part as reported at finalize"
      : vertical
        ? 'commits to the parts every party kept from the logged epochs'
        : 'equals the model the logged rounds produce';
    if (job.publishedModel) lines.push(`  published model ${job.publishedModel}: ${job.publishedModelOk ? matches : 'DOES NOT match the logged rounds'}`);
    for (const f of job.failures) lines.push(`  FAIL ${f}`);
  }
  for (const j of report.notReplayed) lines.push(`job ${j.jobId} (${j.kind}): ${j.what}`);
  lines.push(report.ok ? 'replay OK: every aggregate, every protocol step and every model commitment follows from the record' : 'replay FAILED');
  return lines.join('\n');
}

/** A party as a replay names it: with its training rows (horizontal) or its role (vertical). */
export function partyLabel(r: ReplayRound, party: string): string {
  if (party in r.rowsByParty) return `${party} (${r.rowsByParty[party]})`;
  const role = r.roleByParty?.[party];
  return role ? `${party} (${role})` : party;
}

/** A job's preprocessing before binning: winsorised from the quantile search when the job asked for it, else from the moments. */
function baseOf(features: string[], moments: Float64Array, settings: { standardize: boolean; winsorize: number }, search: QuantileSearch | undefined): Preprocessing {
  if (settings.winsorize > 0) {
    if (!search) throw new Error('the job winsorises but the ledger records no finished quantile search');
    return preprocessingFromSearch(features, search, settings.standardize, settings.winsorize);
  }
  return preprocessingFromMoments(features, moments, settings.standardize);
}
