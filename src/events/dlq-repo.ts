import type { Insertable, Selectable } from 'kysely';
import type { Executor } from '../store/database.js';
import type { DeadLettersTable } from '../store/schema.js';
import type { DeadLetterStatus } from './dlq-model.js';

export type DeadLetterRow = Selectable<DeadLettersTable>;
export type NewDeadLetterRow = Omit<Insertable<DeadLettersTable>, 'seq'>;

export interface DeadLetterFilter {
  status?: DeadLetterStatus | undefined;
  subscriber?: string | undefined;
  /** Entries older than this seq (pages run newest first). */
  beforeSeq?: number | undefined;
  limit: number;
}

/** SQL for the dead-letter queue. */
export const dlqRepo = {
  /**
   * Records a dead letter. The same event failing again for the same subscriber (delivered again
   * after a restart) reopens its entry instead of adding a second one.
   */
  async upsert(db: Executor, row: NewDeadLetterRow): Promise<void> {
    await db
      .insertInto('dead_letters')
      .values(row)
      .onConflict((oc) =>
        oc.columns(['subscriber', 'event_id']).doUpdateSet((eb) => ({
          error: eb.ref('excluded.error'),
          stack: eb.ref('excluded.stack'),
          attempts: eb(eb.ref('dead_letters.attempts'), '+', eb.ref('excluded.attempts')),
          status: eb.ref('excluded.status'),
          next_retry_at: eb.ref('excluded.next_retry_at'),
          updated_at: eb.ref('excluded.updated_at'),
          last_failed_at: eb.ref('excluded.last_failed_at'),
          resolved_at: eb.ref('excluded.resolved_at'),
        })),
      )
      .execute();
  },

  async get(db: Executor, id: string): Promise<DeadLetterRow | undefined> {
    return db.selectFrom('dead_letters').selectAll().where('id', '=', id).executeTakeFirst();
  },

  async list(db: Executor, f: DeadLetterFilter): Promise<DeadLetterRow[]> {
    let q = db.selectFrom('dead_letters').selectAll();
    if (f.status) q = q.where('status', '=', f.status);
    if (f.subscriber) q = q.where('subscriber', '=', f.subscriber);
    if (f.beforeSeq !== undefined) q = q.where('seq', '<', f.beforeSeq);
    return q.orderBy('seq', 'desc').limit(f.limit).execute();
  },

  async countBySubscriberAndStatus(
    db: Executor,
  ): Promise<Array<{ subscriber: string; status: string; n: number }>> {
    const rows = await db
      .selectFrom('dead_letters')
      .select((eb) => ['subscriber', 'status', eb.fn.countAll<number>().as('n')])
      .groupBy(['subscriber', 'status'])
      .execute();
    return rows.map((r) => ({ subscriber: r.subscriber, status: r.status, n: Number(r.n) }));
  },

  /** Pending entries of these subscribers whose retry is due, oldest due first. */
  async selectDue(
    db: Executor,
    now: number,
    subscribers: readonly string[],
    limit: number,
  ): Promise<DeadLetterRow[]> {
    return db
      .selectFrom('dead_letters')
      .selectAll()
      .where('status', '=', 'pending')
      .where('next_retry_at', '<=', now)
      .where('subscriber', 'in', subscribers)
      .orderBy('next_retry_at')
      .limit(limit)
      .execute();
  },

  /**
   * Pushes the next retry of claimed entries to `until`, so a replica that claims after this
   * one (or this one after a crash) does not run them at the same time.
   */
  async lease(db: Executor, ids: readonly string[], until: number): Promise<void> {
    if (ids.length === 0) return;
    await db.updateTable('dead_letters').set({ next_retry_at: until }).where('id', 'in', ids).execute();
  },

  async markRecovered(db: Executor, id: string, now: number): Promise<void> {
    await db
      .updateTable('dead_letters')
      .set((eb) => ({
        status: 'recovered',
        next_retry_at: null,
        resolved_at: now,
        updated_at: now,
        retry_count: eb(eb.ref('retry_count'), '+', 1),
      }))
      .where('id', '=', id)
      .execute();
  },

  /** Records a failed retry: the error, one more attempt and what the policy decided. */
  async markFailed(
    db: Executor,
    id: string,
    f: {
      error: string;
      stack: string | null;
      status: DeadLetterStatus;
      retry_count: number;
      next_retry_at: number | null;
      now: number;
    },
  ): Promise<void> {
    await db
      .updateTable('dead_letters')
      .set((eb) => ({
        error: f.error,
        stack: f.stack,
        attempts: eb(eb.ref('attempts'), '+', 1),
        status: f.status,
        retry_count: f.retry_count,
        next_retry_at: f.next_retry_at,
        last_failed_at: f.now,
        updated_at: f.now,
        resolved_at: f.status === 'abandoned' ? f.now : null,
      }))
      .where('id', '=', id)
      .execute();
  },

  /** Abandons pending entries created before `cutoff` (past the age limit); returns how many. */
  async abandonOlderThan(db: Executor, cutoff: number, now: number): Promise<number> {
    const r = await db
      .updateTable('dead_letters')
      .set({ status: 'abandoned', next_retry_at: null, resolved_at: now, updated_at: now })
      .where('status', '=', 'pending')
      .where('created_at', '<', cutoff)
      .executeTakeFirst();
    return Number(r.numUpdatedRows);
  },
};
