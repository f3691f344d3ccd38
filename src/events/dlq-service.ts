import type { Logger } from 'pino';
import { type Clock, toIso } from '../shared/clock.js';
import { AppError } from '../shared/errors.js';
import { newId } from '../shared/ids.js';
import type { Executor, Store } from '../store/database.js';
import { withTraceparent } from '../tracing/context.js';
import type { StoredEvent } from './catalog.js';
import {
  afterFailedRetry,
  DEAD_LETTER_STATUSES,
  type DeadLetterStatus,
  type DlqPolicy,
  firstSchedule,
} from './dlq-model.js';
import { type DeadLetterRow, dlqRepo } from './dlq-repo.js';
import { type EventHandler, errorInfo } from './handler.js';

/** A dead letter on the wire (GET /api/v1/dlq). */
export interface DeadLetterView {
  id: string;
  subscriber: string;
  status: DeadLetterStatus;
  event_id: string;
  event_seq: number | null;
  event_type: string;
  event: unknown;
  error: string;
  stack: string | null;
  attempts: number;
  retry_count: number;
  next_retry_at: string | null;
  created_at: string | null;
  updated_at: string | null;
  last_failed_at: string | null;
  resolved_at: string | null;
}

export interface DeadLetterStats {
  pending: number;
  recovered: number;
  abandoned: number;
  by_subscriber: Record<string, { pending: number; recovered: number; abandoned: number }>;
}

export interface DeadLetterInput {
  subscriber: string;
  event: StoredEvent;
  error: unknown;
  /** Handler runs that failed so far. */
  attempts: number;
  /** False for failures no retry can fix (an invalid ingested message): abandoned at once. */
  retryable?: boolean;
}

export interface DlqOptions {
  /** How often the retry daemon looks for due entries. */
  retryIntervalMs: number;
  /** Entries retried per round. */
  batchSize?: number;
  /** A claimed entry is not claimed again for this long (a replica that died mid-retry). */
  leaseMs?: number;
}

const deadLetterNotFound = (id: string): AppError =>
  new AppError(404, 'DEAD_LETTER_NOT_FOUND', `dead letter ${id} not found`);

export function toDeadLetterView(r: DeadLetterRow): DeadLetterView {
  return {
    id: r.id,
    subscriber: r.subscriber,
    status: r.status as DeadLetterStatus,
    event_id: r.event_id,
    event_seq: r.event_seq,
    event_type: r.event_type,
    event: JSON.parse(r.event) as unknown,
    error: r.error,
    stack: r.stack,
    attempts: r.attempts,
    retry_count: r.retry_count,
    next_retry_at: toIso(r.next_retry_at),
    created_at: toIso(r.created_at),
    updated_at: toIso(r.updated_at),
    last_failed_at: toIso(r.last_failed_at),
    resolved_at: toIso(r.resolved_at),
  };
}

/**
 * The dead-letter queue: records events a subscriber could not handle, runs them again on the
 * policy's schedule (the retry daemon, once across replicas) or on request, and answers the
 * API's list and stats. Subscribers register their handler by name; an entry whose subscriber is
 * not registered in this process waits for one that has it.
 */
