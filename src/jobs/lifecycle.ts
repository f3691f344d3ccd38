import { event } from '../events/catalog.js';
import { outboxRepo } from '../events/outbox-repo.js';
import type { Tx } from '../store/database.js';
import { jobTraceparent } from '../tracing/context.js';
import { endpointRepo } from './endpoint-repo.js';
import { type AttemptRow, type JobRow, jobRepo } from './job-repo.js';
import { type AttemptOutcome, afterAttempt, isTerminal, type JobState } from './model.js';

const NON_TERMINAL = ['PENDING', 'BUILDING', 'RUNNING'] as const;

/**
 * State changes of jobs and attempts that several use cases share (worker reports, the
 * health sweep, re-registration, terminate). Every function runs inside the caller's
 * transaction and writes its events there. Returns the workers that must hear about it.
 */
export const lifecycle = {
  /** An attempt's process started: attempt and (if still current) job become RUNNING. */
  async attemptRunning(tx: Tx, attempt: AttemptRow, job: JobRow | undefined, now: number): Promise<void> {
    if (
      !(await jobRepo.transitionAttempt(tx, attempt.id, ['BUILDING'], { state: 'RUNNING', started_at: now }))
    )
      return;
    await outboxRepo.append(tx, [attemptChanged(attempt, 'RUNNING', null, null)], now);
    if (!job || job.current_attempt_id !== attempt.id || job.state !== 'BUILDING') return;
    if (await jobRepo.transition(tx, job.id, ['BUILDING'], { state: 'RUNNING' }, now)) {
      await outboxRepo.append(tx, [jobChanged(job, 'RUNNING', attempt, null)], now);
    }
  },

  /**
   * attemptRunning for many attempts at once (a worker's report batch): one statement for the
   * attempts and one for their jobs, the events in the same order as one by one. The attempts
   * (BUILDING) and jobs are as read in this store write, so what moves is known: the statements
   * cost no round trip of their own (writeExpecting).
   */
  async attemptsRunning(
    tx: Tx,
    items: ReadonlyArray<{ attempt: AttemptRow; job: JobRow | undefined }>,
    now: number,
  ): Promise<void> {
    // What the statements expect is exactly what their WHERE says: a row that differs from what
    // was read fails the write instead of being skipped silently.
    items = items.filter((i) => i.attempt.state === 'BUILDING');
    if (items.length === 0) return;
    await jobRepo.transitionAttemptsKnown(
      tx,
      items.map((i) => i.attempt.id),
      ['BUILDING'],
      { state: 'RUNNING', started_at: now },
    );
    const current = items.filter(
      ({ attempt, job }) => job && job.current_attempt_id === attempt.id && job.state === 'BUILDING',
    );
    await jobRepo.transitionKnown(
      tx,
      current.map((i) => i.attempt.job_id),
      ['BUILDING'],
      { state: 'RUNNING' },
      now,
    );
    const jobMoves = new Set(current.map((i) => i.attempt.id));
    await outboxRepo.append(
      tx,
      items.flatMap(({ attempt, job }) => [
        attemptChanged(attempt, 'RUNNING', null, null),
        ...(job && jobMoves.has(attempt.id) ? [jobChanged(job, 'RUNNING', attempt, null)] : []),
      ]),
      now,
    );
  },

  /**
   * attemptEnded for many attempts that SUCCEEDED as their job's current attempt: the job
   * ends SUCCEEDED with no retry, so three statements serve the whole batch (attempts, jobs,
   * endpoints), the first two with no round trip of their own (writeExpecting: the attempts and
   * jobs are as read in this store write). Callers pass only such attempts of jobs that are not
   * terminal, and `withEndpoints`: which of their jobs have endpoints, read in this store write
   * (endpoints are registered by store writes, so none can appear meanwhile); no statement
   * removes endpoints when none of them has any.
   */
  async attemptsSucceeded(
    tx: Tx,
    items: ReadonlyArray<{
      attempt: AttemptRow;
      job: JobRow;
      exitCode: number | null;
      reason: string | null;
    }>,
    withEndpoints: ReadonlySet<string>,
    now: number,
  ): Promise<void> {
    const live = ['BUILDING', 'RUNNING'];
    items = items.filter((i) => live.includes(i.attempt.state) && live.includes(i.job.state));
    if (items.length === 0) return;
    // One statement per distinct exit code and reason (nearly always one group: 0, none).
    const groups = new Map<string, { exitCode: number | null; reason: string | null; ids: string[] }>();
    for (const i of items) {
      const key = JSON.stringify([i.exitCode, i.reason]);
      const g = groups.get(key) ?? { exitCode: i.exitCode, reason: i.reason, ids: [] };
      g.ids.push(i.attempt.id);
      groups.set(key, g);
    }
    for (const g of groups.values())
      await jobRepo.transitionAttemptsKnown(tx, g.ids, live, {
        state: 'SUCCEEDED',
        exit_code: g.exitCode,
        reason: g.reason,
        finished_at: now,
      });
    const jobIds = items.map((i) => i.job.id);
    await jobRepo.transitionKnown(
      tx,
      jobIds,
      live,
      { state: 'SUCCEEDED', reason: null, finished_at: now },
      now,
    );
    await outboxRepo.append(
      tx,
      items.flatMap(({ attempt, job, exitCode, reason }) => [
        attemptChanged(attempt, 'SUCCEEDED', exitCode, reason),
        jobChanged(job, 'SUCCEEDED', attempt, reason),
      ]),
      now,
    );
    const removed = await endpointRepo.deleteForJobs(
      tx,
      jobIds.filter((id) => withEndpoints.has(id)),
    );
    await outboxRepo.append(
      tx,
      removed.map((e) =>
        event('endpoint.removed', e.id, {
          endpoint_id: e.id,
          name: e.name,
          job_id: e.job_id,
          reason: 'job SUCCEEDED',
        }),
      ),
      now,
    );
  },

  /**
   * An attempt ended. A report about a superseded attempt only closes that attempt; the job
   * follows the retry policy only for its current attempt.
   */
  async attemptEnded(
    tx: Tx,
    attempt: AttemptRow,
    job: JobRow | undefined,
    outcome: AttemptOutcome,
    exitCode: number | null,
    reason: string | null,
    now: number,
  ): Promise<Set<string>> {
    const wake = new Set<string>();
    const closed = await jobRepo.transitionAttempt(tx, attempt.id, ['BUILDING', 'RUNNING'], {
      state: outcome,
      exit_code: exitCode,
      reason,
      finished_at: now,
    });
    if (!closed) return wake;
    await outboxRepo.append(tx, [attemptChanged(attempt, outcome, exitCode, reason)], now);
    if (!job || job.current_attempt_id !== attempt.id || isTerminal(job.state as JobState)) return wake;

    const next = afterAttempt(
      outcome,
      job,
      { failure_count: job.failure_count, preemption_count: job.preemption_count },
      false,
    );
    const jobReason = next.retry
      ? `retrying after ${outcome.toLowerCase()}: ${reason ?? 'no reason'}`
      : reason;
    const moved = await jobRepo.transition(
      tx,
      job.id,
      [job.state],
      {
        state: next.next,
        reason: next.next === 'SUCCEEDED' ? null : jobReason,
        failure_count: next.counters.failure_count,
        preemption_count: next.counters.preemption_count,
        ...(next.retry ? { pending_since: now } : { finished_at: now }),
      },
      now,
    );
    if (!moved) return wake;
    await outboxRepo.append(tx, [jobChanged(job, next.next, attempt, jobReason)], now);
    if (!next.retry) {
      await removeEndpoints(tx, job.id, `job ${next.next}`, now);
      if (job.gang_id && (next.next === 'FAILED' || next.next === 'WORKER_FAILED')) {
        const others = (await jobRepo.gangMembers(tx, job.gang_id)).filter((j) => j.id !== job.id);
        for (const w of await lifecycle.kill(
          tx,
          others,
          `gang member ${job.id} ended ${next.next}`,
          now,
          false,
        )) {
          wake.add(w);
        }
      }
    }
    return wake;
  },

  /**
   * Kills jobs (and, when cascade is set, all their descendants) that are not yet terminal.
   * Their active attempts stay active until the worker confirms the process is gone.
   */
  async kill(
    tx: Tx,
    roots: readonly JobRow[],
    reason: string,
    now: number,
    cascade: boolean,
  ): Promise<Set<string>> {
    const wake = new Set<string>();
    let frontier = [...roots];
    const seen = new Set<string>();
    while (frontier.length > 0) {
      for (const job of frontier) {
        if (seen.has(job.id)) continue;
        seen.add(job.id);
        if (isTerminal(job.state as JobState)) continue;
        if (
          !(await jobRepo.transition(
            tx,
            job.id,
            NON_TERMINAL,
            { state: 'KILLED', reason, finished_at: now },
            now,
          ))
        ) {
          continue;
        }
        await outboxRepo.append(tx, [jobChanged(job, 'KILLED', null, reason)], now);
        await removeEndpoints(tx, job.id, 'job KILLED', now);
        if (job.current_attempt_id && (job.state === 'BUILDING' || job.state === 'RUNNING')) {
          const [attempt] = await jobRepo.getAttempts(tx, [job.current_attempt_id]);
          if (attempt) wake.add(attempt.worker_id);
        }
      }
      frontier = cascade
        ? (
            await jobRepo.childrenOf(
              tx,
              frontier.map((j) => j.id),
            )
          ).filter((j) => !seen.has(j.id))
        : [];
    }
    return wake;
  },
};

