import { type Static, Type } from '@sinclair/typebox';
import { StringEnum } from '../http/schema-helpers.js';
import { COMMAND_TYPES, FINISH_STATUSES, HEARTBEAT_STATUSES, RUN_HEALTHS, RUN_STATUSES } from './model.js';

/**
 * Wire schemas of the runs slice: validation, TypeScript types and OpenAPI from one place.
 * The heartbeat and command envelopes follow the orchestrator seed field by field.
 */
const Timestamp = Type.Union([Type.String({ format: 'date-time' }), Type.Null()]);
const NullableNumber = Type.Union([Type.Number(), Type.Null()]);
const NullableString = Type.Union([Type.String(), Type.Null()]);
const Labels = Type.Record(Type.String({ minLength: 1, maxLength: 256 }), Type.String({ maxLength: 4096 }));

export const RunIdParams = Type.Object({ run_id: Type.String({ minLength: 1, maxLength: 128 }) });
export const CommandIdParams = Type.Object({
  run_id: Type.String({ minLength: 1, maxLength: 128 }),
  command_id: Type.String({ minLength: 1, maxLength: 128 }),
});

export const RunCreateSchema = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
    config: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    labels: Type.Optional(Labels),
    job_id: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    sweep_id: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  },
  { additionalProperties: false },
);
export type RunCreate = Static<typeof RunCreateSchema>;

export const RunSchema = Type.Object({
  run_id: Type.String(),
  name: NullableString,
  config: Type.Record(Type.String(), Type.Unknown()),
  labels: Type.Record(Type.String(), Type.String()),
  job_id: NullableString,
  sweep_id: NullableString,
  status: StringEnum(RUN_STATUSES),
  health: StringEnum(RUN_HEALTHS),
  step: Type.Union([Type.Integer(), Type.Null()]),
  samples_per_sec: NullableNumber,
  loss: NullableNumber,
  checkpoint_version: Type.Union([Type.Integer(), Type.Null()]),
  last_error: NullableString,
  notes: NullableString,
  queued_commands: Type.Union([Type.Array(Type.String()), Type.Null()]),
  summary: Type.Record(Type.String(), Type.Number()),
  last_heartbeat_at: Timestamp,
  liveness_extension_s: Type.Number(),
  heartbeat_interval_s: Type.Number(),
  created_at: Timestamp,
  updated_at: Timestamp,
  ended_at: Timestamp,
});
export type RunView = Static<typeof RunSchema>;

export const RunCreatedSchema = Type.Object({ run_id: Type.String(), token: Type.String(), run: RunSchema });

