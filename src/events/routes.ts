import type { App } from '../http/app.js';
import { ErrorSchema } from '../http/schema-helpers.js';
import type { DeadLetterQueue } from './dlq-service.js';
import { publishableTypes } from './external.js';
import type { EventRouter } from './router.js';
import {
  DeadLetterIdParams,
  DeadLetterListQuerySchema,
  DeadLetterListSchema,
  DeadLetterSchema,
  DeadLetterStatsSchema,
  EventTypesSchema,
  PublishEventSchema,
  PublishedEventSchema,
} from './schemas.js';

const errors = { 401: ErrorSchema, 403: ErrorSchema, 404: ErrorSchema, 409: ErrorSchema, 422: ErrorSchema };

/** HTTP surface of the events slice: external producers and the dead-letter queue. */
export function registerEventRoutes(app: App, s: { router: EventRouter; dlq: DeadLetterQueue }): void {
  app.post(
    '/api/v1/events',
    {
      config: { access: 'operate' },
      schema: {
        tags: ['events'],
        summary: 'Publish an event (pipeline stage results) into the event log',
        description:
          'Validated against the catalog. 201 for a new event; 200 with duplicate=true when the id, or the same content within the dedup window, was already published.',
        body: PublishEventSchema,
        response: { 200: PublishedEventSchema, 201: PublishedEventSchema, ...errors },
      },
    },
    async (req, reply) => {
      const r = await s.router.publish(req.body);
      return reply.status(r.duplicate ? 200 : 201).send(r);
    },
  );
  app.get(
    '/api/v1/events/types',
    {
      config: { access: 'read' },
      schema: {
        tags: ['events'],
        summary: 'Event types external producers may publish, with their payload schemas',
        response: { 200: EventTypesSchema, ...errors },
      },
    },
    async () => ({ types: publishableTypes() }),
  );

  app.get(
    '/api/v1/dlq',
    {
      config: { access: 'read' },
      schema: {
        tags: ['dlq'],
        summary: 'Dead letters, newest first',
        querystring: DeadLetterListQuerySchema,
        response: { 200: DeadLetterListSchema, ...errors },
      },
    },
    async (req) => s.dlq.list(req.query),
  );
  app.get(
    '/api/v1/dlq/stats',
    {
      config: { access: 'read' },
      schema: {
        tags: ['dlq'],
        summary: 'Dead letters by status (pending, recovered, abandoned), in total and per subscriber',
        response: { 200: DeadLetterStatsSchema, ...errors },
      },
    },
    async () => s.dlq.stats(),
  );
  app.get(
    '/api/v1/dlq/:id',
    {
      config: { access: 'read' },
      schema: {
        tags: ['dlq'],
        summary: 'One dead letter with its event, error and stack',
        params: DeadLetterIdParams,
        response: { 200: DeadLetterSchema, ...errors },
      },
    },
    async (req) => s.dlq.get(req.params.id),
  );
  app.post(
    '/api/v1/dlq/:id/retry',
    {
      config: { access: 'operate' },
      schema: {
        tags: ['dlq'],
        summary: 'Run a dead letter’s handler again now',
        params: DeadLetterIdParams,
        response: { 200: DeadLetterSchema, ...errors },
      },
    },
    async (req) => s.dlq.retry(req.params.id),
  );
}
