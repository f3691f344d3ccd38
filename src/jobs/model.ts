/**
 * Jobs slice — pure model. No I/O here.
 *
 * Glossary
 * - job: a command (argv, env, cwd, resources) to run on a worker. Its `state` is the state of
 *   its latest attempt while that attempt is active, PENDING while it waits for a (re)placement,
 *   and the final outcome once terminal.
 * - attempt: one execution of a job on one worker. A retry is a new attempt; reports about an
 *   attempt that is no longer the job's current one are ignored.
 * - worker: an agent with capacity (cpu, memory, gpu, device type, labels) that runs attempts.
 * - gang: jobs sharing `gang.id`; the pending members are placed together or not at all, and when
 *   one member fails past its retries the others are killed.
 * - endpoint: a named address registered by a job; visible only while that job is RUNNING.
 */

/** The job environment variable holding its run's learner token; the API never shows its value. */
export const RUN_TOKEN_ENV = 'RUNPLANE_RUN_TOKEN';

export const JOB_STATES = [
  'PENDING',
  'BUILDING',
  'RUNNING',
  'SUCCEEDED',
  'FAILED',
  'KILLED',
  'WORKER_FAILED',
  'UNSCHEDULABLE',
] as const;
export type JobState = (typeof JOB_STATES)[number];

export const TERMINAL_JOB_STATES: ReadonlySet<JobState> = new Set([
  'SUCCEEDED',
  'FAILED',
  'KILLED',
  'WORKER_FAILED',
  'UNSCHEDULABLE',
]);
export type AttemptState = 'BUILDING' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'KILLED' | 'WORKER_FAILED';

export function isTerminal(state: JobState): boolean {
  return TERMINAL_JOB_STATES.has(state);
}

/** The jobs that ended, of a batch of `job.state_changed` events (see EventBatchPrepare). */
export function endedJobIds(events: ReadonlyArray<{ payload: unknown }>): string[] {
  return events
    .map((ev) => ev.payload as { job_id: string; state: string })
    .filter((p) => TERMINAL_JOB_STATES.has(p.state as JobState))
    .map((p) => p.job_id);
}
export interface Resources {
  cpu: number;
  memory_mb: number;
  gpu: number;
  /** Required accelerator kind (e.g. "a100"); null means any worker. */
  device_type: string | null;
}

export const DEFAULT_RESOURCES: Resources = { cpu: 1, memory_mb: 0, gpu: 0, device_type: null };

/**
 * Transitions an attempt may take on a report from its worker. BUILDING is set by placement.
 * The seed's diagram: PENDING → BUILDING → RUNNING → SUCCEEDED, with FAILED from BUILDING or
 * RUNNING; KILLED and WORKER_FAILED may interrupt either active state.
 */
const ATTEMPT_TRANSITIONS: Record<AttemptState, readonly AttemptState[]> = {
  BUILDING: ['RUNNING', 'FAILED', 'KILLED', 'WORKER_FAILED'],
  RUNNING: ['SUCCEEDED', 'FAILED', 'KILLED', 'WORKER_FAILED'],
  SUCCEEDED: [],
  FAILED: [],
  KILLED: [],
  WORKER_FAILED: [],
};

export function canTransition(from: AttemptState, to: AttemptState): boolean {
  return ATTEMPT_TRANSITIONS[from].includes(to);
}

export interface RetryPolicy {
  max_retries_failure: number;
  max_retries_preemption: number;
}

export interface RetryCounters {
  failure_count: number;
  preemption_count: number;
}

export type AttemptOutcome = 'SUCCEEDED' | 'FAILED' | 'KILLED' | 'WORKER_FAILED';

/**
 * What the job does after an attempt ends. A FAILED attempt is retried while
 * failure_count (after counting this one) <= max_retries_failure; a WORKER_FAILED one while
 * preemption_count <= max_retries_preemption. A killed job never retries.
 */
export function afterAttempt(
  outcome: AttemptOutcome,
  policy: RetryPolicy,
  counters: RetryCounters,
  terminateRequested: boolean,
): { next: JobState; counters: RetryCounters; retry: boolean } {
  const c = { ...counters };
  if (outcome === 'FAILED') c.failure_count += 1;
  if (outcome === 'WORKER_FAILED') c.preemption_count += 1;
  if (terminateRequested || outcome === 'KILLED') return { next: 'KILLED', counters: c, retry: false };
  if (outcome === 'SUCCEEDED') return { next: 'SUCCEEDED', counters: c, retry: false };
  if (outcome === 'FAILED' && c.failure_count <= policy.max_retries_failure) {
    return { next: 'PENDING', counters: c, retry: true };
  }
  if (outcome === 'WORKER_FAILED' && c.preemption_count <= policy.max_retries_preemption) {
    return { next: 'PENDING', counters: c, retry: true };
  }
  return { next: outcome, counters: c, retry: false };
}

export function describeResources(r: Resources): string {
  const parts = [`cpu=${r.cpu}`, `memory_mb=${r.memory_mb}`, `gpu=${r.gpu}`];
  if (r.device_type) parts.push(`device_type=${r.device_type}`);
  return parts.join(' ');
}
