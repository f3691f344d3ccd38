import { describe, expect, it } from 'vitest';
import { createOptimizer, type Observation } from '../../src/sweeps/optimizers/index.js';
import { Rng } from '../../src/sweeps/optimizers/rng.js';
import type { Space } from '../../src/sweeps/space.js';

function branin(x1: number, x2: number): number {
  const b = 5.1 / (4 * Math.PI ** 2);
  const c = 5 / Math.PI;
  const t = 1 / (8 * Math.PI);
  return (x2 - b * x1 ** 2 + c * x1 - 6) ** 2 + 10 * (1 - t) * Math.cos(x1) + 10;
}
const SPACE: Space = { x1: { type: 'float', low: -5, high: 10 }, x2: { type: 'float', low: 0, high: 15 } };

/** An earlier sweep: 40 random trials, numbered −40..−1 as the engine passes them. */
function earlierSweep(seed: number): Observation[] {
  const rng = Rng.for('earlier', seed);
  return Array.from({ length: 40 }, (_, i) => {
    const x1 = rng.uniform(-5, 10);
    const x2 = rng.uniform(0, 15);
    return { number: i - 40, params: { x1, x2 }, values: [branin(x1, x2)], state: 'completed' as const };
  });
}

/** Best value among the new sweep's own 10 trials. */
function bestOfTen(type: string, seed: number, warm: Observation[]): number {
  const opt = createOptimizer({ type, seed }, SPACE, ['minimize']);
  const history = [...warm];
  let best = Number.POSITIVE_INFINITY;
  for (let number = 0; number < 10; number++) {
    const p = opt.suggest(number, history, []);
    if (p === null) throw new Error('exhausted');
    const v = branin(p.x1 as number, p.x2 as number);
    best = Math.min(best, v);
    history.push({ number, params: p, values: [v], state: 'completed' });
  }
  return best;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const SEEDS = [1, 2, 3, 4, 5];

describe('warm start from an earlier sweep', () => {
  it.each([['tpe'], ['gp'], ['cmaes']])('%s finds better points in its first 10 trials', (type) => {
    const cold = median(SEEDS.map((s) => bestOfTen(type, s, [])));
    const warm = median(SEEDS.map((s) => bestOfTen(type, s, earlierSweep(s))));
    expect(warm).toBeLessThan(cold);
  });

  it('CMA-ES starts from the best earlier trial', () => {
    const warm = earlierSweep(3);
    const best = warm.reduce((a, b) => ((b.values?.[0] as number) < (a.values?.[0] as number) ? b : a));
    const opt = createOptimizer({ type: 'cmaes', seed: 1, sigma0: 0.05 }, SPACE, ['minimize']);
    const p = opt.suggest(0, warm, []);
    expect(Math.abs((p?.x1 as number) - (best.params.x1 as number))).toBeLessThan(15 * 0.05 * 4);
    expect(Math.abs((p?.x2 as number) - (best.params.x2 as number))).toBeLessThan(15 * 0.05 * 4);
  });
});
