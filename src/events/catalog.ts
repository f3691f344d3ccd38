/**
 * The event catalog: every event type runplane writes to its outbox, with its payload.
 * Later slices (runs, sweeps, pods, pipelines) add their types here.
 */
export interface EventPayloads {
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
  'command.delivered': { run_id: string; command_id: string; type: string; delivery_count: number };
  'command.acknowledged': { run_id: string; command_id: string; type: string };
}

export type EventType = keyof EventPayloads;

export interface NewEvent<T extends EventType = EventType> {
  type: T;
  entity_id: string;
  payload: EventPayloads[T];
}

/** An event as stored in the outbox and delivered to subscribers. */
export interface StoredEvent {
  seq: number;
  id: string;
  type: string;
  entity_id: string;
  payload: unknown;
  created_at: number;
}

export function event<T extends EventType>(
  type: T,
  entity_id: string,
  payload: EventPayloads[T],
): NewEvent<T> {
  return { type, entity_id, payload };
}
