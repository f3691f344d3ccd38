import type { Logger } from 'pino';
import { event } from '../events/catalog.js';
import { outboxRepo } from '../events/outbox-repo.js';
import type { Clock } from '../shared/clock.js';
import { toIso } from '../shared/clock.js';
import { notFound } from '../shared/errors.js';
import { newId } from '../shared/ids.js';
import type { Store, Tx } from '../store/database.js';
import { readTogether } from '../store/read-together.js';
import { endpointRepo } from './endpoint-repo.js';
import { type AttemptRow, type JobRow, jobRepo } from './job-repo.js';
import type { JobSignals } from './job-service.js';
import { lifecycle } from './lifecycle.js';
import { logRepo } from './log-repo.js';
import { type AttemptOutcome, type AttemptState, canTransition, isTerminal, type JobState } from './model.js';
import type { PollWaiters } from './poll-waiters.js';
import type {
  Assignment,
  PollResponse,
  ReportRequest,
  WorkerRegister,
  WorkerRegistered,
  WorkerView,
} from './schemas.js';
import { type WorkerRow, workerRepo } from './worker-repo.js';

export interface WorkerServiceOptions {
  /** No heartbeat for this long makes a worker unhealthy and fails its attempts. */
  workerTimeoutMs: number;
  heartbeatIntervalMs: number;
}

