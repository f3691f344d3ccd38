/**
 * Alerting — pure model: which outbox events alert which sink (no I/O).
 *
 * Glossary
 * - sink: one external service alerts go to: `slack` (incoming webhook), `pagerduty` (Events
 *   API v2) or `webhook` (a generic, signed JSON webhook for an incident pipeline).
 * - alert: what one event means for one sink, or nothing. Only transitions alert: a
 *   `run.status` event whose health and status equal the previous ones (an ordinary heartbeat)
 *   means nothing to any sink.
 * - state key: the per-run state an alert puts a sink in (e.g. PagerDuty `trigger` /
 *   `resolve`); a sink skips an alert whose state key equals the last one it sent for that run,
 *   which coalesces repeated states as the seed asks of level-triggered consumers, and one from
 *   an event older than the one that sent that state (superseded: a dead letter retried late).
 */
import type { EventPayloads, StoredEvent } from '../events/catalog.js';

export const SINK_NAMES = ['slack', 'pagerduty', 'webhook'] as const;
export type SinkName = (typeof SINK_NAMES)[number];

/** A sink that failed this many times in a row (retries included) reports ok=false. */
export const UNHEALTHY_AFTER_FAILURES = 3;

/** Health of one sink, as served by `GET /api/v1/alerts/sinks`. */
export interface SinkHealth {
  name: SinkName;
  /** The durable relay subscriber that feeds it. */
  subscriber: string;
  configured: boolean;
  /** Scheme and host the sink posts to (never the path: Slack's holds its secret). */
  target: string | null;
  ok: boolean;
  consecutive_failures: number;
  last_error: string | null;
  last_success_at: string | null;
  last_failure_at: string | null;
  delivered: number;
  dropped: number;
}

export type RunStatusPayload = EventPayloads['run.status'];
export type TerminateRecommendedPayload = EventPayloads['run.terminate_recommended'];

/**
 * Statuses after which a run does nothing more (as src/runs/model.ts: an errored learner may
 * still heartbeat, so errored is watched for liveness and can page).
 */
const ENDED = new Set(['completed', 'failed', 'terminated']);

const str = (v: unknown): v is string => typeof v === 'string';
const numOrNull = (v: unknown): v is number | null => v === null || typeof v === 'number';
const strOrNull = (v: unknown): v is string | null => v === null || typeof v === 'string';

/**
 * The `run.status` payload of an event, or null when the event is another type or its payload
 * is not the catalog's shape (an event log outlives code versions; a bad row must not wedge a sink).
 */
export function runStatusOf(ev: StoredEvent): RunStatusPayload | null {
  if (ev.type !== 'run.status' || typeof ev.payload !== 'object' || ev.payload === null) return null;
  const p = ev.payload as Record<string, unknown>;
  if (
    !str(p.run_id) ||
    !str(p.status) ||
    !str(p.health) ||
    !str(p.previous_status) ||
    !str(p.previous_health)
  )
    return null;
  return {
    run_id: p.run_id,
    status: p.status,
    health: p.health,
    previous_status: p.previous_status,
    previous_health: p.previous_health,
    step: numOrNull(p.step) ? p.step : null,
    samples_per_sec: numOrNull(p.samples_per_sec) ? p.samples_per_sec : null,
    loss: numOrNull(p.loss) ? p.loss : null,
    last_error: strOrNull(p.last_error) ? p.last_error : null,
    cause: str(p.cause) ? p.cause : 'unknown',
  };
}

export function terminateRecommendedOf(ev: StoredEvent): TerminateRecommendedPayload | null {
  if (ev.type !== 'run.terminate_recommended' || typeof ev.payload !== 'object' || ev.payload === null)
    return null;
  const p = ev.payload as Record<string, unknown>;
  if (!str(p.run_id)) return null;
  return {
    run_id: p.run_id,
    reason: str(p.reason) ? p.reason : 'run is unresponsive',
    last_heartbeat_at: strOrNull(p.last_heartbeat_at) ? p.last_heartbeat_at : null,
  };
}

export type SlackAlert =
  | { kind: 'stale'; run: RunStatusPayload }
  | { kind: 'recovered'; run: RunStatusPayload };

/**
 * Slack hears when a run stops being healthy (normally to heartbeat_stale; also straight to
 * unresponsive when the liveness sweep saw both thresholds pass at once) and when it is healthy
 * again, so every warning in the channel is followed by its recovery note.
 */
export function slackAlertFor(ev: StoredEvent): SlackAlert | null {
  const run = runStatusOf(ev);
  if (!run || run.health === run.previous_health) return null;
  if (run.previous_health === 'healthy') return ENDED.has(run.status) ? null : { kind: 'stale', run };
  if (run.health === 'healthy') return { kind: 'recovered', run };
  return null;
}

export type PagerDutyAlert =
  | { action: 'trigger'; run: RunStatusPayload }
  | { action: 'resolve'; run: RunStatusPayload; why: 'recovered' | 'ended' };

/**
 * PagerDuty opens an incident when a run becomes unresponsive and resolves it when the run is
 * healthy again, or when the run ends while unresponsive (terminating it is the recommended
 * remedy, and an incident left open after that would page for nothing).
 */
export function pagerdutyAlertFor(ev: StoredEvent): PagerDutyAlert | null {
  const run = runStatusOf(ev);
  if (!run) return null;
  if (run.health === 'unresponsive' && run.previous_health !== 'unresponsive' && !ENDED.has(run.status))
    return { action: 'trigger', run };
  if (run.previous_health === 'unresponsive' && run.health === 'healthy')
    return { action: 'resolve', run, why: 'recovered' };
  const ended = ENDED.has(run.status) && !ENDED.has(run.previous_status);
  if (ended && (run.health === 'unresponsive' || run.previous_health === 'unresponsive'))
    return { action: 'resolve', run, why: 'ended' };
  return null;
}

export type WebhookAlert =
  | { type: 'run.terminate' | 'run.errored'; run: RunStatusPayload }
  | { type: 'run.terminate_recommended'; recommendation: TerminateRecommendedPayload };

/** The incident pipeline hears of runs terminating, terminated or errored, and of every recommendation. */
export function webhookAlertFor(ev: StoredEvent): WebhookAlert | null {
  const rec = terminateRecommendedOf(ev);
  if (rec) return { type: 'run.terminate_recommended', recommendation: rec };
  const run = runStatusOf(ev);
  if (!run || run.status === run.previous_status) return null;
  if (run.status === 'terminating' || run.status === 'terminated') return { type: 'run.terminate', run };
  if (run.status === 'errored') return { type: 'run.errored', run };
  return null;
}

/** A link to the run for humans, when the controller knows its public URL. */
export function runUrl(publicUrl: string | null, runId: string): string | null {
  return publicUrl ? `${publicUrl.replace(/\/+$/, '')}/api/v1/runs/${encodeURIComponent(runId)}` : null;
}
