/**
 * The dead-letter queue on a fake clock: a handler that keeps failing is retried a few times in
 * the relay, then dead-lettered with its event, error, stack and attempts while the other
 * subscribers and its own later events go on; the retry daemon runs it on the seed's schedule
 * (60, 120, 240, 480, 960 s) until it recovers or is abandoned (after 5 retries, or past the age
 * limit); the API lists, counts and retries dead letters.
 */
import { afterEach, expect, it } from 'vitest';
import type { StoredEvent } from '../../src/events/catalog.js';
import { FakeClock } from '../helpers/clock.js';
import { eventually, startTestController, type TestController } from '../helpers/controller.js';
import type { DialectUnderTest } from '../helpers/store.js';
import { forEachDialect, rejected } from './support.js';

const T0 = Date.parse('2025-06-01T00:00:00Z');

function clockedControllers(dialect: DialectUnderTest) {
  const open: TestController[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((t) => t.close()));
  });
  return async (clock: FakeClock, overrides: Parameters<typeof startTestController>[1] = {}) => {
    // The daemon's own timer stays out of the way: the tests run its rounds by hand.
    const t = await startTestController(dialect, { dlqRetryIntervalMs: '1h', ...overrides }, { clock });
    open.push(t);
    return t;
  };
}

const selfplay = (games: number) => ({
  type: 'SELFPLAY_COMPLETE',
  payload: { config_key: 'hex8_2p', games_generated: games },
});
const games = (e: StoredEvent) => (e.payload as { games_generated: number }).games_generated;

