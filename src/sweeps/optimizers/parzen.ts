/**
 * Parzen (kernel density) estimators over configurations, as the tree-structured Parzen
 * estimator uses them: a weighted mixture with one kernel per observation plus a prior kernel.
 * Numeric parameters live in [0, 1] (the space's unit scale) with truncated-normal kernels;
 * categorical ones get a kernel that puts extra mass on the observed choice.
 */
import { normMass, truncNormalFromUniform } from './math.js';
import type { Rng } from './rng.js';

/** One parameter of an estimator: numeric (unit interval) or categorical with k choices. */
export type Dim = { kind: 'numeric' } | { kind: 'categorical'; k: number };

/** Observations of an estimator: n rows of d values (unit value or choice index), row-major. */
export interface Points {
  n: number;
  values: Float64Array;
  weights: Float64Array;
}

export interface ParzenOptions {
  /** one bandwidth per dimension from the kernel count (joint) vs. from neighbour gaps */
  multivariate: boolean;
  priorWeight: number;
}

const LOG_SQRT_2PI = 0.5 * Math.log(2 * Math.PI);

export class ParzenEstimator {
  /** log mixture weights, K kernels (observations, then the prior) */
  private readonly logW: Float64Array;
  private readonly w: Float64Array;
  private readonly mus: Float64Array[] = [];
  private readonly sigmas: Float64Array[] = [];
  /** −log σ − log(mass inside [0, 1]) − ½log 2π per kernel: the kernel's log normaliser */
  private readonly logNorm: Float64Array[] = [];
  /** log probabilities of each choice per kernel, K × k flattened */
  private readonly logP: Float64Array[] = [];
  readonly size: number;

  private readonly scratch: Float64Array;

  constructor(
    private readonly dims: readonly Dim[],
    points: Points,
    options: ParzenOptions,
  ) {
    const n = points.n;
    const d = dims.length;
    const K = n + 1;
    this.size = K;
    this.scratch = new Float64Array(K);
    this.w = new Float64Array(K);
    let total = 0;
    for (let i = 0; i < n; i++) {
      const w = points.weights[i] as number;
      this.w[i] = w;
      total += w;
    }
    this.w[n] = options.priorWeight;
    total += options.priorWeight;
    for (let k = 0; k < K; k++) this.w[k] = (this.w[k] as number) / total;
    this.logW = this.w.map((v) => Math.log(v));
    const numericCount = dims.filter((d) => d.kind === 'numeric').length;
    dims.forEach((dim, j) => {
      if (dim.kind === 'numeric') {
        const mu = new Float64Array(K);
        for (let i = 0; i < n; i++) mu[i] = points.values[i * d + j] as number;
        mu[n] = 0.5;
        const sigma = options.multivariate
          ? scottBandwidth(mu, this.w, n, numericCount)
          : neighbourBandwidth(mu, n);
        // Magic clip (Bergstra et al.): no kernel narrower than 1/min(100, n + 2) of the range.
        const minSigma = 1 / Math.min(100, n + 2);
        for (let i = 0; i < n; i++) sigma[i] = Math.min(1, Math.max(minSigma, sigma[i] as number));
        sigma[n] = 1;
        const norm = new Float64Array(K);
        for (let i = 0; i < K; i++) {
          const s = sigma[i] as number;
          const m = mu[i] as number;
          norm[i] = -LOG_SQRT_2PI - Math.log(s) - Math.log(Math.max(normMass(-m / s, (1 - m) / s), 1e-300));
        }
        this.mus[j] = mu;
        this.sigmas[j] = sigma;
        this.logNorm[j] = norm;
      } else {
        const k = dim.k;
        const lp = new Float64Array(K * k);
        // Each observation's kernel: its choice gets 1 + ε, the others ε, with ε = prior/(n+1).
        const eps = options.priorWeight / (n + 1);
        for (let i = 0; i < n; i++) {
          const chosen = points.values[i * d + j] as number;
          const z = 1 + eps * k;
          for (let c = 0; c < k; c++) lp[i * k + c] = Math.log(((c === chosen ? 1 : 0) + eps) / z);
        }
        for (let c = 0; c < k; c++) lp[n * k + c] = -Math.log(k);
        this.logP[j] = lp;
      }
    });
  }

