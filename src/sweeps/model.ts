/**
 * Sweeps slice — pure model. No I/O here.
 *
 * Glossary
 * - sweep: a search over a parameter space, described by a sweep file (YAML or JSON). The
 *   controller loop drives it; all of its state lives in the store.
 * - trial: one configuration of a sweep, numbered 0, 1, 2 … in creation order. Its parameters
 *   are decided once (by the optimizer, or by PBT's exploit/explore) and stored with the number
 *   in the transaction that creates the trial's run, before anything is dispatched.
 * - attempt: one try of a trial; each attempt is a run (sweep_id set, parameters in its config)
 *   with its jobs. A stale or failed trial is retried as a new attempt, under the same number.
 * - training job / eval job: what the dispatcher runs for an attempt; the eval job (optional)
 *   runs after training succeeded and is named `{run_id}_eval`.
 * - derived status: what a trial is doing, computed each round from its run and jobs
 *   (PENDING … COMPLETED, plus FAILED, STALE and PRUNED).
 * - observation: a finished trial as the optimizer sees it (parameters and objective values).
 * - rung: an ASHA milestone (a step count); the value a trial had there decides whether it
 *   continues (is promoted) or is stopped.
 */
import type { Direction, Observation } from './optimizers/index.js';
import type { Params } from './space.js';

export const SWEEP_STATUSES = ['running', 'stopping', 'stopped', 'completed', 'failed'] as const;
export type SweepStatus = (typeof SWEEP_STATUSES)[number];

/** Statuses in which the controller loop works on a sweep. */
export const ACTIVE_SWEEP_STATUSES: readonly SweepStatus[] = ['running', 'stopping'];

/**
 * The seed's derived trial statuses, plus the terminal ones: FAILED (gave up), STALE (no sign of
 * life for stale_after: failed, then retried by policy) and PRUNED (stopped early by the scheduler).
 */
export const TRIAL_STATUSES = [
  'PENDING',
  'IN_TRAINING',
  'TRAINING_DONE_NO_EVAL',
  'IN_EVAL',
  'EVAL_DONE_NOT_COMPLETED',
  'COMPLETED',
  'FAILED',
  'STALE',
  'PRUNED',
] as const;
export type TrialStatus = (typeof TRIAL_STATUSES)[number];

export const FINAL_TRIAL_STATUSES: ReadonlySet<TrialStatus> = new Set(['COMPLETED', 'FAILED', 'PRUNED']);

export function isFinalTrial(s: TrialStatus): boolean {
  return FINAL_TRIAL_STATUSES.has(s);
}

/** Why a trial ended, kept with it. `interrupted`: the sweep was stopped under it (resume retries it). */
export type EndReason = 'completed' | 'failed' | 'stale' | 'pruned' | 'interrupted' | 'no_objective';

/** Job state as every dispatcher reports it. `unknown`: the dispatcher has no record of the ref. */
export const DISPATCH_STATES = ['pending', 'running', 'succeeded', 'failed', 'killed', 'unknown'] as const;
export type DispatchState = (typeof DISPATCH_STATES)[number];

export function isDispatchActive(s: DispatchState | null): boolean {
  return s === 'pending' || s === 'running';
}

// ---- the normalised sweep file ----

export interface ObjectiveSpec {
  metric: string;
  direction: Direction;
  /** Which reported value is the trial's: the last one (default), or the best / min / max. */
  aggregate: 'last' | 'best' | 'min' | 'max';
}

export interface TaskSpec {
  command: string[];
  env: Record<string, string>;
  cwd: string | null;
  resources: { cpu: number; memory_mb: number; gpu: number; device_type: string | null };
  /** Job-level retries of a failed process (workers dispatcher); trial-level retries are `retry`. */
  max_retries: number;
}

export type SchedulerSpec =
  | { type: 'async' }
  | { type: 'sequential' }
  | { type: 'batched'; batch_size: number }
  | {
      type: 'asha' | 'hyperband';
      metric: string;
      direction: Direction;
      reduction_factor: number;
      grace_period: number;
      max_t: number;
      /** asha: 1 by default; hyperband: every bracket, floor(log_rf(max_t / grace_period)) + 1. */
      brackets: number;
    }
  | {
      type: 'median';
      metric: string;
      direction: Direction;
      grace_period: number;
      min_samples: number;
    }
  | {
      type: 'pbt';
      metric: string;
      direction: Direction;
      population_size: number;
      perturbation_interval: number;
      max_t: number;
      quantile: number;
      resample_probability: number;
      perturbation_factors: [number, number];
      /** Parameters PBT may change; default every parameter. */
      mutations: string[];
    };
export type SchedulerType = SchedulerSpec['type'];

