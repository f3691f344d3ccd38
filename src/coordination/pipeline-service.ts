import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { EventPayloads, StoredEvent } from '../events/catalog.js';
import { event } from '../events/catalog.js';
import { outboxRepo } from '../events/outbox-repo.js';
import { Prefetched } from '../events/prefetched.js';
import type { PublishResult } from '../events/router.js';
import type { JobService } from '../jobs/job-service.js';
import { endedJobIds } from '../jobs/model.js';
import type { JobRequest } from '../jobs/schemas.js';
import type { Clock } from '../shared/clock.js';
import { AppError, conflict, invalid, notFound } from '../shared/errors.js';
import { newId } from '../shared/ids.js';
import type { Store, Tx } from '../store/database.js';
import {
  type Breaker,
  type BreakerState,
  halfOpen,
  onFailure,
  onSuccess,
  probeDue,
} from './circuit-breaker.js';
import { deriveModelId } from './model-service.js';
import { type PipelineDefaults, parsePipelineFile, validatePipeline } from './pipeline-file.js';
import {
  ACTIVE_STATUSES,
  definedStages,
  nextStage,
  type PipelineSpec,
  type PipelineStage,
  phaseOf,
  type RenderContext,
  render,
  stageOf,
  stageOfEventType,
} from './pipeline-model.js';
import { type PipelineRow, pipelineRepo, type StageRow } from './pipeline-repo.js';
import { type PipelineView, pipelineView } from './pipeline-views.js';
import { TASK_TYPE_LABEL } from './task-limiter.js';
import type { SpawnDecision } from './task-limits.js';
import { describeProblems, resolveOutput, verifyOutputs } from './transfer-verification.js';

/** Asks whether a task may start now (TaskLimits.canSpawn). */
export type SpawnGuard = (taskType: string, node: string | null) => Promise<SpawnDecision>;

/** Publishes an external-shaped event (the event router's `publish`). */
export type Publish = (e: { type: string; payload: unknown; id?: string }) => Promise<PublishResult>;

export interface PipelineOptions extends PipelineDefaults {
  /** A stage's completion launches the next stage's job (and a failure retries the stage). */
  autoTrigger: boolean;
  dataDir: string;
}

export const PIPELINE_LABEL = 'runplane.pipeline';
export const STAGE_LABEL = 'runplane.stage';
/** Where a stage job may write its result document (JSON: stage event payload fields). */
export const STAGE_RESULT_ENV = 'RUNPLANE_STAGE_RESULT';

const TERMINAL = new Set(['SUCCEEDED', 'FAILED', 'KILLED', 'WORKER_FAILED', 'UNSCHEDULABLE']);

type Launch = { pipelineId: string; stage: PipelineStage; attempt: number };

/**
 * The pipeline coordinator: starts and stops pipelines, follows the stage events (from the
 * outbox, POST /api/v1/events or NATS) and the stage jobs' ends, verifies stage outputs,
 * launches the next stage through the job service, and keeps the circuit breaker.
 *
 * Every decision is a transaction over the pipeline's row, and applying a stage event is
 * idempotent by event id (pipeline_applied_events). Launching a job is outside that transaction;
 * the stage attempt is first written as `launching`, and the launch (idempotent by job name) is
 * retried by `tick()` until it is recorded, so a crash or a refused `can_spawn` loses nothing.
 */
