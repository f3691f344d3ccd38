import type { Logger } from 'pino';
import type { Clock } from '../shared/clock.js';
import type { Store } from '../store/database.js';
import type { StoredEvent } from './catalog.js';
import { outboxRepo } from './outbox-repo.js';

export type EventHandler = (event: StoredEvent) => Promise<void> | void;

interface Subscription {
  name: string;
  handler: EventHandler;
  /** Subject pattern: exact type, "prefix.*" or "*". */
  pattern: string;
  cursor: number;
  /** While a handler keeps failing, the subscriber waits until this time before retrying. */
  retryAt: number;
  failures: number;
}

export function matches(pattern: string, type: string): boolean {
  if (pattern === '*' || pattern === '>') return true;
  if (pattern.endsWith('.*')) return type.startsWith(pattern.slice(0, -1));
  return pattern === type;
}

/**
 * Delivers the outbox, in order, to in-process subscribers. Each subscriber has a durable
 * cursor: it resumes where it left off after a restart, so delivery is at least once and
 * handlers must be idempotent by event id. A failing handler only holds back its own cursor.
 */
export class EventRelay {
  private readonly subs: Subscription[] = [];
  private running = false;
  private dirty = false;
  private timer: NodeJS.Timeout | null = null;
  private stopCommitListener: (() => void) | null = null;
  private stopped = true;
  private idle: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly pollMs = 1000,
  ) {}

  /** Registers a durable subscriber; a new one starts at the end of the log unless fromStart. */
  async subscribe(name: string, pattern: string, handler: EventHandler, fromStart = false): Promise<void> {
    let cursor = await outboxRepo.getCursor(this.store.db, name);
    if (cursor === null) {
      cursor = fromStart ? 0 : await outboxRepo.latestSeq(this.store.db);
      await outboxRepo.saveCursor(this.store.db, name, cursor, this.clock.now());
    }
    this.subs.push({ name, pattern, handler, cursor, retryAt: 0, failures: 0 });
    this.kick();
  }

  start(): void {
    this.stopped = false;
    this.stopCommitListener = this.store.onCommit(() => this.kick());
    this.timer = setInterval(() => this.kick(), this.pollMs);
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopCommitListener?.();
    if (this.timer) clearInterval(this.timer);
    await this.idle;
  }

  /** Asks for a delivery round soon; calls while one runs coalesce into one more round. */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.dirty = true;
      return;
    }
    this.running = true;
    this.idle = this.drain().finally(() => {
      this.running = false;
      if (this.dirty && !this.stopped) {
        this.dirty = false;
        this.kick();
      }
    });
  }

  private async drain(): Promise<void> {
    for (const sub of this.subs) {
      if (this.stopped) return;
      if (sub.retryAt > this.clock.now()) continue;
      try {
        await this.deliver(sub);
      } catch (err) {
        this.log.error({ err, subscriber: sub.name }, 'event relay round failed');
      }
    }
  }

  private async deliver(sub: Subscription): Promise<void> {
    for (;;) {
      const batch = await outboxRepo.readAfter(this.store.db, sub.cursor, 500);
      if (batch.length === 0) return;
      let last = sub.cursor;
      for (const ev of batch) {
        if (matches(sub.pattern, ev.type)) {
          try {
            await sub.handler(ev);
            sub.failures = 0;
          } catch (err) {
            sub.failures += 1;
            // Exponential backoff capped at a minute; the dead-letter queue takes over later.
            sub.retryAt = this.clock.now() + Math.min(60_000, 250 * 2 ** Math.min(sub.failures, 8));
            this.log.warn(
              { err, subscriber: sub.name, event: ev.id, failures: sub.failures },
              'event handler failed',
            );
            break;
          }
        }
        last = ev.seq;
      }
      if (last !== sub.cursor) {
        sub.cursor = last;
        await outboxRepo.saveCursor(this.store.db, sub.name, last, this.clock.now());
      }
      if (sub.failures > 0 || batch.length < 500) return;
    }
  }
}
