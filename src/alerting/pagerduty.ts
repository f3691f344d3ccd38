/**
 * PagerDuty Events API v2 events for unresponsive runs (pure). One incident per run: the
 * dedup key is `runplane-run-<run_id>`, so a repeated trigger joins the open incident and the
 * resolve closes it. PagerDuty answers 202; 400 means the event is invalid (retrying cannot
 * help), 429 and 5xx mean try again later.
 */
import type { StoredEvent } from '../events/catalog.js';
import { type PagerDutyAlert, runUrl } from './model.js';

export interface PagerDutyContext {
  routingKey: string;
  publicUrl: string | null;
  /** Where the events come from: the controller's public host, else this machine's name. */
  source: string;
  unresponsiveAfterMs: number;
}

export interface PagerDutyTrigger {
  routing_key: string;
  event_action: 'trigger';
  dedup_key: string;
  payload: {
    summary: string;
    source: string;
    severity: 'critical';
    timestamp: string;
    component: string;
    group: string;
    class: string;
    custom_details: Record<string, unknown>;
  };
  client: string;
  client_url?: string;
  links?: Array<{ href: string; text: string }>;
}

export interface PagerDutyResolve {
  routing_key: string;
  event_action: 'resolve';
  dedup_key: string;
}

export type PagerDutyEvent = PagerDutyTrigger | PagerDutyResolve;

/** PagerDuty's limits: dedup_key up to 255 characters, summary up to 1024. */
export function dedupKey(runId: string): string {
  return `runplane-run-${runId}`.slice(0, 255);
}

export function pagerdutyEvent(
  alert: PagerDutyAlert,
  ev: StoredEvent,
  ctx: PagerDutyContext,
): PagerDutyEvent {
  const run = alert.run;
  if (alert.action === 'resolve')
    return { routing_key: ctx.routingKey, event_action: 'resolve', dedup_key: dedupKey(run.run_id) };
  const url = runUrl(ctx.publicUrl, run.run_id);
  const summary =
    `Run ${run.run_id} is unresponsive: no valid heartbeat for ${Math.round(ctx.unresponsiveAfterMs / 1000)} s ` +
    `(status ${run.status}, step ${run.step ?? 'unknown'})`;
  return {
    routing_key: ctx.routingKey,
    event_action: 'trigger',
    dedup_key: dedupKey(run.run_id),
    payload: {
      summary: summary.slice(0, 1024),
      source: ctx.source,
      severity: 'critical',
      timestamp: new Date(ev.created_at).toISOString(),
      component: 'learner',
      group: 'runplane-runs',
      class: 'run_unresponsive',
      custom_details: {
        run_id: run.run_id,
        status: run.status,
        health: run.health,
        previous_health: run.previous_health,
        step: run.step,
        samples_per_sec: run.samples_per_sec,
        loss: run.loss,
        last_error: run.last_error,
        event_id: ev.id,
        recommendation: 'terminate the run, or extend its liveness with POST /api/v1/runs/{run_id}/liveness',
      },
    },
    client: 'runplane',
    ...(ctx.publicUrl ? { client_url: ctx.publicUrl } : {}),
    ...(url ? { links: [{ href: url, text: `Run ${run.run_id}` }] } : {}),
  };
}
