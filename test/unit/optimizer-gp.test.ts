import { describe, expect, it } from 'vitest';
import { GaussianProcess, HyperparameterObjective } from '../../src/sweeps/optimizers/gaussian-process.js';
import { createOptimizer, type Observation } from '../../src/sweeps/optimizers/index.js';
import { Rng } from '../../src/sweeps/optimizers/rng.js';
import type { Params, Space } from '../../src/sweeps/space.js';

function branin(x1: number, x2: number): number {
  const b = 5.1 / (4 * Math.PI ** 2);
  const c = 5 / Math.PI;
  const t = 1 / (8 * Math.PI);
  return (x2 - b * x1 ** 2 + c * x1 - 6) ** 2 + 10 * (1 - t) * Math.cos(x1) + 10;
}
const BRANIN: Space = { x1: { type: 'float', low: -5, high: 10 }, x2: { type: 'float', low: 0, high: 15 } };

function sample(n: number, dims: number, seed: number): { X: Float64Array; y: Float64Array } {
  const rng = new Rng(seed);
  const X = new Float64Array(n * dims).map(() => rng.next());
  const raw = Array.from(
    { length: n },
    (_, i) => Math.sin(6 * (X[i * dims] as number)) + (X[i * dims + 1] as number) ** 2,
  );
  const mean = raw.reduce((a, b) => a + b, 0) / n;
  const sd = Math.sqrt(raw.reduce((a, b) => a + (b - mean) ** 2, 0) / n);
  return { X, y: Float64Array.from(raw.map((v) => (v - mean) / sd)) };
}

describe('Gaussian process', () => {
  it('has the analytic gradient of its marginal likelihood (finite differences), warping included', () => {
    const dims = 3;
    const { X, y } = sample(25, dims, 4);
    const objective = new HyperparameterObjective(X, 25, dims, y, [0, 2]);
    const theta = Float64Array.from([-0.7, -0.2, 0.4, 0.3, -5, 0.2, -0.3, -0.1, 0.4]);
    const grad = new Float64Array(theta.length);
    objective.evaluate(theta, grad);
    const h = 1e-6;
    for (let p = 0; p < theta.length; p++) {
      const up = Float64Array.from(theta);
      const down = Float64Array.from(theta);
      up[p] = (up[p] as number) + h;
      down[p] = (down[p] as number) - h;
      const scratch = new Float64Array(theta.length);
      const numeric = (objective.evaluate(up, scratch) - objective.evaluate(down, scratch)) / (2 * h);
      expect(grad[p]).toBeCloseTo(numeric, 4);
    }
  });

  it('interpolates what it was fitted on and is uncertain far from the data', () => {
    const { X, y } = sample(30, 2, 9);
    const gp = GaussianProcess.fit(X, 30, 2, y, { warp: null });
    const scratch = new Float64Array(30);
    const wx = new Float64Array(2);
    for (let i = 0; i < 30; i++) {
      const p = gp.predict(X.subarray(i * 2, i * 2 + 2), scratch, wx);
      expect(p.mean).toBeCloseTo(y[i] as number, 1);
    }
    // length scales were learned: the first input (sin 6x) varies faster than the second (x²)
    expect(gp.hyper.logLengthscale[0] as number).toBeLessThan(gp.hyper.logLengthscale[1] as number);
  });
});

/** Min pairwise distance (unit scale) of a batch of 4 suggested while the others are running. */
function batchSpread(type: string, liar: boolean): number {
  const opt = createOptimizer({ type, seed: 1, constant_liar: liar }, BRANIN, ['minimize']);
  const history: Observation[] = [];
  for (let number = 0; number < 20; number++) {
    const p = opt.suggest(number, history, []) as Params;
    history.push({ number, params: p, values: [branin(p.x1 as number, p.x2 as number)], state: 'completed' });
  }
  const batch: Params[] = [];
  for (let number = 20; number < 24; number++) batch.push(opt.suggest(number, history, batch) as Params);
  const u = batch.map((p) => [((p.x1 as number) + 5) / 15, (p.x2 as number) / 15] as const);
  let min = Number.POSITIVE_INFINITY;
  for (let i = 0; i < u.length; i++) {
    for (let j = 0; j < i; j++)
      min = Math.min(min, Math.hypot((u[i] as readonly number[])[0]! - u[j]![0], u[i]![1] - u[j]![1]));
  }
  return min;
}

