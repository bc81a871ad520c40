/** Summary statistics of a feature on a party's own rows: what `statistics: true` in a job asks parties to share. */
export interface FeatureStatistics {
  feature: string;
  /** Rows looked at, missing included. */
  rows: number;
  /** Rows with a value. */
  count: number;
  missingRate: number;
  mean: number | null;
  /** Population standard deviation. */
  sd: number | null;
  min: number | null;
  max: number | null;
}

export function featureStatistics(feature: string, values: ArrayLike<number>): FeatureStatistics {
  let count = 0;
  let mean = 0;
  let m2 = 0;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const x = values[i]!;
    if (Number.isNaN(x)) continue;
    count++;
    // Welford: stable for large values such as amounts in the millions.
    const delta = x - mean;
    mean += delta / count;
    m2 += delta * (x - mean);
    if (x < min) min = x;
    if (x > max) max = x;
  }
  const rows = values.length;
  return {
    feature,
    rows,
    count,
    missingRate: rows === 0 ? 0 : (rows - count) / rows,
    mean: count > 0 ? mean : null,
    sd: count > 0 ? Math.sqrt(m2 / count) : null,
    min: count > 0 ? min : null,
    max: count > 0 ? max : null,
  };
}
