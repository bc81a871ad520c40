/**
 * Plain logistic regression fitted by Newton's method (IRLS) on a dense row-major matrix: the centralised yardstick
 * a federated model is compared with (upper bound on pooled columns, or one party alone).
 */
export interface LogisticFit {
  weights: Float64Array;
  intercept: number;
  score(row: ArrayLike<number>): number;
}

/** Solve A x = b for a symmetric positive-definite A (Cholesky); A is p x p row-major. */
function solveSpd(a: Float64Array, b: Float64Array, p: number): Float64Array {
  const l = new Float64Array(p * p);
  for (let i = 0; i < p; i++) {
    for (let j = 0; j <= i; j++) {
      let s = a[i * p + j]!;
      for (let k = 0; k < j; k++) s -= l[i * p + k]! * l[j * p + k]!;
      l[i * p + j] = i === j ? Math.sqrt(Math.max(s, 1e-12)) : s / l[j * p + j]!;
    }
  }
  const y = new Float64Array(p);
  for (let i = 0; i < p; i++) {
    let s = b[i]!;
    for (let k = 0; k < i; k++) s -= l[i * p + k]! * y[k]!;
    y[i] = s / l[i * p + i]!;
  }
  const x = new Float64Array(p);
  for (let i = p - 1; i >= 0; i--) {
    let s = y[i]!;
    for (let k = i + 1; k < p; k++) s -= l[k * p + i]! * x[k]!;
    x[i] = s / l[i * p + i]!;
  }
  return x;
}

/** Fit on n rows of `dim` features (row-major `x`), labels 0/1; `l2` penalises the weights (not the intercept). */
export function fitLogistic(x: Float64Array, y: ArrayLike<number>, dim: number, l2 = 1e-4, iterations = 25): LogisticFit {
  const n = y.length;
  const p = dim + 1;
  const beta = new Float64Array(p);
  for (let it = 0; it < iterations; it++) {
    const h = new Float64Array(p * p);
    const g = new Float64Array(p);
    const row = new Float64Array(p);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < dim; j++) row[j] = x[i * dim + j]!;
      row[dim] = 1;
      let z = 0;
      for (let j = 0; j < p; j++) z += row[j]! * beta[j]!;
      const mu = 1 / (1 + Math.exp(-z));
      const w = Math.max(mu * (1 - mu), 1e-10);
      const r = mu - y[i]!;
      for (let j = 0; j < p; j++) {
        g[j]! += r * row[j]!;
        const wj = w * row[j]!;
        for (let k = 0; k <= j; k++) h[j * p + k]! += wj * row[k]!;
      }
    }
    for (let j = 0; j < p; j++) {
      for (let k = 0; k < j; k++) h[k * p + j] = h[j * p + k]!;
      if (j < dim) {
        h[j * p + j]! += l2 * n;
        g[j]! += l2 * n * beta[j]!;
      }
    }
    const step = solveSpd(h, g, p);
    let change = 0;
    for (let j = 0; j < p; j++) {
      beta[j]! -= step[j]!;
      change = Math.max(change, Math.abs(step[j]!));
    }
    if (change < 1e-8) break;
  }
  const weights = beta.slice(0, dim);
  const intercept = beta[dim]!;
  return {
    weights,
    intercept,
    score(row) {
      let z = intercept;
      for (let j = 0; j < dim; j++) z += weights[j]! * row[j]!;
      return z;
    },
  };
}
