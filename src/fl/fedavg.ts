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
