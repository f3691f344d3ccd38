/**
 * Parzen (kernel density) estimators over configurations, as the tree-structured Parzen
 * estimator uses them: a weighted mixture with one kernel per observation plus a prior kernel.
 * Numeric parameters live in [0, 1] (the space's unit scale) with truncated-normal kernels;
 * categorical ones get a kernel that puts extra mass on the observed choice.
 */
import { logSumExp, normMass, truncNormalFromUniform } from './math.js';
import type { Rng } from './rng.js';

/** One parameter of an estimator: numeric (unit interval) or categorical with k choices. */
export type Dim = { kind: 'numeric' } | { kind: 'categorical'; k: number };

export interface WeightedPoint {
  /** unit value for numeric dims, choice index for categorical dims */
  values: readonly number[];
  weight: number;
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

  constructor(
    private readonly dims: readonly Dim[],
    points: readonly WeightedPoint[],
    options: ParzenOptions,
  ) {
    const n = points.length;
    const K = n + 1;
    this.size = K;
    this.w = new Float64Array(K);
    let total = 0;
    points.forEach((p, i) => {
      this.w[i] = p.weight;
      total += p.weight;
    });
    this.w[n] = options.priorWeight;
    total += options.priorWeight;
    for (let k = 0; k < K; k++) this.w[k] = (this.w[k] as number) / total;
    this.logW = this.w.map((v) => Math.log(v));
    const numericCount = dims.filter((d) => d.kind === 'numeric').length;
    dims.forEach((dim, j) => {
      if (dim.kind === 'numeric') {
        const mu = new Float64Array(K);
        for (let i = 0; i < n; i++) mu[i] = (points[i] as WeightedPoint).values[j] as number;
        mu[n] = 0.5;
        const sigma = options.multivariate ? jointBandwidth(n, numericCount) : neighbourBandwidth(mu, n);
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
          const chosen = (points[i] as WeightedPoint).values[j] as number;
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
  logPdf(values: readonly number[], scratch: Float64Array = new Float64Array(this.size)): number {
    const K = this.size;
    for (let i = 0; i < K; i++) scratch[i] = this.logW[i] as number;
    this.dims.forEach((dim, j) => {
      const x = values[j] as number;
      if (dim.kind === 'numeric') {
        const mu = this.mus[j] as Float64Array;
        const sigma = this.sigmas[j] as Float64Array;
        const norm = this.logNorm[j] as Float64Array;
        for (let i = 0; i < K; i++) {
          const z = (x - (mu[i] as number)) / (sigma[i] as number);
          scratch[i] = (scratch[i] as number) + (norm[i] as number) - 0.5 * z * z;
        }
      } else {
        const lp = this.logP[j] as Float64Array;
        for (let i = 0; i < K; i++) scratch[i] = (scratch[i] as number) + (lp[i * dim.k + x] as number);
      }
    });
    return logSumExp(scratch.subarray(0, K));
  }
}

/** Scott-like rule for joint kernels: 0.2 · n^(−1/(d+4)) of the range (Optuna's multivariate). */
function jointBandwidth(n: number, d: number): Float64Array {
  return new Float64Array(n + 1).fill(0.2 * Math.max(n, 1) ** (-1 / (d + 4)));
}

/** Each kernel as wide as the larger gap to its sorted neighbours (bounds count as neighbours). */
function neighbourBandwidth(mu: Float64Array, n: number): Float64Array {
  const order = [...Array(n).keys()].sort((a, b) => (mu[a] as number) - (mu[b] as number) || a - b);
  const sigma = new Float64Array(n + 1);
  for (let r = 0; r < n; r++) {
    const i = order[r] as number;
    const left = r === 0 ? 0 : (mu[order[r - 1] as number] as number);
    const right = r === n - 1 ? 1 : (mu[order[r + 1] as number] as number);
    let s = Math.max((mu[i] as number) - left, right - (mu[i] as number));
    // The outermost kernels look only inward (Optuna's consider_endpoints=False).
    if (n >= 2 && r === 0) s = (mu[order[1] as number] as number) - (mu[i] as number);
    if (n >= 2 && r === n - 1) s = (mu[i] as number) - (mu[order[n - 2] as number] as number);
    sigma[i] = s;
  }
  return sigma;
}
