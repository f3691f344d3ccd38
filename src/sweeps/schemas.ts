import { type Static, Type } from '@sinclair/typebox';
import { StringEnum } from '../http/schema-helpers.js';
import { SWEEP_STATUSES, TRIAL_STATUSES } from './model.js';

/**
 * Wire schemas of the sweeps slice. The sweep file itself is validated by sweep-file.ts (its
 * field errors name the file's own paths), so the create body is an open object here.
 */
const Timestamp = Type.Union([Type.String({ format: 'date-time' }), Type.Null()]);
const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Union([t, Type.Null()]);
const ParamsSchema = Type.Record(Type.String(), Type.Union([Type.String(), Type.Number(), Type.Boolean()]));

export const SweepCreateSchema = Type.Record(Type.String(), Type.Unknown(), {
  description: 'the sweep file (YAML or JSON) as a JSON object',
});

export const SweepIdParams = Type.Object({ sweep_id: Type.String({ minLength: 1, maxLength: 128 }) });

export const TrialSchema = Type.Object({
  sweep_id: Type.String(),
  number: Type.Integer(),
  status: StringEnum(TRIAL_STATUSES),
  params: ParamsSchema,
  values: Nullable(Type.Array(Type.Number())),
  run_id: Type.String(),
  attempt: Type.Integer(),
  origin: Type.String(),
  parent_number: Nullable(Type.Integer()),
  member: Nullable(Type.Integer()),
  bracket: Nullable(Type.Integer()),
  start_step: Type.Integer(),
  rungs: Type.Record(Type.String(), Type.Number()),
  train_job: Nullable(Type.String()),
  train_state: Nullable(Type.String()),
  eval_job: Nullable(Type.String()),
  eval_state: Nullable(Type.String()),
  end_reason: Nullable(Type.String()),
  error: Nullable(Type.String()),
  /** can_spawn refused the trial's next job: it waits and is tried again on a later round. */
  launch_blocked: Nullable(Type.Object({ reason: Type.String(), at: Type.String({ format: 'date-time' }) })),
  cost: Nullable(Type.Number()),
  created_at: Timestamp,
  updated_at: Timestamp,
  ended_at: Timestamp,
});
export type TrialWire = Static<typeof TrialSchema>;

export const SweepSchema = Type.Object({
  sweep_id: Type.String(),
  name: Type.String(),
  status: StringEnum(SWEEP_STATUSES),
  status_reason: Nullable(Type.String()),
  objectives: Type.Array(
    Type.Object({ metric: Type.String(), direction: Type.String(), aggregate: Type.String() }),
  ),
  optimizer: Type.String(),
  scheduler: Type.String(),
  dispatcher: Type.String(),
  max_trials: Nullable(Type.Integer()),
  max_parallel_jobs: Type.Integer(),
  trial_count: Type.Integer(),
  counts: Type.Record(Type.String(), Type.Integer()),
  best: Nullable(
    Type.Object({
      number: Type.Integer(),
      value: Type.Number(),
      params: ParamsSchema,
      run_id: Type.String(),
    }),
  ),
  spec: Type.Record(Type.String(), Type.Unknown()),
  last_error: Nullable(Type.String()),
  created_at: Timestamp,
  updated_at: Timestamp,
  finished_at: Timestamp,
});
export type SweepWire = Static<typeof SweepSchema>;

export const SweepListQuerySchema = Type.Object(
  {
    status: Type.Optional(StringEnum(SWEEP_STATUSES)),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
    cursor: Type.Optional(Type.String({ pattern: '^[0-9]+$' })),
  },
  { additionalProperties: false },
);
export type SweepListQuery = Static<typeof SweepListQuerySchema>;

export const SweepListSchema = Type.Object({
  sweeps: Type.Array(SweepSchema),
  next_cursor: Nullable(Type.String()),
});

export const TrialListQuerySchema = Type.Object(
  { status: Type.Optional(StringEnum(TRIAL_STATUSES)) },
  { additionalProperties: false },
);
export const TrialListSchema = Type.Object({ sweep_id: Type.String(), trials: Type.Array(TrialSchema) });

export const StopRequestSchema = Type.Object(
  { reason: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })) },
  { additionalProperties: false },
);

export const AnalysisQuerySchema = Type.Object(
  { top: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })) },
  { additionalProperties: false },
);

const RankedTrial = Type.Object({
  number: Type.Integer(),
  values: Type.Array(Type.Number()),
  params: ParamsSchema,
  run_id: Type.String(),
  cost: Nullable(Type.Number()),
});

export const AnalysisSchema = Type.Object({
  sweep_id: Type.String(),
  objectives: Type.Array(
    Type.Object({ metric: Type.String(), direction: Type.String(), aggregate: Type.String() }),
  ),
  trials: Type.Object({
    total: Type.Integer(),
    completed: Type.Integer(),
    failed: Type.Integer(),
    pruned: Type.Integer(),
  }),
  best: Nullable(RankedTrial),
  top: Type.Array(RankedTrial),
  importance: Type.Array(Type.Object({ param: Type.String(), importance: Type.Number() })),
  importance_method: Type.String(),
  pareto_front: Type.Array(Type.Integer()),
  hypervolume: Nullable(Type.Number()),
  cost_front: Type.Array(Type.Integer()),
  significance: Nullable(
    Type.Object({
      a: Type.Integer(),
      b: Type.Integer(),
      test: Type.String(),
      statistic: Type.Number(),
      p_value: Type.Number(),
      n_a: Type.Integer(),
      n_b: Type.Integer(),
      significant: Type.Boolean(),
      note: Type.String(),
    }),
  ),
  history: Type.Array(
    Type.Object({
      number: Type.Integer(),
      value: Nullable(Type.Number()),
      best: Nullable(Type.Number()),
      status: Type.String(),
    }),
  ),
});
export type AnalysisWire = Static<typeof AnalysisSchema>;
