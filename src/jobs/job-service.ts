import { event } from '../events/catalog.js';
import { outboxRepo } from '../events/outbox-repo.js';
import type { Clock } from '../shared/clock.js';
import { AppError, conflict, invalid, notFound } from '../shared/errors.js';
import { newId } from '../shared/ids.js';
import type { Store, Tx } from '../store/database.js';
import { currentTraceparent, TRACEPARENT_ENV } from '../tracing/context.js';
import { jobRepo, type NewJobRow, nameKey } from './job-repo.js';
import { lifecycle } from './lifecycle.js';
import { logRepo } from './log-repo.js';
import { DEFAULT_RESOURCES, isTerminal, type JobState, RUN_TOKEN_ENV } from './model.js';
import type { JobListQuery, JobRequest, JobView, LogsQuery } from './schemas.js';
import { jobView } from './views.js';

/** Hooks the job service pokes after a commit; the scheduler loop and poll waiters own them. */
export interface JobSignals {
  kickScheduler(full?: boolean): void;
  wakeWorkers(ids: Iterable<string>): void;
}

/**
 * Links a launched job to its run (the run orchestrator implements it): checks the run in the
 * launch's transaction and issues the token the job's learner gets as RUNPLANE_RUN_TOKEN.
 */
export interface RunLinker {
  attachJob(tx: Tx, runId: string, jobId: string, now: number): Promise<{ token: string }>;
}

