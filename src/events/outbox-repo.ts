import { newId } from '../shared/ids.js';
import type { Executor } from '../store/database.js';
import type { NewEvent, StoredEvent } from './catalog.js';

/** SQL for the transactional outbox and subscriber cursors. */
export const outboxRepo = {
  /** Appends events in the caller's transaction (the state change and its event commit together). */
  async append(tx: Executor, events: readonly NewEvent[], now: number): Promise<void> {
    if (events.length === 0) return;
    for (let i = 0; i < events.length; i += 500) {
      await tx
        .insertInto('events')
        .values(
          events.slice(i, i + 500).map((e) => ({
            id: newId('evt', now),
            type: e.type,
            entity_id: e.entity_id,
            payload: JSON.stringify(e.payload),
            created_at: now,
          })),
        )
        .execute();
    }
  },

  async readAfter(db: Executor, afterSeq: number, limit: number): Promise<StoredEvent[]> {
    const rows = await db
      .selectFrom('events')
      .selectAll()
      .where('seq', '>', afterSeq)
      .orderBy('seq')
      .limit(limit)
      .execute();
    return rows.map((r) => ({ ...r, payload: JSON.parse(r.payload) as unknown }));
  },

  async latestSeq(db: Executor): Promise<number> {
    const r = await db
      .selectFrom('events')
      .select((eb) => eb.fn.max('seq').as('m'))
      .executeTakeFirst();
    return Number(r?.m ?? 0);
  },

  async getCursor(db: Executor, subscriber: string): Promise<number | null> {
    const r = await db
      .selectFrom('event_cursors')
      .select('last_seq')
      .where('subscriber', '=', subscriber)
      .executeTakeFirst();
    return r ? r.last_seq : null;
  },

  async saveCursor(db: Executor, subscriber: string, lastSeq: number, now: number): Promise<void> {
    await db
      .insertInto('event_cursors')
      .values({ subscriber, last_seq: lastSeq, updated_at: now })
      .onConflict((oc) => oc.column('subscriber').doUpdateSet({ last_seq: lastSeq, updated_at: now }))
      .execute();
  },
};
