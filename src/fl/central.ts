/**
 * Centralised baselines: the same model, preprocessing and optimiser settings as a federated job, fitted on
 * rows in one place. The demo and the tests use it for the "pooled" upper bound and each owner's model alone.
 */
import type { HorizontalJobSpec as JobSpec } from '../config/schemas.js';
import { concatSplits, type Split } from '../data/split.js';
import { buildModel, predict, trainModel } from '../model/network.js';
import { applyPreprocessing, localMoments, preprocessingFromMoments, selectColumns } from '../model/preprocess.js';
import { binsFromHistogram, declaredLevels, fineGridsOf, localHistogram, preprocessingFromBins, searchLayouts, toDeclaredLevels } from './histogram.js';
import { QuantileSearch, preprocessingFromSearch } from './quantile-search.js';
import type { Tf } from '../model/tf.js';

export interface CentralModel {
  /** Probabilities of default for raw row-major rows; categorical cells are positions in `levels` (default: the
   * level lists the model was fitted with). */
  score(rawX: Float32Array, levels?: Readonly<Record<string, readonly string[]>>): Float32Array;
}

/**
 * Fit on the given training splits for rounds × local_epochs epochs (the federated job's total passes). With a
 * `binning` section the columns are binned at the quantile search's fine edges and selected as the coordinator
 * does (src/fl/histogram.ts), then read as WOE or winsorised and standardised, as in the job. Categorical columns'
 * cells are positions in `levels[column]` (the data's own level lists), as in the rows `score` takes.
 */
export function fitCentral(tf: Tf, job: JobSpec, columns: string[], splits: Split[], levels?: Readonly<Record<string, readonly string[]>>): CentralModel {
  const raw = concatSplits(splits);
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
  trainModel(tf, model, input(pooled.x, true), pooled.y, dim, {
    epochs: t.rounds * t.local_epochs,
    batchSize: t.batch_size,
    learningRate: t.learning_rate,
    optimizer: t.optimizer,
    seed: t.seed,
  });
  return { score: (rawX, own = levels) => predict(tf, model, input(toDeclaredLevels(rawX, columns, own, job.binning)), dim) };
}
