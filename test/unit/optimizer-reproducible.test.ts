import { describe, expect, it } from 'vitest';
import {
  createOptimizer,
  type Direction,
  type Observation,
  OPTIMIZER_TYPES,
} from '../../src/sweeps/optimizers/index.js';
import { isActive, type Params, type Space } from '../../src/sweeps/space.js';

/** A conditional space with every kind of parameter. */
const SPACE: Space = {
  lr: { type: 'float', low: 1e-5, high: 1e-1, log: true },
  layers: { type: 'int', low: 1, high: 4 },
  width: { type: 'int', low: 16, high: 256, step: 16 },
  act: { type: 'categorical', choices: ['relu', 'tanh', 'gelu'] },
  slope: { type: 'float', low: 0.0, high: 0.3, when: { act: 'relu' } },
  // nested: active only when slope is active and layers is 3 or 4
  gate: { type: 'categorical', choices: [true, false], when: { slope: [0, 0.3], layers: [3, 4] } },
  momentum: { type: 'float', low: 0.8, high: 0.99, step: 0.01, when: { act: ['tanh', 'gelu'] } },
};

function objective(p: Params): number[] {
  const lr = p.lr as number;
  const base =
    (Math.log10(lr) + 3) ** 2 +
    ((p.layers as number) - 3) ** 2 * 0.3 +
    Math.abs((p.width as number) - 128) / 100;
  const extra =
    p.act === 'relu'
      ? ((p.slope as number) - 0.1) ** 2
      : p.act === 'tanh'
        ? 0.5
        : 0.2 + (1 - (p.momentum as number));
  return [base + extra, (p.width as number) * (p.layers as number)];
}

function run(type: string, seed: number, trials: number, directions: Direction[], parallel = 1): Params[] {
  const opt = createOptimizer(
    {
      type,
      seed,
      ...(type === 'grid' ? { resolution: 3 } : {}),
      ...(type === 'nsga2' ? { population_size: 8 } : {}),
    },
    SPACE,
    directions,
  );
  const history: Observation[] = [];
  const out: Params[] = [];
  for (let number = 0; number < trials; number += parallel) {
    const pending: Params[] = [];
    for (let k = 0; k < parallel; k++) {
      const p = opt.suggest(number + k, history, pending);
      if (p === null) return out;
      pending.push(p);
      out.push(p);
    }
    pending.forEach((p, k) => {
      const values = objective(p).slice(0, directions.length);
      // every seventh trial fails, so optimizers see failures too
      const failed = (number + k) % 7 === 6;
      history.push({
        number: number + k,
        params: p,
        values: failed ? null : values,
        state: failed ? 'failed' : 'completed',
        cost: values[1],
      });
    });
  }
  return out;
}

function assertLegal(p: Params): void {
  for (const [name, spec] of Object.entries(SPACE)) {
    const active = isActive(SPACE, name, p);
    expect(name in p, `${name} present iff active in ${JSON.stringify(p)}`).toBe(active);
    if (!active) continue;
    const v = p[name];
    if (spec.type === 'categorical') expect(spec.choices).toContain(v);
    else {
      expect(typeof v).toBe('number');
      expect(v as number).toBeGreaterThanOrEqual(spec.low);
      expect(v as number).toBeLessThanOrEqual(spec.high);
      if (spec.type === 'int') expect(Number.isInteger(v)).toBe(true);
      if (spec.step !== undefined) {
        const k = ((v as number) - spec.low) / spec.step;
        expect(Math.abs(k - Math.round(k))).toBeLessThan(1e-9);
      }
    }
  }
  expect(Object.keys(p).every((k) => k in SPACE)).toBe(true);
}

const TRIALS: Record<string, number> = { gp: 16 };
const MULTI = new Set(['nsga2', 'motpe', 'gp', 'tpe']);

describe.each(OPTIMIZER_TYPES.map((t) => [t]))('%s', (type) => {
  const trials = TRIALS[type] ?? 40;
  const directions: Direction[] =
    type === 'nsga2' || type === 'motpe' ? ['minimize', 'minimize'] : ['minimize'];

  it('is reproducible by seed and differs across seeds', () => {
    const a = run(type, 3, trials, directions);
    const b = run(type, 3, trials, directions);
    expect(a).toEqual(b);
    if (type !== 'grid') expect(run(type, 4, trials, directions)).not.toEqual(a);
  });

  it('is stateless: asking again for a trial number gives the same answer', () => {
    const opt = createOptimizer(
      { type, seed: 11, ...(type === 'grid' ? { resolution: 2 } : {}) },
      SPACE,
      directions,
    );
    const history: Observation[] = run(type, 11, 12, directions).map((params, number) => ({
      number,
      params,
      values: objective(params).slice(0, directions.length),
      state: 'completed',
    }));
    const pending = [history[0]?.params as Params];
    const first = opt.suggest(12, history, pending);
    // a fresh optimizer (a restarted controller) gives the same suggestion
    const again = createOptimizer(
      { type, seed: 11, ...(type === 'grid' ? { resolution: 2 } : {}) },
      SPACE,
      directions,
    );
    expect(again.suggest(12, history, pending)).toEqual(first);
  });

  it('leaves inactive conditional parameters out and keeps values legal', () => {
    const points = run(type, 5, trials, directions, 2);
    expect(points.length).toBeGreaterThan(0);
    for (const p of points) assertLegal(p);
    // both branches of the condition were explored
    expect(points.some((p) => 'slope' in p)).toBe(true);
    expect(points.some((p) => 'momentum' in p)).toBe(true);
  });

  if (MULTI.has(type)) {
    it('handles two objectives', () => {
      const points = run(type, 6, trials, ['minimize', 'maximize']);
      expect(points).toHaveLength(trials);
      for (const p of points) assertLegal(p);
    });
  }
});
