/**
 * One HTTP attempt per alert, and the bookkeeping of one sink: its health, the events it has
 * already handled, and the last state it sent per run. Retrying is the event relay's job: a
 * retryable failure throws, so the relay backs off and hands the same event again from the
 * same cursor; a permanent one is counted, logged and skipped so it cannot block the sink.
 */
import type { Logger } from 'pino';
import type { StoredEvent } from '../events/catalog.js';
import { type Clock, toIso } from '../shared/clock.js';
import { type SinkHealth, type SinkName, UNHEALTHY_AFTER_FAILURES } from './model.js';

/** Thrown to the relay for a failure that may succeed later (network, timeout, 408, 429, 5xx). */
export class RetryableDeliveryError extends Error {
  override name = 'RetryableDeliveryError';
}

export type Outcome =
  | { kind: 'ok'; status: number }
  | { kind: 'retry'; error: string; retryAfterMs: number | null }
  | { kind: 'permanent'; error: string };

/** How a response status is treated; redirects are not followed, so a 3xx is a misconfigured URL. */
export function classifyStatus(status: number): 'ok' | 'retry' | 'permanent' {
  if (status >= 200 && status < 300) return 'ok';
  if (status === 408 || status === 429 || status >= 500) return 'retry';
  return 'permanent';
}

/** `Retry-After` as delta-seconds or an HTTP date, in ms from now; capped so a bad header cannot stall a sink for long. */
export function retryAfterMs(header: string | null, now: number): number | null {
  if (!header) return null;
  const secs = Number(header.trim());
  const ms = Number.isFinite(secs) ? secs * 1000 : Date.parse(header) - now;
  if (!Number.isFinite(ms) || ms <= 0) return null;
  return Math.min(ms, 10 * 60_000);
}

const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/** POSTs a JSON body once, with a timeout; never throws. */
export async function postOnce(
  url: string,
  body: string,
  headers: Record<string, string>,
  timeoutMs: number,
  now: number,
): Promise<Outcome> {
  let res: Response;
  let text: string;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
    // Read the body within the same deadline: it names the error (Slack's `invalid_payload`,
    // PagerDuty's `errors`), and reading it frees the connection.
    text = await res.text();
  } catch (err) {
    const e = err as Error;
    const reason = e.name === 'TimeoutError' ? `timed out after ${timeoutMs} ms` : e.message;
    const cause = (e.cause as Error | undefined)?.message;
    return { kind: 'retry', error: cause ? `${reason}: ${cause}` : reason, retryAfterMs: null };
  }
  const kind = classifyStatus(res.status);
  if (kind === 'ok') return { kind, status: res.status };
  const error = `HTTP ${res.status}${text ? `: ${clip(text.trim(), 300)}` : ''}`;
  if (kind === 'permanent') return { kind, error };
  return { kind, error, retryAfterMs: retryAfterMs(res.headers.get('retry-after'), now) };
}

/** A Map that forgets its oldest entries beyond a bound, so memory stays flat over months of events. */
class BoundedMap<V> {
  private readonly map = new Map<string, V>();
  constructor(private readonly max: number) {}
  get(k: string): V | undefined {
    return this.map.get(k);
  }
  set(k: string, v: V): void {
    this.map.delete(k);
    this.map.set(k, v);
    if (this.map.size > this.max) {
      const oldest = this.map.keys().next();
      if (!oldest.done) this.map.delete(oldest.value);
    }
  }
}

export interface AlertRequest {
  /** The run the alert is about: state coalescing is per run. */
  runId: string;
  /** The state this alert puts the sink in for the run; null: never coalesce (each event counts). */
  stateKey: string | null;
  body: string;
  headers?: Record<string, string>;
}

/** One sink's delivery and health. */
export class SinkChannel {
  private consecutiveFailures = 0;
  private lastError: string | null = null;
  private lastSuccessAt: number | null = null;
  private lastFailureAt: number | null = null;
  private delivered = 0;
  private dropped = 0;
  /** Until then the service asked us (Retry-After) not to call. */
  private notBefore = 0;
  private readonly handled = new BoundedMap<true>(10_000);
  /** Per run: the state last sent and the seq of the event that sent it. */
  private readonly lastState = new BoundedMap<{ key: string; seq: number }>(10_000);

  constructor(
    readonly name: SinkName,
    readonly subscriber: string,
    private readonly url: string | null,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly timeoutMs: number,
  ) {}

  get configured(): boolean {
    return this.url !== null;
  }

  /**
   * Delivers one alert for one event. Resolves when it was delivered, already handled, or
   * dropped as permanently undeliverable; throws RetryableDeliveryError otherwise.
   */
  async send(ev: StoredEvent, req: AlertRequest): Promise<void> {
    if (this.url === null) return;
    if (this.handled.get(ev.id)) return;
    const last = req.stateKey === null ? undefined : this.lastState.get(req.runId);
    // A repeat of the state already sent is coalesced; an older event arriving after a newer one
    // was sent (a dead letter retried late) is superseded: a late trigger must not reopen an
    // incident its resolve already closed.
    if (last && (last.key === req.stateKey || ev.seq < last.seq)) {
      this.handled.set(ev.id, true);
      return;
    }
    const now = this.clock.now();
    if (now < this.notBefore)
      throw new RetryableDeliveryError(`${this.name}: rate limited until ${toIso(this.notBefore)}`);

    const outcome = await postOnce(this.url, req.body, req.headers ?? {}, this.timeoutMs, now);
    const at = this.clock.now();
    if (outcome.kind === 'ok') {
      this.delivered += 1;
      this.consecutiveFailures = 0;
      this.lastSuccessAt = at;
      this.handled.set(ev.id, true);
      if (req.stateKey !== null) this.lastState.set(req.runId, { key: req.stateKey, seq: ev.seq });
      this.log.info(
        { sink: this.name, event: ev.id, run_id: req.runId, status: outcome.status },
        'alert sent',
      );
      return;
    }
    this.consecutiveFailures += 1;
    this.lastError = outcome.error;
    this.lastFailureAt = at;
    if (outcome.kind === 'permanent') {
      this.dropped += 1;
      this.handled.set(ev.id, true);
      this.log.error(
        { sink: this.name, event: ev.id, run_id: req.runId, error: outcome.error },
        'alert rejected by the sink; dropped (not retried)',
      );
      return;
    }
    if (outcome.retryAfterMs !== null) this.notBefore = at + outcome.retryAfterMs;
    this.log.warn(
      { sink: this.name, event: ev.id, failures: this.consecutiveFailures, error: outcome.error },
      'alert delivery failed; the relay retries it',
    );
    throw new RetryableDeliveryError(`${this.name}: ${outcome.error}`);
  }

  health(): SinkHealth {
    return {
      name: this.name,
      subscriber: this.subscriber,
      configured: this.configured,
      target: this.url === null ? null : new URL(this.url).origin,
      ok: this.consecutiveFailures < UNHEALTHY_AFTER_FAILURES,
      consecutive_failures: this.consecutiveFailures,
      last_error: this.lastError,
      last_success_at: toIso(this.lastSuccessAt),
      last_failure_at: toIso(this.lastFailureAt),
      delivered: this.delivered,
      dropped: this.dropped,
    };
  }
}
