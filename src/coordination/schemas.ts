import { Type } from '@sinclair/typebox';
import { StringEnum } from '../http/schema-helpers.js';
import { MODEL_STATES } from './model-lifecycle.js';

/** Wire schemas of the coordination slice (pipelines, models, limits, queues). */
const Timestamp = Type.Union([Type.String({ format: 'date-time' }), Type.Null()]);
const NullableString = Type.Union([Type.String(), Type.Null()]);
const FreeObject = Type.Record(Type.String(), Type.Unknown());
const ConfigKey = Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]*$' });

export const PipelineCreateSchema = Type.Record(Type.String(), Type.Unknown(), {
  description: 'the pipeline file as a JSON object, or {"content": "<the file text, YAML or JSON>"}',
});

export const ConfigParams = Type.Object({ config: ConfigKey });
export const StopBodySchema = Type.Object(
  { reason: Type.Optional(Type.String({ maxLength: 1024 })) },
  { additionalProperties: false },
);

export const StageAttemptSchema = Type.Object({
  stage: Type.String(),
  attempt: Type.Integer(),
  status: Type.String(),
  job_id: NullableString,
  event_id: NullableString,
  result: Type.Union([FreeObject, Type.Null()]),
  error: NullableString,
  blocked_reason: NullableString,
  quarantine: Type.Union([Type.Array(Type.Unknown()), Type.Null()]),
  created_at: Timestamp,
  finished_at: Timestamp,
});

export const PipelineSchema = Type.Object({
  pipeline_id: Type.String(),
  config_key: Type.String(),
  status: Type.String({ description: 'running, breaker_open, completed or stopped' }),
  stage: Type.String({
    description: 'IDLE, SELFPLAY, DATA_SYNC, NPZ_EXPORT, TRAINING, EVALUATION, PROMOTION or COMPLETE',
  }),
  attempt: Type.Integer(),
  work_dir: Type.String(),
  breaker: Type.Object({
    state: Type.String(),
    consecutive_failures: Type.Integer(),
    opened_at: Timestamp,
    failure_threshold: Type.Integer(),
    cooldown_s: Type.Number(),
  }),
  last_error: NullableString,
  stages: Type.Array(Type.String()),
  outputs: FreeObject,
  attempts: Type.Array(StageAttemptSchema),
  created_at: Timestamp,
  updated_at: Timestamp,
  finished_at: Timestamp,
});
export const PipelineListSchema = Type.Object({ pipelines: Type.Array(PipelineSchema) });

export const ModelSchema = Type.Object({
  model_id: Type.String(),
  config_key: Type.String(),
  path: NullableString,
  state: StringEnum(MODEL_STATES),
  metrics: Type.Record(Type.String(), Type.Number()),
  previous_model_id: NullableString,
  pipeline_id: NullableString,
  reason: NullableString,
  created_at: Timestamp,
  updated_at: Timestamp,
  promoted_at: Timestamp,
});
export const ModelListSchema = Type.Object({ models: Type.Array(ModelSchema) });
export const ModelListQuerySchema = Type.Object({
  config: Type.Optional(ConfigKey),
  state: Type.Optional(StringEnum(MODEL_STATES)),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
});
export const ProductionQuerySchema = Type.Object({ config: ConfigKey });
export const ModelIdParams = Type.Object({ model_id: Type.String({ minLength: 1, maxLength: 128 }) });
export const ModelRegisterSchema = Type.Object(
  {
    config_key: ConfigKey,
    model_id: Type.Optional(
      Type.String({ minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]*$' }),
    ),
    path: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
    state: Type.Optional(StringEnum(['training', 'evaluating', 'staging', 'archived'] as const)),
    metrics: Type.Optional(Type.Record(Type.String({ minLength: 1, maxLength: 128 }), Type.Number())),
    pipeline_id: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  },
  { additionalProperties: false },
);
export const ReasonBodySchema = Type.Object(
  { reason: Type.Optional(Type.String({ maxLength: 1024 })) },
  { additionalProperties: false },
);
export const RollbackResultSchema = Type.Object({ rolled_back: ModelSchema, production: ModelSchema });

export const SpawnQuerySchema = Type.Object({
  task_type: Type.String({ minLength: 1, maxLength: 64 }),
  node: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
});
export const SpawnDecisionSchema = Type.Object({
  allowed: Type.Boolean(),
  reason: Type.String(),
  retry_after_ms: Type.Optional(Type.Number()),
});
export const QueueReadingSchema = Type.Object({
  queue: Type.String(),
  depth: Type.Number(),
  soft: Type.Number(),
  hard: Type.Number(),
  level: Type.String(),
  level_index: Type.Integer(),
  throttle: Type.Number(),
});
export const QueuesSchema = Type.Object({
  status: Type.String(),
  issues: Type.Array(Type.String()),
  queues: Type.Array(QueueReadingSchema),
});

const TaskTypeLimitsSchema = Type.Object({
  rate_per_sec: Type.Number({ description: 'token bucket: starts per second' }),
  burst: Type.Number({ description: 'token bucket: starts at once' }),
  max_cluster: Type.Union([Type.Integer(), Type.Null()], {
    description: 'tasks of the type waiting or running across the cluster (null: no limit)',
  }),
  max_per_node: Type.Union([Type.Integer(), Type.Null()], {
    description: 'tasks of the type on one node (null: no limit)',
  }),
});
const QueueLimitsSchema = Type.Object({ soft: Type.Number(), hard: Type.Number() });
export const LimitsSchema = Type.Object({
  defaults: TaskTypeLimitsSchema,
  types: Type.Record(Type.String(), TaskTypeLimitsSchema, {
    description: 'every task type the task-limits file names, merged with the defaults',
  }),
  thresholds: Type.Object(
    { disk_pct: Type.Number(), memory_pct: Type.Number(), cpu_pct: Type.Number() },
    { description: 'node usage in percent above which can_spawn refuses (0: not checked)' },
  ),
  queues: Type.Record(Type.String(), QueueLimitsSchema),
});
