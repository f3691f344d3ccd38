/**
 * Schedulers — pure model: given every trial of a sweep (derived status, intermediate values),
 * decide WHEN things run: which jobs to launch now (training of pending trials, evaluation of
 * trained ones), how many new trials to ask the optimizer for, which running trials to stop
 * early, and (PBT) which trials to start from another trial's checkpoint. No I/O: the controller
 * persists the decision, then the dispatcher executes it.
 */
import type { SchedulerSpec } from '../model.js';
import { ashaDecide, rungsOf } from './asha.js';
import { baseJobs, remainingTrials, type SchedulerContext, type SchedulerDecision } from './common.js';
import { medianDecide } from './median.js';
import { pbtDecide } from './pbt.js';

function unassigned(): { bracket: null; member: null } {
  return { bracket: null, member: null };
}

/** The capped asynchronous policy: keep max_parallel_jobs trials going until max_trials. */
function asyncDecide(ctx: SchedulerContext): SchedulerDecision {
  const { jobs, free } = baseJobs(ctx);
  const left = remainingTrials(ctx);
  const canCreate = !ctx.stopping && !ctx.exhausted;
  return {
    jobs,
    create: canCreate ? Math.min(free, left) : 0,
    assign: unassigned,
    stop: [],
    record: [],
    spawn: [],
    finished: ctx.exhausted || left === 0,
  };
}

/** Batched: a batch of trials at a time; the next batch starts when the whole batch ended. */
function batchedDecide(ctx: SchedulerContext, batch: number): SchedulerDecision {
  const { jobs } = baseJobs(ctx);
  const left = remainingTrials(ctx);
  const open = ctx.trials.some((t) => !['COMPLETED', 'FAILED', 'PRUNED'].includes(t.status) || t.active);
  const create = ctx.stopping || ctx.exhausted || open ? 0 : Math.min(batch, left);
  return {
    jobs,
    create,
    assign: unassigned,
    stop: [],
    record: [],
    spawn: [],
    finished: ctx.exhausted || left === 0,
  };
}

export interface Scheduler {
  /** Whether decide() needs each trial's intermediate series of `metric`. */
  readonly metric: string | null;
  decide(ctx: SchedulerContext): SchedulerDecision;
}

export function createScheduler(spec: SchedulerSpec): Scheduler {
  switch (spec.type) {
    case 'async':
      return { metric: null, decide: asyncDecide };
    case 'sequential':
      return { metric: null, decide: (ctx) => asyncDecide({ ...ctx, maxParallel: 1 }) };
    case 'batched':
      return { metric: null, decide: (ctx) => batchedDecide(ctx, spec.batch_size) };
    case 'asha':
    case 'hyperband':
      return { metric: spec.metric, decide: (ctx) => ashaDecide(ctx, spec) };
    case 'median':
      return { metric: spec.metric, decide: (ctx) => medianDecide(ctx, spec) };
    case 'pbt':
      return { metric: spec.metric, decide: (ctx) => pbtDecide(ctx, spec) };
  }
}

export type {
  JobDefinition,
  SchedulerContext,
  SchedulerDecision,
  SeriesPoint,
  Spawn,
  TrialView,
} from './common.js';
export { rungsOf };
