import type { Kysely } from 'kysely';
import type { DialectName } from '../dialect.js';

/**
 * Coordination: pipelines (one row per start of a config's pipeline), their stage attempts,
 * the stage events each pipeline already applied (idempotence by event id), and models.
 */
export function up0006(dialect: DialectName) {
  return async (db: Kysely<unknown>): Promise<void> => {
    const seqColumn = <T extends Parameters<typeof db.schema.createTable>[0]>(table: T) =>
      dialect === 'postgres'
        ? db.schema.createTable(table).addColumn('seq', 'bigserial', (c) => c.primaryKey())
        : db.schema.createTable(table).addColumn('seq', 'integer', (c) => c.primaryKey().autoIncrement());

    await seqColumn('pipelines')
      .addColumn('id', 'text', (c) => c.notNull().unique())
      .addColumn('config_key', 'text', (c) => c.notNull())
      .addColumn('spec', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('stage', 'text', (c) => c.notNull())
      .addColumn('stage_attempt', 'integer', (c) => c.notNull())
      .addColumn('work_dir', 'text', (c) => c.notNull())
      .addColumn('breaker_state', 'text', (c) => c.notNull())
      .addColumn('consecutive_failures', 'integer', (c) => c.notNull())
      .addColumn('breaker_opened_at', 'bigint')
      .addColumn('outputs', 'text', (c) => c.notNull())
      .addColumn('last_error', 'text')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addColumn('finished_at', 'bigint')
      .execute();
    await db.schema
      .createIndex('pipelines_config_seq_idx')
      .on('pipelines')
      .columns(['config_key', 'seq'])
      .execute();
    await db.schema.createIndex('pipelines_status_idx').on('pipelines').column('status').execute();

    await db.schema
      .createTable('pipeline_stages')
      .addColumn('pipeline_id', 'text', (c) => c.notNull())
      .addColumn('stage', 'text', (c) => c.notNull())
      .addColumn('attempt', 'integer', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('job_id', 'text')
      .addColumn('event_id', 'text')
      .addColumn('result', 'text')
      .addColumn('error', 'text')
      .addColumn('blocked_reason', 'text')
      .addColumn('quarantine', 'text')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addColumn('finished_at', 'bigint')
      .addPrimaryKeyConstraint('pipeline_stages_pk', ['pipeline_id', 'stage', 'attempt'])
      .execute();
    await db.schema.createIndex('pipeline_stages_job_idx').on('pipeline_stages').column('job_id').execute();
    await db.schema
      .createIndex('pipeline_stages_status_idx')
      .on('pipeline_stages')
      .column('status')
      .execute();

    await db.schema
      .createTable('pipeline_applied_events')
      .addColumn('event_id', 'text', (c) => c.primaryKey())
      .addColumn('pipeline_id', 'text', (c) => c.notNull())
      .addColumn('outcome', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();

    await seqColumn('models')
      .addColumn('id', 'text', (c) => c.notNull().unique())
      .addColumn('config_key', 'text', (c) => c.notNull())
      .addColumn('path', 'text')
      .addColumn('state', 'text', (c) => c.notNull())
      .addColumn('metrics', 'text', (c) => c.notNull())
      .addColumn('previous_model_id', 'text')
      .addColumn('pipeline_id', 'text')
      .addColumn('reason', 'text')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addColumn('promoted_at', 'bigint')
      .execute();
    await db.schema
      .createIndex('models_config_state_idx')
      .on('models')
      .columns(['config_key', 'state'])
      .execute();
  };
}
