/**
 * A Gaussian-process regression model on the unit cube: Matérn 5/2 kernel with one length
 * scale per input (ARD), signal and noise variances, and optional Kumaraswamy input warping,
 * all fitted by maximising the marginal likelihood times weak log-normal priors (L-BFGS with
 * analytic gradients). Targets are expected standardized (mean 0, variance 1).
 */
import { minimizeLbfgs } from './lbfgs.js';
import { cholesky, choleskyInverse, solveLower, solveUpperT } from './linalg.js';

const SQRT5 = Math.sqrt(5);
const LOG_2PI = Math.log(2 * Math.PI);
const WARP_EPS = 1e-6;

/** Priors on the log hyperparameters: [mean, sd]. Length scales are in unit-cube widths. */
const PRIOR = {
  logLengthscale: [Math.log(0.5), 1.0],
  logSignal: [0, 1.0],
  logNoise: [-7, 3.0],
  logWarp: [0, 0.75],
} as const;
const BOUNDS = {
  logLengthscale: [Math.log(0.01), Math.log(20)],
  logSignal: [Math.log(0.01), Math.log(100)],
  logNoise: [Math.log(1e-6), Math.log(2)],
  logWarp: [Math.log(0.2), Math.log(5)],
} as const;

export interface FitOptions {
  /** Which inputs get a Kumaraswamy warp (numeric ones); null = no warping. */
  warp: readonly boolean[] | null;
  maxEvaluations?: number;
}

export interface Hyper {
  logLengthscale: Float64Array;
  logSignal: number;
  logNoise: number;
  /** log a, log b of each input's warp (0, 0 = identity) */
  logWarpA: Float64Array;
  logWarpB: Float64Array;
}

/** Kumaraswamy CDF 1 − (1 − uᵃ)ᵇ, a monotone bijection of [0, 1]. */
function warpValue(u: number, a: number, b: number): number {
  const v = Math.min(1 - WARP_EPS, Math.max(WARP_EPS, u));
  return 1 - (1 - v ** a) ** b;
}

export class GaussianProcess {
  private constructor(
    readonly n: number,
    readonly dims: number,
    /** warped inputs, n × dims */
    private readonly X: Float64Array,
    readonly y: Float64Array,
    readonly hyper: Hyper,
    private readonly warped: readonly boolean[] | null,
    private readonly L: Float64Array,
    private readonly alpha: Float64Array,
    private readonly invLs2: Float64Array,
  ) {}

  /** Fits the hyperparameters to (X, y) and returns the conditioned model. */
  static fit(
    rawX: Float64Array,
    n: number,
    dims: number,
    y: Float64Array,
    options: FitOptions,
  ): GaussianProcess {
    const warpIdx =
      options.warp === null ? [] : [...options.warp.keys()].filter((d) => options.warp?.[d] === true);
    const nw = warpIdx.length;
    const P = dims + 2 + 2 * nw;
    const lower = new Float64Array(P);
    const upper = new Float64Array(P);
    const x0 = new Float64Array(P);
    for (let d = 0; d < dims; d++) {
      lower[d] = BOUNDS.logLengthscale[0];
      upper[d] = BOUNDS.logLengthscale[1];
      x0[d] = PRIOR.logLengthscale[0];
    }
    lower[dims] = BOUNDS.logSignal[0];
    upper[dims] = BOUNDS.logSignal[1];
    lower[dims + 1] = BOUNDS.logNoise[0];
    upper[dims + 1] = BOUNDS.logNoise[1];
    x0[dims + 1] = Math.log(1e-3);
    for (let k = 0; k < 2 * nw; k++) {
      lower[dims + 2 + k] = BOUNDS.logWarp[0];
      upper[dims + 2 + k] = BOUNDS.logWarp[1];
    }
    const objective = new HyperparameterObjective(rawX, n, dims, y, warpIdx);
    const best = minimizeLbfgs(
      (t, g) => objective.evaluate(t, g),
      x0,
      lower,
      upper,
      options.maxEvaluations ?? 60,
    );
    const theta = Number.isFinite(best.f) ? best.x : x0;
    return GaussianProcess.withHyper(rawX, n, dims, y, unpack(theta, dims, warpIdx), options.warp);
  }