/** Use cases of workers: RegisterWorker, heartbeats, assignment long-poll, reports, ListWorkers. */
export class WorkerService {
  private readonly startedAt: number;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly waiters: PollWaiters,
    private readonly signals: JobSignals,
    readonly opts: WorkerServiceOptions,
  ) {
    this.startedAt = clock.now();
  }

  async register(req: WorkerRegister): Promise<WorkerRegistered> {
    const now = this.clock.now();
    const running = new Set(req.running ?? []);
    const { id, wake } = await this.store.write(async (tx) => {
      const existing = await workerRepo.getByName(tx, req.name);
      const fields = {
        address: req.address ?? null,
        labels: JSON.stringify(req.labels ?? {}),
        device_type: req.device_type ?? null,
        cpu: req.capacity.cpu,
        memory_mb: req.capacity.memory_mb,
        gpu: req.capacity.gpu ?? 0,
        health: 'healthy',
        last_heartbeat_at: now,
        updated_at: now,
      };
      const wake = new Set<string>();
      if (!existing) {
        const id = newId('wrk', now);
        await workerRepo.insert(tx, { id, name: req.name, registered_at: now, ...fields });
        await outboxRepo.append(tx, [event('worker.registered', id, { worker_id: id, name: req.name })], now);
        return { id, wake };
      }
      await workerRepo.update(tx, existing.id, fields);
      await outboxRepo.append(
        tx,
        [event('worker.registered', existing.id, { worker_id: existing.id, name: req.name })],
        now,
      );
      if (existing.health !== 'healthy')
        await this.healthEvent(tx, existing, 'healthy', 're-registered', now);
      // A restarted agent no longer has what it ran before: those attempts were lost with it.
      const lost = (await jobRepo.activeAttemptsOn(tx, existing.id)).filter((a) => !running.has(a.id));
      for (const w of await this.endAttempts(
        tx,
        lost,
        'WORKER_FAILED',
        `worker ${req.name} restarted without this attempt`,
        now,
      )) {
        wake.add(w);
      }
      return { id: existing.id, wake };
    });
    this.signals.kickScheduler(true);
    this.waiters.wake(wake);
    return { worker_id: id, heartbeat_interval_ms: this.opts.heartbeatIntervalMs };
  }

  async heartbeat(workerId: string): Promise<void> {
    const now = this.clock.now();
    const previous = await workerRepo.touch(this.store.db, workerId, now);
    if (previous === undefined) throw notFound('worker', workerId);
    if (previous === 'healthy') return;
    await this.store.write(async (tx) => {
      const w = await workerRepo.get(tx, workerId);
      if (w && w.health !== 'healthy') {
        await workerRepo.update(tx, w.id, { health: 'healthy', updated_at: now });
        await this.healthEvent(tx, w, 'healthy', 'heartbeat received', now);
      }
    });
    this.signals.kickScheduler();
  }

  /** Graceful shutdown of an agent: it runs nothing more; anything still active was lost. */
  async deregister(workerId: string): Promise<void> {
    const now = this.clock.now();
    await this.store.write(async (tx) => {
      const w = await workerRepo.get(tx, workerId);
      if (!w) throw notFound('worker', workerId);
      await workerRepo.update(tx, w.id, { health: 'offline', updated_at: now });
      if (w.health !== 'offline') await this.healthEvent(tx, w, 'offline', 'deregistered', now);
      const active = await jobRepo.activeAttemptsOn(tx, w.id);
      await this.endAttempts(tx, active, 'WORKER_FAILED', `worker ${w.name} shut down`, now);
    });
    this.signals.kickScheduler();
  }

  /**
   * The assignment long-poll. `known` lists what the agent already has, so a lost response is
   * simply sent again and nothing is ever started twice; attempts the agent has that are over
   * (killed, superseded, unknown) come back in `kill`.
   */
  async poll(
    workerId: string,
    known: readonly string[],
    waitMs: number,
    signal?: AbortSignal,
    stopping: readonly string[] = [],
  ): Promise<PollResponse> {
    const alreadyStopping = new Set(stopping);
    // Real time, not the injected clock: this bounds how long a connection is held open.
    const deadline = Date.now() + waitMs;
    for (;;) {
      const res = await this.pollOnce(workerId, new Set(known));
      res.kill = res.kill.filter((k) => !alreadyStopping.has(k.attempt_id));
      const left = deadline - Date.now();
      if (res.assignments.length > 0 || res.kill.length > 0 || left <= 0 || signal?.aborted) return res;
      // Re-check now and then even without a wake-up: another replica may have placed work.
      await this.waiters.wait(workerId, Math.min(left, 2000), signal);
    }
  }

  private async pollOnce(workerId: string, known: Set<string>): Promise<PollResponse> {
    const db = this.store.db;
    // One round trip on Postgres, and one snapshot (see readTogether).
    const [worker, active, jobRows] = await readTogether(db, [
      workerRepo.getQuery(db, workerId),
      jobRepo.activeAttemptsOnQuery(db, workerId),
      jobRepo.jobsActiveOnQuery(db, workerId),
    ]);
    if (worker.length === 0) throw notFound('worker', workerId);
    const activeIds = new Set(active.map((a) => a.id));
    const jobs = new Map(jobRows.map((j) => [j.id, j]));
    // On SQLite the reads are not one snapshot: an attempt placed between them has its job read here.
    const unread = [...new Set(active.filter((a) => !jobs.has(a.job_id)).map((a) => a.job_id))];
    for (const j of await jobRepo.getMany(db, unread)) jobs.set(j.id, j);
    const assignments: Assignment[] = [];
    const kill: PollResponse['kill'] = [];
    const neverStarted: AttemptRow[] = [];
    for (const a of active) {
      const job = jobs.get(a.job_id);
      const over = !job || isTerminal(job.state as JobState) || job.current_attempt_id !== a.id;
      if (known.has(a.id)) {
        if (over) kill.push({ attempt_id: a.id, reason: job ? `job is ${job.state}` : 'job is gone' });
      } else if (over) {
        neverStarted.push(a);
      } else if (a.state === 'BUILDING' && job) {
        assignments.push(assignmentOf(a, job));
      }
    }
    for (const id of known) {
      if (!activeIds.has(id))
        kill.push({ attempt_id: id, reason: 'attempt is no longer active on this worker' });
    }
    if (neverStarted.length > 0) {
      // Killed before the agent ever saw it: close the attempt here, nothing runs.
      await this.store.write((tx) =>
        this.endAttempts(tx, neverStarted, 'KILLED', 'killed before it started', this.clock.now()),
      );
      this.signals.kickScheduler();
    }
    return { assignments, kill };
  }

  /** Applies a batch of attempt reports (and log output) in one transaction: group commit. */
  async report(workerId: string, body: ReportRequest): Promise<{ applied: number; ignored: number }> {
    const now = this.clock.now();
    let applied = 0;
    let ignored = 0;
    const wake = await this.store.write(async (tx) => {
      const wake = new Set<string>();
      const ids = [
        ...new Set([...body.updates.map((u) => u.attempt_id), ...(body.logs ?? []).map((l) => l.attempt_id)]),
      ];
      // The worker, the attempts reported on, their jobs and which of those have endpoints: one
      // round trip on Postgres.
      const [worker, attemptRows, jobRows, endpointRows] =
        ids.length > 0
          ? await readTogether(tx, [
              workerRepo.getQuery(tx, workerId),
              jobRepo.getAttemptsQuery(tx, ids),
              jobRepo.jobsOfAttemptsQuery(tx, ids),
              endpointRepo.jobsWithEndpointsQuery(tx, ids),
            ])
          : [await workerRepo.getQuery(tx, workerId).execute(), [], [], []];
      if (worker.length === 0) throw notFound('worker', workerId);
      const attempts = new Map(attemptRows.map((a) => [a.id, a]));
      const jobs = new Map(jobRows.map((j) => [j.id, j]));
      // Exits per job in this batch.
      const exits = new Map<string, number>();
      for (const u of body.updates) {
        const jobId = attempts.get(u.attempt_id)?.job_id;
        if (jobId && u.state !== 'RUNNING') exits.set(jobId, (exits.get(jobId) ?? 0) + 1);
      }
      // The common cases go in bulk: every RUNNING, then every SUCCEEDED that ends its job (the
      // job's only exit in the batch, its current attempt). The rest follow one by one, in order.
      const running: Array<{ attempt: AttemptRow; job: JobRow | undefined }> = [];
      const succeeded: Array<{
        attempt: AttemptRow;
        job: JobRow;
        exitCode: number | null;
        reason: string | null;
      }> = [];
      const oneByOne: Array<{ u: ReportRequest['updates'][number]; attempt: AttemptRow }> = [];
      for (const u of body.updates) {
        const attempt = attempts.get(u.attempt_id);
        // Reports about attempts of another worker, or unknown ones, change nothing. Neither do
        // reports about an attempt already closed (superseded, e.g. failed by a health sweep or a
        // re-registration): the late exit of an old process must not count as applied.
        const moves = attempt !== undefined && canTransition(attempt.state as AttemptState, u.state);
        if (!attempt || attempt.worker_id !== workerId || !moves) {
          ignored++;
          continue;
        }
        // The batch may hold RUNNING and the exit of one attempt: track the attempt's new state.
        attempts.set(attempt.id, { ...attempt, state: u.state });
        applied++;
        const job = jobs.get(attempt.job_id);
        if (u.state === 'RUNNING') {
          running.push({ attempt, job });
          // RUNNING has one known effect on the job; later updates of this batch see it.
          if (job && job.current_attempt_id === attempt.id && job.state === 'BUILDING')
            jobs.set(job.id, { ...job, state: 'RUNNING' });
        } else if (
          u.state === 'SUCCEEDED' &&
          job &&
          job.current_attempt_id === attempt.id &&
          !isTerminal(job.state as JobState) &&
          exits.get(job.id) === 1
        ) {
          succeeded.push({ attempt, job, exitCode: u.exit_code ?? null, reason: u.reason ?? null });
        } else {
          oneByOne.push({ u, attempt });
        }
      }
      await lifecycle.attemptsRunning(tx, running, now);
      await lifecycle.attemptsSucceeded(tx, succeeded, new Set(endpointRows.map((e) => e.job_id)), now);
      for (const { u, attempt } of oneByOne) {
        const job = jobs.get(attempt.job_id);
        for (const w of await lifecycle.attemptEnded(
          tx,
          attempt,
          job,
          u.state as AttemptOutcome,
          u.exit_code ?? null,
          u.reason ?? null,
          now,
        )) {
          wake.add(w);
        }
        // After an exit, read the job again only if another exit of it follows.
        exits.set(attempt.job_id, (exits.get(attempt.job_id) ?? 1) - 1);
        if ((exits.get(attempt.job_id) ?? 0) > 0) {
          const fresh = await jobRepo.get(tx, attempt.job_id);
          if (fresh) jobs.set(fresh.id, fresh);
        }
      }
      // Output is kept only for attempts this worker really ran.
      const logs = (body.logs ?? []).filter((l) => attempts.get(l.attempt_id)?.worker_id === workerId);
      if (logs.length > 0) await logRepo.append(tx, logs, now);
      return wake;
    });
    if (body.updates.some((u) => u.state !== 'RUNNING')) this.signals.kickScheduler();
    this.waiters.wake(wake);
    return { applied, ignored };
  }

  /** Marks silent workers unhealthy; their active attempts become WORKER_FAILED (preemptions). */
  async sweepHealth(): Promise<number> {
    const now = this.clock.now();
    // Heartbeats could not arrive while this controller was down: give every worker a full
    // timeout after a (re)start before calling it silent, or a restart would fail all work.
    if (now - this.startedAt < this.opts.workerTimeoutMs) return 0;
    const cutoff = now - this.opts.workerTimeoutMs;
    const silent = await workerRepo.silentSince(this.store.db, cutoff);
    if (silent.length === 0) return 0;
    const wake = await this.store.write(async (tx) => {
      const wake = new Set<string>();
      if (!(await this.store.tryLeaderLock(tx, 'health-sweep'))) return wake;
      for (const w of await workerRepo.silentSince(tx, cutoff)) {
        await workerRepo.update(tx, w.id, { health: 'unhealthy', updated_at: now });
        const reason = `no heartbeat for ${Math.round((now - w.last_heartbeat_at) / 1000)}s`;
        await this.healthEvent(tx, w, 'unhealthy', reason, now);
        const active = await jobRepo.activeAttemptsOn(tx, w.id);
        for (const x of await this.endAttempts(
          tx,
          active,
          'WORKER_FAILED',
          `worker ${w.name}: ${reason}`,
          now,
        ))
          wake.add(x);
        this.log.warn({ worker: w.id, name: w.name, attempts: active.length }, 'worker unhealthy');
      }
      return wake;
    });
    this.signals.kickScheduler();
    this.waiters.wake(wake);
    return silent.length;
  }

  async list(): Promise<WorkerView[]> {
    const db = this.store.db;
    const [workers, used, active] = await Promise.all([
      workerRepo.list(db),
      jobRepo.usedCapacity(db),
      jobRepo.activeAttempts(db),
    ]);
    const usedBy = new Map(used.map((u) => [u.worker_id, u]));
    return workers.map((w) => {
      const u = usedBy.get(w.id) ?? { cpu: 0, memory_mb: 0, gpu: 0 };
      return {
        worker_id: w.id,
        name: w.name,
        address: w.address,
        health: w.health,
        device_type: w.device_type,
        labels: JSON.parse(w.labels) as Record<string, string>,
        capacity: { cpu: w.cpu, memory_mb: w.memory_mb, gpu: w.gpu },
        used: { cpu: u.cpu, memory_mb: u.memory_mb, gpu: u.gpu },
        free: {
          cpu: Math.max(0, w.cpu - u.cpu),
          memory_mb: Math.max(0, w.memory_mb - u.memory_mb),
          gpu: Math.max(0, w.gpu - u.gpu),
        },
        running_attempts: active
          .filter((a) => a.worker_id === w.id)
          .map((a) => ({ attempt_id: a.id, job_id: a.job_id, state: a.state })),
        registered_at: toIso(w.registered_at),
        last_heartbeat_at: toIso(w.last_heartbeat_at),
      };
    });
  }

  private async endAttempts(
    tx: Tx,
    attempts: readonly AttemptRow[],
    outcome: AttemptOutcome,
    reason: string,
    now: number,
  ): Promise<Set<string>> {
    const wake = new Set<string>();
    for (const a of attempts) {
      const job = await jobRepo.get(tx, a.job_id);
      for (const w of await lifecycle.attemptEnded(tx, a, job, outcome, null, reason, now)) wake.add(w);
    }
    return wake;
  }

  private async healthEvent(
    tx: Tx,
    w: WorkerRow,
    health: string,
    reason: string,
    now: number,
  ): Promise<void> {
    await outboxRepo.append(
      tx,
      [event('worker.health_changed', w.id, { worker_id: w.id, health, previous: w.health, reason })],
      now,
    );
  }
}

function assignmentOf(a: AttemptRow, job: JobRow): Assignment {
  return {
    attempt_id: a.id,
    job_id: job.id,
    command: JSON.parse(job.command) as string[],
    env: JSON.parse(job.env) as Record<string, string>,
    cwd: job.cwd,
    setup: job.setup ? (JSON.parse(job.setup) as string[]) : null,
    run_id: job.run_id,
  };
}
