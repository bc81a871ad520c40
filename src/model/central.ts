/**
 * Centralised baselines: the same model, preprocessing and optimiser settings as a federated job, fitted on
 * rows in one place. The demo and the tests use it for the "pooled" upper bound and each owner's model alone.
 */
import type { HorizontalJobSpec as JobSpec } from '../config/schemas.js';
import { concatSplits, type Split } from '../data/split.js';
import { buildModel, predict, trainModel } from './network.js';
import { applyPreprocessing, localMoments, preprocessingFromMoments } from './preprocess.js';
import type { Tf } from './tf.js';

export interface CentralModel {
  /** Probabilities of default for raw row-major rows. */
  score(rawX: Float32Array): Float32Array;
}

/** Fit on the given training splits for rounds × local_epochs epochs (the federated job's total passes). */
export function fitCentral(tf: Tf, job: JobSpec, features: string[], splits: Split[]): CentralModel {
  const pooled = concatSplits(splits);
  const dim = features.length;
  const prep = preprocessingFromMoments(features, localMoments(pooled.x, dim), job.training.standardize);
  const model = buildModel(tf, job.model, dim, job.training.seed);
  const t = job.training;
  trainModel(tf, model, applyPreprocessing(pooled.x, prep), pooled.y, dim, {
    epochs: t.rounds * t.local_epochs,
    batchSize: t.batch_size,
    learningRate: t.learning_rate,
    optimizer: t.optimizer,
    seed: t.seed,
  });
  return { score: (rawX) => predict(tf, model, applyPreprocessing(rawX, prep), dim) };
}
