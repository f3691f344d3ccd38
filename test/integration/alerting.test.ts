/**
 * Alert sinks against a local HTTP receiver: the payload each service gets (Slack incoming
 * webhook, PagerDuty Events API v2, the signed generic webhook), routing of transitions only,
 * retries through the real event relay from the same cursor, permanent failures dropped, and
 * per-sink health. Events are written to a real outbox; the relay runs on a fake clock, so a
 * retry happens when the test moves time forward, not after a sleep.
 */
import { createHmac } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AlertSinks } from '../../src/alerting/alert-sinks.js';
import { classifyStatus, RetryableDeliveryError, retryAfterMs } from '../../src/alerting/delivery.js';
import { type SinkHealth, slackAlertFor, webhookAlertFor } from '../../src/alerting/model.js';
import { RunplaneClient } from '../../src/client/client.js';
import { type Config, ConfigError, loadConfig } from '../../src/config.js';
import { type EventPayloads, event, type StoredEvent } from '../../src/events/catalog.js';
import { outboxRepo } from '../../src/events/outbox-repo.js';
import { EventRelay } from '../../src/events/relay.js';
import type { Store } from '../../src/store/database.js';
import { eventually, startTestController } from '../helpers/controller.js';
import { type DialectUnderTest, freshStore, type TestStore } from '../helpers/store.js';
import { pgOk } from './support.js';

const log = pino({ level: process.env.RUNPLANE_TEST_LOG ?? 'silent' });
const T0 = Date.parse('2025-03-04T05:06:07.000Z');
const PUBLIC = 'https://runplane.example.com';
const SECRET = 'hook-secret-0123';
const ROUTING_KEY = 'R0UTINGKEY0123456789abcdef012345';

class FakeClock {
  t = T0;
  now = () => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

interface Captured {
  path: string;
  headers: IncomingHttpHeaders;
  raw: string;
  body: unknown;
}
interface Reply {
  status: number;
  body?: string;
  headers?: Record<string, string>;
  /** Never answer (the sink's timeout must fire). */
  hang?: boolean;
}

/** A local stand-in for Slack, PagerDuty and a webhook receiver: records requests, answers as scripted. */
class Receiver {
  readonly requests: Captured[] = [];
  private readonly plans = new Map<string, Reply[]>();
  private server: Server | null = null;
  base = '';

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const path = req.url ?? '';
        this.requests.push({ path, headers: req.headers, raw, body: JSON.parse(raw) as unknown });
        const reply = this.plans.get(path)?.shift() ?? Receiver.defaultReply(path);
        if (reply.hang) return;
        res.writeHead(reply.status, reply.headers ?? {});
        res.end(reply.body ?? '');
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** What each service answers when all is well: Slack 200 `ok`, PagerDuty 202 JSON, a webhook 204. */
  static defaultReply(path: string): Reply {
    if (path === '/slack') return { status: 200, body: 'ok' };
    if (path === '/pd')
      return { status: 202, body: '{"status":"success","message":"Event processed","dedup_key":"x"}' };
    return { status: 204 };
  }

  plan(path: string, ...replies: Reply[]): void {
    this.plans.set(path, replies);
  }

  at(path: string): Captured[] {
    return this.requests.filter((r) => r.path === path);
  }