export type DispatcherSpec =
  | { type: 'workers' }
  | { type: 'local'; max_concurrent: number | null }
  | { type: 'slurm'; partition: string | null; time_limit: string | null; extra_args: string[] }
  | {
      type: 'pool';
      /** Which dispatcher takes which kind of job, and who takes over when it is down. */
      train: string[];
      eval: string[];
      members: Record<string, Exclude<DispatcherSpec, { type: 'pool' }>>;
    };

export interface RetryPolicy {
  /** New attempts a trial may get after its first. */
  max_retries: number;
  on: Array<'stale' | 'failed'>;
}

export interface SweepSpec {
  name: string;
  objectives: ObjectiveSpec[];
  parameters: import('./space.js').Space;
  optimizer: import('./optimizers/index.js').OptimizerSpec;
  scheduler: SchedulerSpec;
  /** Every trial of the sweep counts, across restarts; null: until the optimizer runs out. */
  max_trials: number | null;
  max_parallel_jobs: number;
  train: TaskSpec;
  eval: TaskSpec | null;
  dispatcher: DispatcherSpec;
  /** No sign of life for this long makes an active trial STALE. */
  stale_after_ms: number;
  /** A stopped trial's learner gets this long after its terminate command before its job is killed. */
  stop_grace_ms: number;
  retry: RetryPolicy;
  /** Cost-aware search: this metric is the trial's cost (e.g. seconds, GPU-hours). */
  cost_metric: string | null;
  /** Warm start: the finished trials of these sweeps seed the optimizer's history. */
  warm_start: string[];
  labels: Record<string, string>;
  /** What can_spawn limits the trial jobs under (absent in sweeps stored before it: sweep_trial). */
  task_type?: string;
  /** Root of the per-trial checkpoint directories (PBT hands them on). */
  checkpoint_dir: string | null;
}

// ---- derived trial status ----

/** What the controller knows of a trial in one round: its stored row, run and job states. */
export interface TrialFacts {
  status: TrialStatus;
  hasEval: boolean;
  trainState: DispatchState | null;
  evalState: DispatchState | null;
  /** Objective values found in the run's summary (all objectives present), else null. */
  values: number[] | null;
  /** The run ended as completed/failed/terminated (learner finish, or its job). */
  runEnded: 'completed' | 'failed' | 'terminated' | null;
  activityAt: number;
  now: number;
  staleAfterMs: number;
  /** The run's liveness: an unresponsive learner is stale at once. */
  runHealth: string;
}

/**
 * The seed's computed status: PENDING (training not started) → IN_TRAINING →
 * TRAINING_DONE_NO_EVAL → IN_EVAL → EVAL_DONE_NOT_COMPLETED → COMPLETED (observation recorded);
 * FAILED when a job failed for good or no objective was ever reported; STALE when an active
 * trial showed no sign of life for stale_after. Final statuses never change.
 */
export function deriveTrialStatus(f: TrialFacts): {
  status: TrialStatus;
  reason: EndReason | null;
  error: string | null;
} {
  if (isFinalTrial(f.status)) return { status: f.status, reason: null, error: null };
  const stale = f.now - f.activityAt >= f.staleAfterMs || f.runHealth === 'unresponsive';
  const train = f.trainState;
  if (train === null || train === 'pending') {
    return { status: 'PENDING', reason: null, error: null };
  }
  if (train === 'running') {
    if (stale) return { status: 'STALE', reason: 'stale', error: 'no sign of life from the training job' };
    return { status: 'IN_TRAINING', reason: null, error: null };
  }
  if (train === 'failed' || train === 'killed' || train === 'unknown') {
    // A learner that declared itself completed (and reported the objective) completed, whatever
    // happened to its process afterwards.
    if (f.runEnded === 'completed' && f.values !== null && !f.hasEval) {
      return { status: 'COMPLETED', reason: 'completed', error: null };
    }
    const why =
      train === 'unknown' ? 'the dispatcher lost the training job' : `the training job ended ${train}`;
    return { status: 'FAILED', reason: 'failed', error: why };
  }
  // Training succeeded.
  if (!f.hasEval) {
    if (f.values !== null) return { status: 'COMPLETED', reason: 'completed', error: null };
    return {
      status: 'FAILED',
      reason: 'no_objective',
      error: 'training ended without reporting the objective metric',
    };
  }
  const ev = f.evalState;
  if (ev === null) return { status: 'TRAINING_DONE_NO_EVAL', reason: null, error: null };
  if (ev === 'pending' || ev === 'running') {
    if (ev === 'running' && stale)
      return { status: 'STALE', reason: 'stale', error: 'no sign of life from the eval job' };
    return { status: 'IN_EVAL', reason: null, error: null };
  }
  if (ev !== 'succeeded') return { status: 'FAILED', reason: 'failed', error: `the eval job ended ${ev}` };
  if (f.values !== null) return { status: 'COMPLETED', reason: 'completed', error: null };
  return { status: 'EVAL_DONE_NOT_COMPLETED', reason: null, error: null };
}