export class PipelineService {
  /** Stages looked up for the batch of job events being delivered (see prepareJobEvents). */
  private readonly stagesByJob = new Prefetched<StageRow>();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly jobs: JobService,
    private readonly publish: Publish,
    private readonly opts: PipelineOptions,
    private readonly guard: SpawnGuard | null = null,
  ) {}

  /** Starts a pipeline from a pipeline file (its text, YAML or JSON, or the parsed object); 422 with field errors, 409 if one runs. */
  async start(file: string | Record<string, unknown>): Promise<PipelineView> {
    const parsed =
      typeof file === 'string' ? parsePipelineFile(file, this.opts) : validatePipeline(file, this.opts);
    if (!parsed.ok) throw invalid(parsed.errors, 'pipeline file is invalid');
    const spec = parsed.spec;
    const now = this.clock.now();
    const id = newId('pl', now);
    const first = definedStages(spec)[0];
    if (!first) throw invalid([{ field: 'stages', code: 'REQUIRED', message: 'needs at least one stage' }]);
    const workDir = spec.work_dir ?? join(this.opts.dataDir, 'pipelines', spec.config_key, id);
    await this.store.write(async (tx) => {
      const current = await pipelineRepo.latestForConfig(tx, spec.config_key);
      if (current && ACTIVE_STATUSES.has(current.status))
        throw conflict(
          'PIPELINE_ACTIVE',
          `config ${spec.config_key} already has an active pipeline (${current.id}, ${current.status}); stop it first`,
        );
      await pipelineRepo.insert(tx, {
        id,
        config_key: spec.config_key,
        spec: JSON.stringify(spec),
        status: 'running',
        stage: phaseOf(first),
        stage_attempt: 1,
        work_dir: workDir,
        breaker_state: 'closed',
        consecutive_failures: 0,
        breaker_opened_at: null,
        outputs: '{}',
        last_error: null,
        created_at: now,
        updated_at: now,
        finished_at: null,
      });
      await this.insertAttempt(tx, id, spec, first, 1, true, now);
      await outboxRepo.append(
        tx,
        [
          event('pipeline.started', id, {
            pipeline_id: id,
            config_key: spec.config_key,
            stages: definedStages(spec),
          }),
        ],
        now,
      );
    });
    await this.launch({ pipelineId: id, stage: first, attempt: 1 });
    return this.view(id);
  }

  async list(): Promise<PipelineView[]> {
    const rows = await pipelineRepo.listLatest(this.store.db);
    return Promise.all(
      rows.map(async (r) => pipelineView(r, await pipelineRepo.stagesOf(this.store.db, r.id))),
    );
  }

  async get(config: string): Promise<PipelineView> {
    const p = await pipelineRepo.latestForConfig(this.store.db, config);
    if (!p) throw notFound('pipeline', config);
    return pipelineView(p, await pipelineRepo.stagesOf(this.store.db, p.id));
  }

  /** Stops a config's active pipeline; its running stage job is terminated. */
  async stop(config: string, reason: string | null): Promise<PipelineView> {
    const now = this.clock.now();
    const { id, jobs } = await this.store.write(async (tx) => {
      const p = await pipelineRepo.latestForConfig(tx, config);
      if (!p) throw notFound('pipeline', config);
      if (!ACTIVE_STATUSES.has(p.status))
        throw conflict('PIPELINE_NOT_ACTIVE', `the pipeline of ${config} is already ${p.status}`);
      const why = reason ?? 'stopped by request';
      await pipelineRepo.update(tx, p.id, {
        status: 'stopped',
        last_error: why,
        updated_at: now,
        finished_at: now,
      });
      const open = (await pipelineRepo.stagesOf(tx, p.id)).filter((s) =>
        ['launching', 'waiting', 'running'].includes(s.status),
      );
      for (const s of open)
        await pipelineRepo.updateStage(tx, s, {
          status: 'cancelled',
          error: why,
          updated_at: now,
          finished_at: now,
        });
      await this.changed(tx, { ...p, status: 'stopped' }, why, now);
      return { id: p.id, jobs: open.flatMap((s) => (s.job_id ? [s.job_id] : [])) };
    });
    for (const j of jobs)
      await this.jobs.terminate(j, `pipeline of ${config} stopped`).catch((err: unknown) => {
        this.log.warn({ err, job: j }, 'terminating a stage job failed');
      });
    return this.view(id);
  }

  /**
   * Before a batch of job.state_changed events reaches `onJobEvent`: the stages of the jobs that
   * ended, in one query (most jobs are no pipeline's, and each would cost a query of its own).
   */
  readonly prepareJobEvents = async (events: readonly StoredEvent[]): Promise<void> => {
    await this.stagesByJob.load(endedJobIds(events), async (ids) =>
      (await pipelineRepo.stagesByJobs(this.store.db, ids)).flatMap((s) =>
        s.job_id ? [[s.job_id, s] as const] : [],
      ),
    );
  };

  /**
   * A stage job ended: its success publishes the stage's completion event (payload from the
   * declared outputs and the job's result document), any other end its failure event. The
   * stage itself moves when that event comes back through the relay.
   */
  readonly onJobEvent = async (ev: StoredEvent): Promise<void> => {
    const p = ev.payload as EventPayloads['job.state_changed'];
    if (!TERMINAL.has(p.state)) return;
    const row = await this.stagesByJob.takeOr(p.job_id, () =>
      pipelineRepo.stageByJob(this.store.db, p.job_id),
    );
    if (row?.status !== 'running') return;
    const pl = await pipelineRepo.get(this.store.db, row.pipeline_id);
    const stage = stageOf(row.stage);
    if (!pl || !stage || pl.status !== 'running') return;
    const base = { config_key: pl.config_key, pipeline_id: pl.id, job_id: p.job_id };
    const failed = (error: string) =>
      this.publish({
        type: `pipeline.${stage}.failed`,
        id: `${pl.id}.${stage}.${row.attempt}.failed`,
        payload: { ...base, error: error.slice(0, 8000), attempt: row.attempt },
      });
    if (p.state !== 'SUCCEEDED') {
      await failed(`stage job ${p.job_id} ended ${p.state}${p.reason ? `: ${p.reason}` : ''}`);
      return;
    }
    let payload: Record<string, unknown>;
    try {
      payload = await this.completionPayload(pl, stage, row, p.job_id);
    } catch (err) {
      await failed((err as Error).message);
      return;
    }
    try {
      await this.publish({
        type: stage === 'promotion' ? 'model.promoted' : `pipeline.${stage}.completed`,
        id: `${pl.id}.${stage}.${row.attempt}.done`,
        payload,
      });
    } catch (err) {
      if (!(err instanceof AppError) || err.status !== 422) throw err;
      const fields = err.details.map((d) => `${d.field}: ${d.message}`).join('; ');
      await failed(`the stage result is not a valid ${stage} completion: ${fields || err.message}`);
    }
  };

  /** Applies a stage completion or failure event to its config's pipeline (idempotent by event id). */
  readonly onStageEvent = async (ev: StoredEvent): Promise<void> => {
    const kind = stageOfEventType(ev.type);
    if (!kind) return;
    const payload = ev.payload as Record<string, unknown> & { config_key: string };
    const pl = await pipelineRepo.latestForConfig(this.store.db, payload.config_key);
    if (!pl || !this.concerns(pl, kind.stage, payload)) return;
    const spec = JSON.parse(pl.spec) as PipelineSpec;
    let error: string | null = kind.success ? null : String(payload.error ?? 'stage failed');
    let quarantine: string | null = null;
    if (kind.success) {
      // Files that do not match their checksums must not feed the next stage.
      const outputs = Array.isArray(payload.outputs)
        ? (payload.outputs as Array<{ path: string; sha256?: string }>)
        : [];
      const dir = join(this.opts.dataDir, 'quarantine', pl.id, `${kind.stage}-${pl.stage_attempt}`);
      const problems = await verifyOutputs(outputs, pl.work_dir, dir);
      if (problems.length > 0) {
        error = `transfer verification failed: ${describeProblems(problems)}`;
        quarantine = JSON.stringify(problems);
      }
    }
    const now = this.clock.now();
    const launch = await this.store.write(async (tx): Promise<Launch | null> => {
      const p = await pipelineRepo.get(tx, pl.id);
      const current = p ? await pipelineRepo.getStage(tx, p.id, kind.stage, p.stage_attempt) : undefined;
      // A late result of an earlier attempt's job does not settle the attempt running now.
      const staleJob =
        typeof payload.job_id === 'string' && !!current?.job_id && current.job_id !== payload.job_id;
      const applies = p !== undefined && !staleJob && this.concerns(p, kind.stage, payload);
      const first = await pipelineRepo.markApplied(tx, {
        event_id: ev.id,
        pipeline_id: pl.id,
        outcome: !applies ? 'ignored' : error ? 'failed' : 'completed',
        created_at: now,
      });
      if (!first || !applies || !p) return null;
      const key = { pipeline_id: p.id, stage: kind.stage, attempt: p.stage_attempt };
      const breaker: Breaker = {
        state: p.breaker_state as BreakerState,
        failures: p.consecutive_failures,
        opened_at: p.breaker_opened_at,
      };
      if (error === null) {
        await pipelineRepo.updateStage(tx, key, {
          status: 'succeeded',
          event_id: ev.id,
          result: JSON.stringify(payload),
          blocked_reason: null,
          updated_at: now,
          finished_at: now,
        });
        const outputs = { ...(JSON.parse(p.outputs) as Record<string, unknown>), [kind.stage]: payload };
        const b = onSuccess(breaker);
        const next = nextStage(spec, kind.stage);
        const patch = {
          outputs: JSON.stringify(outputs),
          breaker_state: b.state,
          consecutive_failures: b.failures,
          breaker_opened_at: b.opened_at,
          last_error: null,
          updated_at: now,
        };
        if (next === null) {
          await pipelineRepo.update(tx, p.id, {
            ...patch,
            status: 'completed',
            stage: 'COMPLETE',
            finished_at: now,
          });
          await this.changed(
            tx,
            { ...p, status: 'completed', stage: 'COMPLETE', breaker_state: b.state },
            null,
            now,
          );
          return null;
        }
        await pipelineRepo.update(tx, p.id, { ...patch, stage: phaseOf(next), stage_attempt: 1 });
        const launching = await this.insertAttempt(tx, p.id, spec, next, 1, this.opts.autoTrigger, now);
        await this.changed(
          tx,
          { ...p, stage: phaseOf(next), stage_attempt: 1, breaker_state: b.state },
          null,
          now,
        );
        return launching ? { pipelineId: p.id, stage: next, attempt: 1 } : null;
      }
      await pipelineRepo.updateStage(tx, key, {
        status: 'failed',
        event_id: ev.id,
        error,
        quarantine,
        updated_at: now,
        finished_at: now,
      });
      const b = onFailure(breaker, now, spec.circuit_breaker);
      const common = {
        breaker_state: b.state,
        consecutive_failures: b.failures,
        breaker_opened_at: b.opened_at,
        updated_at: now,
      };
      if (b.state === 'open') {
        const why = `circuit breaker open after ${b.failures} consecutive failure(s); last: ${error}`;
        await pipelineRepo.update(tx, p.id, { ...common, status: 'breaker_open', last_error: why });
        await this.changed(tx, { ...p, status: 'breaker_open', breaker_state: 'open' }, why, now);
        return null;
      }
      const attempt = p.stage_attempt + 1;
      await pipelineRepo.update(tx, p.id, { ...common, stage_attempt: attempt, last_error: error });
      const launching = await this.insertAttempt(
        tx,
        p.id,
        spec,
        kind.stage,
        attempt,
        this.opts.autoTrigger,
        now,
      );
      await this.changed(tx, { ...p, stage_attempt: attempt, breaker_state: b.state }, error, now);
      return launching ? { pipelineId: p.id, stage: kind.stage, attempt } : null;
    });
    if (launch) await this.launch(launch);
  };

  /**
   * One round of the coordinator's loop: launches stage attempts still `launching` (refused by
   * can_spawn, or interrupted), and lets a cooled-down circuit breaker probe (half-open).
   */
  async tick(): Promise<{ launched: number; probed: number }> {
    let launched = 0;
    let probed = 0;
    const now = this.clock.now();
    for (const p of await pipelineRepo.listByStatus(this.store.db, 'breaker_open')) {
      const spec = JSON.parse(p.spec) as PipelineSpec;
      const b: Breaker = {
        state: p.breaker_state as BreakerState,
        failures: p.consecutive_failures,
        opened_at: p.breaker_opened_at,
      };
      if (!probeDue(b, now, spec.circuit_breaker)) continue;
      const stage = stageOf(p.stage);
      if (!stage) continue;
      const probe = await this.store.write(async (tx) => {
        const cur = await pipelineRepo.get(tx, p.id);
        if (cur?.status !== 'breaker_open' || cur.stage_attempt !== p.stage_attempt) return false;
        const attempt = p.stage_attempt + 1;
        const h = halfOpen(b);
        await pipelineRepo.update(tx, p.id, {
          status: 'running',
          breaker_state: h.state,
          stage_attempt: attempt,
          updated_at: now,
        });
        // The probe is launched even without auto-trigger: the breaker itself asked for it.
        await this.insertAttempt(tx, p.id, spec, stage, attempt, true, now);
        await this.changed(
          tx,
          { ...p, status: 'running', breaker_state: h.state, stage_attempt: attempt },
          'circuit breaker half-open: probing',
          now,
        );
        return true;
      });
      if (probe) probed++;
    }
    for (const row of await pipelineRepo.launching(this.store.db)) {
      const stage = stageOf(row.stage);
      if (!stage) continue;
      if (await this.launch({ pipelineId: row.pipeline_id, stage, attempt: row.attempt })) launched++;
    }
    return { launched, probed };
  }

  /** Health of the pipelines for the health endpoint: open breakers and blocked launches are issues. */
  async health(): Promise<{ status: 'healthy' | 'degraded'; issues: string[] }> {
    const issues: string[] = [];
    for (const p of await pipelineRepo.listByStatus(this.store.db, 'breaker_open'))
      issues.push(`pipeline ${p.config_key}: ${p.last_error ?? 'circuit breaker open'}`);
    for (const s of await pipelineRepo.launching(this.store.db))
      if (s.blocked_reason)
        issues.push(`pipeline ${s.pipeline_id}: ${s.stage} launch blocked: ${s.blocked_reason}`);
    return { status: issues.length > 0 ? 'degraded' : 'healthy', issues };
  }

  /** Launches a `launching` stage attempt; true when its job was launched. */
  private async launch(l: Launch): Promise<boolean> {
    const pl = await pipelineRepo.get(this.store.db, l.pipelineId);
    const row = await pipelineRepo.getStage(this.store.db, l.pipelineId, l.stage, l.attempt);
    if (!pl || !row || row.status !== 'launching') return false;
    const now = this.clock.now();
    if (pl.status !== 'running' || pl.stage !== phaseOf(l.stage) || pl.stage_attempt !== l.attempt) {
      await pipelineRepo.updateStage(this.store.db, row, {
        status: 'cancelled',
        updated_at: now,
        finished_at: now,
      });
      return false;
    }
    const spec = JSON.parse(pl.spec) as PipelineSpec;
    const t = spec.stages[l.stage];
    if (!t?.command) return false;
    if (this.guard) {
      const d = await this.guard(t.task_type, null);
      if (!d.allowed) {
        if (row.blocked_reason !== d.reason)
          await pipelineRepo.updateStage(this.store.db, row, { blocked_reason: d.reason, updated_at: now });
        return false;
      }
    }
    let req: JobRequest;
    try {
      const ctx = this.context(pl, spec, l.stage, l.attempt);
      req = {
        name: `pipeline-${pl.id}-${l.stage}-${l.attempt}`,
        command: t.command.map((a) => render(a, ctx)),
        env: {
          ...Object.fromEntries(Object.entries(t.env).map(([k, v]) => [k, render(v, ctx)])),
          [STAGE_RESULT_ENV]: ctx.base.result_file,
          RUNPLANE_PIPELINE_ID: pl.id,
          RUNPLANE_CONFIG_KEY: pl.config_key,
          RUNPLANE_STAGE: l.stage,
        },
        cwd: pl.work_dir,
        resources: t.resources,
        labels: { [PIPELINE_LABEL]: pl.id, [STAGE_LABEL]: l.stage, [TASK_TYPE_LABEL]: t.task_type },
        max_retries_failure: t.max_retries_failure,
      };
      await mkdir(join(pl.work_dir, '.runplane'), { recursive: true });
    } catch (err) {
      await this.publish({
        type: `pipeline.${l.stage}.failed`,
        id: `${pl.id}.${l.stage}.${l.attempt}.failed`,
        payload: {
          config_key: pl.config_key,
          pipeline_id: pl.id,
          error: (err as Error).message,
          attempt: l.attempt,
        },
      });
      return false;
    }
    let jobId: string;
    try {
      jobId = (await this.jobs.launch(req)).job_id;
    } catch (err) {
      if (!(err instanceof AppError) || err.code !== 'DUPLICATE_JOB_NAME') throw err;
      // An earlier launch of this attempt got through before its record: adopt its job.
      const found = await this.jobs.list({
        label: [`${PIPELINE_LABEL}=${pl.id}`, `${STAGE_LABEL}=${l.stage}`],
        limit: 100,
      });
      const job = found.jobs.find((j) => j.name === req.name);
      if (!job) throw err;
      jobId = job.job_id;
    }
    const stillWanted = await this.store.write(async (tx) => {
      const cur = await pipelineRepo.getStage(tx, l.pipelineId, l.stage, l.attempt);
      // A concurrent launcher (start and the loop) adopted the same job and recorded it first.
      if (cur?.job_id === jobId) return true;
      if (cur?.status !== 'launching') return false;
      await pipelineRepo.updateStage(tx, cur, {
        status: 'running',
        job_id: jobId,
        blocked_reason: null,
        updated_at: this.clock.now(),
      });
      return true;
    });
    if (!stillWanted)
      await this.jobs.terminate(jobId, 'pipeline stage no longer wanted').catch(() => undefined);
    this.log.info(
      { pipeline: pl.id, stage: l.stage, attempt: l.attempt, job: jobId },
      'pipeline stage launched',
    );
    return stillWanted;
  }

  /** Whether a stage event is for the stage (and attempt) this pipeline is at now. */
  private concerns(p: PipelineRow, stage: PipelineStage, payload: Record<string, unknown>): boolean {
    if (p.status !== 'running' || p.stage !== phaseOf(stage)) return false;
    if (typeof payload.pipeline_id === 'string' && payload.pipeline_id !== p.id) return false;
    if (typeof payload.attempt === 'number' && payload.attempt !== p.stage_attempt) return false;
    return true;
  }

  private context(pl: PipelineRow, spec: PipelineSpec, stage: PipelineStage, attempt: number): RenderContext {
    const stages = definedStages(spec);
    const i = stages.indexOf(stage);
    return {
      base: {
        config_key: pl.config_key,
        pipeline_id: pl.id,
        work_dir: pl.work_dir,
        stage,
        attempt: String(attempt),
        result_file: join(pl.work_dir, '.runplane', `${stage}-${attempt}.result.json`),
      },
      results: JSON.parse(pl.outputs) as RenderContext['results'],
      prev: i > 0 ? (stages[i - 1] ?? null) : null,
    };
  }

  /**
   * The completion payload of a stage whose job succeeded: declared outputs and the job's result
   * document (any fields of the stage's event; its `outputs` may carry sha256 checksums), with
   * the fields a stage event requires filled from what the pipeline knows.
   */
  private async completionPayload(
    pl: PipelineRow,
    stage: PipelineStage,
    row: StageRow,
    jobId: string,
  ): Promise<Record<string, unknown>> {
    const spec = JSON.parse(pl.spec) as PipelineSpec;
    const ctx = this.context(pl, spec, stage, row.attempt);
    let result: Record<string, unknown> = {};
    try {
      const text = await readFile(ctx.base.result_file, 'utf8');
      const parsed = JSON.parse(text) as unknown;
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
        throw new Error('must be a JSON object');
      result = parsed as Record<string, unknown>;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
        throw new Error(`the stage result ${ctx.base.result_file} is invalid: ${(err as Error).message}`);
    }
    const declared = (spec.stages[stage]?.outputs ?? []).map((o) => ({
      path: resolveOutput(render(o, ctx), pl.work_dir),
    }));
    const outputs = Array.isArray(result.outputs)
      ? (result.outputs as Array<Record<string, unknown>>).map((o) =>
          typeof o?.path === 'string' ? { ...o, path: resolveOutput(o.path, pl.work_dir) } : o,
        )
      : declared;
    const firstPath = (outputs[0] as { path?: unknown } | undefined)?.path;
    const r = ctx.results;
    const defaults: Record<string, unknown> = {};
    if (stage === 'selfplay') defaults.games_generated = 0;
    if (stage === 'npz_export') defaults.npz_path = firstPath;
    if (stage === 'training') {
      const path = (result.model_path as string | undefined) ?? firstPath;
      defaults.model_path = path;
      if (typeof path === 'string') defaults.model_id = deriveModelId(pl.config_key, path);
    }
    if (stage === 'evaluation' || stage === 'promotion') {
      const trained = r.training ?? {};
      const evaluated = r.evaluation ?? {};
      defaults.model_id = evaluated.model_id ?? trained.model_id;
      defaults.model_path = evaluated.model_path ?? trained.model_path;
    }
    const merged: Record<string, unknown> = {
      ...defaults,
      ...result,
      config_key: pl.config_key,
      pipeline_id: pl.id,
      job_id: jobId,
      ...(outputs.length > 0 ? { outputs } : {}),
    };
    return Object.fromEntries(Object.entries(merged).filter(([, v]) => v !== undefined));
  }

  /** Writes a new stage attempt; true when it is to be launched now. */
  private async insertAttempt(
    tx: Tx,
    pipelineId: string,
    spec: PipelineSpec,
    stage: PipelineStage,
    attempt: number,
    launch: boolean,
    now: number,
  ): Promise<boolean> {
    const launching = launch && spec.stages[stage]?.command != null;
    await pipelineRepo.insertStage(tx, {
      pipeline_id: pipelineId,
      stage,
      attempt,
      status: launching ? 'launching' : 'waiting',
      job_id: null,
      event_id: null,
      result: null,
      error: null,
      blocked_reason: null,
      quarantine: null,
      created_at: now,
      updated_at: now,
      finished_at: null,
    });
    return launching;
  }

  private async changed(
    tx: Tx,
    p: Pick<PipelineRow, 'id' | 'config_key' | 'status' | 'stage' | 'stage_attempt' | 'breaker_state'>,
    reason: string | null,
    now: number,
  ): Promise<void> {
    await outboxRepo.append(
      tx,
      [
        event('pipeline.changed', p.id, {
          pipeline_id: p.id,
          config_key: p.config_key,
          status: p.status,
          stage: p.stage,
          attempt: p.stage_attempt,
          breaker_state: p.breaker_state,
          reason,
        }),
      ],
      now,
    );
  }

  private async view(id: string): Promise<PipelineView> {
    const p = await pipelineRepo.get(this.store.db, id);
    if (!p) throw notFound('pipeline', id);
    return pipelineView(p, await pipelineRepo.stagesOf(this.store.db, id));
  }
}
