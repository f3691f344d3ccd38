/**
 * Grid search: the cartesian product of every parameter's values (conditional parameters
 * branch only where active), deduplicated. Continuous floats need a `resolution`. Each trial
 * takes the first point no trial (finished, running or warm-started) has taken yet.
 */
import { invalid } from '../../shared/errors.js';
import {
  dependencyOrder,
  discreteValues,
  isActive,
  type ParamSpec,
  type Params,
  type ParamValue,
  roundToSpec,
  type Space,
} from '../space.js';
import { paramsKey, seedOf } from './common.js';
import { readOptions } from './options.js';
import { Rng } from './rng.js';
import type { Observation, Optimizer, OptimizerSpec } from './types.js';

/** A grid larger than this is a mistake in the sweep file, not a search. */
export const MAX_GRID_POINTS = 1_000_000;

export function createGrid(spec: OptimizerSpec, space: Space): Optimizer {
  const opts = readOptions('grid', spec);
  const values = new Map<string, ParamValue[]>();
  for (const name of dependencyOrder(space)) {
    const r = typeof opts.resolution === 'number' ? opts.resolution : (opts.resolution?.[name] ?? null);
    const v = gridValues(space[name] as ParamSpec, r);
    if (v === null) {
      throw invalid(
        [
          {
            field: 'optimizer.resolution',
            code: 'REQUIRED',
            message: `parameter ${name} is continuous: give a resolution or a step`,
          },
        ],
        'the grid needs a resolution for continuous parameters',
      );
    }
    values.set(name, v);
  }
  const points = enumerate(space, values);
  if (opts.shuffle) Rng.for(seedOf(spec), 'grid-order').shuffle(points);
  const keys = points.map(paramsKey);
  return {
    size: points.length,
    suggest(_number: number, history: readonly Observation[], pending: readonly Params[]): Params | null {
      const taken = new Set<string>();
      for (const o of history) taken.add(paramsKey(o.params));
      for (const p of pending) taken.add(paramsKey(p));
      for (let i = 0; i < points.length; i++) {
        if (!taken.has(keys[i] as string)) return { ...(points[i] as Params) };
      }
      return null;
    },
  };
}

/** The values a parameter takes on the grid, or null when it is continuous without resolution. */
export function gridValues(spec: ParamSpec, resolution: number | null): ParamValue[] | null {
  if (spec.type === 'categorical') return [...spec.choices];
  const all = discreteValues(spec);
  if (resolution === null || (all !== null && all.length <= resolution)) return all;
  const out: number[] = [];
  const seen = new Set<number>();
  for (let i = 0; i < resolution; i++) {
    const t = i / (resolution - 1);
    const raw =
      spec.log === true
        ? Math.exp(Math.log(spec.low) + t * (Math.log(spec.high) - Math.log(spec.low)))
        : spec.low + t * (spec.high - spec.low);
    const v = roundToSpec(spec, raw);
    if (!seen.has(v)) {
      seen.add(v);
      out.push(v);
    }
  }
  return out;
}

function enumerate(space: Space, values: Map<string, ParamValue[]>): Params[] {
  const order = dependencyOrder(space);
  const out: Params[] = [];
  const seen = new Set<string>();
  const walk = (i: number, partial: Params): void => {
    if (out.length > MAX_GRID_POINTS) return;
    if (i === order.length) {
      const key = paramsKey(partial);
      if (!seen.has(key)) {
        seen.add(key);
        out.push({ ...partial });
      }
      return;
    }
    const name = order[i] as string;
    if (!isActive(space, name, partial)) {
      walk(i + 1, partial);
      return;
    }
    for (const v of values.get(name) ?? []) {
      partial[name] = v;
      walk(i + 1, partial);
    }
    delete partial[name];
  };
  walk(0, {});
  if (out.length > MAX_GRID_POINTS) {
    throw invalid(
      [
        {
          field: 'optimizer.resolution',
          code: 'OUT_OF_RANGE',
          message: `the grid has more than ${MAX_GRID_POINTS} points`,
        },
      ],
      'the grid is too large',
    );
  }
  return out;
}
