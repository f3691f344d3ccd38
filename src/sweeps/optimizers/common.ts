/**
 * Helpers every optimizer shares: reading the history (directions, failures, warm start),
 * random sampling that respects conditions, and canonical keys for deduplication.
 */
import {
  dependencyOrder,
  fromUnit,
  isActive,
  type ParamSpec,
  type Params,
  type ParamValue,
  type Space,
} from '../space.js';
import type { Rng } from './rng.js';
import type { Direction, Observation } from './types.js';

/** A finished trial with its objectives turned into losses (smaller is better). */
export interface Scored {
  number: number;
  params: Params;
  /** One loss per objective: the value, negated for `maximize`. */
  losses: number[];
  cost: number | undefined;
}

/** Completed trials with finite values for every objective, as losses, in trial-number order. */
export function scoredHistory(history: readonly Observation[], directions: readonly Direction[]): Scored[] {
  const out: Scored[] = [];
  for (const o of history) {
    if (o.state !== 'completed' || o.values === null || o.values.length < directions.length) continue;
    const losses = new Array<number>(directions.length);
    let finite = true;
    for (let i = 0; i < directions.length; i++) {
      const v = o.values[i] as number;
      losses[i] = directions[i] === 'maximize' ? -v : v;
      finite &&= Number.isFinite(v);
    }
    if (!finite) continue;
    out.push({ number: o.number, params: o.params, losses, cost: o.cost });
  }
  for (let i = 1; i < out.length; i++) {
    if ((out[i] as Scored).number < (out[i - 1] as Scored).number)
      return out.sort((a, b) => a.number - b.number);
  }
  return out;
}

/** Parameter values drawn uniformly (on each parameter's own scale), inactive ones left out. */
export function sampleUniform(space: Space, rng: Rng): Params {
  const out: Params = {};
  for (const name of dependencyOrder(space)) {
    const spec = space[name] as ParamSpec;
    // Draw for every parameter, active or not, so one parameter's activity never shifts the
    // random stream of the others.
    const u = rng.next();
    if (!isActive(space, name, out)) continue;
    out[name] = valueFromUnit(spec, u);
  }
  return out;
}

/** u in [0, 1) → a value: categorical picks choice ⌊u·k⌋; numeric goes through fromUnit. */
export function valueFromUnit(spec: ParamSpec, u: number): ParamValue {
  if (spec.type === 'categorical') {
    const k = spec.choices.length;
    return spec.choices[Math.min(k - 1, Math.max(0, Math.floor(u * k)))] as ParamValue;
  }
  return fromUnit(spec, u);
}

/** A stable text key of a configuration (sorted names, typed values) for deduplication. */
export function paramsKey(params: Params): string {
  return JSON.stringify(
    Object.keys(params)
      .sort()
      .map((k) => [k, typeof params[k], params[k]]),
  );
}

/** The seed of a spec (0 when absent: the sweep engine pins one at creation). */
export function seedOf(spec: { seed?: number }): number {
  return typeof spec.seed === 'number' && Number.isFinite(spec.seed) ? Math.trunc(spec.seed) : 0;
}
