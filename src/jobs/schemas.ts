import { type Static, Type } from '@sinclair/typebox';
import { StringEnum } from '../http/schema-helpers.js';
import { JOB_STATES } from './model.js';

/**
 * Wire schemas of the jobs slice, declared once: Fastify validates with them, TypeScript
 * derives the types from them, and the OpenAPI document is generated from them.
 */
const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);
const StringMap = Type.Record(
  Type.String({ minLength: 1, maxLength: 256 }),
  Type.String({ maxLength: 65536 }),
);
const Timestamp = Type.Union([Type.String({ format: 'date-time' }), Type.Null()]);

export const JobStateSchema = StringEnum(JOB_STATES);

export const ResourcesSchema = Type.Object(
  {
    cpu: Type.Optional(Type.Number({ minimum: 0, maximum: 100000 })),
    memory_mb: Type.Optional(Type.Integer({ minimum: 0 })),
    gpu: Type.Optional(Type.Integer({ minimum: 0, maximum: 1024 })),
    device_type: Type.Optional(Nullable(Type.String({ minLength: 1, maxLength: 64 }))),
  },
  { additionalProperties: false },
);

export const JobRequestSchema = Type.Object(
  {
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 256, pattern: '^[^/\\s][^/]*$' })),
    command: Type.Array(Type.String({ maxLength: 65536 }), { minItems: 1, maxItems: 4096 }),
    env: Type.Optional(StringMap),
    cwd: Type.Optional(Type.String({ minLength: 1, maxLength: 4096 })),
    resources: Type.Optional(ResourcesSchema),
    labels: Type.Optional(StringMap),
    setup: Type.Optional(Type.Array(Type.String({ maxLength: 65536 }), { minItems: 1, maxItems: 4096 })),
    max_retries_failure: Type.Optional(Type.Integer({ minimum: 0, maximum: 1000 })),
    max_retries_preemption: Type.Optional(Type.Integer({ minimum: 0, maximum: 100000 })),
    scheduling_timeout_s: Type.Optional(Type.Number({ minimum: 0 })),
    parent_job_id: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    gang: Type.Optional(
      Type.Object(
        {
          id: Type.String({ minLength: 1, maxLength: 256 }),
          size: Type.Integer({ minimum: 1, maximum: 10000 }),
        },
        { additionalProperties: false },
      ),
    ),
    run_id: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  },
  { additionalProperties: false },
);
export type JobRequest = Static<typeof JobRequestSchema>;

export const AttemptSchema = Type.Object({
  attempt_id: Type.String(),
  attempt_no: Type.Integer(),
  worker_id: Type.String(),
  state: Type.String(),
  exit_code: Type.Union([Type.Integer(), Type.Null()]),
  reason: Type.Union([Type.String(), Type.Null()]),
  assigned_at: Timestamp,
  started_at: Timestamp,
  finished_at: Timestamp,
});
export type AttemptView = Static<typeof AttemptSchema>;

export const JobSchema = Type.Object({
  job_id: Type.String(),
  name: Type.String(),
  state: JobStateSchema,
  reason: Type.Union([Type.String(), Type.Null()]),
  command: Type.Array(Type.String()),
  env: Type.Record(Type.String(), Type.String()),
  cwd: Type.Union([Type.String(), Type.Null()]),
  setup: Type.Union([Type.Array(Type.String()), Type.Null()]),
  resources: Type.Object({
    cpu: Type.Number(),
    memory_mb: Type.Integer(),
    gpu: Type.Integer(),
    device_type: Type.Union([Type.String(), Type.Null()]),
  }),
  labels: Type.Record(Type.String(), Type.String()),
  max_retries_failure: Type.Integer(),
  max_retries_preemption: Type.Integer(),
  scheduling_timeout_s: Type.Number(),
  parent_job_id: Type.Union([Type.String(), Type.Null()]),
  gang: Type.Union([Type.Object({ id: Type.String(), size: Type.Integer() }), Type.Null()]),
  run_id: Type.Union([Type.String(), Type.Null()]),
  failure_count: Type.Integer(),
  preemption_count: Type.Integer(),
  current_attempt_id: Type.Union([Type.String(), Type.Null()]),
  attempts: Type.Optional(Type.Array(AttemptSchema)),
  submitted_at: Timestamp,
  started_at: Timestamp,
  finished_at: Timestamp,
  updated_at: Timestamp,
});
export type JobView = Static<typeof JobSchema>;

export const JobListQuerySchema = Type.Object(
  {
    state: Type.Optional(JobStateSchema),
    label: Type.Optional(
      Type.Union([
        Type.String({ pattern: '^[^=]+=.*$' }),
        Type.Array(Type.String({ pattern: '^[^=]+=.*$' })),
      ]),
    ),
    parent: Type.Optional(Type.String({ minLength: 1 })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })),
    cursor: Type.Optional(Type.String({ pattern: '^[0-9]+$' })),
  },
  { additionalProperties: false },
);
export type JobListQuery = Static<typeof JobListQuerySchema>;

export const JobListSchema = Type.Object({
  jobs: Type.Array(JobSchema),
  next_cursor: Type.Union([Type.String(), Type.Null()]),
});

export const LogsQuerySchema = Type.Object(
  {
    attempt: Type.Optional(Type.Integer({ minimum: 1 })),
    tail: Type.Optional(Type.Integer({ minimum: 1, maximum: 100000 })),
    stream: Type.Optional(StringEnum(['stdout', 'stderr', 'all'] as const)),
  },
  { additionalProperties: false },
);
export type LogsQuery = Static<typeof LogsQuerySchema>;

export const LogsSchema = Type.Object({
  job_id: Type.String(),
  attempt_id: Type.Union([Type.String(), Type.Null()]),
  lines: Type.Array(Type.Object({ stream: Type.String(), line: Type.String() })),
});

