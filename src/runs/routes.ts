import { Type } from '@sinclair/typebox';
import type { App } from '../http/app.js';
import { requestMeta } from '../http/request-meta.js';
import { ErrorSchema } from '../http/schema-helpers.js';
import type { CommandService } from './command-service.js';
import type { HeartbeatService } from './heartbeat-service.js';
import type { RunService } from './run-service.js';
import {
  CommandEnvelopeSchema,
  CommandIdParams,
  CommandListSchema,
  CommandSchema,
  FinishSchema,
  HeartbeatAcceptedSchema,
  HeartbeatSchema,
  LivenessSchema,
  MetricsPostSchema,
  MetricsQuerySchema,
  MetricsSchema,
  NextCommandQuerySchema,
  RunCreatedSchema,
  RunCreateSchema,
  RunIdParams,
  RunListQuerySchema,
  RunListSchema,
  RunSchema,
} from './schemas.js';
import { type StatusStream, serveStatusStream } from './status-stream-http.js';

const errors = {
  401: ErrorSchema,
  403: ErrorSchema,
  404: ErrorSchema,
  409: ErrorSchema,
  413: ErrorSchema,
  415: ErrorSchema,
  422: ErrorSchema,
  429: ErrorSchema,
};

/** The seed's limit on a heartbeat body. */
const HEARTBEAT_BODY_LIMIT = 32 * 1024;