/** Use cases of the controller's job API: LaunchJob, GetJobStatus, TerminateJob, ListJobs, logs. */
export class JobService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly signals: JobSignals,
    private readonly runs: RunLinker | null = null,
  ) {}

  private readonly launches: Array<{
    req: JobRequest;
    resolve: (r: { job_id: string }) => void;
    reject: (err: unknown) => void;
  }> = [];
  private flushingLaunches = false;

  /**
   * LaunchJob. Launches that arrive together are written in one transaction (group commit):
   * one durable commit for the burst instead of one per job. Each launch is checked on its own
   * before anything of it is written, so a rejected one changes nothing and fails alone.
   */
  launch(req: JobRequest): Promise<{ job_id: string }> {
    // Read here, in the caller's trace context: the group commit runs outside it.
    const traced = withTraceparent(req);
    return new Promise((resolve, reject) => {
      this.launches.push({ req: traced, resolve, reject });
      if (!this.flushingLaunches) {
        this.flushingLaunches = true;
        setImmediate(() => void this.flushLaunches());
      }
    });
  }

  private async flushLaunches(): Promise<void> {
    while (this.launches.length > 0) {
      const batch = this.launches.splice(0, 500);
      const now = this.clock.now();
      try {
        const outcomes = await this.store.write(async (tx) => {
          const rows = batch.map((item) => newJobRow(item.req, newId('job', now), now));
          const writer = new LaunchWriter(tx, await jobRepo.takenNames(tx, rows), now);
          const out: Array<{ job_id: string } | AppError> = [];
          for (const [i, item] of batch.entries()) {
            const row = rows[i];
            if (!row) continue;
            try {
              out.push(await this.insertJob(tx, writer, item.req, row, now));
            } catch (err) {
              if (!(err instanceof AppError)) throw err;
              out.push(err);
            }
          }
          await writer.flush();
          return out;
        });
        for (const [i, o] of outcomes.entries()) {
          if (o instanceof AppError) batch[i]?.reject(o);
          else batch[i]?.resolve(o);
        }
        if (outcomes.some((o) => !(o instanceof AppError))) this.signals.kickScheduler();
      } catch (err) {
        for (const item of batch) item.reject(err);
      }
    }
    this.flushingLaunches = false;
  }

  /**
   * Checks one launch and queues its row in the batch's writer. A launch with a parent, a gang
   * or a run is checked against the store, so the rows queued before it are written first.
   */
  private async insertJob(
    tx: Tx,
    writer: LaunchWriter,
    req: JobRequest,
    row: NewJobRow,
    now: number,
  ): Promise<{ job_id: string }> {
    const { id, name, parent_key: parentKey } = row;
    if (req.parent_job_id || req.gang || req.run_id) await writer.flush();
    if (req.parent_job_id) {
      const parent = await jobRepo.get(tx, req.parent_job_id);
      if (!parent) {
        throw invalid([
          { field: 'parent_job_id', code: 'UNKNOWN_PARENT', message: `job ${req.parent_job_id} not found` },
        ]);
      }
      if (isTerminal(parent.state as JobState)) {
        throw conflict('PARENT_TERMINAL', `parent job ${parent.id} is already ${parent.state}`);
      }
    }
    if (writer.nameTaken(parentKey, name)) {
      throw conflict('DUPLICATE_JOB_NAME', `a job named "${name}" already exists under this parent`);
    }
    if (req.gang) {
      const members = await jobRepo.gangMembers(tx, req.gang.id);
      if (members.some((m) => m.gang_size !== req.gang?.size)) {
        throw conflict('GANG_SIZE_MISMATCH', `gang ${req.gang.id} was declared with another size`);
      }
      if (members.length >= req.gang.size) {
        throw conflict('GANG_FULL', `gang ${req.gang.id} already has ${members.length} members`);
      }
    }
    // Last of the checks (it may refuse the launch), and the first write: a refused launch writes nothing.
    if (req.run_id) {
      if (!this.runs)
        throw invalid([{ field: 'run_id', code: 'UNKNOWN_RUN', message: 'this controller has no runs' }]);
      const { token } = await this.runs.attachJob(tx, req.run_id, row.id, now);
      row.env = JSON.stringify({
        ...(JSON.parse(row.env) as Record<string, string>),
        [RUN_TOKEN_ENV]: token,
      });
    }
    writer.add(row, req.labels ?? {}, req.env?.[TRACEPARENT_ENV] ?? null);
    // A gang's next member counts this one; a child may name it as its parent.
    if (req.gang) await writer.flush();
    return { job_id: id };
  }

  async get(id: string): Promise<JobView> {
    const row = await jobRepo.get(this.store.db, id);
    if (!row) throw notFound('job', id);
    return jobView(row, await jobRepo.attemptsOf(this.store.db, id));
  }

  async list(q: JobListQuery): Promise<{ jobs: JobView[]; next_cursor: string | null }> {
    const limit = q.limit ?? 100;
    const labels = (q.label === undefined ? [] : Array.isArray(q.label) ? q.label : [q.label]).map((l) => {
      const i = l.indexOf('=');
      return [l.slice(0, i), l.slice(i + 1)] as [string, string];
    });
    const rows = await jobRepo.list(this.store.db, {
      state: q.state,
      parent: q.parent,
      labels,
      afterSeq: q.cursor === undefined ? undefined : Number(q.cursor),
      limit: limit + 1,
    });
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      jobs: page.map((r) => jobView(r)),
      next_cursor: rows.length > limit && last ? String(last.seq) : null,
    };
  }

  /** TerminateJob: the job and all its descendants become KILLED; their processes are stopped. */
  async terminate(id: string, reason = 'terminated by request'): Promise<JobView> {
    const now = this.clock.now();
    const wake = await this.store.write(async (tx) => {
      const job = await jobRepo.get(tx, id);
      if (!job) throw notFound('job', id);
      return lifecycle.kill(tx, [job], reason, now, true);
    });
    this.signals.wakeWorkers(wake);
    return this.get(id);
  }

  async logs(
    id: string,
    q: LogsQuery,
  ): Promise<{ job_id: string; attempt_id: string | null; lines: Array<{ stream: string; line: string }> }> {
    const job = await jobRepo.get(this.store.db, id);
    if (!job) throw notFound('job', id);
    const attempts = await jobRepo.attemptsOf(this.store.db, id);
    const attempt =
      q.attempt === undefined
        ? attempts[attempts.length - 1]
        : attempts.find((a) => a.attempt_no === q.attempt);
    if (q.attempt !== undefined && !attempt) {
      throw new AppError(404, 'ATTEMPT_NOT_FOUND', `job ${id} has no attempt ${q.attempt}`);
    }
    if (!attempt) return { job_id: id, attempt_id: null, lines: [] };
    const stream = q.stream ?? 'all';
    const lines: Array<{ stream: string; line: string }> = [];
    // Chunks are arbitrary slices of output; rebuild lines per stream before tailing.
    const partial: Record<string, string> = { stdout: '', stderr: '' };
    for (const c of await logRepo.read(this.store.db, attempt.id)) {
      if (stream !== 'all' && c.stream !== stream) continue;
      const parts = ((partial[c.stream] ?? '') + c.data).split('\n');
      partial[c.stream] = parts.pop() ?? '';
      for (const line of parts) lines.push({ stream: c.stream, line });
    }
    for (const [s, rest] of Object.entries(partial)) if (rest !== '') lines.push({ stream: s, line: rest });
    return { job_id: id, attempt_id: attempt.id, lines: q.tail === undefined ? lines : lines.slice(-q.tail) };
  }
}

