/**
 * The alert sinks of `runplane up`: Slack for heartbeat_stale, PagerDuty for unresponsive, a
 * signed webhook for terminate and errored. Each configured sink is its own durable relay
 * subscriber, so one that is down holds back only its own cursor and resumes where it stopped.
 */
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { type Config, ConfigError } from '../config.js';
import type { StoredEvent } from '../events/catalog.js';
import type { EventHandler } from '../events/relay.js';
import type { Clock } from '../shared/clock.js';
import { VERSION } from '../version.js';
import { SinkChannel } from './delivery.js';
import { pagerdutyAlertFor, type SinkHealth, slackAlertFor, webhookAlertFor } from './model.js';
import { pagerdutyEvent } from './pagerduty.js';
import { slackMessage } from './slack.js';
import { signature, webhookDocument } from './webhook.js';

export interface AlertSubscription {
  name: string;
  pattern: string;
  handler: EventHandler;
}

/** Below the relay's own pace: a hung sink stalls the relay round for at most this long. */
const DEFAULT_TIMEOUT_MS = 5000;
const USER_AGENT = `runplane/${VERSION}`;

function checkedUrl(value: string | null, label: string): string | null {
  if (value === null) return null;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`${label}: not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new ConfigError(`${label}: must be http(s)`);
  return url.toString();
}

export class AlertSinks {
  private readonly slack: SinkChannel;
  private readonly pagerduty: SinkChannel;
  private readonly webhook: SinkChannel;

  constructor(
    private readonly config: Config,
    clock: Clock,
    log: Logger,
    opts: { timeoutMs?: number } = {},
  ) {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const slackUrl = checkedUrl(config.slackWebhookUrl, '--slack-webhook-url / RUNPLANE_SLACK_WEBHOOK_URL');
    // The routing key is what turns PagerDuty on; the URL has a default (PagerDuty's own).
    const pdUrl =
      config.pagerdutyRoutingKey === null
        ? null
        : checkedUrl(config.pagerdutyUrl, '--pagerduty-url / RUNPLANE_PAGERDUTY_URL');
    const hookUrl = checkedUrl(config.alertWebhookUrl, '--alert-webhook-url / RUNPLANE_ALERT_WEBHOOK_URL');
    const alog = log.child({ component: 'alerts' });
    this.slack = new SinkChannel('slack', 'alerts.slack', slackUrl, clock, alog, timeoutMs);
    this.pagerduty = new SinkChannel('pagerduty', 'alerts.pagerduty', pdUrl, clock, alog, timeoutMs);
    this.webhook = new SinkChannel('webhook', 'alerts.webhook', hookUrl, clock, alog, timeoutMs);
  }

  /** Durable relay subscriptions, one per configured sink. */
  subscriptions(): AlertSubscription[] {
    const subs: AlertSubscription[] = [];
    if (this.slack.configured)
      subs.push({ name: this.slack.subscriber, pattern: 'run.status', handler: (ev) => this.toSlack(ev) });
    if (this.pagerduty.configured)
      subs.push({
        name: this.pagerduty.subscriber,
        pattern: 'run.status',
        handler: (ev) => this.toPagerDuty(ev),
      });
    if (this.webhook.configured)
      subs.push({ name: this.webhook.subscriber, pattern: 'run.*', handler: (ev) => this.toWebhook(ev) });
    return subs;
  }

  /** One entry per sink, configured or not. */
  health(): SinkHealth[] {
    return [this.slack.health(), this.pagerduty.health(), this.webhook.health()];
  }

  private async toSlack(ev: StoredEvent): Promise<void> {
    const alert = slackAlertFor(ev);
    if (!alert) return;
    const message = slackMessage(alert, ev, {
      publicUrl: this.config.publicUrl,
      staleAfterMs: this.config.staleAfterMs,
      unresponsiveAfterMs: this.config.unresponsiveAfterMs,
    });
    await this.slack.send(ev, {
      runId: alert.run.run_id,
      stateKey: alert.kind,
      body: JSON.stringify(message),
      headers: { 'user-agent': USER_AGENT },
    });
  }

  private async toPagerDuty(ev: StoredEvent): Promise<void> {
    const alert = pagerdutyAlertFor(ev);
    if (!alert || this.config.pagerdutyRoutingKey === null) return;
    const body = pagerdutyEvent(alert, ev, {
      routingKey: this.config.pagerdutyRoutingKey,
      publicUrl: this.config.publicUrl,
      source: this.source(),
      unresponsiveAfterMs: this.config.unresponsiveAfterMs,
    });
    await this.pagerduty.send(ev, {
      runId: alert.run.run_id,
      stateKey: alert.action,
      body: JSON.stringify(body),
      headers: { 'user-agent': USER_AGENT },
    });
  }

  private async toWebhook(ev: StoredEvent): Promise<void> {
    const alert = webhookAlertFor(ev);
    if (!alert) return;
    const doc = webhookDocument(alert, ev, this.config.publicUrl);
    const body = JSON.stringify(doc);
    const secret = this.config.alertWebhookSecret;
    await this.webhook.send(ev, {
      runId: alert.type === 'run.terminate_recommended' ? alert.recommendation.run_id : alert.run.run_id,
      // Every terminate/errored transition and every recommendation is its own record downstream.
      stateKey: null,
      body,
      headers: {
        'user-agent': USER_AGENT,
        'x-runplane-event-id': ev.id,
        'x-runplane-event-type': doc.type,
        ...(secret ? { 'x-runplane-signature': signature(body, secret) } : {}),
      },
    });
  }

  private source(): string {
    if (this.config.publicUrl) {
      try {
        return new URL(this.config.publicUrl).host;
      } catch {
        // An unparsable public URL is reported where it is used for links; the host name will do here.
      }
    }
    return hostname();
  }
}
