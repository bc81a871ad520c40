/**
 * Centralised baselines: the same model, preprocessing and optimiser settings as a federated job, fitted on
 * rows in one place. The demo and the tests use it for the "pooled" upper bound and each owner's model alone.
 */
import type { HorizontalJobSpec as JobSpec } from '../config/schemas.js';
import { concatSplits, type Split } from '../data/split.js';
import { buildModel, getFlatWeights, predict, setFlatWeights, trainModel } from '../model/network.js';
import { auc } from '../metrics.js';
import { selectRound } from './fedavg.js';
import { applyPreprocessing, localMoments, preprocessingFromMoments, selectColumns } from '../model/preprocess.js';
import { binsFromHistogram, declaredLevels, fineGridsOf, localHistogram, preprocessingFromBins, searchLayouts, toDeclaredLevels } from './histogram.js';
import { QuantileSearch, preprocessingFromSearch } from './quantile-search.js';
import type { Tf } from '../model/tf.js';

export interface CentralModel {
  /** Probabilities of default for raw row-major rows; categorical cells are positions in `levels` (default: the
   * level lists the model was fitted with). */
  score(rawX: Float32Array, levels?: Readonly<Record<string, readonly string[]>>): Float32Array;
}

/** The rows a central fit learns from, and the validation rows it selects the model by (`training.model_selection`). */
export interface CentralRows {
  train: Split[];
  /** One split per participant, as a job's participants hold them: the validation AUC is their row-weighted mean. */
  validation?: Split[];
  /** Categorical cells are positions in these level lists (the data's own); default: as the job declares them. */
  levels?: Readonly<Record<string, readonly string[]>>;
}

/**
 * Fit on the training splits for rounds × local_epochs epochs (the federated job's total passes). With a `binning`
 * section the columns are binned at the quantile search's fine edges and selected as the coordinator does
 * (src/fl/histogram.ts), then read as WOE or winsorised and standardised, as in the job. After each round's epochs the
 * model is scored on the validation splits, and the round selectRound picks is the model returned, as a job publishes
 * (without validation splits: the last). Categorical cells of the rows `score` takes are positions in `levels`.
 */
export function fitCentral(tf: Tf, job: JobSpec, columns: string[], rows: CentralRows): CentralModel {
  const { levels } = rows;
  const raw = concatSplits(rows.train);
  const pooled = { x: toDeclaredLevels(raw.x, columns, levels, job.binning), y: raw.y };
  const moments = localMoments(pooled.x, columns.length);
  const search = job.binning || job.training.winsorize > 0 ? QuantileSearch.local(pooled.x, columns.length, moments, searchLayouts(job.binning, columns)) : undefined;
  let prep =
    search && job.training.winsorize > 0
      ? preprocessingFromSearch(columns, search, job.training.standardize, job.training.winsorize)
      : preprocessingFromMoments(columns, moments, job.training.standardize);
  if (job.binning) {
    const grids = fineGridsOf(search!, job.binning, columns);
    prep = preprocessingFromBins(prep, binsFromHistogram(columns, grids, localHistogram(pooled.x, pooled.y, grids), job.binning), job.binning.woe_transform);
  }
  const dim = prep.features.length;
  const declared = declaredLevels(job.binning, columns);
  const input = (x: Float32Array, unseenNeutral = false) => applyPreprocessing(selectColumns(x, columns, prep.features), prep, declared, unseenNeutral);
  const model = buildModel(tf, job.model, dim, job.training.seed);
  const t = job.training;
  const validation = (rows.validation ?? []).map((v) => ({ x: input(toDeclaredLevels(v.x, columns, levels, job.binning), true), y: v.y }));
  const history: { round: number; validationAuc: number | null }[] = [];
  let selected = getFlatWeights(model);
  const afterEpoch = (epoch: number) => {
    if ((epoch + 1) % t.local_epochs !== 0) return;
    const round = (epoch + 1) / t.local_epochs;
    history.push({ round, validationAuc: weightedAuc(validation.map((v) => ({ y: v.y, pd: predict(tf, model, v.x, dim) }))) });
    if (selectRound(history, t.model_selection) === round) selected = getFlatWeights(model);
  };
  trainModel(
    tf,
    model,
    input(pooled.x, true),
    pooled.y,
    dim,
    { epochs: t.rounds * t.local_epochs, batchSize: t.batch_size, learningRate: t.learning_rate, optimizer: t.optimizer, seed: t.seed },
    afterEpoch,
  );
  setFlatWeights(tf, model, selected);
  return { score: (rawX, own = levels) => predict(tf, model, input(toDeclaredLevels(rawX, columns, own, job.binning)), dim) };
}

/** The row-weighted mean of each split's AUC, leaving out splits with one class (as the coordinator does); null if none. */
function weightedAuc(splits: { y: Float32Array; pd: Float32Array }[]): number | null {
  let sum = 0;
  let rows = 0;
  for (const { y, pd } of splits) {
    const a = auc(y, pd);
    if (Number.isNaN(a)) continue;
    sum += a * y.length;
    rows += y.length;
  }
  return rows > 0 ? sum / rows : null;
}
