import { Type } from '@sinclair/typebox';
import type { App } from '../http/app.js';
import { ErrorSchema } from '../http/schema-helpers.js';
import type { PodService } from './pod-service.js';
import {
  DispatchResponseSchema,
  EpochSchema,
  LeaderboardQuerySchema,
  LeaderboardSchema,
  ParticipantIdParams,
  ParticipantUpdateResponseSchema,
  ParticipantUpdateSchema,
  PodCreateSchema,
  PodIdParams,
  PodListQuerySchema,
  PodListSchema,
  PodPatchSchema,
  PodSchema,
  ReplayListSchema,
  ReplayQuerySchema,
  ResetRequestSchema,
  ResultsRequestSchema,
  ResultsResponseSchema,
  TraceQuerySchema,
} from './schemas.js';
import { toCsv, toNdjson } from './views.js';

const errors = { 401: ErrorSchema, 403: ErrorSchema, 404: ErrorSchema, 409: ErrorSchema, 422: ErrorSchema };

/** The pod evaluator's HTTP surface: pods, dispatch, results, replays, trace, leaderboard. */
export function registerPodRoutes(app: App, pods: PodService): void {
  app.post(
    '/api/v1/pods',
    {
      config: { access: 'operate' },
      schema: {
        tags: ['pods'],
        summary: 'Create a pod (200 with the existing pod for the same participants, seed and config)',
        body: PodCreateSchema,
        response: { 200: PodSchema, 201: PodSchema, ...errors },
      },
    },
    async (req, reply) => {
      const { created, pod } = await pods.create(req.body);
      return reply.status(created ? 201 : 200).send(pod);
    },
  );
  app.get(
    '/api/v1/pods',
    {
      config: { access: 'read' },
      schema: {
        tags: ['pods'],
        summary: 'List pods (filter by status, participant)',
        querystring: PodListQuerySchema,
        response: { 200: PodListSchema, ...errors },
      },
    },
    async (req) => pods.list(req.query),
  );
  app.get(
    '/api/v1/pods/:pod_id',
    {
      config: { access: 'read' },
      schema: {
        tags: ['pods'],
        summary: 'A pod: parameters, statistics, posterior, convergence and why',
        params: PodIdParams,
        response: { 200: PodSchema, ...errors },
      },
    },
    async (req) => pods.get(req.params.pod_id),
  );
  app.patch(
    '/api/v1/pods/:pod_id',
    {
      config: { access: 'operate' },
      schema: {
        tags: ['pods'],
        summary: 'Change the config (resets the pod)',
        params: PodIdParams,
        body: PodPatchSchema,
        response: { 200: PodSchema, ...errors },
      },
    },
    async (req) => pods.updateConfig(req.params.pod_id, req.body.config),
  );
  app.post(
    '/api/v1/pods/:pod_id/dispatch',
    {
      config: { access: 'operate' },
      schema: {
        tags: ['pods'],
        summary: 'Launch the next epoch (409 POD_CONVERGED, EPOCH_IN_FLIGHT, POD_ARCHIVED)',
        params: PodIdParams,
        response: { 201: DispatchResponseSchema, ...errors },
      },
    },
    async (req, reply) => reply.status(201).send(await pods.dispatch(req.params.pod_id)),
  );
  app.post(
    '/api/v1/pods/:pod_id/results',
    {
      config: { access: 'podResults' },
      schema: {
        tags: ['pods'],
        summary: 'Record games (idempotent by game_id; a bad game rejects the whole request)',
        params: PodIdParams,
        body: ResultsRequestSchema,
        response: { 200: ResultsResponseSchema, ...errors },
      },
    },
    async (req) => pods.recordResults(req.params.pod_id, req.body),
  );
  app.post(
    '/api/v1/pods/:pod_id/reset',
    {
      config: { access: 'operate' },
      schema: {
        tags: ['pods'],
        summary: 'Return the pod to ready, decaying old evidence',
        params: PodIdParams,
        body: ResetRequestSchema,
        response: { 200: PodSchema, ...errors },
      },
      preValidation: async (req) => {
        req.body ??= {};
      },
    },
    async (req) => pods.reset(req.params.pod_id, req.body?.reason ?? 'requested'),
  );
  app.post(
    '/api/v1/pods/:pod_id/archive',
    {
      config: { access: 'operate' },
      schema: {
        tags: ['pods'],
        summary: 'Archive the pod (final)',
        params: PodIdParams,
        response: { 200: PodSchema, ...errors },
      },
    },
    async (req) => pods.archive(req.params.pod_id),
  );
  app.get(
    '/api/v1/pods/:pod_id/epochs',
    {
      config: { access: 'read' },
      schema: {
        tags: ['pods'],
        summary: 'Epochs with their attempts and retry records',
        params: PodIdParams,
        response: { 200: Type.Object({ epochs: Type.Array(EpochSchema) }), ...errors },
      },
    },
    async (req) => ({ epochs: await pods.epochs(req.params.pod_id) }),
  );
  app.get(
    '/api/v1/pods/:pod_id/trace',
    {
      config: { access: 'read' },
      schema: {
        tags: ['pods'],
        summary: 'Training trace export (NDJSON or CSV)',
        params: PodIdParams,
        querystring: TraceQuerySchema,
      },
    },
    async (req, reply) => {
      const lines = await pods.exportTrace(req.params.pod_id);
      if (req.query.format === 'csv')
        return reply.header('content-type', 'text/csv; charset=utf-8').send(toCsv(lines));
      return reply.header('content-type', 'application/x-ndjson; charset=utf-8').send(toNdjson(lines));
    },
  );
  app.get(
    '/api/v1/replays',
    {
      config: { access: 'read' },
      schema: {
        tags: ['pods'],
        summary: 'Replay index: games by pod and participant',
        querystring: ReplayQuerySchema,
        response: { 200: ReplayListSchema, ...errors },
      },
    },
    async (req) => pods.replays(req.query),
  );
  app.get(
    '/api/v1/leaderboard',
    {
      config: { access: 'read' },
      schema: {
        tags: ['pods'],
        summary: 'League ratings across pods (Plackett-Luce)',
        querystring: LeaderboardQuerySchema,
        response: { 200: LeaderboardSchema, ...errors },
      },
    },
    async (req) => pods.leaderboard(req.query.limit),
  );
  app.put(
    '/api/v1/participants/:participant_id',
    {
      config: { access: 'operate' },
      schema: {
        tags: ['pods'],
        summary: "Set a participant's model version (a change resets its pods)",
        params: ParticipantIdParams,
        body: ParticipantUpdateSchema,
        response: { 200: ParticipantUpdateResponseSchema, ...errors },
      },
    },
    async (req) => pods.setModelVersion(req.params.participant_id, req.body.model_version),
  );
}