  /** One draw: a kernel by weight, then each dimension from that kernel. */
  sample(rng: Rng): number[] {
    const kernel = rng.weighted(this.w);
    return this.dims.map((dim, j) => {
      if (dim.kind === 'numeric') {
        const mu = (this.mus[j] as Float64Array)[kernel] as number;
        const sigma = (this.sigmas[j] as Float64Array)[kernel] as number;
        return truncNormalFromUniform(mu, sigma, 0, 1, rng.next());
      }
      const lp = this.logP[j] as Float64Array;
      const probs = Array.from({ length: dim.k }, (_, c) => Math.exp(lp[kernel * dim.k + c] as number));
      return rng.weighted(probs);
    });
  }

  /** log density of the mixture at one point. */
  logPdf(values: ArrayLike<number>): number {
    const K = this.size;
    const acc = this.scratch;
    acc.set(this.logW);
    for (let j = 0; j < this.dims.length; j++) {
      const dim = this.dims[j] as Dim;
      const x = values[j] as number;
      if (dim.kind === 'numeric') {
        const mu = this.mus[j] as Float64Array;
        const sigma = this.sigmas[j] as Float64Array;
        const norm = this.logNorm[j] as Float64Array;
        for (let i = 0; i < K; i++) {
          const z = (x - (mu[i] as number)) / (sigma[i] as number);
          acc[i] = (acc[i] as number) + (norm[i] as number) - 0.5 * z * z;
        }
      } else {
        const lp = this.logP[j] as Float64Array;
        const k = dim.k;
        for (let i = 0; i < K; i++) acc[i] = (acc[i] as number) + (lp[i * k + x] as number);
      }
    }
    let max = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < K; i++) if ((acc[i] as number) > max) max = acc[i] as number;
    let sum = 0;
    for (let i = 0; i < K; i++) sum += Math.exp((acc[i] as number) - max);
    return max + Math.log(sum);
  }
}

/**
 * Scott's rule for joint kernels: 1.059 · (weighted spread of the trials) · n^(−1/(d+4)). Optuna
 * uses a fixed 0.2 · n^(−1/(d+4)) of the range instead; following the trials' spread lets the
 * kernels narrow as the good trials cluster, which converges markedly faster (bench/RESULTS.md).
 */
function scottBandwidth(mu: Float64Array, w: Float64Array, n: number, d: number): Float64Array {
  if (n < 2) return jointBandwidth(n, d);
  let tw = 0;
  let mean = 0;
  for (let i = 0; i < n; i++) {
    tw += w[i] as number;
    mean += (w[i] as number) * (mu[i] as number);
  }
  mean /= tw;
  let v = 0;
  for (let i = 0; i < n; i++) v += (w[i] as number) * ((mu[i] as number) - mean) ** 2;
  const sd = Math.sqrt(v / tw);
  return new Float64Array(n + 1).fill(1.059 * sd * n ** (-1 / (d + 4)));
}

/** Optuna's joint bandwidth, 0.2 · n^(−1/(d+4)) of the range (used until there are two trials). */
function jointBandwidth(n: number, d: number): Float64Array {
  return new Float64Array(n + 1).fill(0.2 * Math.max(n, 1) ** (-1 / (d + 4)));
}

/**
 * Each kernel as wide as the larger gap to its sorted neighbours, the bounds and the prior's
 * centre counting as neighbours (Optuna's univariate rule); the outermost kernels look only
 * inward (consider_endpoints = false).
 */
function neighbourBandwidth(mu: Float64Array, n: number): Float64Array {
  // mu[n] is the prior's centre: it takes part in the ordering like an observation.
  const m = n + 1;
  const order = Array.from({ length: m }, (_, i) => i).sort(
    (a, b) => (mu[a] as number) - (mu[b] as number) || a - b,
  );
  const sorted = new Float64Array(m + 2);
  sorted[0] = 0;
  for (let r = 0; r < m; r++) sorted[r + 1] = mu[order[r] as number] as number;
  sorted[m + 1] = 1;
  const sigma = new Float64Array(m);
  for (let r = 0; r < m; r++) {
    sigma[order[r] as number] = Math.max(
      (sorted[r + 1] as number) - (sorted[r] as number),
      (sorted[r + 2] as number) - (sorted[r + 1] as number),
    );
  }
  if (m + 2 >= 4) {
    sigma[order[0] as number] = (sorted[2] as number) - (sorted[1] as number);
    sigma[order[m - 1] as number] = (sorted[m] as number) - (sorted[m - 1] as number);
  }
  return sigma;
}
