/**
 * Gaussian-process Bayesian optimisation with expected improvement.
 *
 * Each suggestion: encode finished trials into the unit cube (log scales applied by the space),
 * warp the losses (Yeo–Johnson), fit a Matérn-5/2 ARD GP by marginal likelihood, add running
 * trials as fantasies at the posterior mean (the "kriging believer" constant liar), then
 * maximise log EI over random and local candidates followed by a pattern search from the best
 * few. Above `max_points` finished trials the model keeps only the `local_points` nearest the
 * incumbent and searches inside their bounding box (a trust region, rescaled to the unit cube
 * so the priors still fit), so the cost of a suggestion stays flat however long the sweep.
 * Several objectives are scalarised per trial (ParEGO: random weights, augmented Chebyshev).
 * `cost_aware` trades score against cost around the score–cost Pareto front.
 */

import type { Params, Space } from '../space.js';
import { logExpectedImprovement } from './acquisition.js';
import { type Scored, scoredHistory, seedOf } from './common.js';
import { Encoder } from './encoding.js';
import { GaussianProcess } from './gaussian-process.js';
import { type Options, readOptions } from './options.js';
import { transformOutputs } from './output-transform.js';
import { paretoFront } from './pareto.js';
import { Rng } from './rng.js';
import { createSobol } from './sobol.js';
import type { Direction, Observation, Optimizer, OptimizerSpec } from './types.js';

type GpOptions = Options<'gp'>;

export function createGp(spec: OptimizerSpec, space: Space, directions: Direction[]): Optimizer {
  const opts = readOptions('gp', spec);
  const seed = seedOf(spec);
  const encoder = new Encoder(space);
  const startup = createSobol({ type: 'sobol', seed }, space);
  return {
    size: null,
    suggest(number: number, history: readonly Observation[], pending: readonly Params[]): Params {
      const scored = scoredHistory(history, directions);
      if (scored.length < opts.n_startup_trials) {
        return startup.suggest(Math.max(0, number), history, pending) as Params;
      }
      const rng = Rng.for(seed, number, 'gp');
      return suggestGp(encoder, opts, scored, history, pending, directions, rng);
    },
  };
}

/** Indices of the k smallest values, in increasing order (ties: lower index), by selection. */
function nearest(values: Float64Array, k: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < values.length; i++) {
    if (out.length === k && (values[i] as number) >= (values[out[k - 1] as number] as number)) continue;
    let pos = out.length === k ? k - 1 : out.length;
    if (out.length < k) out.push(i);
    while (pos > 0 && (values[out[pos - 1] as number] as number) > (values[i] as number)) {
      out[pos] = out[pos - 1] as number;
      pos--;
    }
    out[pos] = i;
  }
  return out;
}

/** The configurations already tried or running, compared value by value (no hashing). */
export class TakenSet {
  constructor(
    private readonly history: readonly Observation[],
    private readonly pending: readonly Params[],
  ) {}

  has(p: Params): boolean {
    const names = Object.keys(p);
    const same = (q: Params): boolean => {
      let count = 0;
      for (const k in q) {
        if (q[k] !== p[k]) return false;
        count++;
      }
      return count === names.length;
    };
    return this.history.some((o) => same(o.params)) || this.pending.some(same);
  }
}

/** One scalar loss per trial: the loss, or a ParEGO scalarisation of several. */
function scalarLosses(scored: readonly Scored[], objectives: number, rng: Rng): number[] {
  if (objectives === 1) return scored.map((s) => s.losses[0] as number);
  const w = Array.from({ length: objectives }, () => -Math.log(1 - rng.next()));
  const total = w.reduce((a, b) => a + b, 0);
  const lo = Array.from({ length: objectives }, (_, k) =>
    Math.min(...scored.map((s) => s.losses[k] as number)),
  );
  const hi = Array.from({ length: objectives }, (_, k) =>
    Math.max(...scored.map((s) => s.losses[k] as number)),
  );
  return scored.map((s) => {
    let max = Number.NEGATIVE_INFINITY;
    let sum = 0;
    for (let k = 0; k < objectives; k++) {
      const range = (hi[k] as number) - (lo[k] as number);
      const f = range > 0 ? ((s.losses[k] as number) - (lo[k] as number)) / range : 0;
      const v = ((w[k] as number) / total) * f;
      max = Math.max(max, v);
      sum += v;
    }
    return max + 0.05 * sum;
  });
}

