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
  type NumericSpec,
  type ParamSpec,
  type Params,
  type Space,
  toUnit,
} from '../space.js';
import { type Scored, scoredHistory, seedOf, valueFromUnit } from './common.js';
import type { Direction, Observation, Optimizer, OptimizerSpec } from './index.js';
import { type Options, readOptions } from './options.js';
import { crowdingDistance, hypervolumeContributions, nondominatedRanks } from './pareto.js';
import { type Dim, ParzenEstimator, type WeightedPoint } from './parzen.js';
import { Rng } from './rng.js';
import { createSobol } from './sobol.js';

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
  let ranked: Scored[];
  let goodWeights: number[] | null = null;
  if (objectives === 1) {
    ranked = [...scored].sort(
      (a, b) => (a.losses[0] as number) - (b.losses[0] as number) || a.number - b.number,
    );
  } else {
    ranked = rankMultiObjective(scored);
    goodWeights = hypervolumeWeights(ranked.slice(0, nGood));
  }
  const goodScored = ranked.slice(0, nGood);
  const goodW = goodWeights ?? weightsByAge(goodScored.map((s) => s.number));
  const good = goodScored.map((s, i) => ({ params: s.params, number: s.number, weight: goodW[i] as number }));
  const badList: Array<{ params: Params; number: number }> = [
    ...ranked.slice(nGood).map((s) => ({ params: s.params, number: s.number })),
    ...pruned.map((o) => ({ params: o.params, number: o.number })),
    ...pending.map((params, i) => ({ params, number: Number.MAX_SAFE_INTEGER - pending.length + i })),
  ];
  const badW = weightsByAge(badList.map((b) => b.number));
  const bad = badList.map((b, i) => ({ ...b, weight: badW[i] as number }));
  return { good, bad };
}

/** Weights from defaultWeights applied in trial-number order (older trials weigh less). */
function weightsByAge(numbers: readonly number[]): number[] {
  const order = [...numbers.keys()].sort((a, b) => (numbers[a] as number) - (numbers[b] as number) || a - b);
  const w = defaultWeights(numbers.length);
  const out = new Array<number>(numbers.length);
  order.forEach((idx, rank) => {
    out[idx] = w[rank] as number;
  });
  return out;
}

/** Non-dominated fronts first; within a front, larger crowding distance first. */
function rankMultiObjective(scored: readonly Scored[]): Scored[] {
  const ranks = nondominatedRanks(scored.map((s) => s.losses));
  const byRank = new Map<number, number[]>();
  ranks.forEach((r, i) => {
    byRank.set(r, [...(byRank.get(r) ?? []), i]);
  });
  const out: Scored[] = [];
  for (const r of [...byRank.keys()].sort((a, b) => a - b)) {
    const idx = byRank.get(r) ?? [];
    const crowd = crowdingDistance(idx.map((i) => (scored[i] as Scored).losses));
    const order = idx
      .map((i, k) => [i, crowd[k] as number] as const)
      .sort((a, b) => b[1] - a[1] || a[0] - b[0]);
    for (const [i] of order) out.push(scored[i] as Scored);
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
  const toPoints = (members: readonly Member[]): WeightedPoint[] => {
    const out: WeightedPoint[] = [];
    for (const m of members) {
      const values: number[] = [];
      let ok = true;
      specs.forEach((s, j) => {
        const v = m.params[names[j] as string];
        if (v === undefined) ok = false;
        else if (s.type === 'categorical') {
          const idx = s.choices.findIndex((c) => choiceKey(c) === choiceKey(v));
          if (idx < 0) ok = false;
          values.push(idx);
        } else if (typeof v !== 'number' || !Number.isFinite(v)) ok = false;
        else values.push(toUnit(s as NumericSpec, v));
      });
      if (ok) out.push({ values, weight: m.weight });
    }
    return out;
  };
  const options = { multivariate: names.length > 1, priorWeight: opts.prior_weight };
  const l = new ParzenEstimator(dims, toPoints(good), options);
  const g = new ParzenEstimator(dims, toPoints(bad), options);
  const sl = new Float64Array(l.size);
  const sg = new Float64Array(g.size);
  let best: number[] | null = null;
  let bestScore = Number.NEGATIVE_INFINITY;
  for (let c = 0; c < opts.n_ei_candidates; c++) {
    const x = l.sample(rng);
    // Score the value that will actually be used (ints and steps rounded).
    specs.forEach((s, j) => {
      if (s.type !== 'categorical' && (s.type === 'int' || s.step !== undefined)) {
        x[j] = toUnit(s, valueFromUnit(s, x[j] as number) as number);
      }
    });
    const score = l.logPdf(x, sl) - g.logPdf(x, sg);
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