export const JobIdParams = Type.Object({ job_id: Type.String({ minLength: 1, maxLength: 128 }) });

// ----- workers -----

export const WorkerRegisterSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 256 }),
    address: Type.Optional(Type.String({ maxLength: 1024 })),
    capacity: Type.Object(
      {
        cpu: Type.Number({ minimum: 0 }),
        memory_mb: Type.Integer({ minimum: 0 }),
        gpu: Type.Optional(Type.Integer({ minimum: 0 })),
      },
      { additionalProperties: false },
    ),
    device_type: Type.Optional(Nullable(Type.String({ minLength: 1, maxLength: 64 }))),
    labels: Type.Optional(StringMap),
    /** Attempts this agent is running right now; anything else assigned to it is gone. */
    running: Type.Optional(Type.Array(Type.String(), { maxItems: 100000 })),
  },
  { additionalProperties: false },
);
export type WorkerRegister = Static<typeof WorkerRegisterSchema>;

export const WorkerRegisteredSchema = Type.Object({
  worker_id: Type.String(),
  heartbeat_interval_ms: Type.Integer(),
});
export type WorkerRegistered = Static<typeof WorkerRegisteredSchema>;

export const WorkerIdParams = Type.Object({ worker_id: Type.String({ minLength: 1, maxLength: 128 }) });

export const PollRequestSchema = Type.Object(
  {
    /** Attempts the agent has (running, or finished with a report not yet acknowledged). */
    known: Type.Array(Type.String(), { maxItems: 100000 }),
    /** Attempts the agent is already stopping: a kill for them is not news worth returning. */
    stopping: Type.Optional(Type.Array(Type.String(), { maxItems: 100000 })),
    wait_ms: Type.Optional(Type.Integer({ minimum: 0, maximum: 60000 })),
  },
  { additionalProperties: false },
);
export type PollRequest = Static<typeof PollRequestSchema>;

export const AssignmentSchema = Type.Object({
  attempt_id: Type.String(),
  job_id: Type.String(),
  command: Type.Array(Type.String()),
  env: Type.Record(Type.String(), Type.String()),
  cwd: Type.Union([Type.String(), Type.Null()]),
  setup: Type.Union([Type.Array(Type.String()), Type.Null()]),
  run_id: Type.Union([Type.String(), Type.Null()]),
});
export type Assignment = Static<typeof AssignmentSchema>;

export const PollResponseSchema = Type.Object({
  assignments: Type.Array(AssignmentSchema),
  kill: Type.Array(Type.Object({ attempt_id: Type.String(), reason: Type.String() })),
});
export type PollResponse = Static<typeof PollResponseSchema>;

export const AttemptReportSchema = Type.Object(
  {
    attempt_id: Type.String({ minLength: 1 }),
    state: StringEnum(['RUNNING', 'SUCCEEDED', 'FAILED', 'KILLED', 'WORKER_FAILED'] as const),
    exit_code: Type.Optional(Type.Union([Type.Integer(), Type.Null()])),
    reason: Type.Optional(Type.Union([Type.String({ maxLength: 4096 }), Type.Null()])),
  },
  { additionalProperties: false },
);
export type AttemptReport = Static<typeof AttemptReportSchema>;

export const ReportRequestSchema = Type.Object(
  {
    updates: Type.Array(AttemptReportSchema, { maxItems: 10000 }),
    logs: Type.Optional(
      Type.Array(
        Type.Object(
          {
            attempt_id: Type.String({ minLength: 1 }),
            stream: StringEnum(['stdout', 'stderr'] as const),
            data: Type.String({ maxLength: 1048576 }),
          },
          { additionalProperties: false },
        ),
        { maxItems: 10000 },
      ),
    ),
  },
  { additionalProperties: false },
);
export type ReportRequest = Static<typeof ReportRequestSchema>;

export const WorkerSchema = Type.Object({
  worker_id: Type.String(),
  name: Type.String(),
  address: Type.Union([Type.String(), Type.Null()]),
  health: Type.String(),
  device_type: Type.Union([Type.String(), Type.Null()]),
  labels: Type.Record(Type.String(), Type.String()),
  capacity: Type.Object({ cpu: Type.Number(), memory_mb: Type.Integer(), gpu: Type.Integer() }),
  used: Type.Object({ cpu: Type.Number(), memory_mb: Type.Integer(), gpu: Type.Integer() }),
  free: Type.Object({ cpu: Type.Number(), memory_mb: Type.Integer(), gpu: Type.Integer() }),
  running_attempts: Type.Array(
    Type.Object({ attempt_id: Type.String(), job_id: Type.String(), state: Type.String() }),
  ),
  registered_at: Timestamp,
  last_heartbeat_at: Timestamp,
});
export type WorkerView = Static<typeof WorkerSchema>;

// ----- endpoints -----

export const EndpointRequestSchema = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 512 }),
    address: Type.String({ minLength: 1, maxLength: 2048 }),
    metadata: Type.Optional(StringMap),
    job_id: Type.String({ minLength: 1, maxLength: 128 }),
  },
  { additionalProperties: false },
);
export type EndpointRequest = Static<typeof EndpointRequestSchema>;

export const EndpointSchema = Type.Object({
  endpoint_id: Type.String(),
  name: Type.String(),
  address: Type.String(),
  metadata: Type.Record(Type.String(), Type.String()),
  job_id: Type.String(),
  created_at: Timestamp,
});
export type EndpointView = Static<typeof EndpointSchema>;

export const EndpointQuerySchema = Type.Object(
  { name: Type.Optional(Type.String({ minLength: 1 })), prefix: Type.Optional(Type.String()) },
  { additionalProperties: false },
);
