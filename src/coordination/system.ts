import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { EventSystem } from '../events/system.js';
import type { App } from '../http/app.js';
import type { JobService } from '../jobs/job-service.js';
import type { Clock } from '../shared/clock.js';
import type { Store } from '../store/database.js';
import { effectiveLimits, type LimitsView, limitsView } from './limits-file.js';
import { ModelService } from './model-service.js';
import { PipelineService } from './pipeline-service.js';
import type { QueueReading } from './queue-monitor.js';
import { QueueMonitors } from './queue-monitors.js';
import { registerCoordinationRoutes } from './routes.js';
import { osResources, TaskLimiter } from './task-limiter.js';

export type CoordinationConfig = Pick<
  Config,
  | 'dataDir'
  | 'autoTriggerPipeline'
  | 'pipelineFailureThreshold'
  | 'pipelineCooldownMs'
  | 'pipelineIntervalMs'
  | 'spawnMaxDiskPct'
  | 'spawnMaxMemoryPct'
  | 'spawnMaxCpuPct'
  | 'taskLimits'
>;

/** The coordination slice as the controller runs it. */
export interface Coordination {
  pipelines: PipelineService;
  models: ModelService;
  limiter: TaskLimiter;
  queues: QueueMonitors;
  /** The effective task and queue limits (the task-limits file over the spawnMax* settings). */
  limits: LimitsView;
  registerRoutes(app: App): void;
  /** Subscribes to the stage and job events (call before the relay starts). */
  attach(): Promise<void>;
  /** Starts the coordinator's loop (launch retries, circuit-breaker probes). */
  start(): void;
  stop(): Promise<void>;
  /** For the health endpoint: pipelines and queues, {status, issues}. */
  health(): Promise<{ status: 'healthy' | 'degraded' | 'unhealthy'; issues: string[] }>;
  /** Readings for the Prometheus gauges. */
  queueReadings(): Promise<QueueReading[]>;
}

export function createCoordination(
  store: Store,
  clock: Clock,
  log: Logger,
  config: CoordinationConfig,
  deps: { jobs: JobService; events: EventSystem },
): Coordination {
  // The task-limits file wins over the RUNPLANE_SPAWN_MAX_* thresholds; 0 turns a threshold off.
  const effective = effectiveLimits(config.taskLimits, {
    diskPct: config.spawnMaxDiskPct,
    memoryPct: config.spawnMaxMemoryPct,
    cpuPct: config.spawnMaxCpuPct,
  });
  const limits = limitsView(effective);
  const queues = new QueueMonitors(store, () => deps.events.relay.status(), effective.queues);
  const limiter = new TaskLimiter({
    store,
    clock,
    config: effective.task,
    backpressure: () => queues.backpressure(),
    localResources: () => osResources(config.dataDir),
  });
  const models = new ModelService(store, clock);
  const pipelines = new PipelineService(
    store,
    clock,
    log.child({ svc: 'pipelines' }),
    deps.jobs,
    (e) => deps.events.router.publish(e),
    {
      autoTrigger: config.autoTriggerPipeline,
      dataDir: config.dataDir,
      failureThreshold: config.pipelineFailureThreshold,
      cooldownMs: config.pipelineCooldownMs,
    },
    (type, node) => limiter.canSpawn(type, node),
  );
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> | null = null;
  return {
    pipelines,
    models,
    limiter,
    queues,
    limits,
    registerRoutes(app) {
      registerCoordinationRoutes(app, { pipelines, models, limiter, queues, limits });
    },
    async attach() {
      const relay = deps.events.relay;
      await relay.subscribe(
        'pipelines.stages',
        ['pipeline.*.completed', 'pipeline.*.failed', 'model.promoted'],
        pipelines.onStageEvent,
      );
      await relay.subscribe(
        'pipelines.jobs',
        'job.state_changed',
        pipelines.onJobEvent,
        false,
        pipelines.prepareJobEvents,
      );
      await relay.subscribe(
        'models',
        ['pipeline.training.completed', 'pipeline.evaluation.completed', 'model.promoted'],
        models.onStageEvent,
      );
    },
    start() {
      // Started again when this replica becomes the leader again: one timer at a time.
      if (timer) return;
      timer = setInterval(() => {
        if (running !== null) return;
        running = pipelines
          .tick()
          .then(() => undefined)
          .catch((err: unknown) => log.error({ err }, 'pipeline coordinator round failed'))
          .finally(() => {
            running = null;
          });
      }, config.pipelineIntervalMs);
    },
    async stop() {
      if (timer) clearInterval(timer);
      timer = null;
      await running;
    },
    async health() {
      const [p, q] = await Promise.all([pipelines.health(), queues.health()]);
      const status =
        q.status === 'unhealthy'
          ? 'unhealthy'
          : p.status === 'degraded' || q.status === 'degraded'
            ? 'degraded'
            : 'healthy';
      return { status, issues: [...p.issues, ...q.issues] };
    },
    queueReadings: () => queues.sample(),
  };
}
