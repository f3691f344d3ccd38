import type { Kysely } from 'kysely';
import type { DialectName } from '../dialect.js';

/**
 * Tracing: each event row keeps the W3C `traceparent` of the context that wrote it (null when
 * it was written in no trace), so its subscribers, NATS consumers and the jobs they launch
 * continue that trace.
 */
export function up0007(_dialect: DialectName) {
  return async (db: Kysely<unknown>): Promise<void> => {
    // Nullable and without a default: adding it rewrites no rows, on either dialect.
    await db.schema.alterTable('events').addColumn('traceparent', 'text').execute();
  };
}
