import { event } from '../events/catalog.js';
import { outboxRepo } from '../events/outbox-repo.js';
import { insertRun } from '../runs/run-service.js';
import type { Tx } from '../store/database.js';
import type { Params } from './space.js';
import { type SweepRow, sweepRepo, type TrialRow } from './sweep-repo.js';

export interface NewAttempt {
  sweepId: string;
  sweepName: string;
  number: number;
  attempt: number;
  params: Params;
  origin: string;
  parentNumber: number | null;
  member: number | null;
  bracket: number | null;
  startStep: number;
  resumeFrom: string | null;
  labels: Record<string, string>;
}

/**
 * Creates the run of a trial attempt inside the caller's transaction (as the runs slice creates
 * one, but without a token: the dispatcher issues the learner's token when it launches the
 * job). Creating the run in the same transaction as the trial's number and parameters is what
 * makes a crash at any instant lose nothing and duplicate nothing.
 */
async function createAttemptRun(tx: Tx, a: NewAttempt, now: number): Promise<string> {
  const config = {
    ...a.params,
    sweep: { sweep_id: a.sweepId, trial: a.number, attempt: a.attempt, start_step: a.startStep },
  };
  const labels = {
    ...a.labels,
    'runplane.sweep': a.sweepId,
    'runplane.trial': String(a.number),
    'runplane.attempt': String(a.attempt),
  };
  const row = await insertRun(
    tx,
    {
      name: `${a.sweepName}-t${a.number}${a.attempt > 0 ? `-a${a.attempt}` : ''}`,
      config,
      labels,
      sweep_id: a.sweepId,
    },
    { type: 'system', id: `sweep:${a.sweepId}` },
    null,
    now,
  );
  return row.id;
}

function attemptEvent(a: NewAttempt, runId: string) {
  return event('sweep.trial_created', a.sweepId, {
    sweep_id: a.sweepId,
    number: a.number,
    run_id: runId,
    attempt: a.attempt,
    origin: a.origin,
    parent_number: a.parentNumber,
    params: a.params,
  });
}

/** A new trial: its number, parameters and first run, in the caller's transaction. */
export async function createTrial(tx: Tx, a: NewAttempt, now: number): Promise<TrialRow> {
  const runId = await createAttemptRun(tx, a, now);
  const row: TrialRow = {
    sweep_id: a.sweepId,
    number: a.number,
    params: JSON.stringify(a.params),
    origin: a.origin,
    parent_number: a.parentNumber,
    member: a.member,
    bracket: a.bracket,
    start_step: a.startStep,
    resume_from: a.resumeFrom,
    run_id: runId,
    attempt: a.attempt,
    status: 'PENDING',
    end_reason: null,
    train_ref: null,
    train_state: null,
    eval_ref: null,
    eval_state: null,
    objective_values: null,
    cost: null,
    rungs: '{}',
    stop_requested_at: null,
    error: null,
    created_at: now,
    updated_at: now,
    activity_at: now,
    ended_at: null,
  };
  await sweepRepo.insertTrial(tx, row);
  await outboxRepo.append(tx, [attemptEvent(a, runId)], now);
  return row;
}

/** Another attempt of a trial (same number and parameters, a new run), in the caller's transaction. */
export async function retryTrial(tx: Tx, a: NewAttempt, now: number): Promise<string> {
  const runId = await createAttemptRun(tx, a, now);
  await sweepRepo.updateTrial(tx, a.sweepId, a.number, {
    run_id: runId,
    attempt: a.attempt,
    status: 'PENDING',
    end_reason: null,
    train_ref: null,
    train_state: null,
    eval_ref: null,
    eval_state: null,
    objective_values: null,
    rungs: '{}',
    stop_requested_at: null,
    error: null,
    updated_at: now,
    activity_at: now,
    ended_at: null,
  });
  await outboxRepo.append(tx, [attemptEvent(a, runId)], now);
  return runId;
}

/** The next attempt of a trial: same number, parameters and lineage. */
export function nextAttempt(
  sweep: Pick<SweepRow, 'id' | 'name'>,
  labels: Record<string, string>,
  t: TrialRow,
): NewAttempt {
  return {
    sweepId: sweep.id,
    sweepName: sweep.name,
    number: t.number,
    attempt: t.attempt + 1,
    params: JSON.parse(t.params) as Params,
    origin: t.origin,
    parentNumber: t.parent_number,
    member: t.member,
    bracket: t.bracket,
    startStep: Number(t.start_step),
    resumeFrom: t.resume_from,
    labels,
  };
}
