/**
 * The event router over the machine's real NATS JetStream: the relay publishes the outbox into
 * the stream (Nats-Msg-Id = event id, JetStream drops a re-published id), run.status also goes
 * on the run-status subject as the seed's compact document, external producers publish through
 * the ingest subjects (invalid messages are dead-lettered), durable consumers catch up after
 * being down, and events survive a NATS outage: with the server stopped, events are produced;
 * when it is back, each consumer has seen every event exactly once.
 *
 * Each test uses its own stream and subjects on the shared server; the outage test runs its own
 * nats-server (same binary) so it can stop and start it without disturbing anyone else.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { context, trace } from '@opentelemetry/api';
import { connect, headers, type JetStreamManager, type NatsConnection } from 'nats';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { event, type StoredEvent } from '../../src/events/catalog.js';
import { NatsTransport } from '../../src/events/nats-transport.js';
import { outboxRepo } from '../../src/events/outbox-repo.js';
import { systemClock } from '../../src/shared/clock.js';
import { ADMIN, eventually, startTestController, type TestController } from '../helpers/controller.js';
import { NATS_URL, serviceAvailable } from '../helpers/services.js';
import type { DialectUnderTest } from '../helpers/store.js';
import { pgOk } from './support.js';

const natsOk = await serviceAvailable('nats');
const log = pino({ level: process.env.RUNPLANE_TEST_LOG ?? 'silent' });

function natsServerBinary(): string | null {
  for (const p of [
    process.env.NATS_SERVER_BIN,
    '/usr/sbin/nats-server',
    '/usr/bin/nats-server',
    '/usr/local/bin/nats-server',
  ])
    if (p && existsSync(p)) return p;
  return null;
}
const natsBin = natsOk ? natsServerBinary() : null;
if (natsOk && !natsBin)
  throw new Error('NATS is reachable but no nats-server binary was found (set NATS_SERVER_BIN)');

let counter = 0;
/** Stream and subjects of one test, so tests never see each other's messages. */
function natsNames() {
  const tag = `t${process.pid}x${Date.now().toString(36)}x${counter++}`;
  return {
    natsStream: tag.toUpperCase(),
    natsSubjectPrefix: `${tag}.runplane`,
    natsRunStatusSubject: `${tag}.run-status`,
  };
}

const selfplay = (n: number) => ({
  type: 'SELFPLAY_COMPLETE',
  payload: { config_key: 'hex8_2p', games_generated: n },
});

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = new Socket();
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
    sock.connect(port, '127.0.0.1');
  });
}

/** A private nats-server with JetStream on a free port, stopped and started at will; its store survives. */
class PrivateNats {
  private proc: ChildProcess | null = null;
  readonly dir = mkdtempSync(join(tmpdir(), 'runplane-nats-'));
  constructor(readonly port: number) {}
  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }
  async start(): Promise<void> {
    this.proc = spawn(natsBin!, ['-a', '127.0.0.1', '-p', String(this.port), '-js', '-sd', this.dir], {
      stdio: 'ignore',
    });
    await eventually(() => portOpen(this.port), 15_000);
  }
  async stop(): Promise<void> {
    const p = this.proc;
    this.proc = null;
    if (!p || p.exitCode !== null) return;
    const exited = new Promise((r) => p.once('exit', r));
    p.kill('SIGTERM');
    await exited;
  }
  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Every message of a stream, in order. */
async function streamMessages(jsm: JetStreamManager, stream: string) {
  const info = await jsm.streams.info(stream);
  const out: Array<{ subject: string; msgId: string | undefined; body: Record<string, unknown> }> = [];
  for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq });
    out.push({
      subject: m.subject,
      msgId: m.header?.get('Nats-Msg-Id'),
      body: JSON.parse(new TextDecoder().decode(m.data)) as Record<string, unknown>,
    });
  }
  return out;
}

async function cursorOf(t: TestController, name: string): Promise<number> {
  return Number((await outboxRepo.getCursor(t.ctl.store.db, name)) ?? -1);
}

