import type { App } from '../http/app.js';
import { ErrorSchema } from '../http/schema-helpers.js';
import type { LimitsView } from './limits-file.js';
import type { ModelService } from './model-service.js';
import type { PipelineService } from './pipeline-service.js';
import type { QueueMonitors } from './queue-monitors.js';
import {
  ConfigParams,
  LimitsSchema,
  ModelIdParams,
  ModelListQuerySchema,
  ModelListSchema,
  ModelRegisterSchema,
  ModelSchema,
  PipelineCreateSchema,
  PipelineListSchema,
  PipelineSchema,
  ProductionQuerySchema,
  QueuesSchema,
  ReasonBodySchema,
  RollbackResultSchema,
  SpawnDecisionSchema,
  SpawnQuerySchema,
  StopBodySchema,
} from './schemas.js';
import type { TaskLimiter } from './task-limiter.js';

const errors = { 401: ErrorSchema, 403: ErrorSchema, 404: ErrorSchema, 409: ErrorSchema, 422: ErrorSchema };

export interface CoordinationRoutes {
  pipelines: PipelineService;
  models: ModelService;
  limiter: TaskLimiter;
  queues: QueueMonitors;
  /** The effective task and queue limits. */
  limits: LimitsView;
}

/** The coordination slice's HTTP surface: pipelines, models, can_spawn, limits and the queue monitors. */
export function registerCoordinationRoutes(app: App, s: CoordinationRoutes): void {
  app.post(
    '/api/v1/pipelines',
    {
      config: { access: 'operate' },
      schema: {
        tags: ['pipelines'],
        summary:
          "Start a config's pipeline from a pipeline file; 422 lists every field error, 409 if one is active",
        body: PipelineCreateSchema,
        response: { 201: PipelineSchema, ...errors },
      },
    },
    async (req, reply) => {
      const b = req.body;
      const keys = Object.keys(b);
      const file = keys.length === 1 && typeof b.content === 'string' ? b.content : b;
      return reply.status(201).send(await s.pipelines.start(file));
    },
  );
  app.get(
    '/api/v1/pipelines',
    {
      config: { access: 'read' },
      schema: {
        tags: ['pipelines'],
        summary: 'The pipeline of every config',
        response: { 200: PipelineListSchema, ...errors },
      },
    },
    async () => ({ pipelines: await s.pipelines.list() }),
  );
  app.get(
    '/api/v1/pipelines/:config',
    {
      config: { access: 'read' },
      schema: {
        tags: ['pipelines'],
        summary: "A config's pipeline: stage, attempts, outputs, circuit breaker",
        params: ConfigParams,
        response: { 200: PipelineSchema, ...errors },
      },
    },
    async (req) => s.pipelines.get(req.params.config),
  );
  app.post(
    '/api/v1/pipelines/:config/stop',
    {
      config: { access: 'operate' },
      schema: {
        tags: ['pipelines'],
        summary: "Stop a config's active pipeline (its stage job is terminated)",
        params: ConfigParams,
        body: StopBodySchema,
        response: { 200: PipelineSchema, ...errors },
      },
    },
    async (req) => s.pipelines.stop(req.params.config, req.body?.reason ?? null),
  );
  app.get(
    '/api/v1/models',
    {
      config: { access: 'read' },
      schema: {
        tags: ['models'],
        summary: 'Models, newest first, by config and state',
        querystring: ModelListQuerySchema,
        response: { 200: ModelListSchema, ...errors },
      },
    },
    async (req) => ({ models: await s.models.list(req.query) }),
  );
  app.get(
    '/api/v1/models/production',
    {
      config: { access: 'read' },
      schema: {
        tags: ['models'],
        summary: 'The production model of a config',
        querystring: ProductionQuerySchema,
        response: { 200: ModelSchema, ...errors },
      },
    },
    async (req) => s.models.production(req.query.config),
  );
  app.get(
    '/api/v1/models/:model_id',
    {
      config: { access: 'read' },
      schema: {
        tags: ['models'],
        summary: 'A model',
        params: ModelIdParams,
        response: { 200: ModelSchema, ...errors },
      },
    },
    async (req) => s.models.get(req.params.model_id),
  );
  app.post(
    '/api/v1/models',
    {
      config: { access: 'operate' },
      schema: {
        tags: ['models'],
        summary: 'Register a model (id derived from config and path when not given)',
        body: ModelRegisterSchema,
        response: { 201: ModelSchema, ...errors },
      },
    },
    async (req, reply) => reply.status(201).send(await s.models.register(req.body)),
  );
  app.post(
    '/api/v1/models/:model_id/promote',
    {
      config: { access: 'operate' },
      schema: {
        tags: ['models'],
        summary: 'Make a model the production model of its config (publishes MODEL_PROMOTED)',
        params: ModelIdParams,
        body: ReasonBodySchema,
        response: { 200: ModelSchema, ...errors },
      },
    },
    async (req) => s.models.promote(req.params.model_id, req.body?.reason ?? null),
  );
  app.post(
    '/api/v1/models/:model_id/rollback',
    {
      config: { access: 'operate' },
      schema: {
        tags: ['models'],
        summary: 'Roll back the production model: the production model before it is restored',
        params: ModelIdParams,
        body: ReasonBodySchema,
        response: { 200: RollbackResultSchema, ...errors },
      },
    },
    async (req) => s.models.rollback(req.params.model_id, req.body?.reason ?? null),
  );
  app.get(
    '/api/v1/coordination/can-spawn',
    {
      config: { access: 'read' },
      schema: {
        tags: ['coordination'],
        summary: 'can_spawn(task_type, node): whether a task may start now, and why',
        querystring: SpawnQuerySchema,
        response: { 200: SpawnDecisionSchema, ...errors },
      },
    },
    async (req) => s.limiter.canSpawn(req.query.task_type, req.query.node ?? null, { consume: false }),
  );
  app.get(
    '/api/v1/coordination/queues',
    {
      config: { access: 'read' },
      schema: {
        tags: ['coordination'],
        summary: 'Queue monitors: depth, soft and hard limits, backpressure level, throttle factor',
        response: { 200: QueuesSchema, ...errors },
      },
    },
    async () => s.queues.health(),
  );
  app.get(
    '/api/v1/limits',
    {
      config: { access: 'read' },
      schema: {
        tags: ['coordination'],
        summary:
          'The effective can_spawn limits: defaults, per task type, node thresholds, queue soft/hard limits',
        response: { 200: LimitsSchema, ...errors },
      },
    },
    async () => s.limits,
  );
}
