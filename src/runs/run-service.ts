import type { Principal } from '../auth/model.js';
import type { TokenService } from '../auth/token-service.js';
import { event, type StoredEvent } from '../events/catalog.js';
import { outboxRepo } from '../events/outbox-repo.js';
import { jobRepo } from '../jobs/job-repo.js';
import { canonicalJson } from '../shared/canonical-json.js';
import type { Clock } from '../shared/clock.js';
import { conflict, invalid, notFound } from '../shared/errors.js';
import { newId } from '../shared/ids.js';
import type { Executor, Store, Tx } from '../store/database.js';
import { type AuditInput, appendAudit, type RequestMeta } from './audit-service.js';
import { commandRepo } from './command-repo.js';
import { metricRepo } from './metric-repo.js';
import { downsample, type FinishStatus, isEnded, type RunStatus, statusForEndedJob } from './model.js';
import { type RunRow, runRepo } from './run-repo.js';
import type {
  Finish,
  LivenessExtend,
  MetricsPost,
  MetricsQuery,
  MetricsView,
  RunCreate,
  RunListQuery,
  RunView,
} from './schemas.js';
import { mergeSummary, parseSummary, runView, statusEvent } from './views.js';

export interface RunSettings {
  heartbeatIntervalMs: number;
}

/** Who did something, for the audit log: the token's holder, or the system. */
export function actorOf(p: Principal | null): AuditInput['actor'] {
  if (!p) return { type: 'system', id: 'runplane' };
  return { type: p.role === 'learner' ? 'learner' : 'operator', id: p.name };
}

const DEFAULT_METRIC_POINTS = 1000;

/**
 * Writes a new run in the caller's transaction: its row, labels, `run.created` and `run.status`
 * events and its audit entry. RunService.create adds a learner token; the sweep controller
 * creates its trials' runs with it in the same transaction as the trial.
 */
export async function insertRun(
  tx: Tx,
  req: RunCreate,
  actor: AuditInput['actor'],
  meta: RequestMeta | null,
  now: number,
): Promise<RunRow> {
  const id = newId('run', now);
  const row: Omit<RunRow, 'seq'> = {
    id,
    name: req.name ?? null,
    config: canonicalJson(req.config ?? {}),
    labels: JSON.stringify(req.labels ?? {}),
    job_id: req.job_id ?? null,
    sweep_id: req.sweep_id ?? null,
    status: 'queued',
    health: 'healthy',
    step: null,
    samples_per_sec: null,
    loss: null,
    checkpoint_version: null,
    last_error: null,
    notes: null,
    queued_commands: null,
    summary: '{}',
    last_heartbeat_at: null,
    liveness_extension_ms: 0,
    created_at: now,
    updated_at: now,
    ended_at: null,
  };
  const seq = await runRepo.insert(tx, row);
  await runRepo.insertLabels(tx, id, seq, req.labels ?? {});
  await outboxRepo.append(
    tx,
    [
      event('run.created', id, { run_id: id, name: row.name, job_id: row.job_id, sweep_id: row.sweep_id }),
      event('run.status', id, statusEvent(row, { status: 'queued', health: 'healthy' }, 'create')),
    ],
    now,
  );
  await appendAudit(
    tx,
    { run_id: id, action: 'run.create', actor, envelope: { ...req }, request: meta },
    now,
  );
  return { ...row, seq };
}