/**
 * After an eval job succeeded, metrics it posted may still be on their way; give them a few
 * rounds before calling the trial failed for lack of an objective.
 */
export const EVAL_RESULT_GRACE_MS = 10_000;

/** Whether a trial that ended this way gets another attempt under the retry policy. */
export function shouldRetry(reason: EndReason | null, attempt: number, policy: RetryPolicy): boolean {
  if (reason === 'interrupted') return false;
  if (attempt >= policy.max_retries) return false;
  if (reason === 'stale') return policy.on.includes('stale');
  if (reason === 'failed') return policy.on.includes('failed');
  return false;
}

// ---- objectives ----

/** The objective values of a trial from its run summary (last value of each metric). */
export function valuesFromSummary(
  objectives: readonly ObjectiveSpec[],
  summary: Record<string, number>,
): number[] | null {
  const out: number[] = [];
  for (const o of objectives) {
    const v = summary[o.metric];
    if (v === undefined || !Number.isFinite(v)) return null;
    out.push(v);
  }
  return out;
}

/** The objective value under an aggregate, from a metric series (step order). */
export function aggregateSeries(
  o: ObjectiveSpec,
  series: ReadonlyArray<{ step: number; value: number }>,
): number | null {
  const values = series.map((p) => p.value).filter((v) => Number.isFinite(v));
  if (values.length === 0) return null;
  switch (o.aggregate) {
    case 'last':
      return values[values.length - 1] ?? null;
    case 'min':
      return Math.min(...values);
    case 'max':
      return Math.max(...values);
    case 'best':
      return o.direction === 'minimize' ? Math.min(...values) : Math.max(...values);
  }
}

/** True when a is better than b in this direction. */
export function better(a: number, b: number, direction: Direction): boolean {
  return direction === 'minimize' ? a < b : a > b;
}

/** The best completed trial on the first objective (single-objective sweeps' "best so far"). */
export function bestTrial(
  trials: ReadonlyArray<{ number: number; status: TrialStatus; values: number[] | null }>,
  direction: Direction,
): { number: number; value: number } | null {
  let best: { number: number; value: number } | null = null;
  for (const t of trials) {
    const v = t.values?.[0];
    if (t.status !== 'COMPLETED' || v === undefined) continue;
    if (best === null || better(v, best.value, direction)) best = { number: t.number, value: v };
  }
  return best;
}

/** A finished trial as the optimizer sees it. */
export function observationOf(t: {
  number: number;
  params: Params;
  status: TrialStatus;
  values: number[] | null;
  cost: number | null;
}): Observation | null {
  if (t.status === 'COMPLETED' && t.values) {
    return { number: t.number, params: t.params, values: t.values, state: 'completed', ...costOf(t.cost) };
  }
  if (t.status === 'PRUNED') {
    return { number: t.number, params: t.params, values: t.values, state: 'pruned', ...costOf(t.cost) };
  }
  if (t.status === 'FAILED') return { number: t.number, params: t.params, values: null, state: 'failed' };
  return null;
}

function costOf(cost: number | null): { cost?: number } {
  return cost === null ? {} : { cost };
}

// ---- the training command ----

/**
 * Fills `{name}` placeholders of a command: each parameter, and trial, run_id, sweep_id,
 * checkpoint_dir, resume_from, start_step, max_t, params_json. `{{` and `}}` are literal braces.
 * An inactive conditional parameter fills in as an empty string.
 */
export function renderCommand(
  argv: readonly string[],
  values: Record<string, string | number | boolean | null>,
): string[] {
  return argv.map((arg) =>
    arg.replace(/\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_.-]*)\}/g, (m, name: string | undefined) => {
      if (m === '{{') return '{';
      if (m === '}}') return '}';
      const v = name === undefined ? undefined : values[name];
      return v === undefined || v === null ? '' : String(v);
    }),
  );
}

/** Placeholders a command may use besides the parameters. */
export const COMMAND_PLACEHOLDERS = [
  'trial',
  'attempt',
  'run_id',
  'sweep_id',
  'checkpoint_dir',
  'resume_from',
  'start_step',
  'max_t',
  'params_json',
] as const;

/** The name of an attempt's training job (unique, so a relaunch after a crash finds the first). */
export function trainJobName(sweepId: string, number: number, attempt: number): string {
  return `${sweepId}-t${number}-a${attempt}`;
}

/** The seed's naming of evaluation jobs: linked to the training run by `{run_id}_eval`. */
export function evalJobName(runId: string): string {
  return `${runId}_eval`;
}
