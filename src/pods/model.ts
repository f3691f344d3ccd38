/**
 * Pods slice — pure model. No I/O here.
 *
 * Glossary
 * - participant: an id of whatever is evaluated (a deck, a policy checkpoint), with an optional
 *   model version; a new version resets every pod it plays in.
 * - pod: four distinct participants, a seed and a config. The same participants + seed + config
 *   is the same pod (its spec hash is unique), so creating it twice returns the first.
 * - epoch: one simulation job of `size` games of a pod; numbered 1, 2, ... over the pod's life.
 *   An epoch that fails, or ends with fewer games than asked, is retried with backoff (a new
 *   attempt of the same epoch, same games: results are idempotent by game_id) until it gives up.
 * - game: one simulated game with a placement 1..4 per participant (ties allowed).
 * - evidence: per participant, the placements seen, decayed by `evidence_decay` at each reset;
 *   the Bayesian evaluator's posterior is built from it.
 * - status: ready (may be dispatched) → active (an epoch in flight) → ready ... → converged
 *   (outcome known, or max_epochs_per_pod reached; never simulated again) → archived.
 *   A reset returns a pod to ready; archived is final.
 */
import { createHash } from 'node:crypto';
import type { JobRequest } from '../jobs/schemas.js';
import { canonicalJson } from '../shared/canonical-json.js';

export const POD_STATUSES = ['ready', 'active', 'converged', 'archived'] as const;
export type PodStatus = (typeof POD_STATUSES)[number];

export const EPOCH_STATUSES = [
  'launching',
  'running',
  'retry_wait',
  'completed',
  'failed',
  'cancelled',
] as const;
export type EpochStatus = (typeof EPOCH_STATUSES)[number];
/** Epoch statuses that hold the pod active. */
export const IN_FLIGHT_EPOCH: ReadonlySet<EpochStatus> = new Set(['launching', 'running', 'retry_wait']);

/** Why a converged pod stopped. */
export type StopReason = 'confidence_target_met' | 'max_epochs';

export interface SimulationTemplate {
  command: string[];
  env?: Record<string, string>;
  cwd?: string;
  resources?: JobRequest['resources'];
  labels?: Record<string, string>;
}

export interface PodConfig {
  /** Games per epoch; with adaptive scaling, the largest epoch. */
  epoch_size: number;
  /** The confidence at which intervals and the ranking must hold, in (0.5, 1). */
  confidence_target: number;
  /** Largest acceptable credible-interval width of an expected placement (placements 1..4). */
  precision: number;
  /** Epochs since the last reset after which the pod stops even if not converged. */
  max_epochs_per_pod: number;
  adaptive_scaling: boolean;
  /** Dirichlet prior concentration per placement. */
  prior: number;
  /** Factor applied to old evidence at a reset (0 forgets it, 1 keeps it). */
  evidence_decay: number;
  /** A converged pod is reset this long after converging (null: never). */
  expire_after_s: number | null;
  /** Attempts per epoch before giving up. */
  max_attempts: number;
  /** Backoff before retrying an epoch: base · 2^(attempt-1), capped. */
  retry_backoff_s: number;
  retry_backoff_max_s: number;
  /** The simulation job: its environment gets the pod's participants, seed, epoch and size. */
  simulation: SimulationTemplate | null;
}

export const DEFAULT_POD_CONFIG: PodConfig = {
  epoch_size: 100,
  confidence_target: 0.99,
  precision: 0.5,
  max_epochs_per_pod: 50,
  adaptive_scaling: true,
  prior: 1,
  evidence_decay: 0.5,
  expire_after_s: null,
  max_attempts: 3,
  retry_backoff_s: 2,
  retry_backoff_max_s: 300,
  simulation: null,
};

/** Fills in defaults, so `{}` and the explicit defaults are the same config (and the same pod). */
export function normalizeConfig(partial: Partial<PodConfig>): PodConfig {
  const out: PodConfig = { ...DEFAULT_POD_CONFIG };
  for (const [k, v] of Object.entries(partial))
    if (v !== undefined) (out as unknown as Record<string, unknown>)[k] = v;
  return out;
}

/** The identity of a pod: participants (as a set), seed and normalized config. */
export function specHash(participants: readonly string[], seed: number, config: PodConfig): string {
  return createHash('sha256')
    .update(canonicalJson({ participants: [...participants].sort(), seed, config }))
    .digest('hex');
}

