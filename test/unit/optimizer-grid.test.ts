import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/shared/errors.js';
import { createOptimizer, type Observation } from '../../src/sweeps/optimizers/index.js';
import type { Params, Space } from '../../src/sweeps/space.js';

const key = (p: Params): string => JSON.stringify(Object.entries(p).sort(([a], [b]) => a.localeCompare(b)));

/** Asks until the grid says it is exhausted; every trial completes at once. */
function drain(space: Space, spec: Record<string, unknown>, history: Observation[] = []): Params[] {
  const opt = createOptimizer({ type: 'grid', ...spec }, space, ['minimize']);
  const out: Params[] = [];
  for (let number = 0; number < 10_000; number++) {
    const p = opt.suggest(number, history, []);
    if (p === null) break;
    out.push(p);
    history.push({ number, params: p, values: [0], state: 'completed' });
  }
  return out;
}

describe('grid', () => {
  it('covers the cartesian product exactly once, then returns null', () => {
    const space: Space = {
      act: { type: 'categorical', choices: ['relu', 'tanh'] },
      layers: { type: 'int', low: 1, high: 3 },
      lr: { type: 'float', low: 1e-4, high: 1e-2, log: true },
      dropout: { type: 'float', low: 0, high: 0.2, step: 0.1 },
    };
    const opt = createOptimizer({ type: 'grid', resolution: { lr: 3 } }, space, ['minimize']);
    expect(opt.size).toBe(2 * 3 * 3 * 3);
    const points = drain(space, { resolution: { lr: 3 } });
    expect(points).toHaveLength(54);
    expect(new Set(points.map(key)).size).toBe(54);
    expect([...new Set(points.map((p) => p.lr))].sort()).toEqual(
      [1e-4, 1e-3, 1e-2].map((v) => expect.closeTo(v, 12)),
    );
    expect([...new Set(points.map((p) => p.dropout))].sort()).toEqual([0, 0.1, 0.2]);
  });

  it('branches conditional parameters only where they are active', () => {
    const space: Space = {
      act: { type: 'categorical', choices: ['relu', 'tanh'] },
      slope: { type: 'categorical', choices: [0.01, 0.1, 0.3], when: { act: 'relu' } },
    };
    const points = drain(space, {});
    const expected: Params[] = [
      { act: 'relu', slope: 0.01 },
      { act: 'relu', slope: 0.1 },
      { act: 'relu', slope: 0.3 },
      { act: 'tanh' },
    ];
    expect(points.map(key).sort()).toEqual(expected.map(key).sort());
  });

  it('deduplicates values that round together', () => {
    // 10 evenly spaced values over 1..4 round to only 4 distinct integers
    const points = drain(
      { n: { type: 'int', low: 1, high: 4, step: 1 }, m: { type: 'int', low: 1, high: 4 } },
      { resolution: 10 },
    );
    expect(points).toHaveLength(16);
    const coarse = drain({ w: { type: 'int', low: 16, high: 1024, log: true } }, { resolution: 7 });
    expect(coarse.map((p) => p.w)).toEqual([16, 32, 64, 128, 256, 512, 1024]);
  });

  it('skips points that are running or were tried before (warm start)', () => {
    const space: Space = { a: { type: 'categorical', choices: [1, 2, 3] } };
    const opt = createOptimizer({ type: 'grid' }, space, ['minimize']);
    const warm: Observation[] = [{ number: -1, params: { a: 1 }, values: [3], state: 'completed' }];
    expect(opt.suggest(0, warm, [{ a: 2 }])).toEqual({ a: 3 });
    expect(
      opt.suggest(1, [...warm, { number: 0, params: { a: 3 }, values: null, state: 'failed' }], [{ a: 2 }]),
    ).toBeNull();
  });

  it('shuffles reproducibly by seed', () => {
    const space: Space = { a: { type: 'int', low: 0, high: 19 } };
    const a = drain(space, { shuffle: true, seed: 7 }).map((p) => p.a);
    const b = drain(space, { shuffle: true, seed: 7 }).map((p) => p.a);
    const c = drain(space, { shuffle: true, seed: 8 }).map((p) => p.a);
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    expect([...a].sort((x, y) => (x as number) - (y as number))).toEqual([...Array(20).keys()]);
  });

  it('needs a resolution for a continuous parameter', () => {
    const build = (): unknown =>
      createOptimizer({ type: 'grid' }, { lr: { type: 'float', low: 0, high: 1 } }, ['minimize']);
    expect(build).toThrow(AppError);
    try {
      build();
    } catch (err) {
      expect((err as AppError).status).toBe(422);
      expect((err as AppError).details[0]?.field).toBe('optimizer.resolution');
    }
  });
});
