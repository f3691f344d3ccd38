import type { Kysely } from 'kysely';
import type { DialectName } from '../dialect.js';

/**
 * The outbox's (entity_id, seq) index is dropped: no query reads events by entity (readers
 * follow the log by seq, or one type by (type, seq)), and every event paid for it. Appends to
 * the log are in seq order and touch its last pages, while this index put each event in its
 * entity's part of the tree: a heartbeat batch of 16 runs dirtied some 10 more pages per commit
 * on SQLite for an index nothing used.
 */
export function up0009(_dialect: DialectName) {
  return async (db: Kysely<unknown>): Promise<void> => {
    await db.schema.dropIndex('events_entity_idx').ifExists().execute();
  };
}
