import type { Kysely } from 'kysely';
import type { DialectName } from '../dialect.js';

/** Event router: the dead-letter queue and the content hashes of recently published events. */
export function up0004(dialect: DialectName) {
  return async (db: Kysely<unknown>): Promise<void> => {
    const seqColumn = <T extends Parameters<typeof db.schema.createTable>[0]>(table: T) =>
      dialect === 'postgres'
        ? db.schema.createTable(table).addColumn('seq', 'bigserial', (c) => c.primaryKey())
        : db.schema.createTable(table).addColumn('seq', 'integer', (c) => c.primaryKey().autoIncrement());

    await seqColumn('dead_letters')
      .addColumn('id', 'text', (c) => c.notNull().unique())
      .addColumn('subscriber', 'text', (c) => c.notNull())
      .addColumn('event_id', 'text', (c) => c.notNull())
      .addColumn('event_seq', 'bigint')
      .addColumn('event_type', 'text', (c) => c.notNull())
      .addColumn('event', 'text', (c) => c.notNull())
      .addColumn('error', 'text', (c) => c.notNull())
      .addColumn('stack', 'text')
      .addColumn('attempts', 'integer', (c) => c.notNull())
      .addColumn('retry_count', 'integer', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('next_retry_at', 'bigint')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addColumn('last_failed_at', 'bigint', (c) => c.notNull())
      .addColumn('resolved_at', 'bigint')
      .execute();
    // One entry per event and subscriber: an event dead-lettered again reopens its entry.
    await db.schema
      .createIndex('dead_letters_subscriber_event_uq')
      .on('dead_letters')
      .columns(['subscriber', 'event_id'])
      .unique()
      .execute();
    await db.schema
      .createIndex('dead_letters_status_due_idx')
      .on('dead_letters')
      .columns(['status', 'next_retry_at'])
      .execute();
    await db.schema
      .createIndex('dead_letters_status_seq_idx')
      .on('dead_letters')
      .columns(['status', 'seq'])
      .execute();

    await db.schema
      .createTable('event_hashes')
      .addColumn('hash', 'text', (c) => c.primaryKey())
      .addColumn('event_id', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('event_hashes_created_idx').on('event_hashes').column('created_at').execute();
  };
}
