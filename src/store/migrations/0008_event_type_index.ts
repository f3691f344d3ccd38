import type { Kysely } from 'kysely';
import type { DialectName } from '../dialect.js';

/**
 * Readers of one event type in log order (the run-status stream reads `run.status` after its
 * cursor on every commit) get an index: without it each read walked every later event, and
 * with no event of that type its cursor never moved, so the whole log was walked each time.
 */
export function up0008(_dialect: DialectName) {
  return async (db: Kysely<unknown>): Promise<void> => {
    await db.schema.createIndex('events_type_seq_idx').on('events').columns(['type', 'seq']).execute();
  };
}
