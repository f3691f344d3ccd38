/**
 * The optimizer contract's types (re-exported by index.ts; kept apart so that the optimizers
 * import them without importing the factory that imports them).
 */
import type { Params } from '../space.js';

export type Direction = 'minimize' | 'maximize';
export interface Observation {
  number: number; // trial number, 0-based, in creation order
  params: Params;
  /** One value per objective, as reported (NOT sign-flipped); null when the trial failed. */
  values: number[] | null;
  state: 'completed' | 'failed' | 'pruned';
  /** Optional cost (e.g. seconds or GPU-hours) for cost-aware search. */
  cost?: number;
  /** Intermediate values by step, for pruned trials / multi-fidelity (may be empty). */
  intermediate?: Array<{ step: number; value: number }>;
}
export interface OptimizerSpec {
  type: string;
  seed?: number;
  [option: string]: unknown;
}
export interface Optimizer {
  /**
   * The suggestion for trial `number`, from everything finished so far (`history`) and the
   * parameters of trials still running (`pending`, for constant-liar). Stateless and
   * deterministic: the same (spec, seed, number, history, pending) gives the same params, so a
   * restarted controller re-asking for a trial number gets the same answer. null = the space
   * is exhausted (grid) — the sweep stops creating trials.
   */
  suggest(number: number, history: readonly Observation[], pending: readonly Params[]): Params | null;
  /** Grid: the number of distinct points; others: null. */
  readonly size: number | null;
}