describe('constant liar', () => {
  it('spreads the GP batch: without it the four suggestions coincide', () => {
    const without = batchSpread('gp', false);
    const withLiar = batchSpread('gp', true);
    expect(without).toBeLessThan(1e-3);
    expect(withLiar).toBeGreaterThan(5e-3);
  });

  it('spreads the TPE batch', () => {
    expect(batchSpread('tpe', true)).toBeGreaterThan(2 * batchSpread('tpe', false));
  });
});

describe('cost-aware search', () => {
  // Loss falls with x, cost rises steeply with it: plain EI piles up at the expensive end.
  const space: Space = { x: { type: 'float', low: 0, high: 1 }, y: { type: 'float', low: 0, high: 1 } };
  const evaluate = (p: Params): { loss: number; cost: number } => {
    const x = p.x as number;
    const y = p.y as number;
    return { loss: 1 - x + 0.3 * (y - 0.5) ** 2, cost: Math.exp(5 * x) };
  };
  const suggestions = (costAware: boolean): number[] => {
    const opt = createOptimizer({ type: 'gp', seed: 3, cost_aware: costAware }, space, ['minimize']);
    const history: Observation[] = [];
    const xs: number[] = [];
    for (let number = 0; number < 24; number++) {
      const p = opt.suggest(number, history, []) as Params;
      const { loss, cost } = evaluate(p);
      history.push({ number, params: p, values: [loss], state: 'completed', cost });
      if (number >= 10) xs.push(p.x as number);
    }
    return xs;
  };

  it('keeps exploring cheap configurations along the score-cost front', () => {
    const plain = suggestions(false);
    const aware = suggestions(true);
    // trials that trade some score for a clearly lower cost (cost at x = 0.9 is e^4.5 ≈ 90, at 1 it is ≈ 148)
    const cheap = (xs: number[]): number => xs.filter((x) => x < 0.9).length;
    expect(cheap(plain)).toBeLessThanOrEqual(1);
    expect(cheap(aware)).toBeGreaterThanOrEqual(5);
  });
});

describe('input warping', () => {
  it('fits the warp with the kernel and still suggests reproducible, legal points', () => {
    const space: Space = {
      lr: { type: 'float', low: 1e-5, high: 1, log: true },
      n: { type: 'int', low: 1, high: 8 },
    };
    const run = (): Params[] => {
      const opt = createOptimizer({ type: 'gp', seed: 2, input_warping: true, n_startup_trials: 5 }, space, [
        'minimize',
      ]);
      const history: Observation[] = [];
      const out: Params[] = [];
      for (let number = 0; number < 12; number++) {
        const p = opt.suggest(number, history, []) as Params;
        out.push(p);
        const v = (Math.log10(p.lr as number) + 2) ** 2 + ((p.n as number) - 3) ** 2;
        history.push({ number, params: p, values: [v], state: 'completed' });
      }
      return out;
    };
    const a = run();
    expect(run()).toEqual(a);
    for (const p of a) {
      expect(p.lr as number).toBeGreaterThanOrEqual(1e-5);
      expect(p.lr as number).toBeLessThanOrEqual(1);
      expect(Number.isInteger(p.n)).toBe(true);
    }
  });
});

describe('local model past max_points', () => {
  it('keeps refining near the incumbent with a bounded model', () => {
    const run = (): { best: number; late: Params[] } => {
      const opt = createOptimizer({ type: 'gp', seed: 4, max_points: 15, local_points: 8 }, BRANIN, [
        'minimize',
      ]);
      const history: Observation[] = [];
      let best = Number.POSITIVE_INFINITY;
      let bestAt: Params = {};
      const late: Params[] = [];
      for (let number = 0; number < 40; number++) {
        const p = opt.suggest(number, history, []) as Params;
        const v = branin(p.x1 as number, p.x2 as number);
        if (v < best) {
          best = v;
          bestAt = p;
        }
        if (number >= 30) late.push({ ...p, dx: Math.abs((p.x1 as number) - (bestAt.x1 as number)) / 15 });
        history.push({ number, params: p, values: [v], state: 'completed' });
      }
      return { best, late };
    };
    const a = run();
    expect(run()).toEqual(a);
    // near the optimum after 40 trials (a model blind to its own region stalls around 1e-2),
    // and the late trials stay close to the best one
    expect(a.best - 0.397887357729738).toBeLessThan(1e-3);
    expect(a.late.filter((p) => (p.dx as number) < 0.1).length).toBeGreaterThanOrEqual(8);
  });
});
