/**
 * CMA-ES (Hansen's covariance matrix adaptation evolution strategy) for the unconditional
 * numeric parameters, in the unit cube; categorical and conditional parameters are drawn at
 * random. Stateless: the strategy's state is rebuilt on every suggestion by replaying the
 * finished trials in trial-number order, λ at a time, each block one generation. Run one trial
 * at a time and this is exactly CMA-ES; run in parallel it is CMA-ES with injected solutions,
 * whose steps are clipped in Mahalanobis norm (Hansen 2011) so a stale sample cannot derail it.
 * Warm start: the best earlier-sweep trial (negative number) becomes the initial mean.
 */
import {
  dependencyOrder,
  isActive,
  type NumericSpec,
  type ParamSpec,
  type Params,
  type Space,
  toUnit,
} from '../space.js';
import { type Scored, sampleUniform, scoredHistory, seedOf, valueFromUnit } from './common.js';
import { symmetricEigen } from './linalg.js';
import { readOptions } from './options.js';
import { Rng } from './rng.js';
import type { Direction, Observation, Optimizer, OptimizerSpec } from './types.js';

export interface CmaState {
  mean: Float64Array;
  sigma: number;
  C: Float64Array;
  pSigma: Float64Array;
  pC: Float64Array;
  /** eigenvectors (columns) and square roots of eigenvalues of C */
  B: Float64Array;
  D: Float64Array;
  generation: number;
}

interface Constants {
  lambda: number;
  mu: number;
  weights: number[];
  muEff: number;
  cSigma: number;
  dSigma: number;
  cC: number;
  c1: number;
  cMu: number;
  chiN: number;
}

function constants(d: number, popsize: number): Constants {
  const lambda = popsize > 0 ? popsize : 4 + Math.floor(3 * Math.log(d));
  const mu = Math.floor(lambda / 2);
  const raw = Array.from({ length: mu }, (_, i) => Math.log((lambda + 1) / 2) - Math.log(i + 1));
  const sum = raw.reduce((a, b) => a + b, 0);
  const weights = raw.map((w) => w / sum);
  const muEff = 1 / weights.reduce((a, w) => a + w * w, 0);
  const cSigma = (muEff + 2) / (d + muEff + 5);
  const dSigma = 1 + 2 * Math.max(0, Math.sqrt((muEff - 1) / (d + 1)) - 1) + cSigma;
  const cC = (4 + muEff / d) / (d + 4 + (2 * muEff) / d);
  const c1 = 2 / ((d + 1.3) ** 2 + muEff);
  const cMu = Math.min(1 - c1, (2 * (muEff - 2 + 1 / muEff)) / ((d + 2) ** 2 + muEff));
  const chiN = Math.sqrt(d) * (1 - 1 / (4 * d) + 1 / (21 * d * d));
  return { lambda, mu, weights, muEff, cSigma, dSigma, cC, c1, cMu, chiN };
}

function initialState(d: number, mean: Float64Array, sigma: number): CmaState {
  const C = new Float64Array(d * d);
  const B = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    C[i * d + i] = 1;
    B[i * d + i] = 1;
  }
  return {
    mean,
    sigma,
    C,
    pSigma: new Float64Array(d),
    pC: new Float64Array(d),
    B,
    D: new Float64Array(d).fill(1),
    generation: 0,
  };
}

/** C^{-1/2} v = B D⁻¹ Bᵀ v */
function invSqrtTimes(s: CmaState, v: Float64Array, d: number): Float64Array {
  const t = new Float64Array(d);
  for (let k = 0; k < d; k++) {
    let acc = 0;
    for (let i = 0; i < d; i++) acc += (s.B[i * d + k] as number) * (v[i] as number);
    t[k] = acc / (s.D[k] as number);
  }
  const out = new Float64Array(d);
  for (let i = 0; i < d; i++) {
    let acc = 0;
    for (let k = 0; k < d; k++) acc += (s.B[i * d + k] as number) * (t[k] as number);
    out[i] = acc;
  }
  return out;
}

const norm = (v: Float64Array): number => Math.sqrt(v.reduce((a, x) => a + x * x, 0));

