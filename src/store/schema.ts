import type { Generated } from 'kysely';

/** Row types of every table, as Kysely sees them. Times are epoch milliseconds. */
export interface JobsTable {
  seq: Generated<number>;
  id: string;
  name: string;
  parent_job_id: string | null;
  /** parent_job_id or '' — lets (parent_key, name) be unique in both dialects. */
  parent_key: string;
  command: string; // JSON argv
  env: string; // JSON object
  cwd: string | null;
  setup: string | null; // JSON argv
  cpu: number;
  memory_mb: number;
  gpu: number;
  device_type: string | null;
  labels: string; // JSON object
  max_retries_failure: number;
  max_retries_preemption: number;
  scheduling_timeout_s: number;
  gang_id: string | null;
  gang_size: number | null;
  run_id: string | null;
  state: string;
  reason: string | null;
  failure_count: number;
  preemption_count: number;
  attempt_count: number;
  current_attempt_id: string | null;
  submitted_at: number;
  pending_since: number;
  started_at: number | null;
  finished_at: number | null;
  updated_at: number;
}

export interface JobLabelsTable {
  job_id: string;
  job_seq: number;
  key: string;
  value: string;
}

export interface AttemptsTable {
  id: string;
  job_id: string;
  attempt_no: number;
  worker_id: string;
  state: string;
  exit_code: number | null;
  reason: string | null;
  cpu: number;
  memory_mb: number;
  gpu: number;
  assigned_at: number;
  started_at: number | null;
  finished_at: number | null;
}

export interface WorkersTable {
  id: string;
  name: string;
  address: string | null;
  labels: string; // JSON object
  device_type: string | null;
  cpu: number;
  memory_mb: number;
  gpu: number;
  health: string;
  registered_at: number;
  last_heartbeat_at: number;
  updated_at: number;
}

export interface EndpointsTable {
  id: string;
  name: string;
  address: string;
  metadata: string; // JSON object
  job_id: string;
  created_at: number;
}

export interface EventsTable {
  seq: Generated<number>;
  id: string;
  type: string;
  entity_id: string;
  payload: string; // JSON
  created_at: number;
  /** W3C traceparent of the context that wrote the event; null when it was in no trace. */
  traceparent: string | null;
}

export interface EventCursorsTable {
  subscriber: string;
  last_seq: number;
  updated_at: number;
}

export interface TokensTable {
  id: string;
  name: string;
  role: string;
  token_hash: string;
  run_id: string | null;
  created_at: number;
  revoked_at: number | null;
}

export interface LogChunksTable {
  seq: Generated<number>;
  attempt_id: string;
  stream: string;
  data: string;
  created_at: number;
}

export interface RunsTable {
  seq: Generated<number>;
  id: string;
  name: string | null;
  config: string; // canonical JSON
  labels: string; // JSON object
  job_id: string | null;
  sweep_id: string | null;
  status: string;
  health: string;
  step: number | null;
  samples_per_sec: number | null;
  loss: number | null;
  checkpoint_version: number | null;
  last_error: string | null;
  notes: string | null;
  queued_commands: string | null; // JSON array of command ids
  summary: string; // JSON object: last value of each metric
  last_heartbeat_at: number | null;
  /** Extra time an operator allowed before the liveness monitor escalates; reset by a heartbeat. */
  liveness_extension_ms: number;
  created_at: number;
  updated_at: number;
  ended_at: number | null;
}

export interface RunLabelsTable {
  run_id: string;
  run_seq: number;
  key: string;
  value: string;
}

export interface RunMetricsTable {
  run_id: string;
  name: string;
  step: number;
  value: number;
  recorded_at: number;
}

export interface RunCommandsTable {
  seq: Generated<number>;
  id: string;
  run_id: string;
  type: string;
  payload: string; // JSON
  actor_type: string;
  actor_id: string;
  issued_at: number;
  created_at: number;
  delivered_at: number | null;
  acknowledged_at: number | null;
  delivery_count: number;
  /** When the command may be (re)delivered: creation, then last delivery + visibility timeout. */
  visible_at: number;
}