/**
 * The rows of a launch batch, written together: one statement for the jobs, one for their
 * labels, their events with the transaction's. Names are checked against the store once for the
 * whole batch and against the batch itself.
 */
class LaunchWriter {
  private queued: Array<{ row: NewJobRow; labels: Record<string, string>; traceparent: string | null }> = [];

  constructor(
    private readonly tx: Tx,
    private readonly taken: Set<string>,
    private readonly now: number,
  ) {}

  nameTaken(parentKey: string, name: string): boolean {
    return this.taken.has(nameKey(parentKey, name));
  }

  add(row: NewJobRow, labels: Record<string, string>, traceparent: string | null): void {
    this.taken.add(nameKey(row.parent_key, row.name));
    this.queued.push({ row, labels, traceparent });
  }

  async flush(): Promise<void> {
    const jobs = this.queued;
    if (jobs.length === 0) return;
    this.queued = [];
    const seqs = await jobRepo.insertMany(
      this.tx,
      jobs.map((j) => j.row),
    );
    await jobRepo.insertLabelsMany(
      this.tx,
      jobs.map((j) => ({ jobId: j.row.id, jobSeq: seqs.get(j.row.id) ?? 0, labels: j.labels })),
    );
    await outboxRepo.append(
      this.tx,
      jobs.map(({ row, traceparent }) =>
        // In the job's own trace, not the group commit's (whichever launch started it).
        event(
          'job.submitted',
          row.id,
          { job_id: row.id, name: row.name, parent_job_id: row.parent_job_id, run_id: row.run_id },
          traceparent,
        ),
      ),
      this.now,
    );
  }
}

/** The stored row of a new, PENDING job: request defaults applied, JSON fields encoded. */
export function newJobRow(req: JobRequest, id: string, now: number): NewJobRow {
  const resources = { ...DEFAULT_RESOURCES, ...req.resources };
  return {
    id,
    name: req.name ?? id,
    parent_job_id: req.parent_job_id ?? null,
    parent_key: req.parent_job_id ?? '',
    command: JSON.stringify(req.command),
    env: JSON.stringify(req.env ?? {}),
    cwd: req.cwd ?? null,
    setup: req.setup ? JSON.stringify(req.setup) : null,
    cpu: resources.cpu,
    memory_mb: resources.memory_mb,
    gpu: resources.gpu,
    device_type: resources.device_type ?? null,
    labels: JSON.stringify(req.labels ?? {}),
    max_retries_failure: req.max_retries_failure ?? 0,
    max_retries_preemption: req.max_retries_preemption ?? 100,
    scheduling_timeout_s: req.scheduling_timeout_s ?? 0,
    gang_id: req.gang?.id ?? null,
    gang_size: req.gang?.size ?? null,
    run_id: req.run_id ?? null,
    state: 'PENDING',
    reason: null,
    failure_count: 0,
    preemption_count: 0,
    attempt_count: 0,
    current_attempt_id: null,
    submitted_at: now,
    pending_since: now,
    started_at: null,
    finished_at: null,
    updated_at: now,
  };
}

/**
 * The request with TRACEPARENT in its environment when the caller is in a trace (an HTTP
 * request that carried `traceparent`, or a span), so the job's process can continue the trace.
 * A TRACEPARENT the submitter set is kept.
 */
function withTraceparent(req: JobRequest): JobRequest {
  if (req.env?.[TRACEPARENT_ENV] !== undefined) return req;
  const traceparent = currentTraceparent();
  return traceparent ? { ...req, env: { ...req.env, [TRACEPARENT_ENV]: traceparent } } : req;
}