  /** The model with given hyperparameters (no fitting), e.g. to add fantasised points. */
  static withHyper(
    rawX: Float64Array,
    n: number,
    dims: number,
    y: Float64Array,
    hyper: Hyper,
    warp: readonly boolean[] | null,
    observed = n,
  ): GaussianProcess {
    const X = warpInputs(rawX, n, dims, hyper);
    const invLs2 = hyper.logLengthscale.map((l) => Math.exp(-2 * l));
    const signal = Math.exp(hyper.logSignal);
    let noise = Math.exp(hyper.logNoise);
    // Fantasised points (past `observed`) are believed exactly: only a jitter of noise.
    let fantasyNoise = 1e-6 * signal;
    for (let attempt = 0; ; attempt++) {
      const K = kernelMatrix(X, n, dims, invLs2, signal, noise);
      for (let i = observed; i < n; i++) K[i * n + i] = signal + fantasyNoise;
      if (cholesky(K, n)) {
        const alpha = solveUpperT(K, n, solveLower(K, n, Float64Array.from(y)));
        return new GaussianProcess(n, dims, X, y, hyper, warp, K, alpha, invLs2);
      }
      if (attempt > 8) throw new Error('kernel matrix is not positive definite');
      noise = noise * 10 + 1e-8;
      fantasyNoise *= 10;
    }
  }

  /** Maps raw unit-cube inputs through the fitted warp (identity when not warped). */
  warpPoint(x: Float64Array, out: Float64Array): Float64Array {
    for (let d = 0; d < this.dims; d++) {
      const u = x[d] as number;
      out[d] =
        this.warped?.[d] === true
          ? warpValue(
              u,
              Math.exp(this.hyper.logWarpA[d] as number),
              Math.exp(this.hyper.logWarpB[d] as number),
            )
          : u;
    }
    return out;
  }

  /**
   * Posterior mean and variance of f at x (raw unit-cube input). `scratch` must have n slots
   * and `wx` dims slots; they are reused across calls to avoid allocation.
   */
  predict(x: Float64Array, scratch: Float64Array, wx: Float64Array): { mean: number; variance: number } {
    const n = this.n;
    const dims = this.dims;
    this.warpPoint(x, wx);
    const signal = Math.exp(this.hyper.logSignal);
    let mean = 0;
    for (let i = 0; i < n; i++) {
      let r2 = 0;
      const base = i * dims;
      for (let d = 0; d < dims; d++) {
        const diff = (wx[d] as number) - (this.X[base + d] as number);
        r2 += diff * diff * (this.invLs2[d] as number);
      }
      const r = Math.sqrt(r2);
      const k = signal * (1 + SQRT5 * r + (5 / 3) * r2) * Math.exp(-SQRT5 * r);
      scratch[i] = k;
      mean += k * (this.alpha[i] as number);
    }
    // v = L⁻¹ k; variance = k(x, x) − vᵀv
    const L = this.L;
    let vv = 0;
    for (let i = 0; i < n; i++) {
      const ri = i * n;
      let s = scratch[i] as number;
      for (let k = 0; k < i; k++) s -= (L[ri + k] as number) * (scratch[k] as number);
      s /= L[ri + i] as number;
      scratch[i] = s;
      vv += s * s;
    }
    return { mean, variance: Math.max(signal - vv, 1e-12 * signal) };
  }

  /** The same model with extra observations, hyperparameters unchanged. */
  condition(extraX: Float64Array, extraY: Float64Array, m: number, rawX: Float64Array): GaussianProcess {
    const X = new Float64Array((this.n + m) * this.dims);
    X.set(rawX.subarray(0, this.n * this.dims));
    X.set(extraX.subarray(0, m * this.dims), this.n * this.dims);
    const y = new Float64Array(this.n + m);
    y.set(this.y);
    y.set(extraY.subarray(0, m), this.n);
    return GaussianProcess.withHyper(X, this.n + m, this.dims, y, this.hyper, this.warped, this.n);
  }
}

