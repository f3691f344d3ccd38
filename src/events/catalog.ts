import type { StageEventPayloads } from './stage-events.js';

/**
 * The event catalog: every event type runplane writes to its outbox, with its payload.
 * Later slices (runs, sweeps, pods, pipelines) add their types here. Pipeline stage events
 * (SELFPLAY_COMPLETE … MODEL_PROMOTED) come from ./stage-events.ts, where their payload
 * schemas validate what external producers publish.
 */
export interface EventPayloads extends StageEventPayloads {
  'job.submitted': { job_id: string; name: string; parent_job_id: string | null; run_id: string | null };
  'job.state_changed': {
    job_id: string;
    state: string;
    previous: string;
    attempt_id: string | null;
    worker_id: string | null;
    reason: string | null;
    run_id: string | null;
  };
  'attempt.state_changed': {
    job_id: string;
    attempt_id: string;
    worker_id: string;
    state: string;
    exit_code: number | null;
    reason: string | null;
  };
  'worker.registered': { worker_id: string; name: string };
  'worker.health_changed': { worker_id: string; health: string; previous: string; reason: string | null };
  'endpoint.registered': { endpoint_id: string; name: string; job_id: string; address: string };
  'endpoint.removed': { endpoint_id: string; name: string; job_id: string; reason: string };
  'run.created': { run_id: string; name: string | null; job_id: string | null; sweep_id: string | null };
  /**
   * The seed's compact run-status document, written on every change of a run's status or
   * health and on every accepted heartbeat (the dashboard's live table follows it); published
   * on the NATS subject `run-status`. `previous_*` let consumers route transitions (alerts).
   */
  'run.status': {
    run_id: string;
    status: string;
    health: string;
    step: number | null;
    samples_per_sec: number | null;
    loss: number | null;
    last_error: string | null;
    previous_status: string;
    previous_health: string;
    /** What caused it: heartbeat, liveness, command, job, finish, create. */
    cause: string;
  };
  /** The liveness monitor's recommendation when a run becomes unresponsive. */
  'run.terminate_recommended': { run_id: string; reason: string; last_heartbeat_at: string | null };
  'run.liveness_extended': { run_id: string; extend_s: number; reason: string; actor: string };
  'command.issued': { run_id: string; command_id: string; type: string; actor: string };
  'command.acknowledged': { run_id: string; command_id: string; type: string };
  'pod.created': { pod_id: string; participants: string[]; seed: number };
  /**
   * Every pod status change; the matchmaker's control signal: `dispatchable` says whether a
   * dispatch would be accepted now (ready), so it queues or skips the pod.
   */
  'pod.status_changed': {
    pod_id: string;
    status: string;
    previous: string;
    reason: string | null;
    dispatchable: boolean;
  };
  'pod.epoch_dispatched': {
    pod_id: string;
    epoch: number;
    size: number;
    attempt: number;
    job_id: string | null;
  };
  'pod.epoch_finished': {
    pod_id: string;
    epoch: number;
    /** completed, retry_wait (a retry is scheduled), failed (gave up) or cancelled. */
    outcome: string;
    attempt: number;
    games: number;
    reason: string | null;
  };
  'pod.converged': {
    pod_id: string;
    stop_reason: string;
    games_played: number;
    confidence: number;
    ranking: string[];
  };
  'pod.reset': { pod_id: string; reason: string; evidence_decay: number };
  'sweep.created': {
    sweep_id: string;
    name: string;
    optimizer: string;
    scheduler: string;
    max_trials: number | null;
  };
  'sweep.status_changed': { sweep_id: string; status: string; previous: string; reason: string | null };
  /** A trial was created (with its first run) or given a new attempt (a new run). */
  'sweep.trial_created': {
    sweep_id: string;
    number: number;
    run_id: string;
    attempt: number;
    origin: string;
    parent_number: number | null;
    params: Record<string, string | number | boolean>;
  };
  'sweep.trial_status_changed': {
    sweep_id: string;
    number: number;
    run_id: string;
    status: string;
    previous: string;
    reason: string | null;
    values: number[] | null;
  };
  'pipeline.started': { pipeline_id: string; config_key: string; stages: string[] };
  /** A pipeline moved to another stage or status (stage in upper case, IDLE … COMPLETE). */
  'pipeline.changed': {
    pipeline_id: string;
    config_key: string;
    status: string;
    stage: string;
    attempt: number;
    breaker_state: string;
    reason: string | null;
  };
  'model.registered': { model_id: string; config_key: string; path: string | null; state: string };
  'model.state_changed': {
    model_id: string;
    config_key: string;
    state: string;
    previous: string;
    reason: string | null;
  };
  'model.rolled_back': {
    model_id: string;
    config_key: string;
    restored_model_id: string;
    reason: string | null;
  };
}

export type EventType = keyof EventPayloads;

export interface NewEvent<T extends EventType = EventType> {
  type: T;
  entity_id: string;
  payload: EventPayloads[T];
  /**
   * The trace the event belongs to, when it is its entity's own rather than the writer's (a
   * job's events carry the job's TRACEPARENT, whoever reported the change); null: in no trace.
   * Left out, the event takes the trace context active where it is appended.
   */
  traceparent?: string | null;
}

/** An event as stored in the outbox and delivered to subscribers. */
export interface StoredEvent {
  seq: number;
  id: string;
  type: string;
  entity_id: string;
  payload: unknown;
  created_at: number;
  /**
   * W3C traceparent of the trace the event was written in (an HTTP request, a job's request, a
   * handler of a traced event), or null. Subscribers run in this trace context.
   */
  traceparent: string | null;
}

export function event<T extends EventType>(
  type: T,
  entity_id: string,
  payload: EventPayloads[T],
  traceparent?: string | null,
): NewEvent<T> {
  return traceparent === undefined ? { type, entity_id, payload } : { type, entity_id, payload, traceparent };
}
