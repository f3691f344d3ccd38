import { toIso } from '../shared/clock.js';
import type { EndpointRow } from './endpoint-repo.js';
import type { AttemptRow, JobRow } from './job-repo.js';
import type { JobState } from './model.js';
import type { AttemptView, EndpointView, JobView } from './schemas.js';

/**
 * Tokens runplane puts into a job's environment (RUNPLANE_RUN_TOKEN, RUNPLANE_POD_TOKEN, …) are
 * secrets: the API shows that they are set, never their value.
 */
const isRunplaneSecret = (key: string) => key.startsWith('RUNPLANE_') && key.endsWith('_TOKEN');

function redactEnv(env: Record<string, string>): Record<string, string> {
  if (!Object.keys(env).some(isRunplaneSecret)) return env;
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, isRunplaneSecret(k) ? '***' : v]));
}

/** Maps stored rows to their wire shape (snake_case, RFC 3339 times). */
export function jobView(row: JobRow, attempts?: AttemptRow[]): JobView {
  return {
    job_id: row.id,
    name: row.name,
    state: row.state as JobState,
    reason: row.reason,
    command: JSON.parse(row.command) as string[],
    env: redactEnv(JSON.parse(row.env) as Record<string, string>),
    cwd: row.cwd,
    setup: row.setup ? (JSON.parse(row.setup) as string[]) : null,
    resources: { cpu: row.cpu, memory_mb: row.memory_mb, gpu: row.gpu, device_type: row.device_type },
    labels: JSON.parse(row.labels) as Record<string, string>,
    max_retries_failure: row.max_retries_failure,
    max_retries_preemption: row.max_retries_preemption,
    scheduling_timeout_s: row.scheduling_timeout_s,
    parent_job_id: row.parent_job_id,
    gang: row.gang_id ? { id: row.gang_id, size: row.gang_size ?? 1 } : null,
    run_id: row.run_id,
    failure_count: row.failure_count,
    preemption_count: row.preemption_count,
    current_attempt_id: row.current_attempt_id,
    ...(attempts ? { attempts: attempts.map(attemptView) } : {}),
    submitted_at: toIso(row.submitted_at),
    started_at: toIso(row.started_at),
    finished_at: toIso(row.finished_at),
    updated_at: toIso(row.updated_at),
  };
}

export function attemptView(a: AttemptRow): AttemptView {
  return {
    attempt_id: a.id,
    attempt_no: a.attempt_no,
    worker_id: a.worker_id,
    state: a.state,
    exit_code: a.exit_code,
    reason: a.reason,
    assigned_at: toIso(a.assigned_at),
    started_at: toIso(a.started_at),
    finished_at: toIso(a.finished_at),
  };
}

export function endpointView(e: EndpointRow): EndpointView {
  return {
    endpoint_id: e.id,
    name: e.name,
    address: e.address,
    metadata: JSON.parse(e.metadata) as Record<string, string>,
    job_id: e.job_id,
    created_at: toIso(e.created_at),
  };
}
