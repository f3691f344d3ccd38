/**
 * Monotone transforms of objective values before a Gaussian process sees them: losses of
 * real searches are skewed (a few diverged runs, a long tail near the optimum), which a GP with
 * Gaussian noise models badly. Yeo–Johnson with λ chosen by maximum likelihood (as HEBO does)
 * keeps the order of the values, so the minimiser is unchanged.
 */

function yeoJohnson(y: number, lambda: number): number {
  if (y >= 0) return Math.abs(lambda) < 1e-8 ? Math.log1p(y) : ((y + 1) ** lambda - 1) / lambda;
  const l2 = 2 - lambda;
  return Math.abs(l2) < 1e-8 ? -Math.log1p(-y) : -((1 - y) ** l2 - 1) / l2;
}

function standardize(values: readonly number[]): number[] {
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / n;
  const sd = Math.sqrt(variance);
  return values.map((v) => (sd > 1e-12 ? (v - mean) / sd : v - mean));
}

function logLikelihood(z: readonly number[], lambda: number): number {
  const t = z.map((v) => yeoJohnson(v, lambda));
  const n = t.length;
  const mean = t.reduce((a, b) => a + b, 0) / n;
  const variance = t.reduce((a, b) => a + (b - mean) ** 2, 0) / n;
  let jac = 0;
  for (const v of z) jac += Math.sign(v) * Math.log1p(Math.abs(v));
  return -0.5 * n * Math.log(Math.max(variance, 1e-300)) + (lambda - 1) * jac;
}

/** Standardized values, Yeo–Johnson-warped when `warp` (mean 0, variance 1 either way). */
export function transformOutputs(values: readonly number[], warp: boolean): number[] {
  const z = standardize(values);
  if (!warp || values.length < 3) return z;
  // Coarse scan, then golden-section refinement: the likelihood is unimodal in practice but
  // flat regions make a pure local search wander.
  let best = 1;
  let bestLl = logLikelihood(z, 1);
  for (let l = -2; l <= 3.0001; l += 0.5) {
    const ll = logLikelihood(z, l);
    if (ll > bestLl) {
      bestLl = ll;
      best = l;
    }
  }
  let a = best - 0.5;
  let b = best + 0.5;
  const phi = (Math.sqrt(5) - 1) / 2;
  for (let i = 0; i < 14; i++) {
    const c = b - phi * (b - a);
    const d = a + phi * (b - a);
    if (logLikelihood(z, c) > logLikelihood(z, d)) b = d;
    else a = c;
  }
  const lambda = (a + b) / 2;
  return standardize(z.map((v) => yeoJohnson(v, lambda)));
}