export class DeadLetterQueue {
  private readonly handlers = new Map<string, EventHandler>();
  private timer: NodeJS.Timeout | null = null;
  private round: Promise<unknown> | null = null;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly log: Logger,
    readonly policy: DlqPolicy,
    private readonly opts: DlqOptions,
  ) {}

  /** Makes `subscriber`'s dead letters retryable from this process. */
  register(subscriber: string, handler: EventHandler): void {
    this.handlers.set(subscriber, handler);
  }

  /** Records a dead letter in the caller's transaction (with the subscriber's cursor move). */
  async record(tx: Executor, input: DeadLetterInput): Promise<void> {
    const now = this.clock.now();
    const { message, stack } = errorInfo(input.error);
    const schedule =
      input.retryable === false
        ? { status: 'abandoned' as const, next_retry_at: null }
        : firstSchedule(this.policy, now);
    await dlqRepo.upsert(tx, {
      id: newId('dlq', now),
      subscriber: input.subscriber,
      event_id: input.event.id,
      event_seq: input.event.seq > 0 ? input.event.seq : null,
      event_type: input.event.type,
      event: JSON.stringify(input.event),
      error: message.slice(0, 8192),
      stack: stack?.slice(0, 16384) ?? null,
      attempts: input.attempts,
      retry_count: 0,
      status: schedule.status,
      next_retry_at: schedule.next_retry_at,
      created_at: now,
      updated_at: now,
      last_failed_at: now,
      resolved_at: schedule.status === 'abandoned' ? now : null,
    });
    this.log.error(
      {
        subscriber: input.subscriber,
        event: input.event.id,
        type: input.event.type,
        attempts: input.attempts,
        status: schedule.status,
        error: message,
      },
      'event dead-lettered',
    );
  }

  async list(q: {
    status?: DeadLetterStatus | undefined;
    subscriber?: string | undefined;
    limit?: number | undefined;
    cursor?: string | undefined;
  }): Promise<{ dead_letters: DeadLetterView[]; next_cursor: string | null }> {
    const limit = q.limit ?? 100;
    const rows = await dlqRepo.list(this.store.db, {
      status: q.status,
      subscriber: q.subscriber,
      beforeSeq: q.cursor === undefined ? undefined : Number(q.cursor),
      limit: limit + 1,
    });
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return {
      dead_letters: page.map(toDeadLetterView),
      next_cursor: rows.length > limit && last ? String(last.seq) : null,
    };
  }

  async get(id: string): Promise<DeadLetterView> {
    const row = await dlqRepo.get(this.store.db, id);
    if (!row) throw deadLetterNotFound(id);
    return toDeadLetterView(row);
  }

  async stats(): Promise<DeadLetterStats> {
    const out: DeadLetterStats = { pending: 0, recovered: 0, abandoned: 0, by_subscriber: {} };
    for (const { subscriber, status, n } of await dlqRepo.countBySubscriberAndStatus(this.store.db)) {
      if (!(DEAD_LETTER_STATUSES as readonly string[]).includes(status)) continue;
      const s = status as DeadLetterStatus;
      out[s] += n;
      const per = out.by_subscriber[subscriber] ?? { pending: 0, recovered: 0, abandoned: 0 };
      per[s] += n;
      out.by_subscriber[subscriber] = per;
    }
    return out;
  }

  /**
   * Runs one dead letter's handler now (POST /api/v1/dlq/{id}/retry). A pending entry that fails
   * again counts as a retry of the schedule; an abandoned one stays abandoned.
   */
  async retry(id: string): Promise<DeadLetterView> {
    const row = await dlqRepo.get(this.store.db, id);
    if (!row) throw deadLetterNotFound(id);
    if (row.status === 'recovered')
      throw new AppError(409, 'DEAD_LETTER_RECOVERED', `dead letter ${id} has already recovered`);
    if (!this.handlers.has(row.subscriber))
      throw new AppError(
        409,
        'SUBSCRIBER_UNAVAILABLE',
        `subscriber ${row.subscriber} is not running in this process, so its dead letter cannot be retried here`,
      );
    await this.runRetry(row);
    return this.get(id);
  }

  /**
   * One round of the retry daemon: abandons entries past the age limit, claims the due ones
   * whose subscriber runs here (under the leader lock, so replicas never retry one twice) and
   * runs them. Returns how many recovered and how many failed again.
   */
  async retryDue(): Promise<{ recovered: number; failed: number }> {
    const now = this.clock.now();
    const subscribers = [...this.handlers.keys()];
    const claimed = await this.store.transaction(async (tx) => {
      if (!(await this.store.tryLeaderLock(tx, 'dlq-retry'))) return [];
      const abandoned = await dlqRepo.abandonOlderThan(tx, now - this.policy.abandonAfterMs, now);
      if (abandoned > 0) this.log.warn({ abandoned }, 'dead letters abandoned: past the age limit');
      if (subscribers.length === 0) return [];
      const due = await dlqRepo.selectDue(tx, now, subscribers, this.opts.batchSize ?? 100);
      await dlqRepo.lease(
        tx,
        due.map((r) => r.id),
        now + (this.opts.leaseMs ?? 300_000),
      );
      return due;
    });
    let recovered = 0;
    for (const row of claimed) if (await this.runRetry(row)) recovered += 1;
    return { recovered, failed: claimed.length - recovered };
  }

  /** Starts the retry daemon. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      if (this.round !== null) return;
      this.round = this.retryDue()
        .catch((err: unknown) => this.log.error({ err }, 'dead-letter retry round failed'))
        .finally(() => {
          this.round = null;
        });
    }, this.opts.retryIntervalMs);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.round;
  }

  private async runRetry(row: DeadLetterRow): Promise<boolean> {
    const handler = this.handlers.get(row.subscriber);
    if (!handler) return false;
    try {
      const ev = JSON.parse(row.event) as StoredEvent;
      await withTraceparent(ev.traceparent, () => handler(ev));
    } catch (err) {
      const now = this.clock.now();
      const { message, stack } = errorInfo(err);
      const next =
        row.status === 'pending'
          ? afterFailedRetry(this.policy, row, now)
          : { status: row.status as DeadLetterStatus, retry_count: row.retry_count, next_retry_at: null };
      await dlqRepo.markFailed(this.store.db, row.id, {
        error: message.slice(0, 8192),
        stack: stack?.slice(0, 16384) ?? null,
        ...next,
        now,
      });
      this.log.warn(
        { dead_letter: row.id, subscriber: row.subscriber, status: next.status, error: message },
        'dead-letter retry failed',
      );
      return false;
    }
    await dlqRepo.markRecovered(this.store.db, row.id, this.clock.now());
    this.log.info({ dead_letter: row.id, subscriber: row.subscriber }, 'dead letter recovered');
    return true;
  }
}
