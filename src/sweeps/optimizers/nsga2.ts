/**
 * NSGA-II (Deb et al. 2002), stateless: trial n belongs to generation ⌊n / population_size⌋.
 * The parents of generation g are the best `population_size` trials finished among those of
 * earlier generations (and earlier sweeps, for warm start), by non-dominated rank then crowding
 * distance. A child is bred from two binary-tournament winners: simulated binary crossover and
 * polynomial mutation on numeric parameters (unit scale), uniform crossover and resampling on
 * categorical ones. Generation 0 is uniform random.
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
import { type Options, readOptions } from './options.js';
import { crowdingDistance, nondominatedRanks } from './pareto.js';
import { Rng } from './rng.js';
import type { Direction, Observation, Optimizer, OptimizerSpec } from './types.js';

type NsgaOptions = Options<'nsga2'>;

interface Parent {
  params: Params;
  rank: number;
  crowding: number;
}

export function createNsga2(spec: OptimizerSpec, space: Space, directions: Direction[]): Optimizer {
  const opts = readOptions('nsga2', spec);
  const seed = seedOf(spec);
  const order = dependencyOrder(space);
  return {
    size: null,
    suggest(number: number, history: readonly Observation[]): Params {
      const P = opts.population_size;
      const generation = Math.floor(Math.max(0, number) / P);
      const eligible = scoredHistory(history, directions).filter((s) => s.number < generation * P);
      const rng = Rng.for(seed, number, 'nsga2');
      if (generation === 0 || eligible.length < 2) return sampleUniform(space, rng);
      const parents = selectParents(eligible, P);
      const a = tournament(parents, rng);
      const b = tournament(parents, rng);
      return breed(space, order, a.params, b.params, opts, rng);
    },
  };
}

/** Elitist survival: whole fronts while they fit, then the most isolated of the next front. */
export function selectParents(scored: readonly Scored[], size: number): Parent[] {
  const ranks = nondominatedRanks(scored.map((s) => s.losses));
  const fronts = new Map<number, number[]>();
  ranks.forEach((r, i) => {
    fronts.set(r, [...(fronts.get(r) ?? []), i]);
  });
  const out: Parent[] = [];
  for (const r of [...fronts.keys()].sort((x, y) => x - y)) {
    const idx = fronts.get(r) ?? [];
    const crowd = crowdingDistance(idx.map((i) => (scored[i] as Scored).losses));
    const members = idx
      .map((i, k) => ({
        params: (scored[i] as Scored).params,
        rank: r,
        crowding: crowd[k] as number,
        number: (scored[i] as Scored).number,
      }))
      .sort((x, y) => y.crowding - x.crowding || x.number - y.number);
    for (const m of members) {
      if (out.length >= size) return out;
      out.push({ params: m.params, rank: m.rank, crowding: m.crowding });
    }
  }
  return out;
}

function tournament(parents: readonly Parent[], rng: Rng): Parent {
  const a = parents[rng.int(parents.length)] as Parent;
  const b = parents[rng.int(parents.length)] as Parent;
  if (a.rank !== b.rank) return a.rank < b.rank ? a : b;
  return a.crowding >= b.crowding ? a : b;
}

function breed(
  space: Space,
  order: readonly string[],
  a: Params,
  b: Params,
  opts: NsgaOptions,
  rng: Rng,
): Params {
  const numericCount = order.filter((n) => space[n]?.type !== 'categorical').length;
  const pm = opts.mutation_prob > 0 ? opts.mutation_prob : 1 / Math.max(1, order.length);
  const cross = rng.next() < opts.crossover_prob;
  const out: Params = {};
  for (const name of order) {
    const spec = space[name] as ParamSpec;
    const u = rng.next();
    const coin = rng.next();
    const mutate = rng.next() < pm;
    const mutation = rng.next();
    if (!isActive(space, name, out)) continue;
    const va = a[name];
    const vb = b[name];
    if (spec.type === 'categorical') {
      let v = cross && coin < 0.5 ? (vb ?? va) : (va ?? vb);
      if (v === undefined || mutate) v = spec.choices[Math.floor(mutation * spec.choices.length)];
      if (v !== undefined) out[name] = v;
      continue;
    }
    const xa = typeof va === 'number' ? toUnit(spec as NumericSpec, va) : null;
    const xb = typeof vb === 'number' ? toUnit(spec as NumericSpec, vb) : null;
    let x: number;
    if (xa === null && xb === null) x = mutation;
    else if (xa === null || xb === null || !cross || numericCount === 0) x = (xa ?? xb) as number;
    else x = sbx(xa, xb, u, coin, opts.eta_crossover);
    if (mutate) x = polynomialMutation(x, mutation, opts.eta_mutation);
    out[name] = valueFromUnit(spec, Math.min(1, Math.max(0, x)));
  }
  return out;
}

/** Simulated binary crossover in [0, 1] (Deb & Agrawal), one child. */
function sbx(x1: number, x2: number, u: number, coin: number, eta: number): number {
  if (Math.abs(x1 - x2) < 1e-14) return x1;
  const lo = Math.min(x1, x2);
  const hi = Math.max(x1, x2);
  const spread = (beta: number): number => {
    const alpha = 2 - beta ** -(eta + 1);
    const bq = u <= 1 / alpha ? (u * alpha) ** (1 / (eta + 1)) : (1 / (2 - u * alpha)) ** (1 / (eta + 1));
    return bq;
  };
  const bq1 = spread(1 + (2 * lo) / (hi - lo));
  const c1 = 0.5 * (lo + hi - bq1 * (hi - lo));
  const bq2 = spread(1 + (2 * (1 - hi)) / (hi - lo));
  const c2 = 0.5 * (lo + hi + bq2 * (hi - lo));
  return coin < 0.5 ? c1 : c2;
}

/** Polynomial mutation in [0, 1] (Deb & Goyal). */
function polynomialMutation(x: number, u: number, eta: number): number {
  const d1 = x;
  const d2 = 1 - x;
  const p = 1 / (eta + 1);
  if (u < 0.5) {
    const v = 2 * u + (1 - 2 * u) * (1 - d1) ** (eta + 1);
    return x + (v ** p - 1);
  }
  const v = 2 * (1 - u) + 2 * (u - 0.5) * (1 - d2) ** (eta + 1);
  return x + (1 - v ** p);
}
