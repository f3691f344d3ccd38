/** Box-constrained L-BFGS for the Gaussian process's hyperparameters. */

export interface MinimizeResult {
  x: Float64Array;
  f: number;
  evaluations: number;
}

/**
 * L-BFGS with a backtracking (Armijo) line search inside a box: steps are projected onto
 * [lower, upper]. `fg` returns f(x) and writes ∇f(x) into g. Deterministic.
 */
export function minimizeLbfgs(
  fg: (x: Float64Array, g: Float64Array) => number,
  x0: Float64Array,
  lower: Float64Array,
  upper: Float64Array,
  maxEvaluations = 60,
  memory = 6,
): MinimizeResult {
  const n = x0.length;
  const clamp = (x: Float64Array): Float64Array => {
    for (let i = 0; i < n; i++)
      x[i] = Math.min(upper[i] as number, Math.max(lower[i] as number, x[i] as number));
    return x;
  };
  let x = clamp(Float64Array.from(x0));
  let g = new Float64Array(n);
  let f = fg(x, g);
  let evaluations = 1;
  if (!Number.isFinite(f)) return { x, f, evaluations };
  const S: Float64Array[] = [];
  const Y: Float64Array[] = [];
  const dot = (a: Float64Array, b: Float64Array): number => {
    let s = 0;
    for (let i = 0; i < n; i++) s += (a[i] as number) * (b[i] as number);
    return s;
  };
  while (evaluations < maxEvaluations) {
    // Two-loop recursion for the direction d = -H g.
    const q = Float64Array.from(g);
    const alpha: number[] = [];
    for (let k = S.length - 1; k >= 0; k--) {
      const s = S[k] as Float64Array;
      const y = Y[k] as Float64Array;
      const a = dot(s, q) / dot(y, s);
      alpha[k] = a;
      for (let i = 0; i < n; i++) q[i] = (q[i] as number) - a * (y[i] as number);
    }
    if (S.length > 0) {
      const s = S[S.length - 1] as Float64Array;
      const y = Y[Y.length - 1] as Float64Array;
      const gamma = dot(s, y) / dot(y, y);
      for (let i = 0; i < n; i++) q[i] = (q[i] as number) * gamma;
    } else {
      const gn = Math.sqrt(dot(g, g));
      if (gn === 0) break;
      for (let i = 0; i < n; i++) q[i] = (q[i] as number) / Math.max(1, gn);
    }
    for (let k = 0; k < S.length; k++) {
      const s = S[k] as Float64Array;
      const y = Y[k] as Float64Array;
      const b = dot(y, q) / dot(y, s);
      for (let i = 0; i < n; i++) q[i] = (q[i] as number) + (s[i] as number) * ((alpha[k] as number) - b);
    }
    const d = q.map((v) => -v);
    let slope = dot(d, g);
    if (!(slope < 0)) {
      // Not a descent direction: restart from steepest descent.
      S.length = 0;
      Y.length = 0;
      for (let i = 0; i < n; i++) d[i] = -(g[i] as number);
      slope = dot(d, g);
      if (!(slope < 0)) break;
    }
    let step = 1;
    let accepted = false;
    let xn = x;
    let gn = g;
    let fn = f;
    while (evaluations < maxEvaluations) {
      xn = clamp(x.map((v, i) => v + step * (d[i] as number)));
      gn = new Float64Array(n);
      fn = fg(xn, gn);
      evaluations++;
      let moved = 0;
      for (let i = 0; i < n; i++) moved += ((xn[i] as number) - (x[i] as number)) * (g[i] as number);
      if (Number.isFinite(fn) && fn <= f + 1e-4 * Math.min(moved, 0)) {
        accepted = true;
        break;
      }
      step *= 0.3;
      if (step < 1e-8) break;
    }
    if (!accepted) break;
    const s = xn.map((v, i) => v - (x[i] as number));
    const y = gn.map((v, i) => v - (g[i] as number));
    if (dot(s, y) > 1e-12) {
      S.push(s);
      Y.push(y);
      if (S.length > memory) {
        S.shift();
        Y.shift();
      }
    }
    const improvement = f - fn;
    x = xn;
    g = gn;
    f = fn;
    if (improvement < 1e-9 * Math.max(1, Math.abs(f))) break;
  }
  return { x, f, evaluations };
}