function unpack(theta: Float64Array, dims: number, warpIdx: readonly number[]): Hyper {
  const logWarpA = new Float64Array(dims);
  const logWarpB = new Float64Array(dims);
  warpIdx.forEach((d, k) => {
    logWarpA[d] = theta[dims + 2 + 2 * k] as number;
    logWarpB[d] = theta[dims + 3 + 2 * k] as number;
  });
  return {
    logLengthscale: theta.slice(0, dims),
    logSignal: theta[dims] as number,
    logNoise: theta[dims + 1] as number,
    logWarpA,
    logWarpB,
  };
}

function warpInputs(rawX: Float64Array, n: number, dims: number, hyper: Hyper): Float64Array {
  const X = Float64Array.from(rawX.subarray(0, n * dims));
  for (let d = 0; d < dims; d++) {
    const la = hyper.logWarpA[d] as number;
    const lb = hyper.logWarpB[d] as number;
    if (la === 0 && lb === 0) continue;
    const a = Math.exp(la);
    const b = Math.exp(lb);
    for (let i = 0; i < n; i++) X[i * dims + d] = warpValue(X[i * dims + d] as number, a, b);
  }
  return X;
}

function kernelMatrix(
  X: Float64Array,
  n: number,
  dims: number,
  invLs2: Float64Array,
  signal: number,
  noise: number,
): Float64Array {
  const K = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    K[i * n + i] = signal + noise;
    for (let j = 0; j < i; j++) {
      let r2 = 0;
      for (let d = 0; d < dims; d++) {
        const diff = (X[i * dims + d] as number) - (X[j * dims + d] as number);
        r2 += diff * diff * (invLs2[d] as number);
      }
      const r = Math.sqrt(r2);
      const k = signal * (1 + SQRT5 * r + (5 / 3) * r2) * Math.exp(-SQRT5 * r);
      K[i * n + j] = k;
      K[j * n + i] = k;
    }
  }
  return K;
}

/** Negative log posterior of the hyperparameters and its gradient. */
export class HyperparameterObjective {
  private readonly K: Float64Array;
  private readonly X: Float64Array;
  private readonly dWarpA: Float64Array;
  private readonly dWarpB: Float64Array;
  private readonly R: Float64Array;
  private readonly E: Float64Array;
  private readonly Kinv: Float64Array;
  private readonly T: Float64Array;
  private readonly alpha: Float64Array;
  private readonly invLs2: Float64Array;

  constructor(
    private readonly rawX: Float64Array,
    private readonly n: number,
    private readonly dims: number,
    private readonly y: Float64Array,
    private readonly warpIdx: readonly number[],
  ) {
    this.K = new Float64Array(n * n);
    this.X = new Float64Array(n * dims);
    this.dWarpA = new Float64Array(n * dims);
    this.dWarpB = new Float64Array(n * dims);
    this.R = new Float64Array(n * n);
    this.E = new Float64Array(n * n);
    this.Kinv = new Float64Array(n * n);
    this.T = new Float64Array(n * n);
    this.alpha = new Float64Array(n);
    this.invLs2 = new Float64Array(dims);
  }

