import type { StoredEvent } from '../events/catalog.js';
import type { Executor } from '../store/database.js';

/** SQL for reading the `run.status` events of the outbox (the live status stream's source). */
export const statusEventRepo = {
  async after(db: Executor, afterSeq: number, limit: number, uptoSeq?: number): Promise<StoredEvent[]> {
    let q = db.selectFrom('events').selectAll().where('type', '=', 'run.status').where('seq', '>', afterSeq);
    if (uptoSeq !== undefined) q = q.where('seq', '<=', uptoSeq);
    const rows = await q.orderBy('seq').limit(limit).execute();
    return rows.map((r) => ({ ...r, payload: JSON.parse(r.payload) as unknown }));
  },

  /**
   * The newest `run.status` event's sequence number (0: none): one probe of the (type, seq)
   * index, read backwards (`max(seq)` with a WHERE would scan every status event on SQLite).
   */
  async latestStatusSeq(db: Executor): Promise<number> {
    const r = await db
      .selectFrom('events')
      .select('seq')
      .where('type', '=', 'run.status')
      .orderBy('seq', 'desc')
      .limit(1)
      .executeTakeFirst();
    return r ? Number(r.seq) : 0;
  },

  async latestSeq(db: Executor): Promise<number> {
    const r = await db
      .selectFrom('events')
      .select((eb) => eb.fn.max('seq').as('m'))
      .executeTakeFirst();
    return r?.m == null ? 0 : Number(r.m);
  },
};
