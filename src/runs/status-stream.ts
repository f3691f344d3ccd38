import type { Logger } from 'pino';
import type { StoredEvent } from '../events/catalog.js';
import type { Store } from '../store/database.js';
import { statusEventRepo } from './status-event-repo.js';

export type StatusListener = () => void;

const RING = 10_000;

/**
 * Follows `run.status` events in the outbox for live readers (server-sent events). One tail
 * per process reads new events into a ring of recent events: after each commit that wrote one
 * while anyone is reading, and on a timer (for other replicas' writes). While nobody reads, the
 * timer only moves the cursor to the newest status event, so a reader starting at the present
 * starts there, and no event is read for nobody. Each reader keeps its own cursor and reads from
 * the ring, or from the store when it has fallen further behind than the ring holds.
 */
export class StatusStream {
  private readonly ring: StoredEvent[] = [];
  private cursor = 0;
  private readonly listeners = new Set<StatusListener>();
  private reading = false;
  private again = false;
  private timer: NodeJS.Timeout | null = null;
  private stopCommits: (() => void) | null = null;
  private idle: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly log: Logger,
  ) {}

  async start(pollMs = 500): Promise<void> {
    this.cursor = await statusEventRepo.latestSeq(this.store.db);
    // Only commits that wrote a run-status event have anything for the tail (other replicas'
    // commits are found by the timer).
    this.stopCommits = this.store.onCommit((c) => {
      if (c.eventTypes.has('run.status') && this.listeners.size > 0) this.kick();
    });
    this.timer = setInterval(() => this.kick(), pollMs);
  }

  async stop(): Promise<void> {
    this.stopCommits?.();
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.listeners.clear();
    await this.idle;
  }

  subscribe(listener: StatusListener): () => void {
    this.listeners.add(listener);
    this.kick();
    return () => this.listeners.delete(listener);
  }

  /** The newest sequence number the tail has read. */
  get head(): number {
    return this.cursor;
  }

  /** Reads up to the newest committed status event (a reader starting at the present). */
  async catchUp(): Promise<void> {
    this.kick();
    do await this.idle;
    while (this.reading);
  }

  /** Status events after `seq`, oldest first, at most `limit`. */
  async after(seq: number, limit = 1000): Promise<StoredEvent[]> {
    const oldest = this.ring[0];
    if (oldest && seq >= oldest.seq - 1) {
      const out: StoredEvent[] = [];
      for (const ev of this.ring) {
        if (ev.seq > seq) out.push(ev);
        if (out.length >= limit) break;
      }
      return out;
    }
    if (seq >= this.cursor) return [];
    return statusEventRepo.after(this.store.db, seq, Math.min(limit, 1000), this.cursor);
  }

  private kick(): void {
    if (this.reading) {
      this.again = true;
      return;
    }
    this.reading = true;
    this.idle = this.read()
      .catch((err: unknown) => this.log.warn({ err }, 'run status tail failed'))
      .finally(() => {
        this.reading = false;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  private async read(): Promise<void> {
    if (this.listeners.size === 0) {
      // Nobody reads: move the cursor to the newest status event without reading the events
      // in between (thousands a second with many learners). The ring must stay a gap-free run
      // of events ending at the cursor, so it starts again from there; a reader that then asks
      // for older events gets them from the store.
      const latest = await statusEventRepo.latestStatusSeq(this.store.db);
      if (latest > this.cursor) {
        this.cursor = latest;
        this.ring.length = 0;
      }
      return;
    }
    for (;;) {
      const batch = await statusEventRepo.after(this.store.db, this.cursor, 1000);
      if (batch.length === 0) return;
      for (const ev of batch) this.ring.push(ev);
      if (this.ring.length > RING) this.ring.splice(0, this.ring.length - RING);
      this.cursor = batch[batch.length - 1]?.seq ?? this.cursor;
      for (const l of this.listeners) l();
      if (batch.length < 1000) return;
    }
  }
}
