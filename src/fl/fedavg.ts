/**
 * The FedAvg step from an opened aggregate. The vector is [Σ n_k·(w_k − w), Σ n_k, Σ n_k·loss_k]; the new global
 * model is w + Σ n_k·(w_k − w) / Σ n_k in float32. Coordinator, participants and the auditor's replay all call
 * this one function, so the model hashes they compute agree bit for bit.
 */
export function applyAggregate(global: Float32Array, aggregate: Float64Array): Float32Array {
  const params = global.length;
  const samples = aggregate[params]!;
  const next = new Float32Array(params);
  for (let i = 0; i < params; i++) next[i] = global[i]! + aggregate[i]! / samples;
  return next;
}

export function aggregateSamples(global: Float32Array, aggregate: Float64Array): number {
  return aggregate[global.length]!;
}

export function aggregateLoss(global: Float32Array, aggregate: Float64Array): number {
  return aggregate[global.length + 1]! / aggregate[global.length]!;
}

/** How a job picks the round whose global model it publishes (`training.model_selection`). */
export type ModelSelection = 'best_validation_auc' | 'last_round';

/**
 * A later round's model replaces the best one only when its validation AUC is higher by more than this: a near tie
 * (rows whose PDs swap order under CKKS noise) must not make a plaintext and an encrypted run of a job publish
 * different rounds.
 */
export const MIN_AUC_GAIN = 1e-4;

/**
 * The round whose model a job publishes: the last round under `last_round`; under `best_validation_auc` the first
 * round whose validation AUC beats every earlier one by more than MIN_AUC_GAIN, or the last round when no round has a
 * validation AUC. The coordinator, its resumption after a restart, the auditor's replay and the central baselines
 * (src/fl/central.ts) all call this one function on the recorded figures.
 */
export function selectRound(rounds: readonly { round: number; validationAuc: number | null }[], rule: ModelSelection): number {
  const last = rounds.at(-1)?.round ?? 0;
  if (rule === 'last_round') return last;
  let best: { round: number; auc: number } | undefined;
  for (const { round, validationAuc: auc } of rounds) {
    if (auc === null || !Number.isFinite(auc)) continue;
    if (!best || auc > best.auc + MIN_AUC_GAIN) best = { round, auc };
  }
  return best?.round ?? last;
}
