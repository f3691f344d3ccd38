/** Dense linear algebra on row-major Float64Arrays: Cholesky, triangular solves, inverse, eigen. */

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
  T: Float64Array = new Float64Array(n * n),
): Float64Array {
  // Row j of T holds column j of L⁻¹ (entries j..n-1), found by forward substitution on e_j;
  // then (L Lᵀ)⁻¹ = L⁻ᵀ L⁻¹ has entry (i, j) = Σ_k T[i][k] T[j][k]: every loop reads rows.
  // (Entries of T left of the diagonal are never read, so a reused buffer needs no clearing.)
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
