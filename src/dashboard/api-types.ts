/**
 * The wire shapes the dashboard reads, as the API serves them (snake_case, RFC 3339 times).
 * The browser build cannot import the server's TypeBox schemas (they pull in Node modules), so
 * these are declared here and test/browser/wire-contract.ts checks, at compile time, that the
 * server's schema types are assignable to them: a field renamed on the server breaks the build.

 */
export type Time = string | null;

export interface Principal {
  name: string;
  role: string;
  run_id: string | null;
}

export interface Attempt {
  attempt_id: string;
  attempt_no: number;
  worker_id: string;
  state: string;
  exit_code: number | null;
  reason: string | null;
  assigned_at: Time;
  started_at: Time;
  finished_at: Time;
}

export interface Job {
  job_id: string;
  name: string;
  state: string;
  reason: string | null;
  command: string[];
  cwd: string | null;
  resources: { cpu: number; memory_mb: number; gpu: number; device_type: string | null };
  labels: Record<string, string>;
  parent_job_id: string | null;
  run_id: string | null;
  failure_count: number;
  preemption_count: number;
  current_attempt_id: string | null;
  attempts?: Attempt[];
  submitted_at: Time;
  started_at: Time;
  finished_at: Time;
  updated_at: Time;
}

export interface Resources {
  cpu: number;
  memory_mb: number;
  gpu: number;
}

export interface Worker {
  worker_id: string;
  name: string;
  address: string | null;
  health: string;
  device_type: string | null;
  labels: Record<string, string>;
  capacity: Resources;
  used: Resources;
  free: Resources;
  running_attempts: Array<{ attempt_id: string; job_id: string; state: string }>;
  registered_at: Time;
  last_heartbeat_at: Time;
}

export interface Endpoint {
  endpoint_id: string;
  name: string;
  address: string;
  metadata: Record<string, string>;
  job_id: string;
  created_at: Time;
}

export interface LogLine {
  stream: string;
  line: string;
}

export interface Run {
  run_id: string;
  name: string | null;
  config: Record<string, unknown>;
  labels: Record<string, string>;
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
  queued_commands: string[] | null;
  summary: Record<string, number>;
  last_heartbeat_at: Time;
  heartbeat_interval_s: number;
  created_at: Time;
  updated_at: Time;
  ended_at: Time;
}

/** One `run-status` server-sent event of `GET /api/v1/stream/runs`. */
export interface RunStatusEvent {
  run_id: string;
  status: string;
  health: string;
  step: number | null;
  samples_per_sec: number | null;
  loss: number | null;
  last_error: string | null;
  at?: string;
}

export interface Command {
  id: string;
  run_id: string;
  type: string;
  payload: Record<string, unknown>;
  issued_at: Time;
  actor: { type: string; id: string };
  created_at: Time;
  delivered_at: Time;
  acknowledged_at: Time;
  delivery_count: number;
}

export interface MetricPoint {
  step: number;
  value: number;
  recorded_at: string;
}

export interface RunMetrics {
  run_id: string;
  series: Record<string, MetricPoint[]>;
  downsampled: boolean;
}

export interface AuditEntry {
  seq: number;
  id: string;
  run_id: string | null;
  action: string;
  actor: { type: string; id: string };
  envelope: unknown;
  source_ip: string | null;
  user_agent: string | null;
  client_cert_fingerprint: string | null;
  created_at: string;
  prev_hash: string;
  entry_hash: string;
}

export interface AuditVerify {
  ok: boolean;
  entries_checked: number;
  head_hash: string;
  first_bad: { seq: number; id: string | null; reason: string } | null;
}

export interface AlertSink {
  name: string;
  configured: boolean;
  target: string | null;
  ok: boolean;
  consecutive_failures: number;
  last_error: string | null;
  last_success_at: Time;
  last_failure_at: Time;
  delivered: number;
  dropped: number;
}

export interface DeadLetter {
  id: string;
  subscriber: string;
  status: string;
  event_id: string;
  event_type: string;
  error: string;
  attempts: number;
  retry_count: number;
  next_retry_at: Time;
  created_at: Time;
  last_failed_at: Time;
  resolved_at: Time;
}

