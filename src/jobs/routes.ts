import { Type } from '@sinclair/typebox';
import type { App } from '../http/app.js';
import { ErrorSchema } from '../http/schema-helpers.js';
import type { EndpointService } from './endpoint-service.js';
import type { JobService } from './job-service.js';
import {
  EndpointQuerySchema,
  EndpointRequestSchema,
  EndpointSchema,
  JobIdParams,
  JobListQuerySchema,
  JobListSchema,
  JobRequestSchema,
  JobSchema,
  LogsQuerySchema,
  LogsSchema,
  PollRequestSchema,
  PollResponseSchema,
  ReportRequestSchema,
  WorkerIdParams,
  WorkerRegisteredSchema,
  WorkerRegisterSchema,
  WorkerSchema,
} from './schemas.js';
import type { WorkerService } from './worker-service.js';

const errors = { 401: ErrorSchema, 403: ErrorSchema, 404: ErrorSchema, 409: ErrorSchema, 422: ErrorSchema };

/** The controller's HTTP surface: jobs, workers (agent protocol included) and endpoints. */
export function registerJobRoutes(
  app: App,
  s: { jobs: JobService; workers: WorkerService; endpoints: EndpointService },
): void {
  app.post(
    '/api/v1/jobs',
    {
      config: { access: 'operate' },
      schema: {
        tags: ['jobs'],
        summary: 'LaunchJob',
        body: JobRequestSchema,
        response: { 201: Type.Object({ job_id: Type.String() }), ...errors },
      },
    },
    async (req, reply) => reply.status(201).send(await s.jobs.launch(req.body)),
  );
  app.get(
    '/api/v1/jobs',
    {
      config: { access: 'read' },
      schema: {
        tags: ['jobs'],
        summary: 'ListJobs',
        querystring: JobListQuerySchema,
        response: { 200: JobListSchema, ...errors },
      },
    },
    async (req) => s.jobs.list(req.query),
  );
  app.get(
    '/api/v1/jobs/:job_id',
    {
      config: { access: 'read' },
      schema: {
        tags: ['jobs'],
        summary: 'GetJobStatus',
        params: JobIdParams,
        response: { 200: JobSchema, ...errors },
      },
    },
    async (req) => s.jobs.get(req.params.job_id),
  );
  app.post(
    '/api/v1/jobs/:job_id/terminate',
    {
      config: { access: 'operate' },
      schema: {
        tags: ['jobs'],
        summary: 'TerminateJob (cascades to child jobs)',
        params: JobIdParams,
        body: Type.Object(
          { reason: Type.Optional(Type.String({ maxLength: 1024 })) },
          { additionalProperties: false },
        ),
        response: { 200: JobSchema, ...errors },
      },
      // The body is optional: `POST .../terminate` with none means "no reason given".
      preValidation: async (req) => {
        req.body ??= {};
      },
    },
    async (req) =>
      s.jobs.terminate(req.params.job_id, req.body?.reason ? `terminated: ${req.body.reason}` : undefined),
  );
  app.get(
    '/api/v1/jobs/:job_id/logs',
    {
      config: { access: 'read' },
      schema: {
        tags: ['jobs'],
        summary: 'Output of an attempt (latest by default)',
        params: JobIdParams,
        querystring: LogsQuerySchema,
        response: { 200: LogsSchema, ...errors },
      },
    },
    async (req) => s.jobs.logs(req.params.job_id, req.query),
  );

  // ----- workers -----
  app.post(
    '/api/v1/workers',
    {
      config: { access: 'agent' },
      schema: {
        tags: ['workers'],
        summary: 'RegisterWorker',
        body: WorkerRegisterSchema,
        response: { 200: WorkerRegisteredSchema, ...errors },
      },
    },
    async (req) => s.workers.register(req.body),
  );
  app.get(
    '/api/v1/workers',
    {
      config: { access: 'read' },
      schema: {
        tags: ['workers'],
        summary: 'ListWorkers',
        response: { 200: Type.Object({ workers: Type.Array(WorkerSchema) }), ...errors },
      },
    },
    async () => ({ workers: await s.workers.list() }),
  );
  app.post(
    '/api/v1/workers/:worker_id/heartbeat',
    {
      config: { access: 'agent' },
      schema: {
        tags: ['workers'],
        summary: 'Worker liveness',
        params: WorkerIdParams,
        response: { 204: Type.Null(), ...errors },
      },
    },
    async (req, reply) => {
      await s.workers.heartbeat(req.params.worker_id);
      return reply.status(204).send(null);
    },
  );
  app.delete(
    '/api/v1/workers/:worker_id',
    {
      config: { access: 'agent' },
      schema: {
        tags: ['workers'],
        summary: 'Deregister (graceful agent shutdown)',
        params: WorkerIdParams,
        response: { 204: Type.Null(), ...errors },
      },
    },
    async (req, reply) => {
      await s.workers.deregister(req.params.worker_id);
      return reply.status(204).send(null);
    },
  );
  app.post(
    '/api/v1/workers/:worker_id/poll',
    {
      config: { access: 'agent' },
      schema: {
        tags: ['workers'],
        summary: 'Long-poll for assignments and kills',
        params: WorkerIdParams,
        body: PollRequestSchema,
        response: { 200: PollResponseSchema, ...errors },
      },
    },
    async (req, reply) => {
      // Stop waiting when the agent hangs up, so an abandoned long-poll holds nothing.
      const ac = new AbortController();
      reply.raw.once('close', () => ac.abort());
      const b = req.body;
      return s.workers.poll(req.params.worker_id, b.known, b.wait_ms ?? 30_000, ac.signal, b.stopping ?? []);
    },
  );
  app.post(
    '/api/v1/workers/:worker_id/reports',
    {
      config: { access: 'agent' },
      schema: {
        tags: ['workers'],
        summary: 'Attempt state changes and output, batched',
        params: WorkerIdParams,
        body: ReportRequestSchema,
        response: { 200: Type.Object({ applied: Type.Integer(), ignored: Type.Integer() }), ...errors },
      },
    },
    async (req) => s.workers.report(req.params.worker_id, req.body),
  );

  // ----- endpoints -----
  app.post(
    '/api/v1/endpoints',
    {
      config: { access: 'endpointsWrite' },
      schema: {
        tags: ['endpoints'],
        summary: 'RegisterEndpoint',
        body: EndpointRequestSchema,
        response: { 201: EndpointSchema, ...errors },
      },
    },
    async (req, reply) => reply.status(201).send(await s.endpoints.register(req.body)),
  );
  app.delete(
    '/api/v1/endpoints/:endpoint_id',
    {
      config: { access: 'endpointsWrite' },
      schema: {
        tags: ['endpoints'],
        summary: 'UnregisterEndpoint',
        params: Type.Object({ endpoint_id: Type.String() }),
        response: { 204: Type.Null(), ...errors },
      },
    },
    async (req, reply) => {
      await s.endpoints.unregister(req.params.endpoint_id);
      return reply.status(204).send(null);
    },
  );
  app.get(
    '/api/v1/endpoints',
    {
      config: { access: 'endpointsRead' },
      schema: {
        tags: ['endpoints'],
        summary: 'LookupEndpoint (?name=) and ListEndpoints (?prefix=); only endpoints of RUNNING jobs',
        querystring: EndpointQuerySchema,
        response: { 200: Type.Object({ endpoints: Type.Array(EndpointSchema) }), ...errors },
      },
    },
    async (req) => ({ endpoints: await s.endpoints.find(req.query) }),
  );
}
