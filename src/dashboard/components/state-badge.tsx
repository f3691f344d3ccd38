/**
 * State badges: one map per kind of state, from each value the API sends to the tone it is drawn
 * in (`badge tone-ok|warn|bad|idle|muted`). A map lists its kind's values in their lifecycle
 * order, so it is also where the views take their filter options and count rows from
 * (`statesOf('job')`). A value a map does not know (a newer server's) is drawn `idle`.
 */

export type Tone = 'ok' | 'warn' | 'bad' | 'idle' | 'muted';

const TONES = {
  /** Jobs and their attempts (src/jobs/model.ts). */
  job: {
    PENDING: 'idle',
    BUILDING: 'idle',
    RUNNING: 'ok',
    SUCCEEDED: 'ok',
    FAILED: 'bad',
    KILLED: 'muted',
    WORKER_FAILED: 'bad',
    UNSCHEDULABLE: 'bad',
  },
  /** A run's `status`. */
  run: {
    queued: 'idle',
    provisioning: 'idle',
    running: 'ok',
    paused: 'warn',
    terminating: 'warn',
    completed: 'ok',
    failed: 'bad',
    errored: 'bad',
    terminated: 'muted',
  },
  /** A run's `health` (liveness as the orchestrator sees it). */
  health: { healthy: 'ok', heartbeat_stale: 'warn', unresponsive: 'bad' },
  /** A control command's type. */
  command: { tune: 'idle', pause: 'idle', resume: 'idle', terminate: 'idle' },
  worker: { healthy: 'ok', unhealthy: 'bad', offline: 'muted' },
  /** The controller's aggregated health (`GET /health`), or what the overview knows without it. */
  service: { ok: 'ok', healthy: 'ok', degraded: 'warn', unhealthy: 'bad', unreachable: 'bad' },
  /** An alert sink's delivery. */
  sink: { ok: 'ok', failed: 'bad' },
  /** The audit hash chain's verification. */
  chain: { ok: 'ok', failed: 'bad' },
  sweep: { running: 'ok', stopping: 'warn', stopped: 'muted', completed: 'ok', failed: 'bad' },
  trial: {
    PENDING: 'idle',
    IN_TRAINING: 'idle',
    TRAINING_DONE_NO_EVAL: 'idle',
    IN_EVAL: 'idle',
    EVAL_DONE_NOT_COMPLETED: 'idle',
    COMPLETED: 'ok',
    FAILED: 'bad',
    STALE: 'warn',
    PRUNED: 'muted',
  },
  /** Pods, in the order the status board shows its columns. */
  pod: { active: 'ok', ready: 'idle', converged: 'ok', archived: 'muted' },
  epoch: {
    launching: 'idle',
    running: 'ok',
    retry_wait: 'warn',
    completed: 'ok',
    failed: 'bad',
    cancelled: 'muted',
  },
  /** A pipeline's stage, in pipeline order. */
  stage: {
    IDLE: 'idle',
    SELFPLAY: 'idle',
    DATA_SYNC: 'idle',
    NPZ_EXPORT: 'idle',
    TRAINING: 'idle',
    EVALUATION: 'idle',
    PROMOTION: 'idle',
    COMPLETE: 'ok',
  },
  pipeline: { running: 'ok', breaker_open: 'bad', completed: 'ok', stopped: 'muted' },
  breaker: { closed: 'ok', half_open: 'warn', open: 'bad' },
  model: {
    training: 'idle',
    evaluating: 'idle',
    staging: 'idle',
    production: 'ok',
    rolled_back: 'warn',
    archived: 'muted',
  },
  /** A dead letter's status. */
  dlq: { pending: 'idle', recovered: 'ok', abandoned: 'bad' },
} as const satisfies Record<string, Record<string, Tone>>;

export type StateKind = keyof typeof TONES;

/** The tone a value of a kind is drawn in. */
export function toneOf(kind: StateKind, value: string): Tone {
  const tones: Readonly<Record<string, Tone>> = TONES[kind];
  return Object.hasOwn(tones, value) ? (tones[value] ?? 'idle') : 'idle';
}

/** Every value of a kind, in lifecycle order (filters, count tables). */
export function statesOf(kind: StateKind): string[] {
  return Object.keys(TONES[kind]);
}

/** A value shown as a badge in its kind's tone; `—` when there is none. */
export function StateBadge({ kind, value }: { kind: StateKind; value: string | null | undefined }) {
  const v = value ?? '—';
  return <span class={`badge tone-${toneOf(kind, v)}`}>{v}</span>;
}
