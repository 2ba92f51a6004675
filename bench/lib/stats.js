/** Small statistics helpers (no dependency). */

/** Percentile `p` (0-100) of an ascending-sorted array, linear interpolation between ranks. NaN when empty. */
export function percentile(sorted, p) {
  const n = sorted.length;
  if (n === 0) return NaN;
  if (n === 1) return sorted[0];
  const rank = (p / 100) * (n - 1);
  const lo = Math.floor(rank);
  const hi = Math.min(n - 1, lo + 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo);
}

export function median(values) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return percentile(v, 50);
}

export function min(values) {
  const v = values.filter((x) => Number.isFinite(x));
  return v.length ? Math.min(...v) : NaN;
}

export function max(values) {
  const v = values.filter((x) => Number.isFinite(x));
  return v.length ? Math.max(...v) : NaN;
}

export function sum(values) {
  return values.reduce((a, b) => a + b, 0);
}

/** Rounds for display: `digits` decimals, or '-' for NaN/undefined. */
export function fmt(value, digits = 0) {
  if (value === undefined || value === null || !Number.isFinite(value)) return '-';
  return value.toFixed(digits);
}
