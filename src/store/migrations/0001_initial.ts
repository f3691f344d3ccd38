import type { Kysely } from 'kysely';
import type { DialectName } from '../dialect.js';

/** Foundation schema: jobs, attempts, workers, endpoints, outbox events, tokens, logs. */
export function up0001(dialect: DialectName) {
  return async (db: Kysely<unknown>): Promise<void> => {
    // An auto-numbered primary key: the outbox and FIFO order both rely on it.
    const seqColumn = <T extends Parameters<typeof db.schema.createTable>[0]>(table: T) =>
      dialect === 'postgres'
        ? db.schema.createTable(table).addColumn('seq', 'bigserial', (c) => c.primaryKey())
        : db.schema.createTable(table).addColumn('seq', 'integer', (c) => c.primaryKey().autoIncrement());

    await seqColumn('jobs')
      .addColumn('id', 'text', (c) => c.notNull().unique())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('parent_job_id', 'text')
      .addColumn('parent_key', 'text', (c) => c.notNull())
      .addColumn('command', 'text', (c) => c.notNull())
      .addColumn('env', 'text', (c) => c.notNull())
      .addColumn('cwd', 'text')
      .addColumn('setup', 'text')
      .addColumn('cpu', 'double precision', (c) => c.notNull())
      .addColumn('memory_mb', 'bigint', (c) => c.notNull())
      .addColumn('gpu', 'integer', (c) => c.notNull())
      .addColumn('device_type', 'text')
      .addColumn('labels', 'text', (c) => c.notNull())
      .addColumn('max_retries_failure', 'integer', (c) => c.notNull())
      .addColumn('max_retries_preemption', 'integer', (c) => c.notNull())
      .addColumn('scheduling_timeout_s', 'double precision', (c) => c.notNull())
      .addColumn('gang_id', 'text')
      .addColumn('gang_size', 'integer')
      .addColumn('run_id', 'text')
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('reason', 'text')
      .addColumn('failure_count', 'integer', (c) => c.notNull())
      .addColumn('preemption_count', 'integer', (c) => c.notNull())
      .addColumn('attempt_count', 'integer', (c) => c.notNull())
      .addColumn('current_attempt_id', 'text')
      .addColumn('submitted_at', 'bigint', (c) => c.notNull())
      .addColumn('pending_since', 'bigint', (c) => c.notNull())
      .addColumn('started_at', 'bigint')
      .addColumn('finished_at', 'bigint')
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('jobs_parent_name_uq')
      .on('jobs')
      .columns(['parent_key', 'name'])
      .unique()
      .execute();
    await db.schema.createIndex('jobs_state_seq_idx').on('jobs').columns(['state', 'seq']).execute();
    await db.schema.createIndex('jobs_parent_idx').on('jobs').columns(['parent_job_id', 'seq']).execute();
    await db.schema.createIndex('jobs_gang_idx').on('jobs').column('gang_id').execute();
    await db.schema.createIndex('jobs_run_idx').on('jobs').column('run_id').execute();

    await db.schema
      .createTable('job_labels')
      .addColumn('job_id', 'text', (c) => c.notNull())
      .addColumn('job_seq', 'bigint', (c) => c.notNull())
      .addColumn('key', 'text', (c) => c.notNull())
      .addColumn('value', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('job_labels_pk', ['job_id', 'key'])
      .execute();
    await db.schema
      .createIndex('job_labels_kv_idx')
      .on('job_labels')
      .columns(['key', 'value', 'job_seq'])
      .execute();

    await db.schema
      .createTable('attempts')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('job_id', 'text', (c) => c.notNull())
      .addColumn('attempt_no', 'integer', (c) => c.notNull())
      .addColumn('worker_id', 'text', (c) => c.notNull())
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('exit_code', 'integer')
      .addColumn('reason', 'text')
      .addColumn('cpu', 'double precision', (c) => c.notNull())
      .addColumn('memory_mb', 'bigint', (c) => c.notNull())
      .addColumn('gpu', 'integer', (c) => c.notNull())
      .addColumn('assigned_at', 'bigint', (c) => c.notNull())
      .addColumn('started_at', 'bigint')
      .addColumn('finished_at', 'bigint')
      .execute();
    await db.schema
      .createIndex('attempts_job_idx')
      .on('attempts')
      .columns(['job_id', 'attempt_no'])
      .execute();
    await db.schema
      .createIndex('attempts_state_worker_idx')
      .on('attempts')
      .columns(['state', 'worker_id'])
      .execute();
    await db.schema
      .createIndex('attempts_worker_state_idx')
      .on('attempts')
      .columns(['worker_id', 'state'])
      .execute();

    await db.schema
      .createTable('workers')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull().unique())
      .addColumn('address', 'text')
      .addColumn('labels', 'text', (c) => c.notNull())
      .addColumn('device_type', 'text')
      .addColumn('cpu', 'double precision', (c) => c.notNull())
      .addColumn('memory_mb', 'bigint', (c) => c.notNull())
      .addColumn('gpu', 'integer', (c) => c.notNull())
      .addColumn('health', 'text', (c) => c.notNull())
      .addColumn('registered_at', 'bigint', (c) => c.notNull())
      .addColumn('last_heartbeat_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('endpoints')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('address', 'text', (c) => c.notNull())
      .addColumn('metadata', 'text', (c) => c.notNull())
      .addColumn('job_id', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('endpoints_name_idx').on('endpoints').column('name').execute();
    await db.schema.createIndex('endpoints_job_idx').on('endpoints').column('job_id').execute();

    await seqColumn('events')
      .addColumn('id', 'text', (c) => c.notNull().unique())
      .addColumn('type', 'text', (c) => c.notNull())
      .addColumn('entity_id', 'text', (c) => c.notNull())
      .addColumn('payload', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('events_entity_idx').on('events').columns(['entity_id', 'seq']).execute();

    await db.schema
      .createTable('event_cursors')
      .addColumn('subscriber', 'text', (c) => c.primaryKey())
      .addColumn('last_seq', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();

    await db.schema
      .createTable('tokens')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('role', 'text', (c) => c.notNull())
      .addColumn('token_hash', 'text', (c) => c.notNull().unique())
      .addColumn('run_id', 'text')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('revoked_at', 'bigint')
      .execute();

    await seqColumn('log_chunks')
      .addColumn('attempt_id', 'text', (c) => c.notNull())
      .addColumn('stream', 'text', (c) => c.notNull())
      .addColumn('data', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('log_chunks_attempt_idx')
      .on('log_chunks')
      .columns(['attempt_id', 'seq'])
      .execute();
  };
}
