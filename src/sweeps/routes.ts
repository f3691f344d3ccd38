import type { App } from '../http/app.js';
import { ErrorSchema } from '../http/schema-helpers.js';
import {
  AnalysisQuerySchema,
  AnalysisSchema,
  StopRequestSchema,
  SweepCreateSchema,
  SweepIdParams,
  SweepListQuerySchema,
  SweepListSchema,
  SweepSchema,
  TrialListQuerySchema,
  TrialListSchema,
} from './schemas.js';
import type { SweepService } from './sweep-service.js';

const errors = { 401: ErrorSchema, 403: ErrorSchema, 404: ErrorSchema, 409: ErrorSchema, 422: ErrorSchema };

/** The sweep engine's HTTP surface: sweeps, their trials, analysis, stop and resume. */
export function registerSweepRoutes(app: App, sweeps: SweepService): void {
  app.post(
    '/api/v1/sweeps',
    {
      config: { access: 'operate' },
      schema: {
        tags: ['sweeps'],
        summary: 'Start a sweep from a sweep file (its content as JSON); 422 lists every field error',
        body: SweepCreateSchema,
        response: { 201: SweepSchema, ...errors },
      },
    },
    async (req, reply) => reply.status(201).send(await sweeps.create(req.body)),
  );
  app.get(
    '/api/v1/sweeps',
    {
      config: { access: 'read' },
      schema: {
        tags: ['sweeps'],
        summary: 'List sweeps, newest first',
        querystring: SweepListQuerySchema,
        response: { 200: SweepListSchema, ...errors },
      },
    },
    async (req) => sweeps.list(req.query),
  );
  app.get(
    '/api/v1/sweeps/:sweep_id',
    {
      config: { access: 'read' },
      schema: {
        tags: ['sweeps'],
        summary: 'A sweep: status, trial counts by status, best trial so far',
        params: SweepIdParams,
        response: { 200: SweepSchema, ...errors },
      },
    },
    async (req) => sweeps.get(req.params.sweep_id),
  );
  app.get(
    '/api/v1/sweeps/:sweep_id/trials',
    {
      config: { access: 'read' },
      schema: {
        tags: ['sweeps'],
        summary: 'The trials of a sweep, by number',
        params: SweepIdParams,
        querystring: TrialListQuerySchema,
        response: { 200: TrialListSchema, ...errors },
      },
    },
    async (req) => sweeps.trials(req.params.sweep_id, req.query.status),
  );
  app.get(
    '/api/v1/sweeps/:sweep_id/analysis',
    {
      config: { access: 'read' },
      schema: {
        tags: ['sweeps'],
        summary: 'Best configuration, top-k, importance, Pareto front, significance test, history',
        params: SweepIdParams,
        querystring: AnalysisQuerySchema,
        response: { 200: AnalysisSchema, ...errors },
      },
    },
    async (req) => sweeps.analysis(req.params.sweep_id, req.query.top ?? 10),
  );
  app.post(
    '/api/v1/sweeps/:sweep_id/stop',
    {
      config: { access: 'operate' },
      schema: {
        tags: ['sweeps'],
        summary: 'Stop a sweep: no new trials; running trials are terminated',
        params: SweepIdParams,
        body: StopRequestSchema,
        response: { 200: SweepSchema, ...errors },
      },
    },
    async (req) => sweeps.stop(req.params.sweep_id, req.body?.reason),
  );
  app.post(
    '/api/v1/sweeps/:sweep_id/resume',
    {
      config: { access: 'operate' },
      schema: {
        tags: ['sweeps'],
        summary: 'Resume a stopped sweep: interrupted trials run again, new trials up to max_trials',
        params: SweepIdParams,
        response: { 200: SweepSchema, ...errors },
      },
    },
    async (req) => sweeps.resume(req.params.sweep_id),
  );
}