function suite(dialect: DialectUnderTest): void {
  const open: Array<{ close(): Promise<void> }> = [];
  let nc: NatsConnection | null = null;
  const streams: string[] = [];
  afterEach(async () => {
    for (const o of open.splice(0).reverse()) await o.close();
    // The streams of this test on the shared server (those of a private server went with it).
    const conn = nc ?? (await connect({ servers: NATS_URL }));
    nc = null;
    const jsm = await conn.jetstreamManager();
    for (const s of streams.splice(0)) await jsm.streams.delete(s).catch(() => false);
    await conn.close();
  });

  async function startWithNats(url = NATS_URL, extra: Parameters<typeof startTestController>[1] = {}) {
    const names = natsNames();
    streams.push(names.natsStream, `${names.natsStream}_INGEST`);
    const t = await startTestController(dialect, { natsUrl: url, ...names, ...extra });
    open.push(t);
    return { t, names };
  }

  async function client(url = NATS_URL): Promise<NatsConnection> {
    nc ??= await connect({ servers: url });
    return nc;
  }

  it('publishes the outbox into the stream with Nats-Msg-Id = event id; run.status also on run-status', async () => {
    const { t, names } = await startWithNats();
    const a = await t.admin.publishEvent(selfplay(1));
    const b = await t.admin.publishEvent({
      type: 'TRAINING_COMPLETED',
      payload: { config_key: 'hex8_2p', model_path: '/m/10.pth' },
    });
    const now = Date.now();
    await t.ctl.store.write((tx) =>
      outboxRepo.append(
        tx,
        [
          event('run.status', 'run_1', {
            run_id: 'run_1',
            status: 'running',
            health: 'healthy',
            step: 1200,
            samples_per_sec: 850.5,
            loss: 0.42,
            last_error: null,
            previous_status: 'starting',
            previous_health: 'healthy',
            cause: 'heartbeat',
          }),
        ],
        now,
      ),
    );
    const runStatusId = (
      await t.ctl.store.db
        .selectFrom('events')
        .select('id')
        .where('type', '=', 'run.status')
        .executeTakeFirstOrThrow()
    ).id;

    const jsm = await (await client()).jetstreamManager();
    // The model registry follows TRAINING_COMPLETED with a model.* event of its own; this test
    // follows the events it wrote.
    const ours = (m: { subject: string }) => !m.subject.includes('.events.model.');
    const msgs = await eventually(async () => {
      const m = (await streamMessages(jsm, names.natsStream)).filter(ours);
      return m.length >= 4 ? m : undefined;
    });
    expect(msgs.map((m) => [m.subject, m.msgId])).toEqual([
      [`${names.natsSubjectPrefix}.events.pipeline.selfplay.completed`, a.event_id],
      [`${names.natsSubjectPrefix}.events.pipeline.training.completed`, b.event_id],
      [`${names.natsSubjectPrefix}.events.run.status`, runStatusId],
      [names.natsRunStatusSubject, `${runStatusId}.run-status`],
    ]);
    expect(msgs[0]?.body).toMatchObject({
      id: a.event_id,
      type: 'pipeline.selfplay.completed',
      entity_id: 'hex8_2p',
      payload: { config_key: 'hex8_2p', games_generated: 1 },
      created_at: expect.stringMatching(/Z$/),
    });
    expect(msgs[3]?.body).toEqual({
      run_id: 'run_1',
      status: 'running',
      health: 'healthy',
      step: 1200,
      samples_per_sec: 850.5,
      last_error: null,
      event_id: runStatusId,
      updated_at: new Date(now).toISOString(),
    });

    // Publishing the same events again (the relay after a crash before it saved its cursor)
    // adds nothing: JetStream drops ids it has seen.
    await t.ctl.events.nats!.publish(await outboxRepo.readAfter(t.ctl.store.db, 0, 100));
    expect((await streamMessages(jsm, names.natsStream)).filter(ours)).toHaveLength(4);
  });

  it('carries the trace context: traceparent header out, consumers and ingest run in it', async () => {
    const { t, names } = await startWithNats();
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const traceparent = `00-${traceId}-00f067aa0ba902b7-01`;
    const seen: Array<string | null> = [];
    const r = new NatsTransport(
      {
        url: NATS_URL,
        stream: names.natsStream,
        subjectPrefix: names.natsSubjectPrefix,
        runStatusSubject: names.natsRunStatusSubject,
      },
      systemClock,
      log,
      null,
    );
    r.subscribe(
      'test-traced',
      'pipeline.*.completed',
      () => {
        seen.push(trace.getSpanContext(context.active())?.traceId ?? null);
      },
      true,
    );
    r.start();
    open.push({ close: () => r.stop() });
    const send = (n: number, headers: Record<string, string>) =>
      fetch(`${t.ctl.url}/api/v1/events`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json', ...headers },
        body: JSON.stringify(selfplay(n)),
      }).then(async (res) => ((await res.json()) as { event_id: string }).event_id);
    const traced = await send(1, { traceparent });
    const plain = await send(2, {});
    const jsm = await (await client()).jetstreamManager();
    // The traceparent header of each message of the stream, by Nats-Msg-Id ('' when it has none).
    const traceHeaders = async () => {
      const info = await jsm.streams.info(names.natsStream);
      const out = new Map<string, string>();
      for (let seq = info.state.first_seq; info.state.messages > 0 && seq <= info.state.last_seq; seq++) {
        const m = await jsm.streams.getMessage(names.natsStream, { seq });
        out.set(m.header?.get('Nats-Msg-Id') ?? '', m.header?.get('traceparent') ?? '');
      }
      return out;
    };
    const hs = await eventually(async () => {
      const m = await traceHeaders();
      return m.has(traced) && m.has(plain) ? m : undefined;
    });
    expect(hs.get(traced)).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
    expect(hs.get(plain)).toBe('');
    // The remote consumer ran its handler in the trace of each message (none for the plain one).
    await eventually(() => seen.length >= 2);
    expect(seen.slice(0, 2)).toEqual([traceId, null]);
    // An external producer's traceparent header on an ingest message reaches the stored event.
    await eventually(() => t.ctl.events.nats?.isReady());
    const h = headers();
    h.set('traceparent', traceparent);
    await (await client())
      .jetstream()
      .publish(
        `${names.natsSubjectPrefix}.ingest.SELFPLAY_COMPLETE`,
        JSON.stringify({ ...selfplay(3), id: 'ing-3' }),
        { headers: h },
      );
    const row = await eventually(() => outboxRepo.findById(t.ctl.store.db, 'ing-3'));
    expect(row.traceparent?.split('-')[1]).toBe(traceId);
  });

  it('external producers publish through the ingest subjects; invalid messages are dead-lettered', async () => {
    const { t, names } = await startWithNats();
    const conn = await client();
    const js = conn.jetstream();
    await eventually(() => t.ctl.events.nats?.isReady());
    const ingest = `${names.natsSubjectPrefix}.ingest`;
    const body = (o: unknown) => JSON.stringify(o);
    await js.publish(
      `${ingest}.TRAINING_COMPLETED`,
      body({ payload: { config_key: 'hex8_2p', model_path: '/m/11.pth' } }),
      { msgID: 'train-11' },
    );
    await js.publish(
      `${ingest}.pipeline.selfplay.completed`,
      body({ entity_id: 'batch-9', payload: { config_key: 'hex8_2p', games_generated: 9 }, id: 'sp-9' }),
    );
    // The same event again under another message id: the router knows the event id.
    await js.publish(
      `${ingest}.pipeline.selfplay.completed`,
      body({ entity_id: 'batch-9', payload: { config_key: 'hex8_2p', games_generated: 9 }, id: 'sp-9' }),
    );
    await js.publish(`${ingest}.MODEL_PROMOTED`, body({ payload: { config_key: 'hex8_2p' } }), {
      msgID: 'bad-1',
    });
    await js.publish(`${ingest}.TRAINING_COMPLETED`, 'not json', { msgID: 'bad-2' });
    await js.publish(`${ingest}.job.state_changed`, body({ payload: {} }), { msgID: 'bad-3' });

    const stage = await eventually(async () => {
      const rows = await t.ctl.store.db
        .selectFrom('events')
        .select(['id', 'type', 'entity_id'])
        .where('type', 'like', 'pipeline.%')
        .orderBy('seq')
        .execute();
      const dead = await t.admin.listDeadLetters({ subscriber: 'nats:runplane-ingest' });
      return rows.length >= 2 && dead.dead_letters.length >= 3
        ? { rows, dead: dead.dead_letters }
        : undefined;
    });
    expect(stage.rows).toEqual([
      { id: 'train-11', type: 'pipeline.training.completed', entity_id: 'hex8_2p' },
      { id: 'sp-9', type: 'pipeline.selfplay.completed', entity_id: 'batch-9' },
    ]);
    const byId = Object.fromEntries(stage.dead.map((d) => [d.event_id, d]));
    expect(Object.keys(byId).sort()).toEqual(['bad-1', 'bad-2', 'bad-3']);
    for (const d of stage.dead)
      expect(d).toMatchObject({ status: 'abandoned', event_type: 'nats.ingest', attempts: 1 });
    expect(byId['bad-1']?.error).toMatch(/payload\.model_id: .*\(REQUIRED\)/);
    expect(byId['bad-2']?.error).toMatch(/body: not valid JSON/);
    expect(byId['bad-3']?.error).toMatch(/type: .*\(UNKNOWN_EVENT_TYPE\)/);
    expect(byId['bad-1']?.event).toMatchObject({ payload: { subject: `${ingest}.MODEL_PROMOTED` } });
    // The ingest stream is a work queue: handled and dead-lettered messages are gone from it.
    const jsm = await conn.jetstreamManager();
    await eventually(async () => (await jsm.streams.info(`${names.natsStream}_INGEST`)).state.messages === 0);
    // Still nothing more than the two events after everything was consumed.
    expect(
      (await t.ctl.store.db.selectFrom('events').select('id').where('type', 'like', 'pipeline.%').execute())
        .length,
    ).toBe(2);
  });

  it('a durable NATS consumer that was down catches up with what it missed, and only that', async () => {
    const { t, names } = await startWithNats();
    const cfg = {
      url: NATS_URL,
      stream: names.natsStream,
      subjectPrefix: names.natsSubjectPrefix,
      runStatusSubject: names.natsRunStatusSubject,
    };
    // Another process following runplane: a transport of its own with a durable consumer.
    const seen: number[] = [];
    const remote = () => {
      const r = new NatsTransport(cfg, systemClock, log, null);
      r.subscribe(
        'test-remote',
        'pipeline.*.completed',
        (e: StoredEvent) => {
          seen.push((e.payload as { games_generated: number }).games_generated);
        },
        true,
      );
      r.start();
      return r;
    };
    let r = remote();
    open.push({ close: () => r.stop() });
    await t.admin.publishEvent(selfplay(1));
    await t.admin.publishEvent({ type: 'SELFPLAY_FAILED', payload: { config_key: 'hex8_2p', error: 'x' } });
    await t.admin.publishEvent(selfplay(2));
    await eventually(() => seen.length === 2);
    await r.stop();
    await t.admin.publishEvent(selfplay(3));
    await t.admin.publishEvent(selfplay(4));
    const jsm = await (await client()).jetstreamManager();
    await eventually(async () => (await jsm.streams.info(names.natsStream)).state.messages === 5);
    r = remote();
    await eventually(() => seen.length === 4);
    expect(seen).toEqual([1, 2, 3, 4]);
  });

  it('a NATS subscriber of the router whose handler keeps failing lands in the DLQ and recovers from it', async () => {
    const { t } = await startWithNats(NATS_URL, { relayHandlerRetries: 1, dlqRetryIntervalMs: '1h' });
    let broken = true;
    const handled: number[] = [];
    await t.ctl.events.router.subscribe(
      'pipeline.selfplay.completed',
      (e) => {
        if (broken) throw new Error('downstream down');
        handled.push((e.payload as { games_generated: number }).games_generated);
      },
      { name: 'test-js-flaky', transport: 'nats', fromStart: true },
    );
    await eventually(() => t.ctl.events.nats?.isReady());
    await t.admin.publishEvent(selfplay(5));
    const [d] = await eventually(async () => {
      const l = (await t.admin.listDeadLetters({ subscriber: 'nats:test-js-flaky' })).dead_letters;
      return l.length === 1 ? l : undefined;
    });
    expect(d).toMatchObject({ status: 'pending', attempts: 2, error: 'downstream down' });
    broken = false;
    expect(await t.admin.retryDeadLetter(d!.id)).toMatchObject({ status: 'recovered' });
    expect(handled).toEqual([5]);
  });

  it('events survive a NATS outage: each consumer sees every event exactly once', async () => {
    const server = new PrivateNats(await freePort());
    open.push({ close: () => server.destroy() });
    await server.start();
    const { t, names } = await startWithNats(server.url);
    const local: string[] = [];
    const remote: string[] = [];
    await t.ctl.events.router.subscribe('pipeline.>', (e) => void local.push(e.id), { name: 'test-local' });
    await t.ctl.events.router.subscribe('pipeline.>', (e) => void remote.push(e.id), {
      name: 'test-remote',
      transport: 'nats',
      fromStart: true,
    });
    await eventually(() => t.ctl.events.nats?.isReady());
    const produce = async (from: number, n: number) => {
      const ids: string[] = [];
      for (let i = from; i < from + n; i++)
        ids.push((await t.ctl.events.router.publish(selfplay(i))).event_id);
      return ids;
    };

    const before = await produce(0, 20);
    await eventually(() => remote.length === 20);

    await server.stop();
    await eventually(() => !t.ctl.events.nats?.isReady());
    const during = await produce(100, 30);
    // In-process delivery does not need NATS; the publisher holds its cursor meanwhile.
    await eventually(() => local.length === 50);
    const sink = `nats:${names.natsStream}`;
    const lastSeq = Number(
      (
        await t.ctl.store.db
          .selectFrom('events')
          .select((eb) => eb.fn.max('seq').as('m'))
          .executeTakeFirstOrThrow()
      ).m,
    );
    expect(await cursorOf(t, sink)).toBeLessThan(lastSeq);
    expect(remote).toHaveLength(20);

    await server.start();
    const after = await produce(200, 10);
    await eventually(() => remote.length >= 60, 30_000);
    const all = [...before, ...during, ...after];
    expect(local).toEqual(all);
    expect(remote).toEqual(all);
    const head = Number(
      (
        await t.ctl.store.db
          .selectFrom('events')
          .select((eb) => eb.fn.max('seq').as('m'))
          .executeTakeFirstOrThrow()
      ).m,
    );
    // The cursor is written within the relay's cursor-save interval.
    await eventually(async () => (await cursorOf(t, sink)) === head, 5000);

    // The stream holds each event once.
    const conn = await connect({ servers: server.url });
    try {
      const msgs = await streamMessages(await conn.jetstreamManager(), names.natsStream);
      expect(msgs.map((m) => m.msgId)).toEqual(all);
    } finally {
      await conn.close();
    }
    // Nothing arrives twice later either.
    await t.ctl.events.router.publish(selfplay(999));
    await eventually(() => remote.length === 61);
    expect(new Set(remote).size).toBe(61);
  });
}

describe.skipIf(!natsOk)('nats', () => {
  describe('sqlite', () => suite('sqlite'));
  describe.skipIf(!pgOk)('postgres', () => suite('postgres'));
});
