import type { Logger } from 'pino';
import type { Clock } from '../shared/clock.js';
import type { Store } from '../store/database.js';
import { withTraceparent } from '../tracing/context.js';
import type { StoredEvent } from './catalog.js';
import type { DeadLetterQueue } from './dlq-service.js';
import type { EventBatchPrepare, EventHandler } from './handler.js';
import { outboxRepo } from './outbox-repo.js';
import { compileMatcher, subjectMatches } from './subjects.js';

export type { EventBatchPrepare, EventHandler } from './handler.js';

/** A batch consumer of the log (the NATS publisher): it takes many events per call. */
export type EventSink = (events: StoredEvent[]) => Promise<void>;

/** Whether an event type matches a subscription pattern (NATS wildcards; `*` alone is everything). */
export const matches = subjectMatches;

export interface RelayOptions {
  /** Delivery rounds also run on this timer (commits of other processes are not signalled). */
  pollMs?: number;
  /**
   * In-relay retries of a failing handler before its event is dead-lettered, so a blip does not
   * dead-letter anything. Without a dead-letter queue the relay retries for ever.
   */
  handlerRetries?: number;
  /** First in-relay retry delay; doubles per failure. */
  retryBaseMs?: number;
  /** Longest wait between attempts of a failing sink (a NATS outage): it never gives up. */
  sinkRetryMaxMs?: number;
  batchSize?: number;
  deadLetters?: DeadLetterQueue | null;
  /**
   * Cursors are written at most this often per lane (and on stop). Delivery is at least once
   * anyway, so after a crash a lane re-reads at most this much of the log; in exchange a busy
   * log does not cost one store write per subscriber per commit.
   */
  cursorSaveMs?: number;
}

type Delivery =
  | { kind: 'handler'; handler: EventHandler; prepare: EventBatchPrepare | null }
  | { kind: 'sink'; sink: EventSink };

/** One subscriber's delivery lane: its own cursor, backoff and round, independent of the others. */
interface Lane {
  name: string;
  pattern: string | readonly string[];
  match: (type: string) => boolean;
  delivery: Delivery;
  cursor: number;
  /** While it keeps failing, the lane waits until this time before trying again. */
  retryAt: number;
  failures: number;
  lastError: string | null;
  /** Handler calls (or sink batches) since start, and how many of them threw. */
  calls: number;
  failedCalls: number;
  running: boolean;
  dirty: boolean;
  /** While a sink waits for its last batch's acknowledgements: called by the next kick. */
  wake: (() => void) | null;
  idle: Promise<void>;
  /** The cursor as last written, when, the chain of writes, and a pending deferred write. */
  savedCursor: number;
  savedAt: number;
  saving: Promise<void>;
  saveTimer: NodeJS.Timeout | null;
}

/** What a lane looks like from outside (health, tests). */
export interface LaneStatus {
  name: string;
  kind: 'handler' | 'sink';
  cursor: number;
  failures: number;
  last_error: string | null;
  /** Handler calls (sink batches for a sink) since this relay started, and how many threw. */
  calls: number;
  failed_calls: number;
}

/**
 * Delivers the outbox, in order, to in-process subscribers and sinks. Each has a durable cursor
 * and its own lane: it resumes where it left off after a restart, so delivery is at least once
 * and handlers must be idempotent by event id, and a slow or failing subscriber holds back only
 * itself. A handler that keeps failing is retried a few times in place, then its event goes to
 * the dead-letter queue (with the cursor move, in one transaction) and the lane moves on. A sink
 * is never dead-lettered: it is retried with backoff until it succeeds.
 */
