import type { Kysely } from 'kysely';
import type { DialectName } from '../dialect.js';

/** Run orchestrator: runs, their labels and metric series, control commands, the audit chain. */
export function up0002(dialect: DialectName) {
  return async (db: Kysely<unknown>): Promise<void> => {
    const seqColumn = <T extends Parameters<typeof db.schema.createTable>[0]>(table: T) =>
      dialect === 'postgres'
        ? db.schema.createTable(table).addColumn('seq', 'bigserial', (c) => c.primaryKey())
        : db.schema.createTable(table).addColumn('seq', 'integer', (c) => c.primaryKey().autoIncrement());

    await seqColumn('runs')
      .addColumn('id', 'text', (c) => c.notNull().unique())
      .addColumn('name', 'text')
      .addColumn('config', 'text', (c) => c.notNull())
      .addColumn('labels', 'text', (c) => c.notNull())
      .addColumn('job_id', 'text')
      .addColumn('sweep_id', 'text')
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('health', 'text', (c) => c.notNull())
      .addColumn('step', 'bigint')
      .addColumn('samples_per_sec', 'double precision')
      .addColumn('loss', 'double precision')
      .addColumn('checkpoint_version', 'bigint')
      .addColumn('last_error', 'text')
      .addColumn('notes', 'text')
      .addColumn('queued_commands', 'text')
      .addColumn('summary', 'text', (c) => c.notNull())
      .addColumn('last_heartbeat_at', 'bigint')
      .addColumn('liveness_extension_ms', 'bigint', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addColumn('ended_at', 'bigint')
      .execute();
    await db.schema.createIndex('runs_status_seq_idx').on('runs').columns(['status', 'seq']).execute();
    await db.schema.createIndex('runs_health_seq_idx').on('runs').columns(['health', 'seq']).execute();
    await db.schema.createIndex('runs_sweep_seq_idx').on('runs').columns(['sweep_id', 'seq']).execute();
    await db.schema.createIndex('runs_job_idx').on('runs').column('job_id').execute();

    await db.schema
      .createTable('run_labels')
      .addColumn('run_id', 'text', (c) => c.notNull())
      .addColumn('run_seq', 'bigint', (c) => c.notNull())
      .addColumn('key', 'text', (c) => c.notNull())
      .addColumn('value', 'text', (c) => c.notNull())
      .addPrimaryKeyConstraint('run_labels_pk', ['run_id', 'key'])
      .execute();
    await db.schema
      .createIndex('run_labels_kv_idx')
      .on('run_labels')
      .columns(['key', 'value', 'run_seq'])
      .execute();

    await db.schema
      .createTable('run_metrics')
      .addColumn('run_id', 'text', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('step', 'bigint', (c) => c.notNull())
      .addColumn('value', 'double precision', (c) => c.notNull())
      .addColumn('recorded_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('run_metrics_pk', ['run_id', 'name', 'step'])
      .execute();

    await seqColumn('run_commands')
      .addColumn('id', 'text', (c) => c.notNull().unique())
      .addColumn('run_id', 'text', (c) => c.notNull())
      .addColumn('type', 'text', (c) => c.notNull())
      .addColumn('payload', 'text', (c) => c.notNull())
      .addColumn('actor_type', 'text', (c) => c.notNull())
      .addColumn('actor_id', 'text', (c) => c.notNull())
      .addColumn('issued_at', 'bigint', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('delivered_at', 'bigint')
      .addColumn('acknowledged_at', 'bigint')
      .addColumn('delivery_count', 'integer', (c) => c.notNull())
      .addColumn('visible_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('run_commands_run_pending_idx')
      .on('run_commands')
      .columns(['run_id', 'acknowledged_at', 'seq'])
      .execute();

    // Append-only: the product has no statement that updates or deletes these rows.
    await seqColumn('control_audit')
      .addColumn('id', 'text', (c) => c.notNull().unique())
      .addColumn('run_id', 'text')
      .addColumn('action', 'text', (c) => c.notNull())
      .addColumn('actor_type', 'text', (c) => c.notNull())
      .addColumn('actor_id', 'text', (c) => c.notNull())
      .addColumn('envelope', 'text', (c) => c.notNull())
      .addColumn('source_ip', 'text')
      .addColumn('user_agent', 'text')
      .addColumn('client_cert_fingerprint', 'text')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('prev_hash', 'text', (c) => c.notNull())
      .addColumn('entry_hash', 'text', (c) => c.notNull().unique())
      .execute();
    // One successor per entry: an append that raced outside the writer lock fails instead of forking the chain.
    await db.schema
      .createIndex('control_audit_prev_uq')
      .on('control_audit')
      .column('prev_hash')
      .unique()
      .execute();
    await db.schema
      .createIndex('control_audit_run_idx')
      .on('control_audit')
      .columns(['run_id', 'seq'])
      .execute();

    await seqColumn('audit_exports')
      .addColumn('from_seq', 'bigint', (c) => c.notNull())
      .addColumn('to_seq', 'bigint', (c) => c.notNull())
      .addColumn('entry_count', 'integer', (c) => c.notNull())
      .addColumn('head_hash', 'text', (c) => c.notNull())
      .addColumn('path', 'text', (c) => c.notNull())
      .addColumn('exported_at', 'bigint', (c) => c.notNull())
      .execute();
  };
}