  async stop(): Promise<void> {
    const s = this.server;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
}

type Status = EventPayloads['run.status'];

function transition(
  run_id: string,
  from: { status: string; health: string },
  to: { status: string; health: string },
  extra: Partial<Status> = {},
): Status {
  return {
    run_id,
    status: to.status,
    health: to.health,
    previous_status: from.status,
    previous_health: from.health,
    step: 1200,
    samples_per_sec: 512.5,
    loss: 0.42,
    last_error: null,
    cause: 'liveness',
    ...extra,
  };
}

const running = (health: string) => ({ status: 'running', health });

function sinkConfig(base: string, overrides: Partial<Record<keyof Config, string>> = {}): Config {
  return loadConfig(
    {
      dataDir: '/tmp/runplane-alerting-unused',
      publicUrl: PUBLIC,
      slackWebhookUrl: `${base}/slack`,
      pagerdutyRoutingKey: ROUTING_KEY,
      pagerdutyUrl: `${base}/pd`,
      alertWebhookUrl: `${base}/hook`,
      alertWebhookSecret: SECRET,
      ...overrides,
    },
    {},
  );
}

const healthOf = (sinks: AlertSinks, name: string): SinkHealth => {
  const h = sinks.health().find((s) => s.name === name);
  if (!h) throw new Error(`no sink ${name}`);
  return h;
};

/** The newest stored event, as the relay would hand it to a handler. */
async function lastEvent(store: Store): Promise<StoredEvent> {
  const seq = await outboxRepo.latestSeq(store.db);
  const [ev] = await outboxRepo.readAfter(store.db, seq - 1, 1);
  if (!ev) throw new Error('no event');
  return ev;
}

function defineSuite(dialect: DialectUnderTest): void {
  let ts: TestStore;
  let receiver: Receiver;
  let clock: FakeClock;
  let relay: EventRelay;
  let sinks: AlertSinks;

  const emit = async (...events: Array<Parameters<typeof outboxRepo.append>[1][number]>) => {
    await ts.store.write((tx) => outboxRepo.append(tx, events, clock.now()));
  };
  const status = (p: Status) => event('run.status', p.run_id, p);

  /** Starts the sinks on the relay, as runtime.ts does. */
  async function startSinks(config: Config, opts: { timeoutMs?: number } = {}): Promise<void> {
    sinks = new AlertSinks(config, clock, log, opts);
    for (const s of sinks.subscriptions()) await relay.subscribe(s.name, s.pattern, s.handler);
  }

  /** Lets the relay retry a failed handler now: its backoff is measured on the fake clock. */
  const retryNow = () => {
    clock.advance(61_000);
    relay.kick();
  };

  beforeEach(async () => {
    ts = await freshStore(dialect);
    receiver = new Receiver();
    await receiver.start();
    clock = new FakeClock();
    relay = new EventRelay(ts.store, clock, log, { pollMs: 20 });
    relay.start();
  });
  afterEach(async () => {
    await relay.stop();
    await receiver.stop();
    await ts.cleanup();
  });

  it('posts a Slack warning when a run goes heartbeat_stale and a recovery note when it is healthy again', async () => {
    await startSinks(sinkConfig(receiver.base));
    await emit(status(transition('run_a', running('healthy'), running('heartbeat_stale'))));
    await eventually(() => receiver.at('/slack').length === 1);
    const ev = await lastEvent(ts.store);
    const warning = receiver.at('/slack')[0]!;
    expect(warning.headers['content-type']).toBe('application/json');
    expect(warning.body).toEqual({
      text:
        ':warning: Run run_a heartbeat is stale: No valid heartbeat for 45 s; it is escalated to PagerDuty ' +
        'as unresponsive after 135 s without one. (status running, step 1200)',
      blocks: [
        {
          type: 'section',
          text: {
            type: 'mrkdwn',
            text:
              ':warning: *Run `run_a` heartbeat is stale*\nNo valid heartbeat for 45 s; it is escalated to ' +
              'PagerDuty as unresponsive after 135 s without one.',
          },
          fields: [
            { type: 'mrkdwn', text: '*Status*\nrunning' },
            { type: 'mrkdwn', text: '*Health*\nheartbeat_stale' },
            { type: 'mrkdwn', text: '*Step*\n1200' },
            { type: 'mrkdwn', text: '*Loss*\n0.42' },
            { type: 'mrkdwn', text: '*Samples/s*\n512.5' },
          ],
        },
        {
          type: 'context',
          elements: [
            {
              type: 'mrkdwn',
              text: `runplane · <${PUBLIC}/api/v1/runs/run_a|run run_a> · event ${ev.id} · 2025-03-04T05:06:07.000Z`,
            },
          ],
        },
      ],
    });

    // A heartbeat that changes nothing, a run that was never stale, and a duplicate of the
    // warning's state send nothing; the recovery after them does (delivery is in order).
    await emit(
      status(
        transition('run_a', running('heartbeat_stale'), running('heartbeat_stale'), { cause: 'heartbeat' }),
      ),
      status(transition('run_b', running('healthy'), running('healthy'), { cause: 'heartbeat' })),
      status(transition('run_a', running('healthy'), running('heartbeat_stale'))),
      status(transition('run_a', running('heartbeat_stale'), running('unresponsive'))),
      status(
        transition('run_a', running('unresponsive'), running('healthy'), { step: 1300, cause: 'heartbeat' }),
      ),
    );
    await eventually(() => receiver.at('/slack').length >= 2);
    const recovery = receiver.at('/slack')[1]!.body as { text: string; blocks: Array<{ type: string }> };
    expect(recovery.text).toBe(
      ':white_check_mark: Run run_a is healthy again (was unresponsive); heartbeats resumed at step 1300.',
    );
    expect(recovery.blocks.map((b) => b.type)).toEqual(['section', 'context']);
    expect(receiver.at('/slack')).toHaveLength(2);
    // The receiver records a request before the sink has read the response and counted it.
    await eventually(() => healthOf(sinks, 'slack').delivered === 2);
    expect(healthOf(sinks, 'slack')).toMatchObject({
      ok: true,
      delivered: 2,
      dropped: 0,
      consecutive_failures: 0,
    });
  });

  it('escapes run text in Slack mrkdwn', async () => {
    await startSinks(sinkConfig(receiver.base));
    await emit(
      status(
        transition('run_x', running('healthy'), running('heartbeat_stale'), {
          last_error: 'CUDA <oom> & <!channel>',
        }),
      ),
    );
    await eventually(() => receiver.at('/slack').length === 1);
    const msg = receiver.at('/slack')[0]!.body as { blocks: Array<{ fields?: Array<{ text: string }> }> };
    expect(msg.blocks[0]!.fields!.at(-1)!.text).toBe('*Last error*\nCUDA &lt;oom&gt; &amp; &lt;!channel&gt;');
  });

  it('triggers a PagerDuty incident for an unresponsive run and resolves it with the same dedup key', async () => {
    await startSinks(sinkConfig(receiver.base));
    await emit(status(transition('run_p', running('heartbeat_stale'), running('unresponsive'))));
    await eventually(() => receiver.at('/pd').length === 1);
    const ev = await lastEvent(ts.store);
    expect(receiver.at('/pd')[0]!.body).toEqual({
      routing_key: ROUTING_KEY,
      event_action: 'trigger',
      dedup_key: 'runplane-run-run_p',
      payload: {
        summary: 'Run run_p is unresponsive: no valid heartbeat for 135 s (status running, step 1200)',
        source: 'runplane.example.com',
        severity: 'critical',
        timestamp: '2025-03-04T05:06:07.000Z',
        component: 'learner',
        group: 'runplane-runs',
        class: 'run_unresponsive',
        custom_details: {
          run_id: 'run_p',
          status: 'running',
          health: 'unresponsive',
          previous_health: 'heartbeat_stale',
          step: 1200,
          samples_per_sec: 512.5,
          loss: 0.42,
          last_error: null,
          event_id: ev.id,
          recommendation:
            'terminate the run, or extend its liveness with POST /api/v1/runs/{run_id}/liveness',
        },
      },
      client: 'runplane',
      client_url: PUBLIC,
      links: [{ href: `${PUBLIC}/api/v1/runs/run_p`, text: 'Run run_p' }],
    });

    // A repeated unresponsive state is coalesced; the heartbeat that restores health resolves.
    await emit(
      status(transition('run_p', running('heartbeat_stale'), running('unresponsive'))),
      status(transition('run_p', running('unresponsive'), running('unresponsive'), { cause: 'liveness' })),
      status(transition('run_p', running('unresponsive'), running('healthy'), { cause: 'heartbeat' })),
    );
    await eventually(() => receiver.at('/pd').length >= 2);
    expect(receiver.at('/pd')[1]!.body).toEqual({
      routing_key: ROUTING_KEY,
      event_action: 'resolve',
      dedup_key: 'runplane-run-run_p',
    });

    // A run terminated while unresponsive resolves its incident too; a stale run never pages.
    await emit(
      status(transition('run_q', running('healthy'), running('heartbeat_stale'))),
      status(transition('run_q', running('heartbeat_stale'), running('unresponsive'))),
      status(transition('run_q', running('unresponsive'), { status: 'terminated', health: 'unresponsive' })),
    );
    await eventually(() => receiver.at('/pd').length >= 4);
    expect(
      receiver
        .at('/pd')
        .map((r) => [
          (r.body as { event_action: string }).event_action,
          (r.body as { dedup_key: string }).dedup_key,
        ]),
    ).toEqual([
      ['trigger', 'runplane-run-run_p'],
      ['resolve', 'runplane-run-run_p'],
      ['trigger', 'runplane-run-run_q'],
      ['resolve', 'runplane-run-run_q'],
    ]);
  });

  it('posts signed webhook documents for terminate, errored and terminate recommendations', async () => {
    await startSinks(sinkConfig(receiver.base));
    await emit(
      event('run.created', 'run_w', { run_id: 'run_w', name: null, job_id: null, sweep_id: null }),
      status(transition('run_w', running('healthy'), running('healthy'), { cause: 'heartbeat' })),
      status(
        transition(
          'run_w',
          running('healthy'),
          { status: 'terminating', health: 'healthy' },
          { cause: 'command' },
        ),
      ),
      status(
        transition(
          'run_w',
          { status: 'terminating', health: 'healthy' },
          { status: 'terminating', health: 'healthy' },
          {
            cause: 'heartbeat',
          },
        ),
      ),
      status(
        transition(
          'run_w',
          { status: 'terminating', health: 'healthy' },
          { status: 'terminated', health: 'healthy' },
          {
            cause: 'finish',
          },
        ),
      ),
      status(
        transition(
          'run_e',
          running('healthy'),
          { status: 'errored', health: 'healthy' },
          {
            cause: 'heartbeat',
            last_error: 'NaN loss',
          },
        ),
      ),
      event('run.terminate_recommended', 'run_u', {
        run_id: 'run_u',
        reason: 'no heartbeat for 135 s',
        last_heartbeat_at: '2025-03-04T05:03:52.000Z',
      }),
    );
    await eventually(() => receiver.at('/hook').length === 4);
    const events = await outboxRepo.readAfter(ts.store.db, 0, 100);
    expect(events).toHaveLength(7);
    const idOf = (i: number) => events[i]!.id;
    const hooks = receiver.at('/hook');
    for (const h of hooks) {
      const expected = `sha256=${createHmac('sha256', SECRET).update(h.raw).digest('hex')}`;
      expect(h.headers['x-runplane-signature']).toBe(expected);
      expect(h.headers['x-runplane-event-id']).toBe((h.body as { id: string }).id);
      expect(h.headers['x-runplane-event-type']).toBe((h.body as { type: string }).type);
    }
    // A signature made with another key does not match.
    expect(hooks[0]!.headers['x-runplane-signature']).not.toBe(
      `sha256=${createHmac('sha256', 'other').update(hooks[0]!.raw).digest('hex')}`,
    );
    expect(hooks.map((h) => h.body)).toEqual([
      {
        id: idOf(2),
        type: 'run.terminate',
        occurred_at: '2025-03-04T05:06:07.000Z',
        source: 'runplane',
        run: {
          run_id: 'run_w',
          status: 'terminating',
          health: 'healthy',
          step: 1200,
          samples_per_sec: 512.5,
          loss: 0.42,
          last_error: null,
          url: `${PUBLIC}/api/v1/runs/run_w`,
        },
        previous: { status: 'running', health: 'healthy' },
        cause: 'command',
      },
      expect.objectContaining({
        id: idOf(4),
        type: 'run.terminate',
        run: expect.objectContaining({ run_id: 'run_w', status: 'terminated' }),
        previous: { status: 'terminating', health: 'healthy' },
        cause: 'finish',
      }),
      expect.objectContaining({
        id: idOf(5),
        type: 'run.errored',
        run: expect.objectContaining({ run_id: 'run_e', status: 'errored', last_error: 'NaN loss' }),
      }),
      {
        id: idOf(6),
        type: 'run.terminate_recommended',
        occurred_at: '2025-03-04T05:06:07.000Z',
        source: 'runplane',
        run: {
          run_id: 'run_u',
          health: 'unresponsive',
          last_heartbeat_at: '2025-03-04T05:03:52.000Z',
          url: `${PUBLIC}/api/v1/runs/run_u`,
        },
        reason: 'no heartbeat for 135 s',
      },
    ]);
  });

  it('sends the webhook unsigned when no secret is configured', async () => {
    await startSinks(sinkConfig(receiver.base, { alertWebhookSecret: '' }));
    await emit(status(transition('run_n', running('healthy'), { status: 'errored', health: 'healthy' })));
    await eventually(() => receiver.at('/hook').length === 1);
    expect(receiver.at('/hook')[0]!.headers['x-runplane-signature']).toBeUndefined();
    expect(receiver.at('/hook')[0]!.headers['x-runplane-event-id']).toBe((await lastEvent(ts.store)).id);
  });

  it('retries 5xx from the same cursor and delivers exactly once; health shows the failures, then recovery', async () => {
    receiver.plan('/pd', { status: 500, body: 'boom' }, { status: 500, body: 'boom again' });
    await startSinks(sinkConfig(receiver.base));
    await emit(status(transition('run_r', running('heartbeat_stale'), running('unresponsive'))));

    await eventually(
      () => receiver.at('/pd').length === 1 && healthOf(sinks, 'pagerduty').consecutive_failures === 1,
    );
    expect(healthOf(sinks, 'pagerduty')).toMatchObject({
      ok: true,
      delivered: 0,
      dropped: 0,
      last_error: 'HTTP 500: boom',
      last_success_at: null,
      last_failure_at: new Date(clock.t).toISOString(),
    });
    retryNow();
    await eventually(
      () => receiver.at('/pd').length === 2 && healthOf(sinks, 'pagerduty').consecutive_failures === 2,
    );
    expect(healthOf(sinks, 'pagerduty').last_error).toBe('HTTP 500: boom again');
    retryNow();
    await eventually(() => healthOf(sinks, 'pagerduty').delivered === 1);
    expect(healthOf(sinks, 'pagerduty')).toMatchObject({
      ok: true,
      consecutive_failures: 0,
      dropped: 0,
      last_error: 'HTTP 500: boom again',
      last_success_at: new Date(clock.t).toISOString(),
    });

    // The next event goes out once; the trigger was not sent a fourth time.
    await emit(
      status(transition('run_r', running('unresponsive'), running('healthy'), { cause: 'heartbeat' })),
    );
    await eventually(() => receiver.at('/pd').length === 4);
    const actions = receiver.at('/pd').map((r) => (r.body as { event_action: string }).event_action);
    expect(actions).toEqual(['trigger', 'trigger', 'trigger', 'resolve']);
    expect(
      new Set(
        receiver
          .at('/pd')
          .slice(0, 3)
          .map((r) => r.raw),
      ).size,
    ).toBe(1);
    // The durable cursor moved past both events.
    const latest = await outboxRepo.latestSeq(ts.store.db);
    await eventually(async () => (await outboxRepo.getCursor(ts.store.db, 'alerts.pagerduty')) === latest);
  });

  it('reports a sink that keeps failing as not ok, and ok again once it recovers', async () => {
    receiver.plan('/slack', { status: 503 }, { status: 502 }, { status: 504 });
    await startSinks(sinkConfig(receiver.base));
    await emit(status(transition('run_s', running('healthy'), running('heartbeat_stale'))));
    await eventually(() => healthOf(sinks, 'slack').consecutive_failures === 1);
    retryNow();
    await eventually(() => healthOf(sinks, 'slack').consecutive_failures === 2);
    expect(healthOf(sinks, 'slack').ok).toBe(true);
    retryNow();
    await eventually(() => healthOf(sinks, 'slack').consecutive_failures === 3);
    expect(healthOf(sinks, 'slack')).toMatchObject({ ok: false, last_error: 'HTTP 504', delivered: 0 });
    // Other sinks are unaffected: each has its own cursor.
    expect(healthOf(sinks, 'pagerduty').ok).toBe(true);
    retryNow();
    await eventually(() => healthOf(sinks, 'slack').delivered === 1);
    expect(healthOf(sinks, 'slack')).toMatchObject({ ok: true, consecutive_failures: 0 });
    expect(receiver.at('/slack')).toHaveLength(4);
  });

  it('drops an event the service rejects as invalid (400) and later events still go out', async () => {
    receiver.plan('/pd', {
      status: 400,
      body: '{"status":"invalid event","message":"Event object is invalid","errors":["Length of \'routing_key\' is incorrect"]}',
    });
    await startSinks(sinkConfig(receiver.base));
    await emit(
      status(transition('run_d', running('heartbeat_stale'), running('unresponsive'))),
      status(transition('run_d', running('unresponsive'), running('healthy'), { cause: 'heartbeat' })),
    );
    await eventually(() => receiver.at('/pd').length === 2);
    expect(receiver.at('/pd').map((r) => (r.body as { event_action: string }).event_action)).toEqual([
      'trigger',
      'resolve',
    ]);
    await eventually(() => healthOf(sinks, 'pagerduty').delivered === 1);
    const h = healthOf(sinks, 'pagerduty');
    expect(h).toMatchObject({ dropped: 1, delivered: 1, consecutive_failures: 0, ok: true });
    expect(h.last_error).toContain('HTTP 400: {"status":"invalid event"');
  });

  it('honours Retry-After on 429 and is idempotent by event id', async () => {
    receiver.plan('/slack', { status: 429, body: 'rate_limited', headers: { 'retry-after': '120' } });
    // Handlers are called directly here, as the relay would call them, to control each attempt.
    sinks = new AlertSinks(sinkConfig(receiver.base), clock, log);
    const slack = sinks.subscriptions().find((s) => s.name === 'alerts.slack')!;
    await emit(status(transition('run_l', running('healthy'), running('heartbeat_stale'))));
    const ev = await lastEvent(ts.store);

    await expect(slack.handler(ev)).rejects.toThrow(RetryableDeliveryError);
    expect(receiver.at('/slack')).toHaveLength(1);
    clock.advance(60_000);
    // Still inside the service's Retry-After: refused without calling it.
    await expect(slack.handler(ev)).rejects.toThrow(/rate limited until/);
    expect(receiver.at('/slack')).toHaveLength(1);
    clock.advance(61_000);
    await slack.handler(ev);
    expect(receiver.at('/slack')).toHaveLength(2);
    // The same event again (a redelivery) is not sent twice.
    await slack.handler(ev);
    expect(receiver.at('/slack')).toHaveLength(2);
    expect(healthOf(sinks, 'slack')).toMatchObject({
      delivered: 1,
      consecutive_failures: 0,
      last_error: 'HTTP 429: rate_limited',
    });
  });

  it('skips a PagerDuty trigger that arrives after the resolve that superseded it', async () => {
    sinks = new AlertSinks(sinkConfig(receiver.base), clock, log);
    const pd = sinks.subscriptions().find((s) => s.name === 'alerts.pagerduty')!;
    await emit(
      status(transition('run_o', running('heartbeat_stale'), running('unresponsive'))),
      status(transition('run_o', running('unresponsive'), running('healthy'), { cause: 'heartbeat' })),
    );
    const [trigger, resolve] = await outboxRepo.readAfter(ts.store.db, 0, 10);
    // As when the trigger was dead-lettered and retried after the resolve went out.
    await pd.handler(resolve!);
    await pd.handler(trigger!);
    expect(receiver.at('/pd').map((r) => (r.body as { event_action: string }).event_action)).toEqual([
      'resolve',
    ]);
    // A later, newer trigger for the same run still pages.
    await emit(status(transition('run_o', running('heartbeat_stale'), running('unresponsive'))));
    await pd.handler(await lastEvent(ts.store));
    expect(receiver.at('/pd').map((r) => (r.body as { event_action: string }).event_action)).toEqual([
      'resolve',
      'trigger',
    ]);
  });

  it('gives up an attempt after its timeout and retries it', async () => {
    receiver.plan('/hook', { status: 200, hang: true });
    sinks = new AlertSinks(sinkConfig(receiver.base), clock, log, { timeoutMs: 200 });
    const hook = sinks.subscriptions().find((s) => s.name === 'alerts.webhook')!;
    await emit(status(transition('run_t', running('healthy'), { status: 'errored', health: 'healthy' })));
    const ev = await lastEvent(ts.store);
    await expect(hook.handler(ev)).rejects.toThrow(/timed out after 200 ms/);
    await hook.handler(ev);
    expect(receiver.at('/hook')).toHaveLength(2);
    expect(healthOf(sinks, 'webhook')).toMatchObject({ delivered: 1, consecutive_failures: 0 });
  });

  it('retries when the receiver cannot be reached', async () => {
    const port = (() => {
      const b = receiver.base;
      return b.slice(b.lastIndexOf(':') + 1);
    })();
    await receiver.stop();
    sinks = new AlertSinks(sinkConfig(`http://127.0.0.1:${port}`), clock, log);
    const pd = sinks.subscriptions().find((s) => s.name === 'alerts.pagerduty')!;
    await emit(status(transition('run_c', running('heartbeat_stale'), running('unresponsive'))));
    await expect(pd.handler(await lastEvent(ts.store))).rejects.toThrow(RetryableDeliveryError);
    expect(healthOf(sinks, 'pagerduty')).toMatchObject({ consecutive_failures: 1, delivered: 0, dropped: 0 });
    expect(healthOf(sinks, 'pagerduty').last_error).toMatch(/fetch failed/);
  });

  it('alerts a real run: stale to Slack, unresponsive to PagerDuty and the webhook, recovery, finish', async () => {
    const t = await startTestController(
      dialect,
      {
        publicUrl: PUBLIC,
        slackWebhookUrl: `${receiver.base}/slack`,
        pagerdutyRoutingKey: ROUTING_KEY,
        pagerdutyUrl: `${receiver.base}/pd`,
        alertWebhookUrl: `${receiver.base}/hook`,
        alertWebhookSecret: SECRET,
      },
      { clock },
    );
    try {
      const { run_id, token } = await t.admin.createRun({ name: 'alerting-e2e' });
      const learner = new RunplaneClient(t.ctl.url, token);
      const beat = (step: number) =>
        learner.heartbeat(run_id, {
          run_id,
          status: 'running',
          step,
          samples_per_sec: 100,
          loss: 0.5,
          checkpoint_version: 1,
        });
      await beat(10);
      const sweepAt = async (ms: number) => {
        clock.advance(ms);
        await eventually(async () => (await t.ctl.liveness.sweep()) !== null);
      };
      await sweepAt(46_000);
      await eventually(() => receiver.at('/slack').length === 1);
      expect((receiver.at('/slack')[0]!.body as { text: string }).text).toContain(
        `Run ${run_id} heartbeat is stale`,
      );
      expect(receiver.at('/pd')).toHaveLength(0);

      await sweepAt(90_000);
      await eventually(() => receiver.at('/pd').length === 1 && receiver.at('/hook').length === 1);
      expect(receiver.at('/pd')[0]!.body).toMatchObject({
        event_action: 'trigger',
        dedup_key: `runplane-run-${run_id}`,
      });
      expect(receiver.at('/hook')[0]!.body).toMatchObject({
        type: 'run.terminate_recommended',
        run: { run_id, health: 'unresponsive' },
      });

      await beat(20);
      await eventually(() => receiver.at('/pd').length === 2 && receiver.at('/slack').length === 2);
      expect(receiver.at('/pd')[1]!.body).toEqual({
        routing_key: ROUTING_KEY,
        event_action: 'resolve',
        dedup_key: `runplane-run-${run_id}`,
      });
      expect((receiver.at('/slack')[1]!.body as { text: string }).text).toContain('is healthy again');

      await learner.finishRun(run_id, { status: 'terminated' });
      await eventually(() => receiver.at('/hook').length === 2);
      expect(receiver.at('/hook')[1]!.body).toMatchObject({
        type: 'run.terminate',
        run: { run_id, status: 'terminated', step: 20 },
        previous: { status: 'running', health: 'healthy' },
      });
      // Heartbeats that changed nothing sent nothing anywhere.
      expect([receiver.at('/slack').length, receiver.at('/pd').length, receiver.at('/hook').length]).toEqual([
        2, 2, 2,
      ]);
    } finally {
      await t.close();
    }
  });

  it('serves sink health over HTTP from a controller that delivers through its own relay', async () => {
    const t = await startTestController(dialect, {
      publicUrl: PUBLIC,
      slackWebhookUrl: `${receiver.base}/slack`,
      alertWebhookUrl: `${receiver.base}/hook`,
    });
    try {
      await t.ctl.store.write((tx) =>
        outboxRepo.append(
          tx,
          [status(transition('run_h', running('healthy'), running('heartbeat_stale')))],
          Date.now(),
        ),
      );
      await eventually(() => receiver.at('/slack').length === 1);
      const viewer = await t.admin.createToken('viewer');
      const res = await fetch(`${t.ctl.url}/api/v1/alerts/sinks`, {
        headers: { authorization: `Bearer ${viewer.token}` },
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { sinks: SinkHealth[] };
      expect(body.sinks.map((s) => [s.name, s.subscriber, s.configured, s.target])).toEqual([
        ['slack', 'alerts.slack', true, receiver.base],
        ['pagerduty', 'alerts.pagerduty', false, null],
        ['webhook', 'alerts.webhook', true, receiver.base],
      ]);
      expect(body.sinks[0]).toMatchObject({ ok: true, delivered: 1, dropped: 0, consecutive_failures: 0 });
      expect(body.sinks[0]!.last_success_at).toMatch(/^\d{4}-\d\d-\d\dT/);
      const anon = await fetch(`${t.ctl.url}/api/v1/alerts/sinks`);
      expect(anon.status).toBe(401);
    } finally {
      await t.close();
    }
  });
}

describe('sqlite', () => defineSuite('sqlite'));
describe.skipIf(!pgOk)('postgres', () => defineSuite('postgres'));

describe('alert sink configuration and routing', () => {
  it('subscribes nothing when no sink is configured, and reports every sink', () => {
    const sinks = new AlertSinks(loadConfig({ dataDir: '/tmp/unused' }, {}), new FakeClock(), log);
    expect(sinks.subscriptions()).toEqual([]);
    expect(sinks.health()).toEqual(
      ['slack', 'pagerduty', 'webhook'].map((name) => ({
        name,
        subscriber: `alerts.${name}`,
        configured: false,
        target: null,
        ok: true,
        consecutive_failures: 0,
        last_error: null,
        last_success_at: null,
        last_failure_at: null,
        delivered: 0,
        dropped: 0,
      })),
    );
  });

  it('subscribes one durable subscriber per configured sink', () => {
    const only = (o: Partial<Record<keyof Config, string>>) =>
      new AlertSinks(loadConfig({ dataDir: '/tmp/unused', ...o }, {}), new FakeClock(), log)
        .subscriptions()
        .map((s) => [s.name, s.pattern]);
    expect(only({ slackWebhookUrl: 'https://hooks.slack.com/services/T/B/X' })).toEqual([
      ['alerts.slack', 'run.status'],
    ]);
    // The PagerDuty URL has a default; the routing key is what turns it on.
    expect(only({ pagerdutyUrl: 'http://127.0.0.1:1/pd' })).toEqual([]);
    expect(only({ pagerdutyRoutingKey: 'k' })).toEqual([['alerts.pagerduty', 'run.status']]);
    expect(only({ alertWebhookUrl: 'http://127.0.0.1:1/hook' })).toEqual([['alerts.webhook', 'run.*']]);
  });

  it('reads the webhook secret from flags, env and file', () => {
    expect(
      loadConfig({ dataDir: '/tmp/unused' }, { RUNPLANE_ALERT_WEBHOOK_SECRET: 's3' }).alertWebhookSecret,
    ).toBe('s3');
    expect(loadConfig({ dataDir: '/tmp/unused', alertWebhookSecret: 'f' }, {}).alertWebhookSecret).toBe('f');
    expect(loadConfig({ dataDir: '/tmp/unused' }, {}).alertWebhookSecret).toBeNull();
  });

  it('refuses a sink URL that is not http(s)', () => {
    const make = (o: Partial<Record<keyof Config, string>>) => () =>
      new AlertSinks(loadConfig({ dataDir: '/tmp/unused', ...o }, {}), new FakeClock(), log);
    expect(make({ slackWebhookUrl: 'not a url' })).toThrow(ConfigError);
    expect(make({ alertWebhookUrl: 'ftp://x/y' })).toThrow(/must be http/);
    expect(make({ pagerdutyRoutingKey: 'k', pagerdutyUrl: 'nope' })).toThrow(/--pagerduty-url/);
  });

  it('classifies responses: 2xx delivered; 408, 429, 5xx retried; other 4xx and 3xx dropped', () => {
    expect([200, 202, 204].map(classifyStatus)).toEqual(['ok', 'ok', 'ok']);
    expect([408, 429, 500, 503].map(classifyStatus)).toEqual(['retry', 'retry', 'retry', 'retry']);
    expect([301, 400, 403, 404, 410, 413].map(classifyStatus)).toEqual(Array(6).fill('permanent'));
    expect(retryAfterMs('30', 0)).toBe(30_000);
    expect(retryAfterMs(new Date(T0 + 5000).toUTCString(), T0)).toBe(5000);
    expect(retryAfterMs('86400', 0)).toBe(600_000);
    expect(retryAfterMs('soon', 0)).toBeNull();
    expect(retryAfterMs(null, 0)).toBeNull();
  });

  it('ignores events that are not transitions or not the catalog shape', () => {
    const ev = (type: string, payload: unknown): StoredEvent => ({
      seq: 1,
      id: 'evt_1',
      type,
      entity_id: 'r',
      payload,
      created_at: T0,
      traceparent: null,
    });
    expect(slackAlertFor(ev('run.status', { run_id: 'r' }))).toBeNull();
    expect(slackAlertFor(ev('run.status', null))).toBeNull();
    expect(
      slackAlertFor(ev('job.state_changed', transition('r', running('healthy'), running('heartbeat_stale')))),
    ).toBeNull();
    expect(
      webhookAlertFor(ev('run.status', transition('r', running('healthy'), running('heartbeat_stale')))),
    ).toBeNull();
    // A finished run going quiet is no warning.
    expect(
      slackAlertFor(
        ev(
          'run.status',
          transition('r', running('healthy'), { status: 'completed', health: 'heartbeat_stale' }),
        ),
      ),
    ).toBeNull();
  });
});