export interface ControlAuditTable {
  seq: Generated<number>;
  id: string;
  run_id: string | null;
  action: string;
  actor_type: string;
  actor_id: string;
  envelope: string; // canonical JSON
  source_ip: string | null;
  user_agent: string | null;
  client_cert_fingerprint: string | null;
  created_at: number;
  prev_hash: string;
  entry_hash: string;
}

export interface AuditExportsTable {
  seq: Generated<number>;
  from_seq: number;
  to_seq: number;
  entry_count: number;
  head_hash: string;
  path: string;
  exported_at: number;
}

/** An event a subscriber could not handle: retried by the DLQ daemon until recovered or abandoned. */
export interface DeadLettersTable {
  seq: Generated<number>;
  id: string;
  subscriber: string;
  event_id: string;
  event_seq: number | null;
  event_type: string;
  event: string; // JSON of the event as delivered
  error: string;
  stack: string | null;
  /** Handler runs that failed, in the relay and in the DLQ. */
  attempts: number;
  /** Retries the DLQ made (the backoff exponent). */
  retry_count: number;
  status: string; // pending | recovered | abandoned
  next_retry_at: number | null;
  created_at: number;
  updated_at: number;
  last_failed_at: number;
  resolved_at: number | null;
}

/** Content hashes of recently published external events, for the router's dedup window. */
export interface EventHashesTable {
  hash: string;
  event_id: string;
  created_at: number;
}

/** A participant of pods (deck, policy checkpoint) with its league rating (openskill). */
export interface ParticipantsTable {
  id: string;
  model_version: string | null;
  mu: number;
  sigma: number;
  games: number;
  created_at: number;
  updated_at: number;
}

export interface PodsTable {
  seq: Generated<number>;
  id: string;
  /** sha256 of participants (as a set) + seed + normalized config: the pod's identity. */
  spec_hash: string;
  participants: string; // JSON array, sorted
  seed: number;
  config: string; // canonical JSON, defaults applied
  status: string;
  stop_reason: string | null;
  epochs_dispatched: number;
  epochs_since_reset: number;
  last_epoch_size: number | null;
  in_flight_epoch: number | null;
  games_played: number;
  games_since_reset: number;
  duplicate_games: number;
  failed_epochs: number;
  reset_count: number;
  confidence: number;
  evaluation: string | null; // JSON: the Bayesian evaluator's last verdict
  last_error: string | null;
  converged_at: number | null;
  expires_at: number | null;
  last_reset_at: number | null;
  archived_at: number | null;
  created_at: number;
  updated_at: number;
}

/** A pod's participant: all-time placement counts p1..p4 and decayed evidence e1..e4. */
export interface PodParticipantsTable {
  pod_id: string;
  participant_id: string;
  position: number;
  model_version: string | null;
  p1: number;
  p2: number;
  p3: number;
  p4: number;
  e1: number;
  e2: number;
  e3: number;
  e4: number;
  turns: number;
}

export interface PodEpochsTable {
  pod_id: string;
  epoch_no: number;
  size: number;
  status: string;
  attempt: number;
  job_id: string | null;
  games_received: number;
  estimated_remaining: number | null;
  next_retry_at: number | null;
  last_error: string | null;
  created_at: number;
  finished_at: number | null;
  updated_at: number;
}

/** Games of pods, idempotent by (pod_id, game_id); also the replay index. */
export interface PodGamesTable {
  seq: Generated<number>;
  pod_id: string;
  game_id: string;
  epoch_no: number | null;
  placements: string; // JSON object participant -> placement
  turns: number | null;
  replay: string | null;
  recorded_at: number;
}

/** The training trace of pods: dispatches, results, convergence, resets, retries. */
export interface PodTraceTable {
  seq: Generated<number>;
  pod_id: string;
  kind: string;
  epoch_no: number | null;
  games_played: number;
  confidence: number | null;
  detail: string; // JSON
  created_at: number;
}

/** A sweep: its validated file (spec), status and the lease of the controller loop driving it. */
export interface SweepsTable {
  seq: Generated<number>;
  id: string;
  name: string;
  spec: string; // canonical JSON of the normalised sweep file
  status: string;
  status_reason: string | null;
  /** Trials created so far: the next trial number. Counts across restarts. */
  trial_count: number;
  best_trial: number | null;
  best_value: number | null;
  /** Which controller process drives the sweep, until when (replicas on one Postgres). */
  lease_owner: string | null;
  lease_until: number | null;
  last_error: string | null;
  /** When the optimizer first had nothing more to suggest (a finished grid). */
  exhausted_at: number | null;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
}