export class EventRelay {
  private readonly lanes = new Map<string, Lane>();
  private timer: NodeJS.Timeout | null = null;
  private stopCommitListener: (() => void) | null = null;
  private stopped = true;
  private readonly pollMs: number;
  private readonly handlerRetries: number;
  private readonly retryBaseMs: number;
  private readonly sinkRetryMaxMs: number;
  private readonly batchSize: number;
  private readonly dlq: DeadLetterQueue | null;
  private readonly cursorSaveMs: number;
  /**
   * Reads of the log under way since the last kick, by the cursor they read after. Lanes that
   * are caught up sit at the same cursor, so a commit wakes them all into one shared read
   * instead of one each.
   */
  private readonly reads = new Map<number, Promise<StoredEvent[]>>();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly log: Logger,
    opts: RelayOptions = {},
  ) {
    this.pollMs = opts.pollMs ?? 1000;
    this.handlerRetries = opts.handlerRetries ?? 3;
    this.retryBaseMs = opts.retryBaseMs ?? 250;
    this.sinkRetryMaxMs = opts.sinkRetryMaxMs ?? 5000;
    this.batchSize = opts.batchSize ?? 500;
    this.dlq = opts.deadLetters ?? null;
    this.cursorSaveMs = opts.cursorSaveMs ?? 1000;
  }

  /**
   * Registers a durable subscriber; a new one starts at the end of the log unless fromStart.
   * `pattern` is an event type or a subject pattern (`run.*`, `pipeline.*.completed`,
   * `pipeline.>`; `*` alone is every event), or several.
   */
  async subscribe(
    name: string,
    pattern: string | readonly string[],
    handler: EventHandler,
    fromStart = false,
    prepare: EventBatchPrepare | null = null,
  ): Promise<void> {
    await this.addLane(name, pattern, { kind: 'handler', handler, prepare }, fromStart);
    this.dlq?.register(name, handler);
  }

  /** Registers a durable batch sink (e.g. the NATS publisher); failures hold its cursor, never dead-letter. */
  async attachSink(
    name: string,
    pattern: string | readonly string[],
    sink: EventSink,
    fromStart = false,
  ): Promise<void> {
    await this.addLane(name, pattern, { kind: 'sink', sink }, fromStart);
  }

  start(): void {
    this.stopped = false;
    this.stopCommitListener = this.store.onCommit((c) => this.kick(c.eventTypes));
    this.timer = setInterval(() => this.kick(), this.pollMs);
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopCommitListener?.();
    if (this.timer) clearInterval(this.timer);
    await Promise.all([...this.lanes.values()].map((l) => l.idle));
    await Promise.all([...this.lanes.values()].map((l) => this.writeCursor(l)));
  }

  /**
   * Re-reads every lane's cursor from the store, for a relay about to start again: while this
   * replica was not the leader, another one delivered and moved the shared cursors on.
   */
  async reloadCursors(): Promise<void> {
    if (!this.stopped) throw new Error('reloadCursors() is for a stopped relay');
    for (const lane of this.lanes.values()) {
      await lane.saving.catch(() => undefined);
      const cursor = await outboxRepo.getCursor(this.store.db, lane.name);
      if (cursor === null) continue;
      lane.cursor = cursor;
      lane.savedCursor = cursor;
      lane.failures = 0;
      lane.retryAt = 0;
      lane.lastError = null;
    }
  }

  /** Asks every lane for a delivery round soon; calls during a round coalesce into one more. */
  /**
   * Wakes the lanes to read the log. With `types` (the event types a local commit wrote), only
   * lanes that match one of them: a lane skipped now reads those events with its next round,
   * filtered as ever, so nothing is lost; it is just not woken for events it would not deliver.
   */
  kick(types?: ReadonlySet<string>): void {
    if (types?.size === 0) return;
    // Reads started before this signal may not see what it announces; lanes woken now read anew.
    this.reads.clear();
    for (const lane of this.lanes.values()) if (!types || matchesAny(lane.match, types)) this.kickLane(lane);
  }

  /** Ends a lane's backoff and delivers now (e.g. the NATS connection is back). */
  retryNow(name: string): void {
    const lane = this.lanes.get(name);
    if (!lane) return;
    lane.retryAt = 0;
    this.kickLane(lane);
  }

  status(): LaneStatus[] {
    return [...this.lanes.values()].map((l) => ({
      name: l.name,
      kind: l.delivery.kind,
      cursor: l.cursor,
      failures: l.failures,
      last_error: l.lastError,
      calls: l.calls,
      failed_calls: l.failedCalls,
    }));
  }

  private async addLane(
    name: string,
    pattern: string | readonly string[],
    delivery: Delivery,
    fromStart: boolean,
  ): Promise<void> {
    if (this.lanes.has(name)) throw new Error(`relay subscriber ${name} is already registered`);
    const match = compileMatcher(pattern);
    let cursor = await outboxRepo.getCursor(this.store.db, name);
    if (cursor === null) {
      cursor = fromStart ? 0 : await outboxRepo.latestSeq(this.store.db);
      await outboxRepo.saveCursor(this.store.db, name, cursor, this.clock.now());
    }
    const lane: Lane = {
      name,
      pattern,
      match,
      delivery,
      cursor,
      retryAt: 0,
      failures: 0,
      lastError: null,
      calls: 0,
      failedCalls: 0,
      running: false,
      dirty: false,
      wake: null,
      idle: Promise.resolve(),
      savedCursor: cursor,
      savedAt: Date.now(),
      saving: Promise.resolve(),
      saveTimer: null,
    };
    this.lanes.set(name, lane);
    this.kickLane(lane);
  }

  private kickLane(lane: Lane): void {
    if (this.stopped) return;
    if (lane.running) {
      lane.dirty = true;
      lane.wake?.();
      return;
    }
    if (lane.retryAt > this.clock.now()) return;
    lane.running = true;
    lane.idle = this.deliver(lane)
      .catch((err: unknown) => this.log.error({ err, subscriber: lane.name }, 'event relay round failed'))
      .finally(() => {
        lane.running = false;
        if (lane.dirty && !this.stopped) {
          lane.dirty = false;
          this.kickLane(lane);
        }
      });
  }

  private backoff(failures: number, maxMs: number): number {
    return Math.min(maxMs, this.retryBaseMs * 2 ** Math.min(failures - 1, 20));
  }

  private async deliver(lane: Lane): Promise<void> {
    if (lane.delivery.kind === 'sink') return this.deliverToSink(lane, lane.delivery.sink);
    for (;;) {
      if (this.stopped) return;
      const batch = await this.readAfter(lane.cursor);
      if (batch.length === 0) return;
      const more = await this.deliverToHandler(lane, lane.delivery, batch);
      if (!more || batch.length < this.batchSize) return;
    }
  }

  /**
   * The events after `seq`, one batch. Lanes asking for the same cursor while a read is under way
   * share it (the events are shared too: handlers must not mutate them).
   */
  private readAfter(seq: number): Promise<StoredEvent[]> {
    let read = this.reads.get(seq);
    if (!read) {
      const started = outboxRepo.readAfter(this.store.db, seq, this.batchSize).finally(() => {
        if (this.reads.get(seq) === started) this.reads.delete(seq);
      });
      read = started;
      this.reads.set(seq, read);
    }
    return read;
  }

  /** Runs the handler over a batch in order; false when a failure holds the lane back. */
  private async deliverToHandler(
    lane: Lane,
    { handler, prepare }: { handler: EventHandler; prepare: EventBatchPrepare | null },
    batch: StoredEvent[],
  ): Promise<boolean> {
    let last = lane.cursor;
    let blocked = false;
    if (prepare) {
      const matching = batch.filter((ev) => lane.match(ev.type));
      if (matching.length > 0)
        await prepare(matching).catch((err: unknown) =>
          this.log.warn({ err, subscriber: lane.name }, 'preparing a batch of events failed'),
        );
    }
    for (const ev of batch) {
      if (lane.match(ev.type)) {
        lane.calls += 1;
        try {
          await withTraceparent(ev.traceparent, () => handler(ev));
          lane.failures = 0;
          lane.lastError = null;
        } catch (err) {
          lane.failedCalls += 1;
          lane.failures += 1;
          lane.lastError = (err as Error)?.message ?? String(err);
          if (this.dlq && lane.failures > this.handlerRetries) {
            await this.deadLetter(lane, ev, err);
            last = ev.seq;
            continue;
          }
          lane.retryAt = this.clock.now() + this.backoff(lane.failures, 60_000);
          this.log.warn(
            { err, subscriber: lane.name, event: ev.id, failures: lane.failures },
            'event handler failed',
          );
          blocked = true;
          break;
        }
      }
      last = ev.seq;
    }
    if (last !== lane.cursor) {
      lane.cursor = last;
      await this.saveCursor(lane);
    }
    return !blocked;
  }

  /** Persists the lane's cursor now, or within cursorSaveMs of the last write. */
  private async saveCursor(lane: Lane): Promise<void> {
    if (lane.cursor === lane.savedCursor) return;
    const wait = lane.savedAt + this.cursorSaveMs - Date.now();
    if (wait <= 0 || this.stopped) return this.writeCursor(lane);
    lane.saveTimer ??= setTimeout(() => {
      lane.saveTimer = null;
      this.writeCursor(lane).catch((err: unknown) =>
        this.log.warn({ err, subscriber: lane.name }, 'saving a relay cursor failed'),
      );
    }, wait);
  }

  /** Writes the lane's current cursor, after any write already under way (so never out of order). */
  private writeCursor(lane: Lane): Promise<void> {
    if (lane.saveTimer) {
      clearTimeout(lane.saveTimer);
      lane.saveTimer = null;
    }
    lane.saving = lane.saving
      .catch(() => undefined)
      .then(async () => {
        const cursor = lane.cursor;
        if (cursor === lane.savedCursor) return;
        await outboxRepo.saveCursor(this.store.db, lane.name, cursor, this.clock.now());
        lane.savedCursor = cursor;
        lane.savedAt = Date.now();
      });
    return lane.saving;
  }

  /** Moves a failing event to the dead-letter queue and the cursor past it, atomically. */
  private async deadLetter(lane: Lane, ev: StoredEvent, err: unknown): Promise<void> {
    const dlq = this.dlq;
    if (!dlq) return;
    const attempts = lane.failures;
    // In the lane's chain of cursor writes, so no deferred write of an older cursor lands after it.
    const run = lane.saving
      .catch(() => undefined)
      .then(async () => {
        await this.store.transaction(async (tx) => {
          await dlq.record(tx, { subscriber: lane.name, event: ev, error: err, attempts });
          await outboxRepo.saveCursor(tx, lane.name, ev.seq, this.clock.now());
        });
        lane.cursor = ev.seq;
        lane.savedCursor = ev.seq;
        lane.savedAt = Date.now();
      });
    lane.saving = run;
    await run;
    lane.failures = 0;
  }

  /**
   * Feeds a sink two batches deep: the next batch is read and handed over while the previous
   * one is still being acknowledged (NATS publish acks), and the cursor is saved only behind
   * batches that succeeded, in order. After a failure the lane starts again from its saved
   * cursor, so a sink may get events again: the NATS sink's are dropped by JetStream by id.
   */
  private async deliverToSink(lane: Lane, sink: EventSink): Promise<void> {
    let readFrom = lane.cursor;
    let inflight: { done: Promise<void>; last: number } | null = null;
    const settle = async (f: { done: Promise<void>; last: number }) => {
      await f.done;
      lane.cursor = f.last;
      await this.saveCursor(lane);
    };
    try {
      for (;;) {
        if (this.stopped) break;
        const batch = await this.readAfter(readFrom);
        const last = batch.at(-1)?.seq;
        if (last === undefined) break;
        const matching = batch.filter((e) => lane.match(e.type));
        if (matching.length > 0) lane.calls += 1;
        const done = matching.length > 0 ? Promise.resolve().then(() => sink(matching)) : Promise.resolve();
        // Awaited in settle(); this keeps a failure of a batch behind a failed one from going unhandled.
        done.catch(() => undefined);
        if (inflight) await settle(inflight);
        inflight = { done, last };
        readFrom = last;
        if (batch.length < this.batchSize) {
          // Caught up. Wait for this batch's acknowledgements, unless a commit comes first: then
          // read and publish its events while these are still being acknowledged (two deep
          // across commits too, not only within a backlog).
          const kicked = new Promise<'kick'>((resolve) => {
            lane.wake = () => resolve('kick');
          });
          const first = await Promise.race([
            done.then(
              () => 'acked' as const,
              () => 'acked' as const,
            ),
            kicked,
          ]);
          lane.wake = null;
          if (first === 'kick' && !this.stopped) {
            lane.dirty = false;
            continue;
          }
          break;
        }
      }
      if (inflight) await settle(inflight);
      if (lane.failures > 0) this.log.info({ subscriber: lane.name }, 'event sink recovered');
      lane.failures = 0;
      lane.lastError = null;
    } catch (err) {
      lane.failedCalls += 1;
      lane.failures += 1;
      lane.lastError = (err as Error)?.message ?? String(err);
      lane.retryAt = this.clock.now() + this.backoff(lane.failures, this.sinkRetryMaxMs);
      // A long outage logs once per doubling, not once per attempt.
      if ((lane.failures & (lane.failures - 1)) === 0)
        this.log.warn({ err, subscriber: lane.name, failures: lane.failures }, 'event sink failed; retrying');
    }
  }
}

function matchesAny(match: (type: string) => boolean, types: ReadonlySet<string>): boolean {
  for (const t of types) if (match(t)) return true;
  return false;
}
