import { type Static, Type } from '@sinclair/typebox';
import { StringEnum } from '../http/schema-helpers.js';
import { ResourcesSchema } from '../jobs/schemas.js';
import { EPOCH_STATUSES, POD_STATUSES } from './model.js';

/**
 * Wire schemas of the pods slice: validation, TypeScript types and OpenAPI from one declaration.
 */
const Id = Type.String({ minLength: 1, maxLength: 256, pattern: '^[^\\s,]+$' });
const StringMap = Type.Record(
  Type.String({ minLength: 1, maxLength: 256 }),
  Type.String({ maxLength: 65536 }),
);
const Timestamp = Type.Union([Type.String({ format: 'date-time' }), Type.Null()]);
const NullableString = Type.Union([Type.String(), Type.Null()]);
const NullableInt = Type.Union([Type.Integer(), Type.Null()]);

export const SimulationSchema = Type.Object(
  {
    command: Type.Array(Type.String({ maxLength: 65536 }), { minItems: 1, maxItems: 4096 }),
    env: Type.Optional(StringMap),
    cwd: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
    resources: Type.Optional(ResourcesSchema),
    labels: Type.Optional(StringMap),
  },
  { additionalProperties: false },
);

const configFields = {
  epoch_size: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
  confidence_target: Type.Optional(Type.Number({ exclusiveMinimum: 0.5, exclusiveMaximum: 1 })),
  precision: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 3 })),
  max_epochs_per_pod: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
  adaptive_scaling: Type.Optional(Type.Boolean()),
  prior: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1000 })),
  evidence_decay: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
  expire_after_s: Type.Optional(Type.Union([Type.Number({ exclusiveMinimum: 0 }), Type.Null()])),
  max_attempts: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
  retry_backoff_s: Type.Optional(Type.Number({ minimum: 0, maximum: 86_400 })),
  retry_backoff_max_s: Type.Optional(Type.Number({ minimum: 0, maximum: 86_400 })),
  simulation: Type.Optional(Type.Union([SimulationSchema, Type.Null()])),
};
export const PodConfigInputSchema = Type.Object(configFields, { additionalProperties: false });
export type PodConfigInput = Static<typeof PodConfigInputSchema>;

export const PodCreateSchema = Type.Object(
  {
    // Exactly four distinct ids; the count and distinctness are checked with clear codes in the model.
    participants: Type.Array(Id, { maxItems: 64 }),
    seed: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
    config: Type.Optional(PodConfigInputSchema),
  },
  { additionalProperties: false },
);
export type PodCreate = Static<typeof PodCreateSchema>;

export const PodPatchSchema = Type.Object({ config: PodConfigInputSchema }, { additionalProperties: false });

export const GameSchema = Type.Object(
  {
    game_id: Type.String({ minLength: 1, maxLength: 256 }),
    placements: Type.Record(
      Type.String({ minLength: 1, maxLength: 256 }),
      Type.Integer({ minimum: 1, maximum: 4 }),
    ),
    turns: Type.Optional(Type.Integer({ minimum: 0 })),
    replay: Type.Optional(Type.String({ maxLength: 4096 })),
  },
  { additionalProperties: false },
);
export const ResultsRequestSchema = Type.Object(
  {
    games: Type.Array(GameSchema, { minItems: 1, maxItems: 10_000 }),
    /** The epoch the games belong to (the simulation job's RUNPLANE_POD_EPOCH); default: the one in flight. */
    epoch: Type.Optional(Type.Integer({ minimum: 1 })),
  },
  { additionalProperties: false },
);
export type ResultsRequest = Static<typeof ResultsRequestSchema>;

export const ResultsResponseSchema = Type.Object({
  pod_id: Type.String(),
  accepted: Type.Integer(),
  duplicates: Type.Integer(),
  games_played: Type.Integer(),
  status: StringEnum(POD_STATUSES),
  converged: Type.Boolean(),
  confidence: Type.Number(),
});
export type ResultsResponse = Static<typeof ResultsResponseSchema>;

export const EpochSchema = Type.Object({
  epoch: Type.Integer(),
  size: Type.Integer(),
  status: StringEnum(EPOCH_STATUSES),
  attempt: Type.Integer(),
  job_id: NullableString,
  games_received: Type.Integer(),
  estimated_remaining: NullableInt,
  next_retry_at: Timestamp,
  last_error: NullableString,
  created_at: Timestamp,
  finished_at: Timestamp,
  updated_at: Timestamp,
});
export type EpochView = Static<typeof EpochSchema>;

const PosteriorSchema = Type.Object({
  participant: Type.String(),
  evidence: Type.Number(),
  placement_probabilities: Type.Array(Type.Number()),
  expected_placement: Type.Number(),
  sd: Type.Number(),
  interval: Type.Array(Type.Number()),
  interval_width: Type.Number(),
});

const AggregateSchema = Type.Object({
  participant: Type.String(),
  model_version: NullableString,
  games: Type.Integer(),
  placement_counts: Type.Array(Type.Integer()),
  mean_placement: Type.Union([Type.Number(), Type.Null()]),
  win_rate: Type.Union([Type.Number(), Type.Null()]),
  mean_turns: Type.Union([Type.Number(), Type.Null()]),
});

