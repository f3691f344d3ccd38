/**
 * The generic alert webhook (pure): one structured JSON document per terminate / errored event
 * and per terminate recommendation, signed so the incident pipeline can check it came from
 * this controller (the seed: alerting ingests only orchestrator-signed events).
 */
import { createHmac } from 'node:crypto';
import type { StoredEvent } from '../events/catalog.js';
import { runUrl, type WebhookAlert } from './model.js';

export interface WebhookDocument {
  /** The outbox event id: receivers dedupe on it (delivery is at least once). */
  id: string;
  type: WebhookAlert['type'];
  occurred_at: string;
  source: 'runplane';
  run: Record<string, unknown>;
  /** For run.terminate / run.errored: the state the run left, and what moved it. */
  previous?: { status: string; health: string };
  cause?: string;
  /** For run.terminate_recommended: why. */
  reason?: string;
}

export function webhookDocument(
  alert: WebhookAlert,
  ev: StoredEvent,
  publicUrl: string | null,
): WebhookDocument {
  const base = { id: ev.id, type: alert.type, occurred_at: new Date(ev.created_at).toISOString() };
  if (alert.type === 'run.terminate_recommended') {
    const r = alert.recommendation;
    return {
      ...base,
      source: 'runplane',
      run: {
        run_id: r.run_id,
        health: 'unresponsive',
        last_heartbeat_at: r.last_heartbeat_at,
        url: runUrl(publicUrl, r.run_id),
      },
      reason: r.reason,
    };
  }
  const run = alert.run;
  return {
    ...base,
    source: 'runplane',
    run: {
      run_id: run.run_id,
      status: run.status,
      health: run.health,
      step: run.step,
      samples_per_sec: run.samples_per_sec,
      loss: run.loss,
      last_error: run.last_error,
      url: runUrl(publicUrl, run.run_id),
    },
    previous: { status: run.previous_status, health: run.previous_health },
    cause: run.cause,
  };
}

/** `sha256=<hex>` of HMAC-SHA256 over the exact body bytes sent (GitHub's webhook convention). */
export function signature(body: string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body, 'utf8').digest('hex')}`;
}
