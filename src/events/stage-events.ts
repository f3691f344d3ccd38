import { type Static, type TSchema, Type } from '@sinclair/typebox';

/**
 * Pipeline stage events (pure): the seed's SELFPLAY_COMPLETE → DATA_SYNC_COMPLETED →
 * NPZ_EXPORT_COMPLETE → TRAINING_COMPLETED → EVALUATION_COMPLETED → MODEL_PROMOTED chain, and a
 * failure event per stage, with their payload schemas. The schemas validate what external
 * producers publish (HTTP and NATS) and give the catalog its payload types.
 *
 * Types are subjects, so `pipeline.*.completed` matches every stage's completion and
 * `pipeline.training.>` everything about training. The promotion stage completes with
 * `model.promoted`: the model lifecycle reacts to it as much as the pipeline does.
 */
export const PIPELINE_STAGES = [
  'selfplay',
  'data_sync',
  'npz_export',
  'training',
  'evaluation',
  'promotion',
] as const;
export type PipelineStage = (typeof PIPELINE_STAGES)[number];

export const STAGE_EVENTS = {
  selfplay: { completed: 'pipeline.selfplay.completed', failed: 'pipeline.selfplay.failed' },
  data_sync: { completed: 'pipeline.data_sync.completed', failed: 'pipeline.data_sync.failed' },
  npz_export: { completed: 'pipeline.npz_export.completed', failed: 'pipeline.npz_export.failed' },
  training: { completed: 'pipeline.training.completed', failed: 'pipeline.training.failed' },
  evaluation: { completed: 'pipeline.evaluation.completed', failed: 'pipeline.evaluation.failed' },
  promotion: { completed: 'model.promoted', failed: 'pipeline.promotion.failed' },
} as const satisfies Record<PipelineStage, { completed: string; failed: string }>;

/** The seed's event names, accepted from external producers as aliases of the types. */
export const SEED_EVENT_NAMES = {
  SELFPLAY_COMPLETE: STAGE_EVENTS.selfplay.completed,
  SELFPLAY_FAILED: STAGE_EVENTS.selfplay.failed,
  DATA_SYNC_COMPLETED: STAGE_EVENTS.data_sync.completed,
  DATA_SYNC_FAILED: STAGE_EVENTS.data_sync.failed,
  NPZ_EXPORT_COMPLETE: STAGE_EVENTS.npz_export.completed,
  NPZ_EXPORT_FAILED: STAGE_EVENTS.npz_export.failed,
  TRAINING_COMPLETED: STAGE_EVENTS.training.completed,
  TRAINING_FAILED: STAGE_EVENTS.training.failed,
  EVALUATION_COMPLETED: STAGE_EVENTS.evaluation.completed,
  EVALUATION_FAILED: STAGE_EVENTS.evaluation.failed,
  MODEL_PROMOTED: STAGE_EVENTS.promotion.completed,
  PROMOTION_FAILED: STAGE_EVENTS.promotion.failed,
} as const;

const Id = Type.String({ minLength: 1, maxLength: 128 });
const Path = Type.String({ minLength: 1, maxLength: 4096 });
const Count = Type.Integer({ minimum: 0 });
const Metrics = Type.Record(Type.String({ minLength: 1, maxLength: 128 }), Type.Number(), {
  description: 'metric name to value',
});

/** A file a stage produced; with a checksum, the next stage verifies it before it starts. */
export const StageOutputSchema = Type.Object(
  {
    path: Path,
    sha256: Type.Optional(Type.String({ pattern: '^[a-f0-9]{64}$' })),
    bytes: Type.Optional(Count),
  },
  { additionalProperties: false },
);

