import { event } from '../events/catalog.js';
import { outboxRepo } from '../events/outbox-repo.js';
import type { Clock } from '../shared/clock.js';
import { AppError, conflict, invalid, notFound } from '../shared/errors.js';
import type { Store, Tx } from '../store/database.js';
import { currentTraceparent } from '../tracing/context.js';
import { commandRepo } from './command-repo.js';
import { metricRepo } from './metric-repo.js';
import { isEnded, type RunStatus, statusAfterHeartbeat } from './model.js';
import { type HeartbeatState, runRepo } from './run-repo.js';
import type { Heartbeat, HeartbeatAccepted } from './schemas.js';
import { mergeSummary, parseSummary, statusEvent } from './views.js';

export interface HeartbeatPolicy {
  /** A heartbeat sooner than this after the last accepted one is refused with 429. */
  minIntervalMs: number;
  /** The cadence learners are told to keep. */
  intervalMs: number;
}

interface Pending {
  runId: string;
  body: Heartbeat;
  /** The learner request's trace: its run.status event carries it, not the group commit's. */
  traceparent: string | null;
  resolve: (r: HeartbeatAccepted) => void;
  reject: (err: unknown) => void;
}

const BATCH = 500;

/**
 * Accepts learner heartbeats. Heartbeats that arrive together are checked one by one and
 * written in one transaction (group commit): one durable commit for a burst of learners. A
 * rejected heartbeat is decided before anything of it is written, so it changes nothing.
 */
