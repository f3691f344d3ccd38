/**
 * Optimizers — pure model: what configuration each trial of a sweep tries. Every optimizer is
 * stateless: a suggestion is a function of (spec, seed, trial number, finished trials, running
 * trials), so a restarted controller that asks again for a trial number gets the same answer.
 */
import { type FieldError, invalid } from '../../shared/errors.js';
import type { Space } from '../space.js';
import { createCmaes } from './cmaes.js';
import { createGp } from './gp.js';
import { createGrid } from './grid.js';
import { createNsga2 } from './nsga2.js';
import { OPTION_TABLES, type OptimizerType, validateOptions } from './options.js';
import { createRandom } from './random.js';
import { createSobol } from './sobol.js';
import { createTpe } from './tpe.js';
import type { Direction, Optimizer, OptimizerSpec } from './types.js';

export type { Direction, Observation, Optimizer, OptimizerSpec } from './types.js';

export const OPTIMIZER_TYPES: readonly string[] = Object.keys(OPTION_TABLES);

const isType = (t: unknown): t is OptimizerType => typeof t === 'string' && Object.hasOwn(OPTION_TABLES, t);

/** Field-level errors of an optimizer block, paths like `optimizer.gamma`. */
export function validateOptimizerSpec(raw: unknown, path = 'optimizer'): FieldError[] {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return [{ field: path, code: 'INVALID_TYPE', message: 'optimizer must be an object' }];
  }
  const spec = raw as Record<string, unknown>;
  if (!isType(spec.type)) {
    return [
      {
        field: `${path}.type`,
        code: spec.type === undefined ? 'REQUIRED' : 'INVALID_VALUE',
        message: `type must be one of ${OPTIMIZER_TYPES.join(', ')}`,
      },
    ];
  }
  return validateOptions(spec.type, spec, path);
}

/**
 * The optimizer for a validated space. Throws a 422 AppError (field `optimizer.*`) when the
 * spec is invalid or does not fit the space or the number of objectives (e.g. a grid over a
 * continuous parameter without a resolution, CMA-ES with two objectives).
 * Warm start: earlier sweeps' observations are passed in `history` with negative numbers.
 */
export function createOptimizer(spec: OptimizerSpec, space: Space, directions: Direction[]): Optimizer {
  const errors = validateOptimizerSpec(spec);
  if (errors.length > 0) throw invalid(errors, 'the optimizer is invalid');
  if (directions.length === 0) {
    throw invalid([{ field: 'objective', code: 'REQUIRED', message: 'at least one objective is required' }]);
  }
  const type = spec.type as OptimizerType;
  switch (type) {
    case 'grid':
      return createGrid(spec, space);
    case 'random':
      return createRandom(spec, space);
    case 'sobol':
      return createSobol(spec, space);
    case 'gp':
      return createGp(spec, space, directions);
    case 'cmaes':
      if (directions.length > 1) {
        throw invalid([
          {
            field: 'optimizer.type',
            code: 'INVALID_VALUE',
            message: 'cmaes optimizes one objective; use nsga2, motpe or gp',
          },
        ]);
      }
      return createCmaes(spec, space, directions);
    case 'tpe':
    case 'motpe':
      return createTpe(spec, space, directions);
    case 'nsga2':
      return createNsga2(spec, space, directions);
  }
}