/** Problems with a pod definition that a schema cannot express; empty when it is valid. */
export function definitionProblems(
  participants: readonly string[],
  config: PodConfig,
): Array<{ field: string; code: string; message: string }> {
  const out: Array<{ field: string; code: string; message: string }> = [];
  if (participants.length !== 4)
    out.push({ field: 'participants', code: 'INVALID_LENGTH', message: 'a pod has exactly 4 participants' });
  else if (new Set(participants).size !== 4)
    out.push({
      field: 'participants',
      code: 'DUPLICATE_PARTICIPANT',
      message: 'the 4 participants must be distinct',
    });
  if (!(config.confidence_target > 0.5 && config.confidence_target < 1))
    out.push({ field: 'config.confidence_target', code: 'OUT_OF_RANGE', message: 'must be in (0.5, 1)' });
  if (config.retry_backoff_max_s < config.retry_backoff_s)
    out.push({
      field: 'config.retry_backoff_max_s',
      code: 'OUT_OF_RANGE',
      message: 'must not be below retry_backoff_s',
    });
  return out;
}

/** Delay before attempt `attempt + 1` of an epoch whose attempt `attempt` failed. */
export function retryDelayMs(
  attempt: number,
  config: Pick<PodConfig, 'retry_backoff_s' | 'retry_backoff_max_s'>,
): number {
  const s = Math.min(config.retry_backoff_max_s, config.retry_backoff_s * 2 ** Math.max(0, attempt - 1));
  return Math.round(s * 1000);
}

export type EpochEnd =
  | { kind: 'completed' }
  | { kind: 'retry'; reason: string }
  | { kind: 'failed'; reason: string }
  | { kind: 'cancelled'; reason: string };

/** What an epoch becomes when its simulation job ends. */
export function epochEnd(e: {
  jobState: string;
  jobReason: string | null;
  gamesReceived: number;
  size: number;
  attempt: number;
  maxAttempts: number;
}): EpochEnd {
  if (e.jobState === 'KILLED')
    return { kind: 'cancelled', reason: `simulation job killed${e.jobReason ? `: ${e.jobReason}` : ''}` };
  let reason: string;
  if (e.jobState === 'SUCCEEDED') {
    if (e.gamesReceived >= e.size) return { kind: 'completed' };
    reason = `incomplete: ${e.gamesReceived} of ${e.size} games reported`;
  } else {
    reason = `simulation job ${e.jobState}${e.jobReason ? `: ${e.jobReason}` : ''}`;
  }
  if (e.attempt >= e.maxAttempts)
    return { kind: 'failed', reason: `gave up after ${e.attempt} attempts; ${reason}` };
  return { kind: 'retry', reason };
}

/** Every game must place exactly the pod's participants, each at 1..4. */
export function gameProblems(
  participants: readonly string[],
  placements: Readonly<Record<string, number>>,
  field: string,
): Array<{ field: string; code: string; message: string }> {
  const out: Array<{ field: string; code: string; message: string }> = [];
  const expected = new Set(participants);
  for (const [p, place] of Object.entries(placements)) {
    if (!expected.has(p))
      out.push({ field: `${field}.${p}`, code: 'UNKNOWN_PARTICIPANT', message: `${p} is not in this pod` });
    else if (!Number.isInteger(place) || place < 1 || place > 4)
      out.push({ field: `${field}.${p}`, code: 'OUT_OF_RANGE', message: 'a placement is an integer 1..4' });
  }
  for (const p of participants)
    if (!(p in placements))
      out.push({ field: `${field}.${p}`, code: 'MISSING_PARTICIPANT', message: `no placement for ${p}` });
  return out;
}

/** The unique job name of an epoch attempt: launching it twice finds the first. */
export function epochJobName(podId: string, epoch: number, attempt: number): string {
  return `${podId}-epoch-${epoch}-attempt-${attempt}`;
}

export const POD_LABEL = 'runplane.pod';
export const EPOCH_LABEL = 'runplane.pod_epoch';
export const ATTEMPT_LABEL = 'runplane.pod_attempt';

/** The job of one epoch attempt: the template plus the pod's coordinates in its environment. */
export function epochJob(p: {
  podId: string;
  participants: readonly string[];
  seed: number;
  epoch: number;
  attempt: number;
  size: number;
  template: SimulationTemplate;
  token: string | null;
}): JobRequest {
  const t = p.template;
  return {
    name: epochJobName(p.podId, p.epoch, p.attempt),
    command: t.command,
    env: {
      ...t.env,
      RUNPLANE_POD_ID: p.podId,
      RUNPLANE_POD_PARTICIPANTS: p.participants.join(','),
      RUNPLANE_POD_SEED: String(p.seed),
      RUNPLANE_POD_EPOCH: String(p.epoch),
      RUNPLANE_POD_EPOCH_SIZE: String(p.size),
      RUNPLANE_POD_ATTEMPT: String(p.attempt),
      ...(p.token ? { RUNPLANE_TOKEN: p.token } : {}),
    },
    ...(t.cwd ? { cwd: t.cwd } : {}),
    ...(t.resources ? { resources: t.resources } : {}),
    labels: {
      ...t.labels,
      [POD_LABEL]: p.podId,
      [EPOCH_LABEL]: String(p.epoch),
      [ATTEMPT_LABEL]: String(p.attempt),
    },
    // Retries are the pod's (with backoff and a record); the job itself runs once.
    max_retries_failure: 0,
  };
}
