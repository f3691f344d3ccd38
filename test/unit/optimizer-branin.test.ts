import { describe, expect, it } from 'vitest';
import { createOptimizer, type Observation } from '../../src/sweeps/optimizers/index.js';
import type { Space } from '../../src/sweeps/space.js';

const BRANIN_MIN = 0.397887357729738;

function branin(x1: number, x2: number): number {
  const b = 5.1 / (4 * Math.PI ** 2);
  const c = 5 / Math.PI;
  const t = 1 / (8 * Math.PI);
  return (x2 - b * x1 ** 2 + c * x1 - 6) ** 2 + 10 * (1 - t) * Math.cos(x1) + 10;
}

const SPACE: Space = { x1: { type: 'float', low: -5, high: 10 }, x2: { type: 'float', low: 0, high: 15 } };
const SEEDS = [1, 2, 3, 4, 5];

/** Simple regret after `budget` sequential trials. */
function regret(type: string, seed: number, budget: number): number {
  const opt = createOptimizer({ type, seed }, SPACE, ['minimize']);
  const history: Observation[] = [];
  let best = Number.POSITIVE_INFINITY;
  for (let number = 0; number < budget; number++) {
    const p = opt.suggest(number, history, []);
    if (p === null) throw new Error('exhausted');
    const v = branin(p.x1 as number, p.x2 as number);
    best = Math.min(best, v);
    history.push({ number, params: p, values: [v], state: 'completed' });
  }
  return best - BRANIN_MIN;
}

function medianRegret(type: string, budget: number): number {
  const r = SEEDS.map((s) => regret(type, s, budget)).sort((a, b) => a - b);
  return r[Math.floor(r.length / 2)] as number;
}

describe('model-based optimizers beat random search on Branin (median over seeds, fixed budget)', () => {
  it('TPE, CMA-ES and GP have a lower median regret than random search', () => {
    const random30 = medianRegret('random', 30);
    const random60 = medianRegret('random', 60);
    const tpe60 = medianRegret('tpe', 60);
    const cmaes60 = medianRegret('cmaes', 60);
    const gp30 = medianRegret('gp', 30);
    expect(tpe60).toBeLessThan(random60);
    expect(cmaes60).toBeLessThan(random60);
    expect(gp30).toBeLessThan(random30);
    // the GP with half the budget still beats TPE with the full one
    expect(gp30).toBeLessThan(tpe60);
  });
});
