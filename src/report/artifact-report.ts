/**
 * The model report of a horizontal job, from its published artifact alone (`fedcredit job model ID --out DIR`): no
 * participant's data and no ledger. fedcredit.json gives the job, the evaluation and the opened PD histogram it was
 * computed from, and the bins of the model's features; scorecard.json the points.
 *
 * The curves are the histogram's own. The artifact holds no row: ROC, KS and the PD distribution are drawn from the
 * 200 cells of predicted PD over all participants' validation rows, every row of a cell at the cell's mean PD
 * (`rowsFromPdHistogram`), so their AUC and KS are the published ones and nothing finer than a cell is claimed. The
 * page says so.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode, FedcreditError, errorMessage } from '../errors.js';
import { woeIv } from '../credit/woe.js';
import type { Scorecard } from '../credit/scorecard.js';
import type { CreditEvaluation } from '../evaluation.js';
import { checkPdHistogram, rowsFromPdHistogram } from '../fl/pd-histogram.js';
import { ARTIFACT_DOWNLOAD_HINT, ARTIFACT_METADATA, readArtifactMetadata } from '../model/artifact.js';
import { HORIZONTAL_PARTY } from '../model/scorecard.js';
import { reportScorecard as scorecardInput, writeModelReport, type ModelReportInput, type ReportIvRow } from './model-report.js';

/** What a caller may add that the artifact cannot know: models compared on other rows (the demo's test file). */
export type ArtifactReportExtra = Pick<ModelReportInput, 'comparison' | 'generatedAt'> & { comparisonTitle?: string };