function attemptChanged(attempt: AttemptRow, state: string, exitCode: number | null, reason: string | null) {
  return event('attempt.state_changed', attempt.job_id, {
    job_id: attempt.job_id,
    attempt_id: attempt.id,
    worker_id: attempt.worker_id,
    state,
    exit_code: exitCode,
    reason,
  });
}

/** In the job's own trace (TRACEPARENT in its environment), whoever reported the change. */
function jobChanged(job: JobRow, state: JobState, attempt: AttemptRow | null, reason: string | null) {
  return event(
    'job.state_changed',
    job.id,
    {
      job_id: job.id,
      state,
      previous: job.state,
      attempt_id: attempt?.id ?? job.current_attempt_id,
      worker_id: attempt?.worker_id ?? null,
      reason,
      run_id: job.run_id,
    },
    jobTraceparent(job.env),
  );
}

async function removeEndpoints(tx: Tx, jobId: string, reason: string, now: number): Promise<void> {
  const removed = await endpointRepo.deleteForJob(tx, jobId);
  if (removed.length === 0) return;
  await outboxRepo.append(
    tx,
    removed.map((e) =>
      event('endpoint.removed', e.id, { endpoint_id: e.id, name: e.name, job_id: e.job_id, reason }),
    ),
    now,
  );
}