function suggestGp(
  encoder: Encoder,
  opts: GpOptions,
  scored: readonly Scored[],
  history: readonly Observation[],
  pending: readonly Params[],
  directions: readonly Direction[],
  rng: Rng,
): Params {
  const D = encoder.dims;
  const losses = scalarLosses(scored, directions.length, rng);
  // One flat buffer for every trial's coordinates; rows are viewed only where needed.
  const flat = new Float64Array(scored.length * D);
  scored.forEach((s, i) => {
    encoder.encode(s.params, flat.subarray(i * D, (i + 1) * D));
  });
  const row = (i: number): Float64Array => flat.subarray(i * D, (i + 1) * D);
  let bestIdx = 0;
  for (let i = 1; i < losses.length; i++)
    if ((losses[i] as number) < (losses[bestIdx] as number)) bestIdx = i;

  // Trust region once there are more points than the model keeps.
  let chosen = [...scored.keys()];
  const lower = new Float64Array(D).fill(0);
  const upper = new Float64Array(D).fill(1);
  const local = scored.length > opts.max_points;
  if (local) {
    // The model keeps the local_points trials nearest the incumbent (max-norm); candidates
    // come from the inner half of that neighbourhood, where the model has data on every side.
    // (Searching out to its edge invites a loop: a trial at the edge falls out of the next
    // model, which is then blind there again.) New trials land closer than the farthest kept
    // one, so they join the next model, and the region shrinks as the incumbent is refined.
    const inc = row(bestIdx);
    const dist = new Float64Array(scored.length);
    for (let i = 0; i < scored.length; i++) {
      let m = 0;
      for (let d = 0; d < D; d++) {
        if (encoder.numeric[d]) m = Math.max(m, Math.abs((flat[i * D + d] as number) - (inc[d] as number)));
      }
      dist[i] = m;
    }
    chosen = nearest(dist, opts.local_points > 0 ? opts.local_points : Math.min(24, 8 + 4 * D));
    const half = Math.max(0.5 * (dist[chosen[chosen.length - 1] as number] as number), 1e-4);
    for (let d = 0; d < D; d++) {
      if (!encoder.numeric[d]) continue;
      lower[d] = Math.max(0, (inc[d] as number) - half);
      upper[d] = Math.min(1, (inc[d] as number) + half);
    }
  }
  // The model works in the box's own coordinates (the whole cube unless local), so its priors
  // (length scales around half the box) fit a trust region as well as the full space.
  const span = upper.map((u, d) => Math.max(u - (lower[d] as number), 1e-12));
  const toModel = (x: Float64Array, out: Float64Array = new Float64Array(D)): Float64Array => {
    for (let d = 0; d < D; d++) out[d] = ((x[d] as number) - (lower[d] as number)) / (span[d] as number);
    return out;
  };
  const n = chosen.length;
  const X = new Float64Array(n * D);
  chosen.forEach((i, r) => {
    X.set(toModel(row(i)), r * D);
  });
  const y = Float64Array.from(
    transformOutputs(
      chosen.map((i) => losses[i] as number),
      opts.output_warping,
    ),
  );
  let gp = GaussianProcess.fit(X, n, D, y, {
    warp: opts.input_warping ? encoder.numeric : null,
    maxEvaluations: local ? 15 : 50,
  });

  const scratch = new Float64Array(n + pending.length);
  const wx = new Float64Array(D);
  const zx = new Float64Array(D);
  // Incumbent: the lowest posterior mean among the training points (robust to noise).
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < n; r++)
    best = Math.min(best, gp.predict(X.subarray(r * D, (r + 1) * D), scratch, wx).mean);

  if (opts.constant_liar && pending.length > 0) {
    const P = new Float64Array(pending.length * D);
    const py = new Float64Array(pending.length);
    pending.forEach((p, k) => {
      const e = toModel(encoder.encode(p));
      P.set(e, k * D);
      py[k] = gp.predict(e, scratch, wx).mean;
      // The believer believes the running trial's improvement too.
      best = Math.min(best, py[k] as number);
    });
    gp = gp.condition(P, py, pending.length, X);
  }
  const model = gp;
  const predict = (x: Float64Array): { mean: number; variance: number } =>
    model.predict(toModel(x, zx), scratch, wx);

  const taken = new TakenSet(history, pending);

  const costs = chosen.map((i) => scored[i]?.cost);
  if (opts.cost_aware && costs.every((c) => c !== undefined && Number.isFinite(c) && c > 0)) {
    const global = chosen.map(row);
    return suggestCostAware(encoder, opts, X, global, y, costs as number[], predict, toModel, taken, rng, [
      lower,
      upper,
    ]);
  }
  const acquisition = (x: Float64Array): number => {
    const { mean, variance } = predict(x);
    return logExpectedImprovement(mean, variance, best);
  };
  const incumbents = [...chosen]
    .sort((a, b) => (losses[a] as number) - (losses[b] as number) || a - b)
    .slice(0, 5)
    .map(row);
  // A local model's box is small: fewer candidates and shorter searches cover it as densely.
  const effort: Effort = local
    ? { candidates: Math.min(opts.n_candidates, 128), starts: 2, stepsPerDim: 12 }
    : { candidates: opts.n_candidates, starts: 3, stepsPerDim: 30 };
  return maximize(encoder, acquisition, incumbents, lower, upper, effort, taken, rng);
}

