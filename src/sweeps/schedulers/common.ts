/**
 * What every scheduler shares: the trial view, the context, the decision, and the common first
 * step (evaluations and pending training within max_parallel_jobs). Pure.
 */
import type { TrialStatus } from '../model.js';
import type { Params, Space } from '../space.js';

export interface SeriesPoint {
  step: number;
  value: number;
}

/** A trial as schedulers see it. */
export interface TrialView {
  number: number;
  status: TrialStatus;
  params: Params;
  values: number[] | null;
  /** The scheduler metric's reported values, in step order (empty when it needs none). */
  series: SeriesPoint[];
  /** Values recorded at rungs / perturbation points, by milestone. */
  rungs: Record<string, number>;
  bracket: number | null;
  member: number | null;
  parentNumber: number | null;
  startStep: number;
  /** A job of the trial is dispatched and not yet over (counts against max_parallel_jobs). */
  active: boolean;
  /** Training of the current attempt has not been dispatched yet. */
  needsTraining: boolean;
}

export interface SchedulerContext {
  trials: TrialView[];
  space: Space;
  seed: number;
  /** Trials created so far (the next trial number). */
  trialCount: number;
  maxTrials: number | null;
  maxParallel: number;
  /** The optimizer has nothing more to suggest (a finished grid). */
  exhausted: boolean;
  /** The sweep is being stopped: nothing new starts. */
  stopping: boolean;
}

export interface Spawn {
  /** The trial whose checkpoint the new one continues from. */
  parent: number;
  params: Params;
  member: number;
  startStep: number;
}

export interface JobDefinition {
  type: 'LAUNCH_TRAINING' | 'LAUNCH_EVAL';
  number: number;
}

export interface SchedulerDecision {
  /** Jobs of existing trials to dispatch now. */
  jobs: JobDefinition[];
  /** New trials to ask the optimizer for now (their training is dispatched at once). */
  create: number;
  /** Bracket (Hyperband) and population slot (PBT) of the new trial that gets this number. */
  assign(number: number): { bracket: number | null; member: number | null };
  /** Running trials to stop early: they become PRUNED. */
  stop: Array<{ number: number; reason: string }>;
  /** Rung values to store with the trials (stored in the same transaction as the stops). */
  record: Array<{ number: number; rungs: Record<string, number> }>;
  /** PBT: new trials from existing trials' checkpoints. */
  spawn: Spawn[];
  /** No trial will be created any more: the sweep ends when the active ones have. */
  finished: boolean;
}

/** The value recorded for a milestone: the first report at or after it. */
export function valueAt(series: readonly SeriesPoint[], milestone: number): number | null {
  for (const p of series) if (p.step >= milestone) return p.value;
  return null;
}

export function latestStep(series: readonly SeriesPoint[]): number | null {
  return series.length === 0 ? null : (series[series.length - 1]?.step ?? null);
}

/**
 * What every scheduler does first: evaluations of trained trials, then training of pending
 * trials (new attempts, spawns), within max_parallel_jobs. Returns the slots left.
 */
export function baseJobs(ctx: SchedulerContext): { jobs: JobDefinition[]; free: number } {
  let free = ctx.maxParallel - ctx.trials.filter((t) => t.active).length;
  const jobs: JobDefinition[] = [];
  if (ctx.stopping) return { jobs, free: 0 };
  for (const t of ctx.trials) {
    if (free <= 0) break;
    if (t.status === 'TRAINING_DONE_NO_EVAL' && !t.active) {
      jobs.push({ type: 'LAUNCH_EVAL', number: t.number });
      free--;
    }
  }
  for (const t of ctx.trials) {
    if (free <= 0) break;
    if (t.status === 'PENDING' && t.needsTraining) {
      jobs.push({ type: 'LAUNCH_TRAINING', number: t.number });
      free--;
    }
  }
  return { jobs, free: Math.max(0, free) };
}

/** How many more trials max_trials allows. */
export function remainingTrials(ctx: SchedulerContext): number {
  return ctx.maxTrials === null ? Number.POSITIVE_INFINITY : Math.max(0, ctx.maxTrials - ctx.trialCount);
}