/** One generation: points (unit cube) with their losses. Returns the next state. */
export function cmaUpdate(
  s: CmaState,
  xs: readonly Float64Array[],
  losses: readonly number[],
  k: Constants,
): CmaState {
  const d = s.mean.length;
  const order = [...losses.keys()].sort((a, b) => (losses[a] as number) - (losses[b] as number) || a - b);
  const clip = Math.sqrt(d) + (2 * d) / (d + 2);
  const ys = order.slice(0, k.mu).map((i) => {
    const y = (xs[i] as Float64Array).map((v, j) => (v - (s.mean[j] as number)) / s.sigma);
    const m = norm(invSqrtTimes(s, y, d));
    return m > clip ? y.map((v) => (v * clip) / m) : y;
  });
  const yw = new Float64Array(d);
  ys.forEach((y, i) => {
    for (let j = 0; j < d; j++) yw[j] = (yw[j] as number) + (k.weights[i] as number) * (y[j] as number);
  });
  const mean = s.mean.map((m, j) => m + s.sigma * (yw[j] as number));
  const cs = Math.sqrt(k.cSigma * (2 - k.cSigma) * k.muEff);
  const zw = invSqrtTimes(s, yw, d);
  const pSigma = s.pSigma.map((p, j) => (1 - k.cSigma) * p + cs * (zw[j] as number));
  const g = s.generation + 1;
  const hSigma =
    norm(pSigma) / Math.sqrt(1 - (1 - k.cSigma) ** (2 * g)) < (1.4 + 2 / (d + 1)) * k.chiN ? 1 : 0;
  const cc = Math.sqrt(k.cC * (2 - k.cC) * k.muEff);
  const pC = s.pC.map((p, j) => (1 - k.cC) * p + hSigma * cc * (yw[j] as number));
  const decay = 1 - k.c1 - k.cMu + (1 - hSigma) * k.c1 * k.cC * (2 - k.cC);
  const C = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j <= i; j++) {
      let rankMu = 0;
      ys.forEach((y, r) => {
        rankMu += (k.weights[r] as number) * (y[i] as number) * (y[j] as number);
      });
      const v =
        decay * (s.C[i * d + j] as number) + k.c1 * (pC[i] as number) * (pC[j] as number) + k.cMu * rankMu;
      C[i * d + j] = v;
      C[j * d + i] = v;
    }
  }
  const sigma = s.sigma * Math.exp(Math.min(1, (k.cSigma / k.dSigma) * (norm(pSigma) / k.chiN - 1)));
  const { values, vectors } = symmetricEigen(C, d);
  const D = values.map((v) => Math.sqrt(Math.max(v, 1e-20)));
  return { mean, sigma, C, pSigma, pC, B: vectors, D, generation: g };
}

export function createCmaes(spec: OptimizerSpec, space: Space, directions: Direction[]): Optimizer {
  const opts = readOptions('cmaes', spec);
  const seed = seedOf(spec);
  const dims = dependencyOrder(space).filter((n) => {
    const s = space[n] as ParamSpec;
    return s.type !== 'categorical' && s.when === undefined;
  });
  const d = dims.length;
  const k = constants(Math.max(d, 1), opts.popsize);
  const encode = (p: Params): Float64Array | null => {
    const x = new Float64Array(d);
    for (let j = 0; j < d; j++) {
      const v = p[dims[j] as string];
      if (typeof v !== 'number' || !Number.isFinite(v)) return null;
      x[j] = toUnit(space[dims[j] as string] as NumericSpec, v);
    }
    return x;
  };
  return {
    size: null,
    suggest(number: number, history: readonly Observation[]): Params {
      const rng = Rng.for(seed, number, 'cmaes');
      const base = sampleUniform(space, Rng.for(seed, number, 'cmaes-rest'));
      const scored = scoredHistory(history, directions);
      if (d === 0 || scored.length < opts.n_startup_trials) return base;
      const state = replay(scored, encode, d, k, opts.sigma0);
      // Resample points outside the cube a few times, then clip (keeps the distribution's shape).
      let x = new Float64Array(d);
      for (let attempt = 0; attempt < 10; attempt++) {
        const z = Array.from({ length: d }, () => rng.normal());
        x = state.mean.map((m, i) => {
          let acc = 0;
          for (let j = 0; j < d; j++)
            acc += (state.B[i * d + j] as number) * (state.D[j] as number) * (z[j] as number);
          return m + state.sigma * acc;
        });
        if (x.every((v) => v >= 0 && v <= 1)) break;
      }
      const out: Params = { ...base };
      dims.forEach((name, j) => {
        out[name] = valueFromUnit(space[name] as ParamSpec, Math.min(1, Math.max(0, x[j] as number)));
      });
      // Activity of conditional parameters may depend on the values CMA-ES just set.
      for (const name of dependencyOrder(space)) {
        if (!isActive(space, name, out)) delete out[name];
        else if (out[name] === undefined) out[name] = valueFromUnit(space[name] as ParamSpec, rng.next());
      }
      return out;
    },
  };
}

function replay(
  scored: readonly Scored[],
  encode: (p: Params) => Float64Array | null,
  d: number,
  k: Constants,
  sigma0: number,
): CmaState {
  const warm = scored.filter((s) => s.number < 0);
  let mean: Float64Array = new Float64Array(d).fill(0.5);
  if (warm.length > 0) {
    const best = warm.reduce((a, b) => ((b.losses[0] as number) < (a.losses[0] as number) ? b : a));
    mean = encode(best.params) ?? mean;
  }
  let state = initialState(d, mean, sigma0);
  let xs: Float64Array[] = [];
  let ls: number[] = [];
  for (const s of scored) {
    if (s.number < 0) continue;
    const x = encode(s.params);
    if (x === null) continue;
    xs.push(x);
    ls.push(s.losses[0] as number);
    if (xs.length === k.lambda) {
      state = cmaUpdate(state, xs, ls, k);
      xs = [];
      ls = [];
    }
  }
  return state;
}