export const PodSchema = Type.Object({
  pod_id: Type.String(),
  status: StringEnum(POD_STATUSES),
  stop_reason: NullableString,
  participants: Type.Array(Type.String()),
  seed: Type.Integer(),
  config: Type.Unknown(),
  spec_hash: Type.String(),
  statistics: Type.Object({
    epochs_dispatched: Type.Integer(),
    epochs_since_reset: Type.Integer(),
    last_epoch_size: NullableInt,
    games_played: Type.Integer(),
    games_since_reset: Type.Integer(),
    duplicate_games: Type.Integer(),
    failed_epochs: Type.Integer(),
    reset_count: Type.Integer(),
  }),
  current_epoch: Type.Union([EpochSchema, Type.Null()]),
  convergence: Type.Object({
    converged: Type.Boolean(),
    confidence: Type.Number(),
    confidence_target: Type.Number(),
    precision: Type.Number(),
    method: NullableString,
    ranking: Type.Array(Type.String()),
    ranking_confidence: Type.Number(),
    precision_confidence: Type.Number(),
    reasons: Type.Array(Type.String()),
  }),
  posterior: Type.Array(PosteriorSchema),
  aggregation: Type.Array(AggregateSchema),
  last_error: NullableString,
  created_at: Timestamp,
  updated_at: Timestamp,
  converged_at: Timestamp,
  expires_at: Timestamp,
  last_reset_at: Timestamp,
  archived_at: Timestamp,
});
export type PodView = Static<typeof PodSchema>;

export const PodIdParams = Type.Object({ pod_id: Type.String({ minLength: 1, maxLength: 128 }) });

export const PodListQuerySchema = Type.Object(
  {
    status: Type.Optional(StringEnum(POD_STATUSES)),
    participant: Type.Optional(Type.String({ minLength: 1 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
    cursor: Type.Optional(Type.String({ pattern: '^[0-9]+$' })),
  },
  { additionalProperties: false },
);
export type PodListQuery = Static<typeof PodListQuerySchema>;

export const PodListSchema = Type.Object({ pods: Type.Array(PodSchema), next_cursor: NullableString });

export const DispatchResponseSchema = Type.Object({
  pod_id: Type.String(),
  epoch: Type.Integer(),
  size: Type.Integer(),
  attempt: Type.Integer(),
  job_id: NullableString,
  estimated_remaining: NullableInt,
});
export type DispatchResponse = Static<typeof DispatchResponseSchema>;

export const ResetRequestSchema = Type.Object(
  { reason: Type.Optional(Type.String({ minLength: 1, maxLength: 1024 })) },
  { additionalProperties: false },
);

export const ReplayQuerySchema = Type.Object(
  {
    pod_id: Type.Optional(Type.String({ minLength: 1 })),
    participant: Type.Optional(Type.String({ minLength: 1 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
    cursor: Type.Optional(Type.String({ pattern: '^[0-9]+$' })),
  },
  { additionalProperties: false },
);
export type ReplayQuery = Static<typeof ReplayQuerySchema>;

export const ReplaySchema = Type.Object({
  pod_id: Type.String(),
  game_id: Type.String(),
  epoch: NullableInt,
  placements: Type.Record(Type.String(), Type.Integer()),
  turns: NullableInt,
  replay: NullableString,
  recorded_at: Timestamp,
});
export type ReplayView = Static<typeof ReplaySchema>;
export const ReplayListSchema = Type.Object({ games: Type.Array(ReplaySchema), next_cursor: NullableString });

export const TraceQuerySchema = Type.Object(
  { format: Type.Optional(StringEnum(['ndjson', 'csv'] as const)) },
  { additionalProperties: false },
);

export const LeaderboardQuerySchema = Type.Object(
  { limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })) },
  { additionalProperties: false },
);
export const LeaderboardEntrySchema = Type.Object({
  rank: Type.Integer(),
  participant: Type.String(),
  model_version: NullableString,
  mu: Type.Number(),
  sigma: Type.Number(),
  ordinal: Type.Number(),
  games: Type.Integer(),
});
export type LeaderboardEntry = Static<typeof LeaderboardEntrySchema>;
export const LeaderboardSchema = Type.Object({
  model: Type.String(),
  participants: Type.Array(LeaderboardEntrySchema),
});
export type Leaderboard = Static<typeof LeaderboardSchema>;

export const ParticipantIdParams = Type.Object({ participant_id: Id });
export const ParticipantUpdateSchema = Type.Object(
  { model_version: Type.String({ minLength: 1, maxLength: 256 }) },
  { additionalProperties: false },
);
export const ParticipantUpdateResponseSchema = Type.Object({
  participant: Type.String(),
  model_version: NullableString,
  previous_version: NullableString,
  reset_pods: Type.Array(Type.String()),
});
export type ParticipantUpdateResponse = Static<typeof ParticipantUpdateResponseSchema>;
