import type { Insertable } from 'kysely';
import { newId } from '../shared/ids.js';
import { bulkInsert } from '../store/bulk-sql.js';
import { noteEventTypes } from '../store/commit-hooks.js';
import type { Executor } from '../store/database.js';
import { deferWrite } from '../store/deferred-writes.js';
import type { EventsTable } from '../store/schema.js';
import { currentTraceparent, normalizeTraceparent } from '../tracing/context.js';
import type { NewEvent, StoredEvent } from './catalog.js';

type EventRow = Omit<Insertable<EventsTable>, 'seq'>;

/** Every state change appends events, so this statement is built once per row count. */
const insertRows = bulkInsert<EventRow>('events', [
  'id',
  'type',
  'entity_id',
  'payload',
  'created_at',
  'traceparent',
]);

/**
 * Inside a store transaction the rows are written in order, in one statement, just before the
 * commit (with the transaction's other deferred appends); outside one they are written at once.
 */
async function appendRows(tx: Executor, rows: EventRow[]): Promise<void> {
  if (rows.length === 0) return;
  noteEventTypes(
    tx,
    rows.map((r) => r.type),
  );
  await deferWrite(tx, insertRows, rows);
}

/** SQL for the transactional outbox, subscriber cursors and the content hashes of published events. */
export const outboxRepo = {
  /**
   * Appends events in the caller's transaction, so the state change and its events commit
   * together (buffered and written just before the commit). Each row keeps the event's own
   * traceparent when it names one, else that of the caller's active trace context (null outside
   * a trace), taken now, not at the commit.
   */
  async append(tx: Executor, events: readonly NewEvent[], now: number): Promise<void> {
    const active = currentTraceparent() ?? null;
    return appendRows(
      tx,
      events.map((e) => ({
        id: newId('evt', now),
        type: e.type,
        entity_id: e.entity_id,
        payload: JSON.stringify(e.payload),
        created_at: now,
        traceparent: e.traceparent === undefined ? active : normalizeTraceparent(e.traceparent),
      })),
    );
  },

  /**
   * Appends events that already have their ids (external producers choose theirs, so a retried
   * publish is recognised). The caller checks the ids are new: a duplicate fails the commit.
   * Like `append`, each row keeps the caller's traceparent.
   */
  async appendWithIds(
    tx: Executor,
    events: ReadonlyArray<{ id: string; type: string; entity_id: string; payload: unknown }>,
    now: number,
  ): Promise<void> {
    const traceparent = currentTraceparent() ?? null;
    return appendRows(
      tx,
      events.map((e) => ({
        id: e.id,
        type: e.type,
        entity_id: e.entity_id,
        payload: JSON.stringify(e.payload),
        created_at: now,
        traceparent,
      })),
    );
  },

  async findById(db: Executor, id: string): Promise<StoredEvent | undefined> {
    const r = await db.selectFrom('events').selectAll().where('id', '=', id).executeTakeFirst();
    return r ? { ...r, payload: JSON.parse(r.payload) as unknown } : undefined;
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

  // ----- content hashes of published events (the router's dedup window) -----

  /** The event published with this content hash after `since`, if any. */
  async recentHash(db: Executor, hash: string, since: number): Promise<string | undefined> {
    const r = await db
      .selectFrom('event_hashes')
      .select('event_id')
      .where('hash', '=', hash)
      .where('created_at', '>', since)
      .executeTakeFirst();
    return r?.event_id;
  },

  async saveHash(db: Executor, hash: string, eventId: string, now: number): Promise<void> {
    await db
      .insertInto('event_hashes')
      .values({ hash, event_id: eventId, created_at: now })
      .onConflict((oc) => oc.column('hash').doUpdateSet({ event_id: eventId, created_at: now }))
      .execute();
  },

  async pruneHashes(db: Executor, before: number): Promise<void> {
    await db.deleteFrom('event_hashes').where('created_at', '<', before).execute();
  },
};
