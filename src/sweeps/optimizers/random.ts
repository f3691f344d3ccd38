/** Random search: each trial's values are drawn from its own seeded stream (seed, number). */
import type { Params, Space } from '../space.js';
import { sampleUniform, seedOf } from './common.js';
import { Rng } from './rng.js';
import type { Optimizer, OptimizerSpec } from './types.js';

export function createRandom(spec: OptimizerSpec, space: Space): Optimizer {
  const seed = seedOf(spec);
  return {
    size: null,
    suggest(number: number): Params {
      return sampleUniform(space, Rng.for(seed, number, 'random'));
    },
  };
}