/**
 * Cost-aware search in the manner of the seed's Protein optimizer: a second GP models log cost;
 * candidates are drawn around the trials on the score–cost Pareto front; each suggestion aims
 * at a random cost level (up to 20% past the most expensive trial so far) and takes the
 * candidate with the best optimistic predicted score, discounted by how far its predicted cost
 * is from that level. Cheap and expensive regions of the front are both refined over time.
 */
function suggestCostAware(
  encoder: Encoder,
  opts: GpOptions,
  X: Float64Array,
  points: readonly Float64Array[],
  y: Float64Array,
  costs: readonly number[],
  predictScore: (x: Float64Array) => { mean: number; variance: number },
  toModel: (x: Float64Array, out: Float64Array) => Float64Array,
  taken: TakenSet,
  rng: Rng,
  [lower, upper]: [Float64Array, Float64Array],
): Params {
  const D = encoder.dims;
  const n = points.length;
  const logCost = costs.map((c) => Math.log(c));
  const lo = Math.min(...logCost);
  const hi = Math.max(...logCost);
  const span = hi - lo > 1e-12 ? hi - lo : 1;
  const cy = Float64Array.from(transformOutputs(logCost, false));
  const meanLc = logCost.reduce((a, b) => a + b, 0) / n;
  const sdLc = Math.sqrt(logCost.reduce((a, b) => a + (b - meanLc) ** 2, 0) / n) || 1;
  const costGp = GaussianProcess.fit(X, n, D, cy, { warp: null, maxEvaluations: 30 });
  const scratch = new Float64Array(n);
  const wx = new Float64Array(D);
  const zx = new Float64Array(D);
  const yMin = Math.min(...y);
  const yMax = Math.max(...y);
  const target = rng.next() * 1.2;
  const acquisition = (x: Float64Array): number => {
    const s = predictScore(x);
    const optimistic = s.mean - 0.5 * Math.sqrt(s.variance);
    const quality = (yMax - optimistic) / Math.max(yMax - yMin, 1e-12);
    const c = costGp.predict(toModel(x, zx), scratch, wx).mean * sdLc + meanLc;
    const weight = Math.max(0, 1 - Math.abs(target - (c - lo) / span));
    return quality * weight;
  };
  const front = paretoFront(
    Array.from({ length: n }, (_, i) => [y[i] as number, logCost[i] as number]),
    ['minimize', 'minimize'],
  );
  const incumbents = front.map((i) => points[i] as Float64Array);
  return maximize(
    encoder,
    acquisition,
    incumbents,
    lower,
    upper,
    { candidates: opts.n_candidates, starts: 3, stepsPerDim: 30 },
    taken,
    rng,
  );
}