forEachDialect((dialect) => {
  const start = clockedControllers(dialect);

  it('a handler that keeps failing is dead-lettered after the in-relay retries; nothing else waits for it', async () => {
    const clock = new FakeClock(T0);
    const t = await start(clock);
    const failing: number[] = [];
    const healthy: number[] = [];
    await t.ctl.relay.subscribe('test-failing', 'pipeline.>', (e) => {
      failing.push(games(e));
      if (games(e) === 1) throw new Error('sink down');
    });
    await t.ctl.relay.subscribe('test-healthy', 'pipeline.>', (e) => void healthy.push(games(e)));
    const first = await t.admin.publishEvent(selfplay(1));
    await t.admin.publishEvent(selfplay(2));
    await t.admin.publishEvent(selfplay(3));

    // The healthy subscriber does not wait for the failing one.
    await eventually(() => healthy.length === 3);
    expect(healthy).toEqual([1, 2, 3]);
    // The failing one gets its event again as time moves on (250 ms, 500 ms, 1 s), then gives up on it.
    await eventually(() => {
      clock.advance(500);
      t.ctl.relay.kick();
      return failing.length === 6;
    });
    expect(failing).toEqual([1, 1, 1, 1, 2, 3]);

    const { dead_letters } = await t.admin.listDeadLetters();
    expect(dead_letters).toHaveLength(1);
    const d = dead_letters[0]!;
    expect(d).toMatchObject({
      subscriber: 'test-failing',
      status: 'pending',
      event_id: first.event_id,
      event_type: 'pipeline.selfplay.completed',
      error: 'sink down',
      attempts: 4,
      retry_count: 0,
    });
    expect(d.stack).toContain('Error: sink down');
    expect(d.event).toMatchObject({ id: first.event_id, payload: { games_generated: 1 } });
    expect(Date.parse(d.next_retry_at!) - Date.parse(d.created_at!)).toBe(60_000);
    expect(await t.admin.deadLetterStats()).toEqual({
      pending: 1,
      recovered: 0,
      abandoned: 0,
      by_subscriber: { 'test-failing': { pending: 1, recovered: 0, abandoned: 0 } },
    });
    // The failing subscriber's cursor moved past everything (written within the relay's cursor-save interval).
    const last = await t.ctl.store.db
      .selectFrom('events')
      .select((eb) => eb.fn.max('seq').as('m'))
      .executeTakeFirstOrThrow();
    await eventually(async () => {
      const cursor = await t.ctl.store.db
        .selectFrom('event_cursors')
        .select('last_seq')
        .where('subscriber', '=', 'test-failing')
        .executeTakeFirstOrThrow();
      return Number(cursor.last_seq) === Number(last.m);
    }, 5000);
  });

  it('the retry daemon retries on the seed schedule, then abandons', async () => {
    const clock = new FakeClock(T0);
    const t = await start(clock, { relayHandlerRetries: 0 });
    const calls: number[] = [];
    await t.ctl.relay.subscribe('test-broken', 'pipeline.>', () => {
      calls.push(clock.now() - T0);
      throw new Error(`still broken at ${clock.now() - T0}`);
    });
    await t.admin.publishEvent(selfplay(7));
    await eventually(async () => (await t.admin.deadLetterStats()).pending === 1);
    const dlq = t.ctl.events.dlq;
    expect(calls).toEqual([0]);

    const delays: number[] = [];
    for (const delay of [60_000, 120_000, 240_000, 480_000, 960_000]) {
      clock.advance(delay - 1);
      expect(await dlq.retryDue()).toEqual({ recovered: 0, failed: 0 });
      clock.advance(1);
      expect(await dlq.retryDue()).toEqual({ recovered: 0, failed: 1 });
      delays.push(delay);
    }
    const elapsed = delays.reduce((a, b) => a + b, 0);
    expect(calls).toEqual([0, 60_000, 180_000, 420_000, 900_000, elapsed]);
    const [d] = (await t.admin.listDeadLetters()).dead_letters;
    expect(d).toMatchObject({
      status: 'abandoned',
      retry_count: 5,
      attempts: 6,
      next_retry_at: null,
      error: `still broken at ${elapsed}`,
    });
    expect(d?.resolved_at).toBe(new Date(T0 + elapsed).toISOString());
    // Abandoned is final for the daemon.
    clock.advance(10 * 3_600_000);
    expect(await dlq.retryDue()).toEqual({ recovered: 0, failed: 0 });
    expect(calls).toHaveLength(6);
    expect(await t.admin.deadLetterStats()).toMatchObject({ pending: 0, recovered: 0, abandoned: 1 });
  });

  it('backoff and limits are configurable; past the age limit an entry is abandoned without a retry', async () => {
    const clock = new FakeClock(T0);
    const t = await start(clock, {
      relayHandlerRetries: 0,
      dlqMaxRetries: 100,
      dlqBaseDelayMs: '10s',
      dlqMaxDelayMs: '30s',
      dlqAbandonAfterMs: '2m',
    });
    let calls = 0;
    await t.ctl.relay.subscribe('test-broken', 'pipeline.>', () => {
      calls += 1;
      throw new Error('no');
    });
    await t.admin.publishEvent(selfplay(1));
    await eventually(async () => (await t.admin.deadLetterStats()).pending === 1);
    const dlq = t.ctl.events.dlq;
    const next = async () => Date.parse((await t.admin.listDeadLetters()).dead_letters[0]!.next_retry_at!);
    const gaps: number[] = [];
    let now = T0;
    for (let i = 0; i < 3; i++) {
      const at = await next();
      gaps.push(at - now);
      clock.advance(at - clock.now());
      now = clock.now();
      await dlq.retryDue();
    }
    // 10 s, 20 s, then capped at 30 s.
    expect(gaps).toEqual([10_000, 20_000, 30_000]);
    expect(calls).toBe(4);
    clock.advance(2 * 60_000);
    expect(await dlq.retryDue()).toEqual({ recovered: 0, failed: 0 });
    expect(calls).toBe(4);
    expect(await t.admin.deadLetterStats()).toMatchObject({ pending: 0, abandoned: 1 });
  });

  it('a handler that works again recovers its dead letter, from the daemon or from the API', async () => {
    const clock = new FakeClock(T0);
    const t = await start(clock, { relayHandlerRetries: 0 });
    let broken = true;
    const handled: number[] = [];
    await t.ctl.relay.subscribe('test-flaky', 'pipeline.>', (e) => {
      if (broken) throw new Error('downstream unavailable');
      handled.push(games(e));
    });
    await t.admin.publishEvent(selfplay(1));
    await t.admin.publishEvent(selfplay(2));
    await eventually(async () => (await t.admin.deadLetterStats()).pending === 2);
    const [newest, oldest] = (await t.admin.listDeadLetters({ status: 'pending' })).dead_letters;

    broken = false;
    // By hand: an operator retries one now.
    const op = await t.as('operator');
    const retried = await op.retryDeadLetter(newest!.id);
    expect(retried).toMatchObject({
      id: newest!.id,
      status: 'recovered',
      retry_count: 1,
      next_retry_at: null,
    });
    expect(handled).toEqual([2]);
    const again = await rejected(op.retryDeadLetter(newest!.id));
    expect([again.status, again.code]).toEqual([409, 'DEAD_LETTER_RECOVERED']);
    expect((await rejected(op.retryDeadLetter('dlq_nope'))).status).toBe(404);
    const viewer = await t.as('viewer');
    expect((await rejected(viewer.retryDeadLetter(oldest!.id))).status).toBe(403);

    // The daemon: the other one, when it is due.
    expect(await t.ctl.events.dlq.retryDue()).toEqual({ recovered: 0, failed: 0 });
    clock.advance(60_000);
    expect(await t.ctl.events.dlq.retryDue()).toEqual({ recovered: 1, failed: 0 });
    expect(handled).toEqual([2, 1]);
    expect(await t.admin.getDeadLetter(oldest!.id)).toMatchObject({ status: 'recovered' });
    expect(await viewer.deadLetterStats()).toMatchObject({ pending: 0, recovered: 2, abandoned: 0 });
  });

  it('an abandoned dead letter can still be retried by hand; a failure keeps it abandoned', async () => {
    const clock = new FakeClock(T0);
    const t = await start(clock, { relayHandlerRetries: 0, dlqMaxRetries: 0 });
    let broken = true;
    await t.ctl.relay.subscribe('test-late', 'pipeline.>', () => {
      if (broken) throw new Error('nope');
    });
    await t.admin.publishEvent(selfplay(1));
    await eventually(async () => (await t.admin.deadLetterStats()).abandoned === 1);
    const [d] = (await t.admin.listDeadLetters()).dead_letters;
    const failed = await t.admin.retryDeadLetter(d!.id);
    expect(failed).toMatchObject({ status: 'abandoned', attempts: 2 });
    broken = false;
    expect(await t.admin.retryDeadLetter(d!.id)).toMatchObject({ status: 'recovered' });
  });

  it('lists dead letters newest first, filtered by status and subscriber, page by page', async () => {
    const clock = new FakeClock(T0);
    const t = await start(clock, { relayHandlerRetries: 0 });
    for (const name of ['test-a', 'test-b'])
      await t.ctl.relay.subscribe(name, 'pipeline.>', () => {
        throw new Error(`${name} failed`);
      });
    await t.admin.publishEvent(selfplay(1));
    await t.admin.publishEvent(selfplay(2));
    await eventually(async () => (await t.admin.deadLetterStats()).pending === 4);

    const a = await t.admin.listDeadLetters({ subscriber: 'test-a' });
    expect(a.dead_letters.map((d) => [d.subscriber, games(d.event as StoredEvent)])).toEqual([
      ['test-a', 2],
      ['test-a', 1],
    ]);
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let pages = 0; pages < 10; pages++) {
      const page = await t.admin.listDeadLetters({ limit: 3, ...(cursor ? { cursor } : {}) });
      seen.push(...page.dead_letters.map((d) => d.id));
      if (!page.next_cursor) break;
      cursor = page.next_cursor;
    }
    expect(seen).toHaveLength(4);
    expect(new Set(seen).size).toBe(4);
    expect((await t.admin.listDeadLetters({ status: 'recovered' })).dead_letters).toEqual([]);
    const bad = await rejected(t.admin.listDeadLetters({ status: 'lost' as never }));
    expect(bad.status).toBe(422);
    expect((await t.admin.deadLetterStats()).by_subscriber).toEqual({
      'test-a': { pending: 2, recovered: 0, abandoned: 0 },
      'test-b': { pending: 2, recovered: 0, abandoned: 0 },
    });
  });

  it('a dead letter whose subscriber does not run in this process waits for one that has it', async () => {
    const clock = new FakeClock(T0);
    const t = await start(clock, { relayHandlerRetries: 0 });
    const now = clock.now();
    await t.ctl.store.transaction((tx) =>
      t.ctl.events.dlq.record(tx, {
        subscriber: 'elsewhere',
        event: {
          seq: 1,
          id: 'evt_x',
          type: 'pipeline.selfplay.completed',
          entity_id: 'e',
          payload: {},
          created_at: now,
          traceparent: null,
        },
        error: new Error('boom'),
        attempts: 1,
      }),
    );
    clock.advance(3_600_000);
    expect(await t.ctl.events.dlq.retryDue()).toEqual({ recovered: 0, failed: 0 });
    const [d] = (await t.admin.listDeadLetters()).dead_letters;
    expect(d?.status).toBe('pending');
    const r = await rejected(t.admin.retryDeadLetter(d!.id));
    expect([r.status, r.code]).toEqual([409, 'SUBSCRIBER_UNAVAILABLE']);
  });
});