  evaluate(theta: Float64Array, grad: Float64Array): number {
    const { n, dims, X, K, y } = this;
    const signal = Math.exp(theta[dims] as number);
    const noise = Math.exp(theta[dims + 1] as number);
    const invLs2 = this.invLs2;
    for (let d = 0; d < dims; d++) invLs2[d] = Math.exp(-2 * (theta[d] as number));
    X.set(this.rawX.subarray(0, n * dims));
    this.warpIdx.forEach((d, k) => {
      const a = Math.exp(theta[dims + 2 + 2 * k] as number);
      const b = Math.exp(theta[dims + 3 + 2 * k] as number);
      for (let i = 0; i < n; i++) {
        const u = Math.min(1 - WARP_EPS, Math.max(WARP_EPS, this.rawX[i * dims + d] as number));
        const ua = u ** a;
        const oneMinus = 1 - ua;
        const pow = oneMinus ** b;
        X[i * dims + d] = 1 - pow;
        // ∂w/∂log a = a · b (1−uᵃ)^{b−1} uᵃ ln u;  ∂w/∂log b = −b (1−uᵃ)ᵇ ln(1−uᵃ)
        this.dWarpA[i * dims + d] = a * b * oneMinus ** (b - 1) * ua * Math.log(u);
        this.dWarpB[i * dims + d] = -b * pow * Math.log(Math.max(oneMinus, 1e-300));
      }
    });
    // K (lower triangle and diagonal); keep r and e^(−√5 r) per pair for the gradient.
    const R = this.R;
    const E = this.E;
    for (let i = 0; i < n; i++) {
      K[i * n + i] = signal + noise;
      for (let j = 0; j < i; j++) {
        let r2 = 0;
        for (let d = 0; d < dims; d++) {
          const diff = (X[i * dims + d] as number) - (X[j * dims + d] as number);
          r2 += diff * diff * (invLs2[d] as number);
        }
        const r = Math.sqrt(r2);
        const e = Math.exp(-SQRT5 * r);
        R[i * n + j] = r;
        E[i * n + j] = e;
        K[i * n + j] = signal * (1 + SQRT5 * r + (5 / 3) * r2) * e;
        K[j * n + i] = K[i * n + j] as number;
      }
    }
    if (!cholesky(K, n)) {
      grad.fill(0);
      return Number.POSITIVE_INFINITY;
    }
    const alpha = this.alpha;
    alpha.set(y);
    solveUpperT(K, n, solveLower(K, n, alpha));
    let nll = 0.5 * n * LOG_2PI;
    for (let i = 0; i < n; i++)
      nll += 0.5 * (y[i] as number) * (alpha[i] as number) + Math.log(K[i * n + i] as number);
    const Kinv = choleskyInverse(K, n, this.Kinv, this.T);
    // W = ααᵀ − K⁻¹ ; ∂nll/∂θ = −½ tr(W ∂K/∂θ)
    grad.fill(0);
    const P = dims + 2 + 2 * this.warpIdx.length;
    const g = new Float64Array(P);
    let trSignal = 0;
    let trNoise = 0;
    for (let i = 0; i < n; i++) {
      const wii = (alpha[i] as number) * (alpha[i] as number) - (Kinv[i * n + i] as number);
      trSignal += wii * signal;
      trNoise += wii * noise;
      for (let j = 0; j < i; j++) {
        const w = 2 * ((alpha[i] as number) * (alpha[j] as number) - (Kinv[i * n + j] as number));
        const r = R[i * n + j] as number;
        const e = E[i * n + j] as number;
        trSignal += w * signal * (1 + SQRT5 * r + (5 / 3) * r * r) * e;
        const gij = w * signal * (5 / 3) * (1 + SQRT5 * r) * e;
        for (let d = 0; d < dims; d++) {
          const diff = (X[i * dims + d] as number) - (X[j * dims + d] as number);
          g[d] = (g[d] as number) + gij * diff * diff * (invLs2[d] as number);
        }
        for (let k = 0; k < this.warpIdx.length; k++) {
          const d = this.warpIdx[k] as number;
          const diff = (X[i * dims + d] as number) - (X[j * dims + d] as number);
          const f = -gij * diff * (invLs2[d] as number);
          const da = (this.dWarpA[i * dims + d] as number) - (this.dWarpA[j * dims + d] as number);
          const db = (this.dWarpB[i * dims + d] as number) - (this.dWarpB[j * dims + d] as number);
          g[dims + 2 + 2 * k] = (g[dims + 2 + 2 * k] as number) + f * da;
          g[dims + 3 + 2 * k] = (g[dims + 3 + 2 * k] as number) + f * db;
        }
      }
    }
    g[dims] = trSignal;
    g[dims + 1] = trNoise;
    for (let p = 0; p < P; p++) grad[p] = -0.5 * (g[p] as number);
    // Priors (negative log density, constants dropped).
    const prior = (p: number, [mean, sd]: readonly [number, number]): void => {
      const z = ((theta[p] as number) - mean) / sd;
      nll += 0.5 * z * z;
      grad[p] = (grad[p] as number) + z / sd;
    };
    for (let d = 0; d < dims; d++) prior(d, PRIOR.logLengthscale);
    prior(dims, PRIOR.logSignal);
    prior(dims + 1, PRIOR.logNoise);
    for (let k = 0; k < 2 * this.warpIdx.length; k++) prior(dims + 2 + k, PRIOR.logWarp);
    return nll;
  }
}