/** One trial of a sweep: its number, parameters, current run (attempt) and dispatched jobs. */
export interface SweepTrialsTable {
  sweep_id: string;
  number: number;
  params: string; // JSON
  origin: string;
  /** PBT: the trial whose checkpoint this one continued from. */
  parent_number: number | null;
  /** PBT: population slot; Hyperband: unused. */
  member: number | null;
  /** Hyperband: the bracket of the trial. */
  bracket: number | null;
  start_step: number;
  resume_from: string | null;
  run_id: string;
  attempt: number;
  status: string;
  end_reason: string | null;
  /** `<dispatcher>:<id>` of the training job of the current attempt, and its last seen state. */
  train_ref: string | null;
  train_state: string | null;
  eval_ref: string | null;
  eval_state: string | null;
  objective_values: string | null; // JSON array, one per objective
  cost: number | null;
  rungs: string; // JSON object: rung milestone -> value recorded there
  stop_requested_at: number | null;
  error: string | null;
  created_at: number;
  updated_at: number;
  /** Last sign of life of the current attempt (run update, job change): STALE after stale_after. */
  activity_at: number;
  ended_at: number | null;
}

/** One start of a config's pipeline (the newest row of a config is its pipeline now). */
export interface PipelinesTable {
  seq: Generated<number>;
  id: string;
  config_key: string;
  spec: string; // JSON PipelineSpec
  status: string; // running | breaker_open | completed | stopped
  stage: string; // IDLE … COMPLETE
  stage_attempt: number;
  work_dir: string;
  breaker_state: string; // closed | open | half_open
  consecutive_failures: number;
  breaker_opened_at: number | null;
  outputs: string; // JSON: stage -> its completion payload
  last_error: string | null;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
}

export interface PipelineStagesTable {
  pipeline_id: string;
  stage: string; // lower case, as in the stage events
  attempt: number;
  status: string; // launching | waiting | running | succeeded | failed | cancelled
  job_id: string | null;
  event_id: string | null;
  result: string | null; // JSON payload of the completion event
  error: string | null;
  blocked_reason: string | null;
  quarantine: string | null; // JSON list of {path, moved_to, expected, actual}
  created_at: number;
  updated_at: number;
  finished_at: number | null;
}

export interface PipelineAppliedEventsTable {
  event_id: string;
  pipeline_id: string;
  outcome: string;
  created_at: number;
}

export interface ModelsTable {
  seq: Generated<number>;
  id: string;
  config_key: string;
  path: string | null;
  state: string; // training | evaluating | staging | production | rolled_back | archived
  metrics: string; // JSON object
  previous_model_id: string | null;
  pipeline_id: string | null;
  reason: string | null;
  created_at: number;
  updated_at: number;
  promoted_at: number | null;
}

export interface DB {
  jobs: JobsTable;
  job_labels: JobLabelsTable;
  attempts: AttemptsTable;
  workers: WorkersTable;
  endpoints: EndpointsTable;
  events: EventsTable;
  event_cursors: EventCursorsTable;
  tokens: TokensTable;
  log_chunks: LogChunksTable;
  runs: RunsTable;
  run_labels: RunLabelsTable;
  run_metrics: RunMetricsTable;
  run_commands: RunCommandsTable;
  control_audit: ControlAuditTable;
  audit_exports: AuditExportsTable;
  dead_letters: DeadLettersTable;
  event_hashes: EventHashesTable;
  participants: ParticipantsTable;
  pods: PodsTable;
  pod_participants: PodParticipantsTable;
  pod_epochs: PodEpochsTable;
  pod_games: PodGamesTable;
  pod_trace: PodTraceTable;
  sweeps: SweepsTable;
  sweep_trials: SweepTrialsTable;
  pipelines: PipelinesTable;
  pipeline_stages: PipelineStagesTable;
  pipeline_applied_events: PipelineAppliedEventsTable;
  models: ModelsTable;
}