/** The run orchestrator's HTTP surface: runs, heartbeats, metrics, commands, liveness, status stream. */
export function registerRunRoutes(
  app: App,
  s: { runs: RunService; heartbeats: HeartbeatService; commands: CommandService; stream: StatusStream },
): void {
  app.post(
    '/api/v1/runs',
    {
      config: { access: 'operate' },
      schema: {
        tags: ['runs'],
        summary: 'Create a run; returns its id and a learner token for it',
        body: RunCreateSchema,
        response: { 201: RunCreatedSchema, ...errors },
      },
    },
    async (req, reply) =>
      reply.status(201).send(await s.runs.create(req.body, req.principal, requestMeta(req))),
  );
  app.get(
    '/api/v1/runs',
    {
      config: { access: 'read' },
      schema: {
        tags: ['runs'],
        summary: 'List runs, newest first',
        querystring: RunListQuerySchema,
        response: { 200: RunListSchema, ...errors },
      },
    },
    async (req) => s.runs.list(req.query),
  );
  app.get(
    '/api/v1/runs/:run_id',
    {
      config: { access: 'runRead' },
      schema: {
        tags: ['runs'],
        summary: 'Get a run',
        params: RunIdParams,
        response: { 200: RunSchema, ...errors },
      },
    },
    async (req) => s.runs.get(req.params.run_id),
  );
  app.post(
    '/api/v1/runs/:run_id/heartbeat',
    {
      bodyLimit: HEARTBEAT_BODY_LIMIT,
      config: { access: 'learner' },
      schema: {
        tags: ['runs'],
        summary: 'A learner heartbeat (the seed table); 429 with Retry-After when too frequent',
        params: RunIdParams,
        body: HeartbeatSchema,
        response: { 200: HeartbeatAcceptedSchema, ...errors },
      },
    },
    async (req) => s.heartbeats.accept(req.params.run_id, req.body),
  );
  app.post(
    '/api/v1/runs/:run_id/metrics',
    {
      config: { access: 'learner' },
      schema: {
        tags: ['runs'],
        summary: 'Report metric values at a step',
        params: RunIdParams,
        body: MetricsPostSchema,
        response: { 200: Type.Object({ accepted: Type.Integer() }), ...errors },
      },
    },
    async (req) => s.runs.postMetrics(req.params.run_id, req.body),
  );
  app.get(
    '/api/v1/runs/:run_id/metrics',
    {
      config: { access: 'runRead' },
      schema: {
        tags: ['runs'],
        summary: 'Metric series of a run, downsampled for long runs',
        params: RunIdParams,
        querystring: MetricsQuerySchema,
        response: { 200: MetricsSchema, ...errors },
      },
    },
    async (req) => s.runs.metrics(req.params.run_id, req.query),
  );
  app.post(
    '/api/v1/runs/:run_id/finish',
    {
      config: { access: 'learner' },
      schema: {
        tags: ['runs'],
        summary: 'Declare the run ended (completed, failed or terminated)',
        params: RunIdParams,
        body: FinishSchema,
        response: { 200: RunSchema, ...errors },
      },
    },
    async (req) => s.runs.finish(req.params.run_id, req.body, req.principal, requestMeta(req)),
  );
  app.post(
    '/api/v1/runs/:run_id/liveness',
    {
      config: { access: 'operate' },
      schema: {
        tags: ['runs'],
        summary: 'Allow a quiet run more time before it is marked stale or unresponsive (audited)',
        params: RunIdParams,
        body: LivenessSchema,
        response: { 200: RunSchema, ...errors },
      },
    },
    async (req) => s.runs.extendLiveness(req.params.run_id, req.body, req.principal, requestMeta(req)),
  );
  app.post(
    '/api/v1/runs/:run_id/commands',
    {
      config: { access: 'operate' },
      schema: {
        tags: ['runs'],
        summary: 'Issue a control command (tune, pause, resume, terminate); 200 for a repeated id',
        params: RunIdParams,
        body: CommandEnvelopeSchema,
        response: { 200: CommandSchema, 202: CommandSchema, ...errors },
      },
    },
    async (req, reply) => {
      const r = await s.commands.issue(req.params.run_id, req.body, requestMeta(req));
      return reply.status(r.created ? 202 : 200).send(r.command);
    },
  );
  app.get(
    '/api/v1/runs/:run_id/commands',
    {
      config: { access: 'runRead' },
      schema: {
        tags: ['runs'],
        summary: 'The command trail of a run, oldest first',
        params: RunIdParams,
        response: { 200: CommandListSchema, ...errors },
      },
    },
    async (req) => s.commands.list(req.params.run_id),
  );
  app.get(
    '/api/v1/runs/:run_id/commands/next',
    {
      config: { access: 'learner' },
      schema: {
        tags: ['runs'],
        summary: 'Long-poll for the next command (204 when the wait ends)',
        params: RunIdParams,
        querystring: NextCommandQuerySchema,
        response: { 200: CommandSchema, 204: Type.Null(), ...errors },
      },
    },
    async (req, reply) => {
      const abort = new AbortController();
      const onClose = () => abort.abort();
      req.raw.once('close', onClose);
      try {
        const cmd = await s.commands.next(req.params.run_id, (req.query.wait ?? 30) * 1000, abort.signal);
        if (!cmd) return reply.status(204).send(null);
        return cmd;
      } finally {
        req.raw.off('close', onClose);
      }
    },
  );
  app.post(
    '/api/v1/runs/:run_id/commands/:command_id/ack',
    {
      config: { access: 'learner' },
      schema: {
        tags: ['runs'],
        summary: 'Acknowledge a command (idempotent)',
        params: CommandIdParams,
        response: { 200: CommandSchema, ...errors },
      },
    },
    async (req) => s.commands.ack(req.params.run_id, req.params.command_id, req.principal, requestMeta(req)),
  );
  app.get(
    '/api/v1/stream/runs',
    {
      config: { access: 'read' },
      schema: {
        tags: ['runs'],
        summary: 'Server-sent events of run status changes; resumable with Last-Event-ID',
        querystring: Type.Object(
          {
            run_id: Type.Optional(Type.String({ minLength: 1 })),
            last_event_id: Type.Optional(Type.String({ pattern: '^[0-9]+$' })),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (req, reply) => serveStatusStream(s.stream, req, reply),
  );
}
