/**
 * Tree-structured Parzen estimator (Bergstra et al. 2011; the variant Optuna ships).
 *
 * Finished trials are ranked (by loss; with several objectives by non-dominated sorting, ties
 * by crowding) and split: the best γ·n (at most `max_good`) are "good", the rest "bad".
 * A Parzen estimator l(x) is fitted to the good trials and g(x) to the bad ones, older trials
 * weighing less once there are more than 25; the suggestion is the best of `n_ei_candidates`
 * draws from l by l(x)/g(x), which is monotone in expected improvement. With `multivariate`
 * the unconditional parameters share one kernel per trial (joint density); conditional
 * parameters are always modelled on their own, from the trials where they were active.
 * Running trials count as bad ones (constant liar), so parallel suggestions spread out;
 * pruned trials count as bad as well. With several objectives this is MO-TPE (Ozaki et al.
 * 2020): good trials are weighted by their hypervolume contribution.
 */
import {
  choiceKey,
  dependencyOrder,
  isActive,
  type ParamSpec,
  type Params,
  type Space,
  toUnit,
} from '../space.js';
import { type Scored, scoredHistory, seedOf, valueFromUnit } from './common.js';
import { type Options, readOptions } from './options.js';
import { crowdingDistance, hypervolumeContributions, nondominatedRanks } from './pareto.js';
import { type Dim, ParzenEstimator, type Points } from './parzen.js';
import { Rng } from './rng.js';
import { createSobol } from './sobol.js';
import type { Direction, Observation, Optimizer, OptimizerSpec } from './types.js';

type TpeOptions = Options<'tpe'>;

interface Member {
  params: Params;
  /** trial number; running trials sort last */
  number: number;
  weight: number;
}

export function createTpe(spec: OptimizerSpec, space: Space, directions: Direction[]): Optimizer {
  const opts = readOptions('tpe', spec);
  const seed = seedOf(spec);
  const startup = createSobol({ type: 'sobol', seed }, space);
  const order = dependencyOrder(space);
  const joint = opts.multivariate ? order.filter((n) => space[n]?.when === undefined) : [];
  return {
    size: null,
    suggest(number: number, history: readonly Observation[], pending: readonly Params[]): Params {
      const scored = scoredHistory(history, directions);
      if (scored.length < Math.max(1, opts.n_startup_trials)) {
        return startup.suggest(Math.max(0, number), history, pending) as Params;
      }
      const pruned = history.filter((o) => o.state === 'pruned');
      const { good, bad } = split(scored, pruned, opts.constant_liar ? pending : [], opts, directions.length);
      const rng = Rng.for(seed, number, 'tpe');
      const out: Params = {};
      if (joint.length > 0) Object.assign(out, sampleGroup(space, joint, good, bad, opts, rng));
      for (const name of order) {
        if (out[name] !== undefined || joint.includes(name) || !isActive(space, name, out)) continue;
        Object.assign(out, sampleGroup(space, [name], good, bad, opts, rng));
      }
      return out;
    },
  };
}

/** Optuna's default weights: flat for the newest 25 trials, a linear ramp up to them before. */
export function defaultWeights(n: number): number[] {
  if (n < 25) return new Array<number>(n).fill(1);
  const ramp = Array.from({ length: n - 25 }, (_, i) =>
    n - 25 === 1 ? 1 / n : 1 / n + (i * (1 - 1 / n)) / (n - 26),
  );
  return [...ramp, ...new Array<number>(25).fill(1)];
}

function split(
  scored: readonly Scored[],
  pruned: readonly Observation[],
  pending: readonly Params[],
  opts: TpeOptions,
  objectives: number,
): { good: Member[]; bad: Member[] } {
  const n = scored.length + pruned.length;
  const nGood = Math.max(1, Math.min(Math.ceil(opts.gamma * n), opts.max_good, scored.length));
  let goodIdx: number[];
  let goodWeights: number[] | null = null;
  if (objectives === 1) {
    goodIdx = smallest(scored, nGood);
  } else {
    goodIdx = rankMultiObjective(scored).slice(0, nGood);
  }
  // Members in trial-number order (scored is), so age weights need no sorting.
  goodIdx.sort((a, b) => a - b);
  if (objectives > 1) goodWeights = hypervolumeWeights(goodIdx.map((i) => scored[i] as Scored));
  const isGood = new Uint8Array(scored.length);
  for (const i of goodIdx) isGood[i] = 1;
  const goodW = goodWeights ?? defaultWeights(goodIdx.length);
  const good = goodIdx.map((i, k) => ({
    params: (scored[i] as Scored).params,
    number: (scored[i] as Scored).number,
    weight: goodW[k] as number,
  }));
  const bad: Member[] = [];
  for (let i = 0; i < scored.length; i++) {
    const t = scored[i] as Scored;
    if (isGood[i] === 0) bad.push({ params: t.params, number: t.number, weight: 1 });
  }
  if (pruned.length > 0) {
    for (const o of pruned) bad.push({ params: o.params, number: o.number, weight: 1 });
    // Pruned trials interleave with completed ones by number; keep the list ordered by age.
    bad.sort((a, b) => a.number - b.number);
  }
  for (const p of pending) bad.push({ params: p, number: Number.MAX_SAFE_INTEGER, weight: 1 });
  const badW = defaultWeights(bad.length);
  for (let i = 0; i < bad.length; i++) (bad[i] as Member).weight = badW[i] as number;
  return { good, bad };
}

