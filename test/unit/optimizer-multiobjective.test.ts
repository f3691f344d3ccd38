import { describe, expect, it } from 'vitest';
import { createOptimizer, type Observation } from '../../src/sweeps/optimizers/index.js';
import { hypervolume } from '../../src/sweeps/optimizers/pareto.js';
import type { Space } from '../../src/sweeps/space.js';

// ZDT1 in 4 dimensions: f1 = x1, f2 = g·(1 − √(f1/g)), g = 1 + 9·mean(x2..x4); front at g = 1.
const SPACE: Space = Object.fromEntries(
  [0, 1, 2, 3].map((i) => [`x${i}`, { type: 'float', low: 0, high: 1 }]),
);
function zdt1(x: number[]): number[] {
  const f1 = x[0] as number;
  const g = 1 + (9 * (x[1]! + x[2]! + x[3]!)) / 3;
  return [f1, g * (1 - Math.sqrt(f1 / g))];
}

function finalHypervolume(type: string, seed: number, budget: number): number {
  const extra = type === 'nsga2' ? { population_size: 12 } : {};
  const opt = createOptimizer({ type, seed, ...extra }, SPACE, ['minimize', 'minimize']);
  const history: Observation[] = [];
  for (let number = 0; number < budget; number++) {
    const p = opt.suggest(number, history, []);
    if (p === null) throw new Error('exhausted');
    history.push({
      number,
      params: p,
      values: zdt1([0, 1, 2, 3].map((i) => p[`x${i}`] as number)),
      state: 'completed',
    });
  }
  return hypervolume(
    history.map((o) => o.values as number[]),
    ['minimize', 'minimize'],
    [1.1, 11],
  );
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const SEEDS = [1, 2, 3, 4, 5];

describe('multi-objective optimizers beat random search on ZDT1 (median hypervolume)', () => {
  it('NSGA-II, MO-TPE and ParEGO-GP cover more hypervolume than random search', () => {
    const random = median(SEEDS.map((s) => finalHypervolume('random', s, 72)));
    const nsga2 = median(SEEDS.map((s) => finalHypervolume('nsga2', s, 72)));
    const motpe = median(SEEDS.map((s) => finalHypervolume('motpe', s, 72)));
    const gp = median(SEEDS.map((s) => finalHypervolume('gp', s, 30)));
    expect(nsga2).toBeGreaterThan(random);
    expect(motpe).toBeGreaterThan(random);
    expect(gp).toBeGreaterThan(random);
  });
});