/** Use cases of runs: create, read, list, metrics, finish, liveness extension, job reconciliation. */
export class RunService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly tokens: TokenService,
    private readonly settings: RunSettings,
  ) {}

  view(row: RunRow): RunView {
    return runView(row, this.settings.heartbeatIntervalMs);
  }

  async create(
    req: RunCreate,
    principal: Principal | null,
    meta: RequestMeta | null,
  ): Promise<{ run_id: string; token: string; run: RunView }> {
    const now = this.clock.now();
    const { row, token } = await this.store.write(async (tx) => {
      if (req.job_id) {
        const job = await jobRepo.get(tx, req.job_id);
        if (!job)
          throw invalid([{ field: 'job_id', code: 'UNKNOWN_JOB', message: `job ${req.job_id} not found` }]);
      }
      const created = await insertRun(tx, req, actorOf(principal), meta, now);
      const issued = await this.tokens.create('learner', `learner:${created.id}`, { runId: created.id, tx });
      return { row: created, token: issued.token };
    });
    return { run_id: row.id, token, run: this.view(row) };
  }

  async get(id: string): Promise<RunView> {
    return this.view(await this.mustGet(this.store.db, id));
  }

  async list(q: RunListQuery): Promise<{ runs: RunView[]; next_cursor: string | null }> {
    const limit = q.limit ?? 100;
    const labels = (q.label === undefined ? [] : Array.isArray(q.label) ? q.label : [q.label]).map(
      (l): [string, string] => {
        const at = l.indexOf('=');
        return [l.slice(0, at), l.slice(at + 1)];
      },
    );
    const rows = await runRepo.list(this.store.db, {
      status: q.status,
      health: q.health,
      sweep: q.sweep,
      labels,
      beforeSeq: q.cursor === undefined ? undefined : Number(q.cursor),
      limit: limit + 1,
    });
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      runs: page.map((r) => this.view(r)),
      next_cursor: rows.length > limit && last ? String(last.seq) : null,
    };
  }

  /** Learner-reported metrics at one step; the run's summary keeps the latest value of each. */
  async postMetrics(runId: string, body: MetricsPost): Promise<{ accepted: number }> {
    const now = this.clock.now();
    await this.store.write(async (tx) => {
      const run = await this.mustGet(tx, runId);
      const rows = Object.entries(body.values).map(([name, value]) => ({
        run_id: runId,
        name,
        step: body.step,
        value,
        recorded_at: now,
      }));
      await metricRepo.upsert(tx, rows);
      const summary = mergeSummary(parseSummary(run.summary), body.step, body.values);
      await runRepo.update(tx, runId, { summary: JSON.stringify(summary), updated_at: now });
    });
    return { accepted: Object.keys(body.values).length };
  }

  async metrics(runId: string, q: MetricsQuery): Promise<MetricsView> {
    await this.mustGet(this.store.db, runId);
    const names = q.names
      ?.split(',')
      .map((n) => n.trim())
      .filter(Boolean);
    const rows = await metricRepo.series(this.store.db, runId, {
      ...(names ? { names } : {}),
      ...(q.from_step === undefined ? {} : { fromStep: q.from_step }),
      ...(q.to_step === undefined ? {} : { toStep: q.to_step }),
    });
    const byName = new Map<string, Array<{ step: number; value: number; recorded_at: string }>>();
    for (const r of rows) {
      let s = byName.get(r.name);
      if (!s) {
        s = [];
        byName.set(r.name, s);
      }
      s.push({ step: r.step, value: r.value, recorded_at: new Date(r.recorded_at).toISOString() });
    }
    const max = q.max_points ?? DEFAULT_METRIC_POINTS;
    let downsampled = false;
    const series: MetricsView['series'] = {};
    for (const [name, points] of byName) {
      if (points.length > max) downsampled = true;
      series[name] = downsample(points, max);
    }
    return { run_id: runId, series, downsampled };
  }

  /** A learner (or operator) declares the run over. Idempotent for the same end state. */
  async finish(
    runId: string,
    body: Finish,
    principal: Principal | null,
    meta: RequestMeta | null,
  ): Promise<RunView> {
    const now = this.clock.now();
    const row = await this.store.write(async (tx) => {
      const run = await this.mustGet(tx, runId);
      const current = run.status as RunStatus;
      if (isEnded(current)) {
        if (current === body.status) return run;
        throw conflict('RUN_ENDED', `run ${runId} has already ended (${current})`);
      }
      const next = await this.end(tx, run, body.status, body.error ?? null, 'finish', now);
      await appendAudit(
        tx,
        { run_id: runId, action: 'run.finish', actor: actorOf(principal), envelope: body, request: meta },
        now,
      );
      return next;
    });
    return this.view(row);
  }

  /** An operator allows a quiet run more time before it is called stale or unresponsive. */
  async extendLiveness(
    runId: string,
    body: LivenessExtend,
    principal: Principal | null,
    meta: RequestMeta | null,
  ): Promise<RunView> {
    const now = this.clock.now();
    const row = await this.store.write(async (tx) => {
      const run = await this.mustGet(tx, runId);
      if (isEnded(run.status as RunStatus))
        throw conflict('RUN_ENDED', `run ${runId} has already ended (${run.status})`);
      const ext = run.liveness_extension_ms + Math.round(body.extend_s * 1000);
      await runRepo.update(tx, runId, { liveness_extension_ms: ext, updated_at: now });
      const actor = actorOf(principal);
      await outboxRepo.append(
        tx,
        [
          event('run.liveness_extended', runId, {
            run_id: runId,
            extend_s: body.extend_s,
            reason: body.reason,
            actor: actor.id,
          }),
        ],
        now,
      );
      await appendAudit(
        tx,
        { run_id: runId, action: 'run.liveness_extend', actor, envelope: body, request: meta },
        now,
      );
      return { ...run, liveness_extension_ms: ext, updated_at: now };
    });
    return this.view(row);
  }

  /**
   * Links a job being launched to its run (in the launch's transaction) and issues the token
   * its learner will use. An unknown or ended run refuses the launch.
   */
  async attachJob(tx: Tx, runId: string, jobId: string, now: number): Promise<{ token: string }> {
    const run = await runRepo.get(tx, runId);
    if (!run) throw invalid([{ field: 'run_id', code: 'UNKNOWN_RUN', message: `run ${runId} not found` }]);
    if (isEnded(run.status as RunStatus))
      throw conflict('RUN_ENDED', `run ${runId} has already ended (${run.status})`);
    if (run.job_id === null) await runRepo.update(tx, runId, { job_id: jobId, updated_at: now });
    const issued = await this.tokens.create('learner', `learner:${runId}:${jobId}`, { runId, tx });
    return { token: issued.token };
  }

  /**
   * Follows the run's job (a relay subscriber, so at least once and idempotent): placed →
   * provisioning; ended → the run ends with it, so a run whose process died is never left
   * running.
   */
  async onJobEvent(ev: StoredEvent): Promise<void> {
    const p = ev.payload as { job_id: string; state: string; reason: string | null; run_id: string | null };
    if (!p.run_id) return;
    const runId = p.run_id;
    const now = this.clock.now();
    await this.store.write(async (tx) => {
      const run = await runRepo.get(tx, runId);
      if (!run || (run.job_id !== null && run.job_id !== p.job_id)) return;
      const current = run.status as RunStatus;
      if (p.state === 'BUILDING' || p.state === 'RUNNING') {
        if (current !== 'queued') return;
        await runRepo.update(tx, runId, { status: 'provisioning', updated_at: now });
        const next = { ...run, status: 'provisioning' };
        await outboxRepo.append(tx, [event('run.status', runId, statusEvent(next, run, 'job'))], now);
        return;
      }
      if (!['SUCCEEDED', 'FAILED', 'KILLED', 'WORKER_FAILED', 'UNSCHEDULABLE'].includes(p.state)) return;
      const terminate = await commandRepo.hasTerminate(tx, runId);
      const status = statusForEndedJob(p.state, current, terminate);
      if (!status) return;
      const error =
        status === 'completed' || status === 'terminated'
          ? null
          : (p.reason ?? `job ${p.job_id} ended ${p.state}`);
      await this.end(tx, run, status, error, 'job', now);
    });
  }

  private async end(
    tx: Tx,
    run: RunRow,
    status: FinishStatus | RunStatus,
    error: string | null,
    cause: string,
    now: number,
  ): Promise<RunRow> {
    const next: RunRow = {
      ...run,
      status,
      last_error: error ?? run.last_error,
      ended_at: now,
      updated_at: now,
    };
    await runRepo.update(tx, run.id, {
      status,
      last_error: next.last_error,
      ended_at: now,
      updated_at: now,
    });
    await outboxRepo.append(tx, [event('run.status', run.id, statusEvent(next, run, cause))], now);
    return next;
  }

  private async mustGet(db: Executor, id: string): Promise<RunRow> {
    const row = await runRepo.get(db, id);
    if (!row) throw notFound('run', id);
    return row;
  }
}