export function loadArtifactReport(dir: string, extra: ArtifactReportExtra = {}): ModelReportInput {
  const file = join(dir, ARTIFACT_METADATA);
  const meta = readArtifactMetadata(dir);
  const evaluation = meta.evaluation as (CreditEvaluation & { aucMaxError?: number; contributors?: string[]; pdHistogram?: unknown }) | null | undefined;
  if (!evaluation) {
    throw new FedcreditError(
      ErrorCode.NOT_FOUND,
      `job ${meta.jobId} was published without an evaluation, so there is nothing to report`,
      'its ledger says why (`fedcredit audit show`, entry evaluation_completed): usually training.validation_fraction is 0 or the validation rows hold one class; re-run the job with validation rows of both classes',
    );
  }
  if (evaluation.pdHistogram === undefined) {
    throw new FedcreditError(
      ErrorCode.NOT_FOUND,
      `job ${meta.jobId}'s evaluation carries no PD histogram (the artifact was written by an older fedcredit), so ROC and KS cannot be drawn`,
      're-run the job with this version of fedcredit; its artifact keeps the opened PD histogram',
    );
  }
  let histogram: ReturnType<typeof checkPdHistogram>;
  try {
    histogram = checkPdHistogram(evaluation.pdHistogram);
  } catch (err) {
    throw new FedcreditError(ErrorCode.NOT_FOUND, `${file}: ${errorMessage(err)}`, 'download the artifact again; the file was altered');
  }
  const rows = rowsFromPdHistogram(histogram);
  if (rows.labels.length !== evaluation.n) {
    throw new FedcreditError(ErrorCode.NOT_FOUND, `${file}: the PD histogram holds ${rows.labels.length} rows but the evaluation ${evaluation.n}`, 'download the artifact again; the file was altered');
  }

  const contributors = evaluation.contributors ?? meta.participants;
  const margin = evaluation.aucMaxError !== undefined ? ` (the exact AUC of the pooled rows lies within ±${evaluation.aucMaxError.toFixed(4)} of it)` : '';
  const bins = meta.preprocessing.bins ?? [];
  // Every candidate with its fine-bin IV when the artifact carries the binning table; else the model's features.
  const iv: ReportIvRow[] = meta.binning
    ? meta.binning.iv.map((r) => ({
        feature: r.feature,
        party: HORIZONTAL_PARTY,
        iv: r.iv,
        fineIv: r.fineIv,
        ...(r.chanceIv !== undefined ? { chanceIv: r.chanceIv } : {}),
        bins: r.bins,
        ...(r.type ? { type: r.type } : {}),
        selected: r.selected,
      }))
    : bins.map((b) => {
        let value: number;
        try {
          value = woeIv({ events: b.events, totals: b.totals }).iv;
        } catch (err) {
          throw new FedcreditError(ErrorCode.NOT_FOUND, `${file}: the bins of ${b.feature} ${errorMessage(err)}`, 'download the artifact again; the file was altered');
        }
        return { feature: b.feature, party: HORIZONTAL_PARTY, iv: value, bins: b.woe.length, selected: true };
      });

  return {
    job: { id: meta.jobId, name: meta.name ?? meta.jobId, purpose: meta.purpose ?? '–', participants: meta.participants, finishedAt: meta.createdAt },
    test: rows,
    evaluation,
    ...(extra.comparison ? { comparison: extra.comparison } : {}),
    ...(iv.length > 0 ? { iv } : {}),
    ...(meta.binning && meta.binning.warnings.length > 0 ? { binningWarnings: meta.binning.warnings } : {}),
    ...(meta.validationWarning ? { validationWarning: meta.validationWarning } : {}),
    ...(meta.scorecard ? { scorecard: reportScorecard(dir, meta.scorecard.json) } : {}),
    notes: {
      rows: 'validation rows (all participants)',
      heldOut:
        `Figures of the published model on the ${evaluation.n.toLocaleString('en-US')} validation rows of ${contributors.join(', ')}, which no round trained on, ` +
        'from a secure sum of their histograms of predicted PD: the coordinator opened only the sum, and this page is built from the published model artifact alone.',
      curves:
        `ROC, KS and the PD distribution are drawn from the published histogram of predicted PD in ${histogram.cells} cells of width 1/${histogram.cells}, ` +
        `every row at its cell's mean PD: no row's own PD left its owner. AUC counts a default and a non-default in the same cell as a tie${margin}; KS is read at cell boundaries.`,
      iv: meta.binning
        ? `Every candidate feature, with the information value of its fine bins and of its final bins over all participants' training rows, from secure histograms; the model uses the selected ones.`
        : `The ${iv.length} features in the model, with the information value of their bins over all participants' training rows (candidates below the IV threshold are in the job's ledger, entry binning_completed).`,
      training: "The model artifact does not carry the validation AUC by round; fedcredit audit replay lists it from the coordinator's ledger.",
      ...(extra.comparisonTitle ? { comparison: extra.comparisonTitle } : {}),
    },
    ...(extra.generatedAt ? { generatedAt: extra.generatedAt } : {}),
  };
}

/** The scorecard section from the artifact's scorecard.json. */
function reportScorecard(dir: string, name: string): NonNullable<ModelReportInput['scorecard']> {
  const file = join(dir, name);
  if (!existsSync(file)) throw new FedcreditError(ErrorCode.NOT_FOUND, `${ARTIFACT_METADATA} names a scorecard ${name} that is not in ${dir}`, ARTIFACT_DOWNLOAD_HINT);
  const card = JSON.parse(readFileSync(file, 'utf8')) as Scorecard;
  if (card.format !== 'fedcredit-scorecard/1') throw new FedcreditError(ErrorCode.NOT_FOUND, `${file} is not a fedcredit scorecard (format ${JSON.stringify(card.format)})`, ARTIFACT_DOWNLOAD_HINT);
  return scorecardInput(card);
}

/** Render a downloaded horizontal model's report to `outFile` (and its figures beside it); returns the figure files. */
export async function writeArtifactReport(dir: string, outFile: string, extra: ArtifactReportExtra = {}): Promise<string[]> {
  return (await writeModelReport(loadArtifactReport(dir, extra), outFile)).figures;
}
