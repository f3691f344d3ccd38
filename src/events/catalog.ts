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