export function maximize(
  encoder: Encoder,
  acquisition: (x: Float64Array) => number,
  incumbents: readonly Float64Array[],
  lower: Float64Array,
  upper: Float64Array,
  effort: Effort,
  taken: TakenSet,
  rng: Rng,
): Params {
  const D = encoder.dims;
  const nCandidates = effort.candidates;
  const evaluate = (x: Float64Array): Candidate => {
    if (encoder.discrete) encoder.realize(x);
    return { x, score: acquisition(x) };
  };
  const candidates: Candidate[] = [];
  const scales = [0.01, 0.05, 0.2];
  for (let c = 0; c < nCandidates; c++) {
    const x = new Float64Array(D);
    const local = incumbents.length > 0 && c % 2 === 1;
    const base = local ? (incumbents[rng.int(incumbents.length)] as Float64Array) : null;
    const scale = scales[rng.int(scales.length)] as number;
    for (const b of encoder.blocks) {
      if (b.spec.type === 'categorical') {
        const pick = base !== null && rng.next() < 0.8 ? -1 : rng.int(b.width);
        for (let k = 0; k < b.width; k++) {
          x[b.offset + k] = pick < 0 ? ((base as Float64Array)[b.offset + k] as number) : k === pick ? 1 : 0;
        }
      } else {
        const d = b.offset;
        const lo = lower[d] as number;
        const hi = upper[d] as number;
        const v =
          base !== null
            ? (base[d] as number) + scale * (hi - lo) * rng.normal()
            : lo + rng.next() * (hi - lo);
        x[d] = Math.min(hi, Math.max(lo, v));
      }
    }
    const e = evaluate(x);
    if (Number.isFinite(e.score)) candidates.push(e);
  }
  candidates.sort((a, b) => b.score - a.score);
  const refined = candidates
    .slice(0, effort.starts)
    .map((start) => patternSearch(encoder, evaluate, start, lower, upper, effort.stepsPerDim));
  const ranked = [...refined, ...candidates].sort((a, b) => b.score - a.score);
  // Only now look at what was already tried: in continuous spaces a repeat is all but impossible.
  for (const c of ranked) {
    const p = encoder.decode(c.x);
    if (!taken.has(p)) return p;
  }
  // Every candidate was taken (a small discrete space): a random point.
  const x = new Float64Array(D);
  for (let d = 0; d < D; d++) x[d] = rng.next();
  return encoder.realize(x);
}

/** How hard `maximize` searches: random candidates, pattern-search starts, steps per dimension. */
export interface Effort {
  candidates: number;
  starts: number;
  stepsPerDim: number;
}

interface Candidate {
  x: Float64Array;
  score: number;
}

function patternSearch(
  encoder: Encoder,
  evaluate: (x: Float64Array) => Candidate,
  start: Candidate,
  lower: Float64Array,
  upper: Float64Array,
  stepsPerDim: number,
): Candidate {
  let current = start;
  const numericDims = encoder.blocks.filter((b) => b.spec.type !== 'categorical').map((b) => b.offset);
  let step = 0.05;
  let budget = stepsPerDim * Math.max(1, numericDims.length);
  while (step > 1e-4 && budget > 0) {
    let improved = false;
    for (const d of numericDims) {
      for (const dir of [1, -1]) {
        if (budget-- <= 0) break;
        const x = Float64Array.from(current.x);
        const width = (upper[d] as number) - (lower[d] as number);
        x[d] = Math.min(
          upper[d] as number,
          Math.max(lower[d] as number, (x[d] as number) + dir * step * width),
        );
        const e = evaluate(x);
        if (e.score > current.score) {
          current = e;
          improved = true;
          break;
        }
      }
    }
    if (!improved) step /= 2;
  }
  return current;
}