export interface DeadLetterStats {
  pending: number;
  recovered: number;
  abandoned: number;
}

export interface PodPosterior {
  participant: string;
  evidence: number;
  placement_probabilities: number[];
  expected_placement: number;
  sd: number;
  interval: number[];
  interval_width: number;
}

export interface Pod {
  pod_id: string;
  status: string;
  stop_reason: string | null;
  participants: string[];
  seed: number;
  statistics: {
    epochs_dispatched: number;
    games_played: number;
    failed_epochs: number;
    reset_count: number;
  };
  current_epoch: { epoch: number; size: number; status: string; games_received: number } | null;
  convergence: {
    converged: boolean;
    confidence: number;
    confidence_target: number;
    precision: number;
    ranking: string[];
    reasons: string[];
  };
  posterior: PodPosterior[];
  last_error: string | null;
  updated_at: Time;
}

export interface LeaderboardEntry {
  rank: number;
  participant: string;
  model_version: string | null;
  mu: number;
  sigma: number;
  ordinal: number;
  games: number;
}

export type SweepParams = Record<string, string | number | boolean>;

export interface Objective {
  metric: string;
  direction: string;
  aggregate: string;
}

export interface Sweep {
  sweep_id: string;
  name: string;
  status: string;
  status_reason: string | null;
  objectives: Objective[];
  optimizer: string;
  scheduler: string;
  dispatcher: string;
  max_trials: number | null;
  max_parallel_jobs: number;
  trial_count: number;
  /** Trials by derived status (PENDING … COMPLETED, FAILED, STALE, PRUNED). */
  counts: Record<string, number>;
  best: { number: number; value: number; params: SweepParams; run_id: string } | null;
  last_error: string | null;
  created_at: Time;
  updated_at: Time;
  finished_at: Time;
}

export interface Trial {
  number: number;
  status: string;
  params: SweepParams;
  values: number[] | null;
  run_id: string;
  attempt: number;
  origin: string;
  parent_number: number | null;
  end_reason: string | null;
  error: string | null;
  cost: number | null;
  created_at: Time;
  ended_at: Time;
}

export interface RankedTrial {
  number: number;
  values: number[];
  params: SweepParams;
  run_id: string;
  cost: number | null;
}

export interface SweepAnalysis {
  objectives: Objective[];
  trials: { total: number; completed: number; failed: number; pruned: number };
  best: RankedTrial | null;
  top: RankedTrial[];
  importance: Array<{ param: string; importance: number }>;
  importance_method: string;
  /** Trial numbers on the Pareto front (two or more objectives). */
  pareto_front: number[];
  hypervolume: number | null;
  /** Trial numbers on the objective-versus-cost front (cost-aware sweeps). */
  cost_front: number[];
  significance: {
    a: number;
    b: number;
    test: string;
    p_value: number;
    significant: boolean;
    note: string;
  } | null;
  history: Array<{ number: number; value: number | null; best: number | null; status: string }>;
}

export interface PipelineAttempt {
  stage: string;
  attempt: number;
  status: string;
  job_id: string | null;
  error: string | null;
  blocked_reason: string | null;
  created_at: Time;
  finished_at: Time;
}

export interface Pipeline {
  pipeline_id: string;
  config_key: string;
  /** running, breaker_open, completed or stopped */
  status: string;
  /** IDLE, SELFPLAY, DATA_SYNC, NPZ_EXPORT, TRAINING, EVALUATION, PROMOTION or COMPLETE */
  stage: string;
  attempt: number;
  breaker: { state: string; consecutive_failures: number; failure_threshold: number; opened_at: Time };
  last_error: string | null;
  stages: string[];
  attempts: PipelineAttempt[];
  created_at: Time;
  updated_at: Time;
  finished_at: Time;
}

export interface Model {
  model_id: string;
  config_key: string;
  path: string | null;
  state: string;
  metrics: Record<string, number>;
  previous_model_id: string | null;
  reason: string | null;
  created_at: Time;
  updated_at: Time;
  promoted_at: Time;
}

export interface Health {
  overall_health: number;
  status: string;
  issues: string[];
}
