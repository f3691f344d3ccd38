import { type Static, Type } from '@sinclair/typebox';
import { StringEnum } from '../http/schema-helpers.js';
import { DEAD_LETTER_STATUSES } from './dlq-model.js';
import { EVENT_ID_PATTERN } from './external.js';

/** Wire schemas of the events slice: publishing, the catalog, the dead-letter queue. */
const Timestamp = Type.Union([Type.String({ format: 'date-time' }), Type.Null()]);

export const PublishEventSchema = Type.Object(
  {
    type: Type.String({
      minLength: 1,
      maxLength: 200,
      description:
        'a publishable catalog type (pipeline.training.completed) or its seed name (TRAINING_COMPLETED)',
    }),
    entity_id: Type.Optional(
      Type.String({ minLength: 1, maxLength: 256, description: 'defaults to the payload config_key' }),
    ),
    payload: Type.Unknown({ description: 'validated against the type’s schema (GET /api/v1/events/types)' }),
    id: Type.Optional(
      Type.String({
        pattern: EVENT_ID_PATTERN,
        description: 'the producer’s id: publishing it again is recognised as a duplicate',
      }),
    ),
  },
  { additionalProperties: false },
);
export type PublishEventRequest = Static<typeof PublishEventSchema>;

export const PublishedEventSchema = Type.Object({
  event_id: Type.String(),
  type: Type.String(),
  entity_id: Type.String(),
  duplicate: Type.Boolean(),
  duplicate_of: Type.Union([StringEnum(['id', 'content'] as const), Type.Null()]),
});
export type PublishedEvent = Static<typeof PublishedEventSchema>;

export const EventTypesSchema = Type.Object({
  types: Type.Array(
    Type.Object({
      type: Type.String(),
      seed_name: Type.Union([Type.String(), Type.Null()]),
      schema: Type.Unknown(),
    }),
  ),
});
export type EventTypesWire = Static<typeof EventTypesSchema>;

export const DeadLetterStatusSchema = StringEnum(DEAD_LETTER_STATUSES);

export const DeadLetterSchema = Type.Object({
  id: Type.String(),
  subscriber: Type.String(),
  status: DeadLetterStatusSchema,
  event_id: Type.String(),
  event_seq: Type.Union([Type.Integer(), Type.Null()]),
  event_type: Type.String(),
  event: Type.Unknown(),
  error: Type.String(),
  stack: Type.Union([Type.String(), Type.Null()]),
  attempts: Type.Integer(),
  retry_count: Type.Integer(),
  next_retry_at: Timestamp,
  created_at: Timestamp,
  updated_at: Timestamp,
  last_failed_at: Timestamp,
  resolved_at: Timestamp,
});
export type DeadLetterWire = Static<typeof DeadLetterSchema>;

export const DeadLetterListQuerySchema = Type.Object(
  {
    status: Type.Optional(DeadLetterStatusSchema),
    subscriber: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
    cursor: Type.Optional(Type.String({ pattern: '^[0-9]+$' })),
  },
  { additionalProperties: false },
);
export type DeadLetterListQuery = Static<typeof DeadLetterListQuerySchema>;

export const DeadLetterListSchema = Type.Object({
  dead_letters: Type.Array(DeadLetterSchema),
  next_cursor: Type.Union([Type.String(), Type.Null()]),
});

const Counts = Type.Object({ pending: Type.Integer(), recovered: Type.Integer(), abandoned: Type.Integer() });
export const DeadLetterStatsSchema = Type.Object({
  pending: Type.Integer(),
  recovered: Type.Integer(),
  abandoned: Type.Integer(),
  by_subscriber: Type.Record(Type.String(), Counts),
});
export type DeadLetterStatsWire = Static<typeof DeadLetterStatsSchema>;

export const DeadLetterIdParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128 }) });
