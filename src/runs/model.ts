/**
 * Runs slice — pure model. No I/O here.
 *
 * Glossary
 * - run: the lifecycle of one training process (its learner), from creation to an end state.
 *   `status` is what the run is doing; `health` is what the orchestrator knows of its liveness.
 * - heartbeat: a learner's periodic report (status, step, samples/s, loss, checkpoint version).
 *   `step` and `checkpoint_version` never go back; a heartbeat sooner than the minimum interval
 *   after the last accepted one is throttled (429).
 * - liveness: no valid heartbeat for `staleAfter` → heartbeat_stale; for `unresponsiveAfter` →
 *   unresponsive (and a terminate recommendation). An operator may extend both deadlines; the
 *   next valid heartbeat restores healthy and clears the extension.
 * - command: a control envelope (tune, pause, resume, terminate) for a run's learner, delivered
 *   at least once by long-poll and acknowledged by the learner.
 */

export const RUN_STATUSES = [
  'queued',
  'provisioning',
  'running',
  'paused',
  'terminating',
  'completed',
  'failed',
  'errored',
  'terminated',
] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

export const RUN_HEALTHS = ['healthy', 'heartbeat_stale', 'unresponsive'] as const;
export type RunHealth = (typeof RUN_HEALTHS)[number];

/** What a learner may report about itself (the seed's heartbeat `status` enum). */
export const HEARTBEAT_STATUSES = ['running', 'paused', 'terminating', 'errored'] as const;
export type HeartbeatStatus = (typeof HEARTBEAT_STATUSES)[number];

/** How a learner (or its job) may say the run ended. */
export const FINISH_STATUSES = ['completed', 'failed', 'terminated'] as const;
export type FinishStatus = (typeof FINISH_STATUSES)[number];

/**
 * Final statuses: nothing moves a run out of them. `errored` is not final: it mirrors a learner
 * that reported an error and may still be alive (it keeps heartbeating, can recover, and is
 * ended by its job or by a finish).
 */
export const ENDED_STATUSES: ReadonlySet<RunStatus> = new Set(['completed', 'failed', 'terminated']);

export function isEnded(status: RunStatus): boolean {
  return ENDED_STATUSES.has(status);
}

/** Statuses in which a learner is expected to be alive and heartbeating. */
export const WATCHED_STATUSES: readonly RunStatus[] = ['running', 'paused', 'terminating', 'errored'];

/**
 * The status a heartbeat leaves the run in. The learner's own view wins, except that an
 * operator's terminate (terminating) is not undone by a learner that has not seen it yet,
 * and an ended run stays ended.
 */
export function statusAfterHeartbeat(current: RunStatus, reported: HeartbeatStatus): RunStatus {
  if (isEnded(current)) return current;
  if (current === 'terminating' && (reported === 'running' || reported === 'paused')) return current;
  return reported;
}

export interface LivenessPolicy {
  staleAfterMs: number;
  unresponsiveAfterMs: number;
}

/** Health from the time since the last valid heartbeat (plus any operator extension). */
export function healthAt(
  lastHeartbeatAt: number,
  extensionMs: number,
  now: number,
  p: LivenessPolicy,
): RunHealth {
  const silent = now - lastHeartbeatAt - extensionMs;
  if (silent >= p.unresponsiveAfterMs) return 'unresponsive';
  if (silent >= p.staleAfterMs) return 'heartbeat_stale';
  return 'healthy';
}

/**
 * The liveness monitor only escalates (healthy → stale → unresponsive); only a heartbeat
 * brings a run back, so an extension delays escalation but never hides an incident.
 */
export function escalate(current: RunHealth, computed: RunHealth): RunHealth {
  return RUN_HEALTHS.indexOf(computed) > RUN_HEALTHS.indexOf(current) ? computed : current;
}

/** A run ended by its job: how the job's terminal state maps onto the run. */
export function statusForEndedJob(
  jobState: string,
  current: RunStatus,
  terminateRequested: boolean,
): RunStatus | null {
  if (isEnded(current)) return null;
  if (terminateRequested || current === 'terminating' || jobState === 'KILLED') return 'terminated';
  if (jobState === 'SUCCEEDED') return 'completed';
  return 'failed';
}

// ---- Commands ----

export const COMMAND_TYPES = ['tune', 'pause', 'resume', 'terminate'] as const;
export type CommandType = (typeof COMMAND_TYPES)[number];

/** Tunables and their inclusive/exclusive bounds, as the seed's TuneCommand schema. */
export const TUNABLES = {
  learning_rate: { min: 0, max: 1, minExclusive: true },
  entropy_coef: { min: 0, max: 0.1, minExclusive: false },
  clip_epsilon: { min: 0.05, max: 0.3, minExclusive: false },
} as const;

export const TERMINATE_REASON_MAX = 256;

/**
 * The run status a command requires, checked when it is accepted: pause only while running,
 * resume only while paused, nothing for an ended run.
 */
export function commandAllowed(
  type: CommandType,
  status: RunStatus,
): { ok: true } | { ok: false; why: string } {
  if (isEnded(status)) return { ok: false, why: `run has already ended (${status})` };
  if (type === 'pause' && status !== 'running')
    return { ok: false, why: `pause needs a running run; it is ${status}` };
  if (type === 'resume' && status !== 'paused')
    return { ok: false, why: `resume needs a paused run; it is ${status}` };
  return { ok: true };
}

/** The status an acknowledged command moves the run to (null: unchanged). */
export function statusAfterAck(type: CommandType, current: RunStatus): RunStatus | null {
  if (isEnded(current)) return null;
  if (type === 'pause' && current === 'running') return 'paused';
  if (type === 'resume' && current === 'paused') return 'running';
  if (type === 'terminate' && current !== 'terminating') return 'terminating';
  return null;
}

/**
 * Evenly thins a long series to at most `max` points, always keeping the first and last: the
 * chart of a million-step run stays a few hundred points.
 */
export function downsample<T>(points: readonly T[], max: number): T[] {
  if (points.length <= max) return points.slice();
  if (max < 2) return points.slice(-1);
  const out: T[] = [];
  const stride = (points.length - 1) / (max - 1);
  for (let i = 0; i < max; i++) {
    const p = points[Math.round(i * stride)];
    if (p !== undefined) out.push(p);
  }
  return out;
}