/** Indices of the k lowest losses (ties: lower trial number), by partial selection. */
function smallest(scored: readonly Scored[], k: number): number[] {
  const out: number[] = [];
  const worse = (a: number, b: number): boolean => {
    const la = (scored[a] as Scored).losses[0] as number;
    const lb = (scored[b] as Scored).losses[0] as number;
    return la > lb || (la === lb && a > b);
  };
  for (let i = 0; i < scored.length; i++) {
    if (out.length < k) {
      out.push(i);
      continue;
    }
    let worst = 0;
    for (let j = 1; j < k; j++) if (worse(out[j] as number, out[worst] as number)) worst = j;
    if (worse(out[worst] as number, i)) out[worst] = i;
  }
  return out;
}

/** Indices by non-dominated front; within a front, larger crowding distance first. */
function rankMultiObjective(scored: readonly Scored[]): number[] {
  const ranks = nondominatedRanks(scored.map((s) => s.losses));
  const byRank = new Map<number, number[]>();
  ranks.forEach((r, i) => {
    byRank.set(r, [...(byRank.get(r) ?? []), i]);
  });
  const out: number[] = [];
  for (const r of [...byRank.keys()].sort((a, b) => a - b)) {
    const idx = byRank.get(r) ?? [];
    const crowd = crowdingDistance(idx.map((i) => (scored[i] as Scored).losses));
    const order = idx
      .map((i, k) => [i, crowd[k] as number] as const)
      .sort((a, b) => b[1] - a[1] || a[0] - b[0]);
    for (const [i] of order) out.push(i);
  }
  return out;
}

/** MO-TPE: good trials weighted by the hypervolume each adds (normalized objectives). */
function hypervolumeWeights(good: readonly Scored[]): number[] {
  if (good.length <= 1) return good.map(() => 1);
  const k = good[0]?.losses.length ?? 0;
  const lo = Array.from({ length: k }, (_, j) => Math.min(...good.map((s) => s.losses[j] as number)));
  const hi = Array.from({ length: k }, (_, j) => Math.max(...good.map((s) => s.losses[j] as number)));
  const pts = good.map((s) =>
    s.losses.map((v, j) =>
      (hi[j] as number) > (lo[j] as number)
        ? (v - (lo[j] as number)) / ((hi[j] as number) - (lo[j] as number))
        : 0,
    ),
  );
  const ref = new Array<number>(k).fill(1.1);
  const contrib = hypervolumeContributions(pts, ref);
  const max = Math.max(...contrib);
  return contrib.map((c) => (max > 0 ? Math.max(c / max, 1e-3) : 1));
}

/** Samples the parameters `names` (jointly when several) by the l/g ratio over candidates. */
function sampleGroup(
  space: Space,
  names: readonly string[],
  good: readonly Member[],
  bad: readonly Member[],
  opts: TpeOptions,
  rng: Rng,
): Params {
  const specs = names.map((n) => space[n] as ParamSpec);
  const dims: Dim[] = specs.map((s) =>
    s.type === 'categorical' ? { kind: 'categorical', k: s.choices.length } : { kind: 'numeric' },
  );
  const choiceIndex = specs.map((s) =>
    s.type === 'categorical' ? new Map(s.choices.map((c, i) => [choiceKey(c), i])) : null,
  );
  const d = names.length;
  const row = new Float64Array(d);
  /** The members where every parameter of the group is active, encoded. */
  const toPoints = (members: readonly Member[]): Points => {
    const values = new Float64Array(members.length * d);
    const weights = new Float64Array(members.length);
    let n = 0;
    for (const m of members) {
      let ok = true;
      for (let j = 0; j < d && ok; j++) {
        const v = m.params[names[j] as string];
        const s = specs[j] as ParamSpec;
        if (v === undefined) ok = false;
        else if (s.type === 'categorical') {
          const idx = choiceIndex[j]?.get(choiceKey(v));
          if (idx === undefined) ok = false;
          else row[j] = idx;
        } else if (typeof v !== 'number' || !Number.isFinite(v)) ok = false;
        else row[j] = toUnit(s, v);
      }
      if (!ok) continue;
      values.set(row, n * d);
      weights[n] = m.weight;
      n++;
    }
    return { n, values, weights };
  };
  const options = { multivariate: d > 1, priorWeight: opts.prior_weight };
  const l = new ParzenEstimator(dims, toPoints(good), options);
  const g = new ParzenEstimator(dims, toPoints(bad), options);
  let best: number[] | null = null;
  let bestScore = Number.NEGATIVE_INFINITY;
  for (let c = 0; c < opts.n_ei_candidates; c++) {
    const x = l.sample(rng);
    // Score the value that will actually be used (ints and steps rounded).
    for (let j = 0; j < d; j++) {
      const s = specs[j] as ParamSpec;
      if (s.type !== 'categorical' && (s.type === 'int' || s.step !== undefined)) {
        x[j] = toUnit(s, valueFromUnit(s, x[j] as number) as number);
      }
    }
    const score = l.logPdf(x) - g.logPdf(x);
    if (score > bestScore || best === null) {
      bestScore = score;
      best = x;
    }
  }
  const out: Params = {};
  names.forEach((name, j) => {
    const s = specs[j] as ParamSpec;
    const v = (best as number[])[j] as number;
    out[name] = s.type === 'categorical' ? (s.choices[v] as Params[string]) : valueFromUnit(s, v);
  });
  return out;
}