/** Fields every stage event carries. Unknown fields are refused: extras go in `metadata`. */
const common = {
  config_key: Type.String({
    minLength: 1,
    maxLength: 128,
    pattern: '^[A-Za-z0-9][A-Za-z0-9_.:-]*$',
    description: 'the pipeline configuration, e.g. hex8_2p',
  }),
  pipeline_id: Type.Optional(Id),
  job_id: Type.Optional(Id),
  run_id: Type.Optional(Id),
  node: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
  duration_s: Type.Optional(Type.Number({ minimum: 0 })),
  outputs: Type.Optional(Type.Array(StageOutputSchema, { maxItems: 10_000 })),
  metadata: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
};

const completed = <P extends Record<string, TSchema>>(props: P, description: string) =>
  Type.Object({ ...common, ...props }, { additionalProperties: false, description });

export const SelfplayCompletedSchema = completed(
  { games_generated: Count, db_path: Type.Optional(Path), samples: Type.Optional(Count) },
  'SELFPLAY_COMPLETE: a selfplay batch finished',
);
export const DataSyncCompletedSchema = completed(
  {
    files_synced: Type.Optional(Count),
    bytes_transferred: Type.Optional(Count),
    source: Type.Optional(Type.String({ maxLength: 4096 })),
    destination: Type.Optional(Type.String({ maxLength: 4096 })),
  },
  'DATA_SYNC_COMPLETED: game data reached the training host',
);
export const NpzExportCompletedSchema = completed(
  { npz_path: Path, samples: Type.Optional(Count) },
  'NPZ_EXPORT_COMPLETE: training samples exported',
);
export const TrainingCompletedSchema = completed(
  {
    model_path: Path,
    model_id: Type.Optional(Id),
    epochs: Type.Optional(Count),
    metrics: Type.Optional(Metrics),
  },
  'TRAINING_COMPLETED: a model was trained',
);
export const EvaluationCompletedSchema = completed(
  {
    model_id: Type.Optional(Id),
    model_path: Type.Optional(Path),
    win_rate: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    elo: Type.Optional(Type.Number()),
    passed: Type.Optional(Type.Boolean()),
    metrics: Type.Optional(Metrics),
  },
  'EVALUATION_COMPLETED: a model was evaluated',
);
export const ModelPromotedSchema = completed(
  {
    model_id: Id,
    model_path: Type.Optional(Path),
    previous_model_id: Type.Optional(Type.Union([Id, Type.Null()])),
    reason: Type.Optional(Type.String({ maxLength: 1024 })),
    metrics: Type.Optional(Metrics),
  },
  'MODEL_PROMOTED: a model became the production model of its config',
);
export const StageFailedSchema = completed(
  {
    error: Type.String({ minLength: 1, maxLength: 8192 }),
    retryable: Type.Optional(Type.Boolean()),
    attempt: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  'a pipeline stage failed',
);

export const STAGE_EVENT_SCHEMAS = {
  'pipeline.selfplay.completed': SelfplayCompletedSchema,
  'pipeline.selfplay.failed': StageFailedSchema,
  'pipeline.data_sync.completed': DataSyncCompletedSchema,
  'pipeline.data_sync.failed': StageFailedSchema,
  'pipeline.npz_export.completed': NpzExportCompletedSchema,
  'pipeline.npz_export.failed': StageFailedSchema,
  'pipeline.training.completed': TrainingCompletedSchema,
  'pipeline.training.failed': StageFailedSchema,
  'pipeline.evaluation.completed': EvaluationCompletedSchema,
  'pipeline.evaluation.failed': StageFailedSchema,
  'model.promoted': ModelPromotedSchema,
  'pipeline.promotion.failed': StageFailedSchema,
} as const;

/** Payload types of the stage events, for the catalog. */
export type StageEventPayloads = {
  [K in keyof typeof STAGE_EVENT_SCHEMAS]: Static<(typeof STAGE_EVENT_SCHEMAS)[K]>;
};
export type StageEventType = keyof StageEventPayloads;
export type StageFailedPayload = Static<typeof StageFailedSchema>;

/** The event type of a stage's result. */
export function stageEventType(stage: PipelineStage, success: boolean): StageEventType {
  return success ? STAGE_EVENTS[stage].completed : STAGE_EVENTS[stage].failed;
}