export const RunListQuerySchema = Type.Object(
  {
    status: Type.Optional(StringEnum(RUN_STATUSES)),
    health: Type.Optional(StringEnum(RUN_HEALTHS)),
    label: Type.Optional(
      Type.Union([
        Type.String({ pattern: '^[^=]+=.*$' }),
        Type.Array(Type.String({ pattern: '^[^=]+=.*$' }), { maxItems: 16 }),
      ]),
    ),
    sweep: Type.Optional(Type.String({ minLength: 1 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
    cursor: Type.Optional(Type.String({ pattern: '^[0-9]+$' })),
  },
  { additionalProperties: false },
);
export type RunListQuery = Static<typeof RunListQuerySchema>;
export const RunListSchema = Type.Object({ runs: Type.Array(RunSchema), next_cursor: NullableString });

/** The seed's heartbeat table. Extra fields are refused, so a misspelt field is not lost. */
export const HeartbeatSchema = Type.Object(
  {
    run_id: Type.String({ minLength: 1, maxLength: 128 }),
    status: StringEnum(HEARTBEAT_STATUSES),
    step: Type.Integer({ minimum: 0 }),
    samples_per_sec: Type.Number({ minimum: 0 }),
    loss: Type.Number(),
    checkpoint_version: Type.Integer({ minimum: 0 }),
    queued_commands: Type.Optional(Type.Array(Type.String({ maxLength: 128 }), { maxItems: 1000 })),
    notes: Type.Optional(Type.String({ maxLength: 16384 })),
  },
  { additionalProperties: false },
);
export type Heartbeat = Static<typeof HeartbeatSchema>;

export const HeartbeatAcceptedSchema = Type.Object({
  accepted: Type.Boolean(),
  run: Type.Object({ status: StringEnum(RUN_STATUSES), health: StringEnum(RUN_HEALTHS) }),
  next_heartbeat_s: Type.Number(),
  /** Queued command ids the orchestrator does not know or has seen acknowledged. */
  unknown_commands: Type.Array(Type.String()),
});
export type HeartbeatAccepted = Static<typeof HeartbeatAcceptedSchema>;

const MetricName = Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9_./:-]+$' });
export const MetricsPostSchema = Type.Object(
  {
    step: Type.Integer({ minimum: 0 }),
    values: Type.Record(MetricName, Type.Number(), { minProperties: 1, maxProperties: 256 }),
  },
  { additionalProperties: false },
);
export type MetricsPost = Static<typeof MetricsPostSchema>;

export const MetricsQuerySchema = Type.Object(
  {
    names: Type.Optional(Type.String({ minLength: 1 })),
    from_step: Type.Optional(Type.Integer({ minimum: 0 })),
    to_step: Type.Optional(Type.Integer({ minimum: 0 })),
    max_points: Type.Optional(Type.Integer({ minimum: 2, maximum: 100000 })),
  },
  { additionalProperties: false },
);
export type MetricsQuery = Static<typeof MetricsQuerySchema>;

const MetricPoint = Type.Object({ step: Type.Integer(), value: Type.Number(), recorded_at: Type.String() });
export const MetricsSchema = Type.Object({
  run_id: Type.String(),
  series: Type.Record(Type.String(), Type.Array(MetricPoint)),
  downsampled: Type.Boolean(),
});
export type MetricsView = Static<typeof MetricsSchema>;

export const FinishSchema = Type.Object(
  {
    status: StringEnum(FINISH_STATUSES),
    error: Type.Optional(Type.String({ maxLength: 16384 })),
  },
  { additionalProperties: false },
);
export type Finish = Static<typeof FinishSchema>;

export const LivenessSchema = Type.Object(
  {
    extend_s: Type.Number({ exclusiveMinimum: 0, maximum: 7 * 24 * 3600 }),
    reason: Type.String({ minLength: 1, maxLength: 1024 }),
  },
  { additionalProperties: false },
);
export type LivenessExtend = Static<typeof LivenessSchema>;

/**
 * The command envelope. Only its outer shape is checked here; per-type payload rules (tune
 * ranges, terminate reason) are checked by the service so every violation gets its own code.
 */
export const CommandEnvelopeSchema = Type.Object(
  {
    id: Type.String({
      pattern: '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-4[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$',
      description: 'a UUID v4, chosen by the sender; a repeated id returns the stored command',
    }),
    type: StringEnum(COMMAND_TYPES),
    issued_at: Type.String({ format: 'date-time' }),
    actor: Type.Object(
      {
        type: StringEnum(['operator', 'system'] as const),
        id: Type.String({ minLength: 1, maxLength: 256 }),
      },
      { additionalProperties: false },
    ),
    payload: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { additionalProperties: false },
);
export type CommandEnvelope = Static<typeof CommandEnvelopeSchema>;

export const CommandSchema = Type.Object({
  id: Type.String(),
  run_id: Type.String(),
  type: StringEnum(COMMAND_TYPES),
  payload: Type.Record(Type.String(), Type.Unknown()),
  issued_at: Timestamp,
  actor: Type.Object({ type: Type.String(), id: Type.String() }),
  created_at: Timestamp,
  delivered_at: Timestamp,
  acknowledged_at: Timestamp,
  delivery_count: Type.Integer(),
});
export type CommandView = Static<typeof CommandSchema>;

export const CommandListSchema = Type.Object({ commands: Type.Array(CommandSchema) });
export const NextCommandQuerySchema = Type.Object(
  { wait: Type.Optional(Type.Number({ minimum: 0, maximum: 60 })) },
  { additionalProperties: false },
);
