import { toIso } from '../shared/clock.js';
import { parseRef } from './dispatchers/dispatcher.js';
import type { SchedulerSpec, SweepSpec, SweepStatus, TrialStatus } from './model.js';
import type { SweepWire, TrialWire } from './schemas.js';
import type { Params } from './space.js';
import type { SweepRow, TrialRow } from './sweep-repo.js';

/**
 * A trial whose job can_spawn refused keeps waiting (PENDING, or trained and waiting for its
 * evaluation) with the refusal in its `error`, under this prefix, until a later round launches it.
 */
export const LAUNCH_BLOCKED_PREFIX = 'launch blocked: ';

/** The refusal holding a trial's next job back, and since when; null when none does. */
export function launchBlockedOf(t: TrialRow): { reason: string; at: string } | null {
  if (t.error === null || !t.error.startsWith(LAUNCH_BLOCKED_PREFIX)) return null;
  const waiting =
    (t.status === 'PENDING' && t.train_ref === null) ||
    (t.status === 'TRAINING_DONE_NO_EVAL' && t.eval_ref === null);
  if (!waiting) return null;
  return { reason: t.error.slice(LAUNCH_BLOCKED_PREFIX.length), at: toIso(t.updated_at) ?? '' };
}

export function trialView(t: TrialRow): TrialWire {
  return {
    sweep_id: t.sweep_id,
    number: t.number,
    status: t.status as TrialStatus,
    params: JSON.parse(t.params) as Params,
    values: t.objective_values ? (JSON.parse(t.objective_values) as number[]) : null,
    run_id: t.run_id,
    attempt: t.attempt,
    origin: t.origin,
    parent_number: t.parent_number,
    member: t.member,
    bracket: t.bracket,
    start_step: Number(t.start_step),
    rungs: JSON.parse(t.rungs) as Record<string, number>,
    train_job: t.train_ref,
    train_state: t.train_state,
    eval_job: t.eval_ref,
    eval_state: t.eval_state,
    end_reason: t.end_reason,
    error: t.error,
    launch_blocked: launchBlockedOf(t),
    cost: t.cost,
    created_at: toIso(t.created_at),
    updated_at: toIso(t.updated_at),
    ended_at: toIso(t.ended_at),
  };
}

/** The job id of a ref, for people (`workers:job_…` → `job_…`). */
export function jobIdOf(ref: string | null): string | null {
  return ref === null ? null : parseRef(ref).id;
}

export function sweepView(row: SweepRow, counts: Record<string, number>, best: TrialRow | null): SweepWire {
  const spec = JSON.parse(row.spec) as SweepSpec;
  return {
    sweep_id: row.id,
    name: row.name,
    status: row.status as SweepStatus,
    status_reason: row.status_reason,
    objectives: spec.objectives,
    optimizer: spec.optimizer.type,
    scheduler: (spec.scheduler as SchedulerSpec).type,
    dispatcher: spec.dispatcher.type,
    max_trials: spec.max_trials,
    max_parallel_jobs: spec.max_parallel_jobs,
    trial_count: row.trial_count,
    counts,
    best:
      best && row.best_value !== null
        ? {
            number: best.number,
            value: row.best_value,
            params: JSON.parse(best.params) as Params,
            run_id: best.run_id,
          }
        : null,
    spec: spec as unknown as Record<string, unknown>,
    last_error: row.last_error,
    created_at: toIso(row.created_at),
    updated_at: toIso(row.updated_at),
    finished_at: toIso(row.finished_at),
  };
}

/** Trials as CSV: number, status, each parameter, each objective, run and timing columns. */
export function trialsCsv(spec: SweepSpec, trials: readonly TrialWire[]): string {
  const params = Object.keys(spec.parameters);
  const objectives = spec.objectives.map((o) => o.metric);
  const header = [
    'number',
    'status',
    ...params,
    ...objectives,
    'cost',
    'attempt',
    'origin',
    'parent_number',
    'run_id',
    'created_at',
    'ended_at',
  ];
  const cell = (v: unknown): string => {
    if (v === null || v === undefined) return '';
    const s = String(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  const lines = [header.join(',')];
  for (const t of trials) {
    lines.push(
      [
        t.number,
        t.status,
        ...params.map((p) => t.params[p]),
        ...objectives.map((_, i) => t.values?.[i]),
        t.cost,
        t.attempt,
        t.origin,
        t.parent_number,
        t.run_id,
        t.created_at,
        t.ended_at,
      ]
        .map(cell)
        .join(','),
    );
  }
  return `${lines.join('\n')}\n`;
}