export class HeartbeatService {
  private readonly queue: Pending[] = [];
  /** A write has been started that has not yet taken its batch from the queue. */
  private pending = false;
  /** Writes started and not yet finished. */
  private running = 0;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly policy: HeartbeatPolicy,
    private readonly onAccepted: (runIds: string[]) => void = () => undefined,
  ) {}

  accept(runId: string, body: Heartbeat): Promise<HeartbeatAccepted> {
    if (body.run_id !== runId) {
      return Promise.reject(
        invalid(
          [
            {
              field: 'run_id',
              code: 'RUN_ID_MISMATCH',
              message: `run_id ${body.run_id} does not match the path (${runId})`,
            },
          ],
          'heartbeat is invalid',
        ),
      );
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ runId, body, traceparent: currentTraceparent() ?? null, resolve, reject });
      this.schedule();
    });
  }

  /**
   * Starts a write for the queued heartbeats unless one is already on its way that has not yet
   * taken its batch. On SQLite a write starts only once the previous one is durable, so each
   * batch takes everything that arrived meanwhile. On Postgres the next write may start while
   * one is committing: it waits for the outbox lock (taken before its code runs: `lockFirst`),
   * which it gets once that commit is durable, and then takes what arrived meanwhile, so the
   * wait for BEGIN and the lock is not added to every batch.
   */
  private schedule(): void {
    if (this.pending || this.queue.length === 0) return;
    if (this.running > 0 && !this.store.caps.advisoryLocks) return;
    this.pending = true;
    this.running += 1;
    setImmediate(() => this.writeBatch());
  }

  private writeBatch(): void {
    let batch: Pending[] | null = null;
    this.store
      .write(
        (tx) => {
          this.pending = false;
          batch = this.queue.splice(0, BATCH);
          this.schedule();
          return this.apply(tx, batch, this.clock.now());
        },
        { lockFirst: true },
      )
      .then(
        (outcomes) => {
          const accepted: string[] = [];
          for (const [i, o] of outcomes.entries()) {
            const item = batch?.[i];
            if (!item) continue;
            if (o instanceof AppError) item.reject(o);
            else {
              accepted.push(item.runId);
              item.resolve(o);
            }
          }
          if (accepted.length > 0) this.onAccepted(accepted);
        },
        (err: unknown) => {
          // A write refused before it began (the store unreachable) fails what it would have
          // taken, as a write that failed later fails its batch: the requests get the error
          // instead of waiting on a store that keeps refusing.
          if (batch === null) {
            this.pending = false;
            batch = this.queue.splice(0, BATCH);
          }
          for (const item of batch) item.reject(err);
        },
      )
      .finally(() => {
        this.running -= 1;
        this.schedule();
      });
  }

  private async apply(tx: Tx, batch: Pending[], now: number): Promise<Array<HeartbeatAccepted | AppError>> {
    const runs = new Map<string, HeartbeatState>();
    for (const r of await runRepo.heartbeatStates(tx, [...new Set(batch.map((b) => b.runId))]))
      runs.set(r.id, r);
    const out: Array<HeartbeatAccepted | AppError> = [];
    const accepted: Array<{
      before: HeartbeatState;
      after: HeartbeatState;
      hb: Heartbeat;
      traceparent: string | null;
    }> = [];
    for (const item of batch) {
      const run = runs.get(item.runId);
      if (!run) {
        out.push(notFound('run', item.runId));
        continue;
      }
      const verdict = this.check(run, item.body, now);
      if (verdict instanceof AppError) {
        out.push(verdict);
        continue;
      }
      const unknown = await this.reconcileQueued(tx, run.id, item.body.queued_commands ?? [], now);
      const after = this.next(run, item.body, now);
      // A second heartbeat of the same run in this batch is checked against this one.
      runs.set(run.id, after);
      accepted.push({ before: run, after, hb: item.body, traceparent: item.traceparent });
      out.push({
        accepted: true,
        run: { status: after.status as RunStatus, health: 'healthy' },
        next_heartbeat_s: this.policy.intervalMs / 1000,
        unknown_commands: unknown,
      });
    }
    // The throttle refuses a run's second heartbeat in one batch unless the minimum interval is
    // zero; keep the last state of each run for the one UPDATE.
    const first = new Map<string, HeartbeatState>();
    const last = new Map<string, HeartbeatState>();
    for (const a of accepted) {
      if (!first.has(a.after.id)) first.set(a.after.id, a.before);
      last.set(a.after.id, a.after);
    }
    await runRepo.applyHeartbeats(
      tx,
      [...last.values()].map((row) => {
        const before = first.get(row.id);
        return { row, statusChanged: before?.status !== row.status || before.health !== row.health };
      }),
    );
    await metricRepo.upsert(tx, [
      ...new Map(
        accepted.flatMap(({ after, hb }) => [
          [
            `${after.id}/loss/${hb.step}`,
            { run_id: after.id, name: 'loss', step: hb.step, value: hb.loss, recorded_at: now },
          ],
          [
            `${after.id}/sps/${hb.step}`,
            {
              run_id: after.id,
              name: 'samples_per_sec',
              step: hb.step,
              value: hb.samples_per_sec,
              recorded_at: now,
            },
          ],
        ]),
      ).values(),
    ]);
    await outboxRepo.append(
      tx,
      accepted.map(({ before, after, traceparent }) =>
        event('run.status', after.id, statusEvent(after, before, 'heartbeat'), traceparent),
      ),
      now,
    );
    return out;
  }

  /** The seed's rules, in order: ended run, throttle (429), monotonic step and checkpoint (409). */
  private check(run: HeartbeatState, hb: Heartbeat, now: number): true | AppError {
    if (isEnded(run.status as RunStatus))
      return conflict(
        'RUN_ENDED',
        `run ${run.id} has ended (${run.status}); heartbeats are no longer accepted`,
      );
    if (run.last_heartbeat_at !== null) {
      const wait = run.last_heartbeat_at + this.policy.minIntervalMs - now;
      if (wait > 0) {
        const retryAfter = Math.max(1, Math.ceil(wait / 1000));
        return new AppError(
          429,
          'HEARTBEAT_TOO_FREQUENT',
          `heartbeats must be at least ${this.policy.minIntervalMs / 1000}s apart; retry in ${retryAfter}s`,
          [],
          { 'retry-after': String(retryAfter) },
        );
      }
    }
    if (run.step !== null && hb.step < run.step)
      return conflict('STEP_REGRESSION', `step ${hb.step} is below the last accepted step ${run.step}`);
    if (run.checkpoint_version !== null && hb.checkpoint_version < run.checkpoint_version)
      return conflict(
        'CHECKPOINT_REGRESSION',
        `checkpoint_version ${hb.checkpoint_version} is below the last accepted version ${run.checkpoint_version}`,
      );
    return true;
  }

  /** The run as an accepted heartbeat leaves it. */
  private next(run: HeartbeatState, hb: Heartbeat, now: number): HeartbeatState {
    const metrics = { loss: hb.loss, samples_per_sec: hb.samples_per_sec };
    return {
      ...run,
      status: statusAfterHeartbeat(run.status as RunStatus, hb.status),
      health: 'healthy',
      step: hb.step,
      samples_per_sec: hb.samples_per_sec,
      loss: hb.loss,
      checkpoint_version: hb.checkpoint_version,
      last_error: hb.status === 'errored' ? (hb.notes ?? 'the learner reported an error') : run.last_error,
      notes: hb.notes ?? null,
      queued_commands: hb.queued_commands === undefined ? null : JSON.stringify(hb.queued_commands),
      summary: JSON.stringify(mergeSummary(parseSummary(run.summary), hb.step, metrics)),
      last_heartbeat_at: now,
    };
  }

  /**
   * The learner's buffered command ids against the command log: a buffered command it was
   * never told about counts as delivered; ids the log does not hold for this run, or holds as
   * acknowledged, are returned so the learner can drop them.
   */
  private async reconcileQueued(
    tx: Tx,
    runId: string,
    ids: readonly string[],
    now: number,
  ): Promise<string[]> {
    if (ids.length === 0) return [];
    const known = new Map((await commandRepo.getMany(tx, ids)).map((c) => [c.id, c]));
    const unknown: string[] = [];
    for (const id of ids) {
      const c = known.get(id);
      if (!c || c.run_id !== runId || c.acknowledged_at !== null) unknown.push(id);
      else if (c.delivered_at === null) await commandRepo.markSeen(tx, id, now);
    }
    return unknown;
  }
}
