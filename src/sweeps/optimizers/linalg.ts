/** Dense linear algebra on row-major Float64Arrays: Cholesky, triangular solves, inverse. */

/** In-place Cholesky of the symmetric positive-definite n×n matrix a (lower part) → L. */
export function cholesky(a: Float64Array, n: number): boolean {
  for (let j = 0; j < n; j++) {
    const rj = j * n;
    let d = a[rj + j] as number;
    for (let k = 0; k < j; k++) {
      const v = a[rj + k] as number;
      d -= v * v;
    }
    if (!(d > 0)) return false;
    d = Math.sqrt(d);
    a[rj + j] = d;
    const inv = 1 / d;
    for (let i = j + 1; i < n; i++) {
      const ri = i * n;
      let s = a[ri + j] as number;
      for (let k = 0; k < j; k++) s -= (a[ri + k] as number) * (a[rj + k] as number);
      a[ri + j] = s * inv;
    }
    for (let k = j + 1; k < n; k++) a[rj + k] = 0;
  }
  return true;
}

/** Solves L x = b in place (L lower triangular, from cholesky). */
export function solveLower(L: Float64Array, n: number, b: Float64Array): Float64Array {
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    let s = b[i] as number;
    for (let k = 0; k < i; k++) s -= (L[ri + k] as number) * (b[k] as number);
    b[i] = s / (L[ri + i] as number);
  }
  return b;
}

/** Solves Lᵀ x = b in place. */
export function solveUpperT(L: Float64Array, n: number, b: Float64Array): Float64Array {
  for (let i = n - 1; i >= 0; i--) {
    let s = b[i] as number;
    for (let k = i + 1; k < n; k++) s -= (L[k * n + i] as number) * (b[k] as number);
    b[i] = s / (L[i * n + i] as number);
  }
  return b;
}

/** (L Lᵀ)⁻¹ as a full symmetric matrix (written into `out` when given). */
export function choleskyInverse(
  L: Float64Array,
  n: number,
  out: Float64Array = new Float64Array(n * n),
): Float64Array {
  // Row j of T holds column j of L⁻¹ (entries j..n-1), found by forward substitution on e_j;
  // then (L Lᵀ)⁻¹ = L⁻ᵀ L⁻¹ has entry (i, j) = Σ_k T[i][k] T[j][k]: every loop reads rows.
  const T = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    const tj = j * n;
    T[tj + j] = 1 / (L[j * n + j] as number);
    for (let k = j + 1; k < n; k++) {
      const lk = k * n;
      let s = 0;
      for (let m = j; m < k; m++) s -= (L[lk + m] as number) * (T[tj + m] as number);
      T[tj + k] = s / (L[lk + k] as number);
    }
  }
  for (let i = 0; i < n; i++) {
    const ti = i * n;
    for (let j = 0; j <= i; j++) {
      const tj = j * n;
      let s = 0;
      for (let k = i; k < n; k++) s += (T[ti + k] as number) * (T[tj + k] as number);
      out[ti + j] = s;
      out[tj + i] = s;
    }
  }
  return out;
}

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

/**
 * Eigen-decomposition of a small symmetric matrix by cyclic Jacobi rotations:
 * A = V diag(values) Vᵀ, with the eigenvectors as the columns of V (row-major n×n).
 */
export function symmetricEigen(a: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  const A = Float64Array.from(a);
  const V = new Float64Array(n * n);
  for (let i = 0; i < n; i++) V[i * n + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += (A[p * n + q] as number) ** 2;
    if (off < 1e-30) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = A[p * n + q] as number;
        if (Math.abs(apq) < 1e-300) continue;
        const theta = ((A[q * n + q] as number) - (A[p * n + p] as number)) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < n; k++) {
          const akp = A[k * n + p] as number;
          const akq = A[k * n + q] as number;
          A[k * n + p] = c * akp - s * akq;
          A[k * n + q] = s * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = A[p * n + k] as number;
          const aqk = A[q * n + k] as number;
          A[p * n + k] = c * apk - s * aqk;
          A[q * n + k] = s * apk + c * aqk;
        }
        for (let k = 0; k < n; k++) {
          const vkp = V[k * n + p] as number;
          const vkq = V[k * n + q] as number;
          V[k * n + p] = c * vkp - s * vkq;
          V[k * n + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const values = new Float64Array(n);
  for (let i = 0; i < n; i++) values[i] = A[i * n + i] as number;
  return { values, vectors: V };
}
