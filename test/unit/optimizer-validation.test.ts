import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/shared/errors.js';
import {
  createOptimizer,
  OPTIMIZER_TYPES,
  validateOptimizerSpec,
} from '../../src/sweeps/optimizers/index.js';

const fields = (raw: unknown, path?: string): string[] =>
  validateOptimizerSpec(raw, path).map((e) => `${e.field}:${e.code}`);

describe('validateOptimizerSpec', () => {
  it('accepts every type with its defaults and with valid options', () => {
    for (const type of OPTIMIZER_TYPES) expect(validateOptimizerSpec({ type, seed: 1 })).toEqual([]);
    expect(
      validateOptimizerSpec({ type: 'tpe', gamma: 0.25, n_startup_trials: 5, multivariate: false }),
    ).toEqual([]);
    expect(validateOptimizerSpec({ type: 'grid', resolution: { lr: 5, wd: 3 } })).toEqual([]);
    expect(validateOptimizerSpec({ type: 'gp', cost_aware: true, max_points: 100 })).toEqual([]);
  });

  it('reports each bad field with its path', () => {
    expect(fields('tpe')).toEqual(['optimizer:INVALID_TYPE']);
    expect(fields({})).toEqual(['optimizer.type:REQUIRED']);
    expect(fields({ type: 'hyperopt' })).toEqual(['optimizer.type:INVALID_VALUE']);
    expect(fields({ type: 'tpe', seed: 1.5 })).toEqual(['optimizer.seed:INVALID_TYPE']);
    expect(fields({ type: 'tpe', gamma: 0 })).toEqual(['optimizer.gamma:OUT_OF_RANGE']);
    expect(fields({ type: 'tpe', gamma: 1.5 })).toEqual(['optimizer.gamma:OUT_OF_RANGE']);
    expect(fields({ type: 'tpe', n_startup_trials: 2.5 })).toEqual([
      'optimizer.n_startup_trials:INVALID_TYPE',
    ]);
    expect(fields({ type: 'tpe', multivariate: 'yes' })).toEqual(['optimizer.multivariate:INVALID_TYPE']);
    expect(fields({ type: 'random', gamma: 0.1 })).toEqual(['optimizer.gamma:UNKNOWN_FIELD']);
    expect(fields({ type: 'grid', resolution: { lr: 1 } })).toEqual(['optimizer.resolution.lr:OUT_OF_RANGE']);
    expect(fields({ type: 'nsga2', population_size: 1, crossover_prob: 2 })).toEqual([
      'optimizer.population_size:OUT_OF_RANGE',
      'optimizer.crossover_prob:OUT_OF_RANGE',
    ]);
    expect(fields({ type: 'cmaes', sigma0: 0 }, 'sweep.optimizer')).toEqual([
      'sweep.optimizer.sigma0:OUT_OF_RANGE',
    ]);
  });

  it('refuses a spec that does not fit the objectives with a 422', () => {
    const space = { x: { type: 'float' as const, low: 0, high: 1 } };
    try {
      createOptimizer({ type: 'cmaes' }, space, ['minimize', 'maximize']);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(AppError);
      expect((err as AppError).status).toBe(422);
      expect((err as AppError).details[0]?.field).toBe('optimizer.type');
    }
    expect(() => createOptimizer({ type: 'tpe', gamma: 7 }, space, ['minimize'])).toThrow(AppError);
  });
});
