import type { Kysely } from 'kysely';
import type { DialectName } from '../dialect.js';

/** Sweep engine: sweeps (the validated file, status, lease) and their trials (one row per trial number). */
export function up0005(dialect: DialectName) {
  return async (db: Kysely<unknown>): Promise<void> => {
    const seqColumn = <T extends Parameters<typeof db.schema.createTable>[0]>(table: T) =>
      dialect === 'postgres'
        ? db.schema.createTable(table).addColumn('seq', 'bigserial', (c) => c.primaryKey())
        : db.schema.createTable(table).addColumn('seq', 'integer', (c) => c.primaryKey().autoIncrement());

    await seqColumn('sweeps')
      .addColumn('id', 'text', (c) => c.notNull().unique())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('spec', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('status_reason', 'text')
      .addColumn('trial_count', 'integer', (c) => c.notNull())
      .addColumn('best_trial', 'integer')
      .addColumn('best_value', 'double precision')
      .addColumn('lease_owner', 'text')
      .addColumn('lease_until', 'bigint')
      .addColumn('last_error', 'text')
      .addColumn('exhausted_at', 'bigint')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addColumn('finished_at', 'bigint')
      .execute();
    await db.schema.createIndex('sweeps_status_seq_idx').on('sweeps').columns(['status', 'seq']).execute();

    await db.schema
      .createTable('sweep_trials')
      .addColumn('sweep_id', 'text', (c) => c.notNull())
      .addColumn('number', 'integer', (c) => c.notNull())
      .addColumn('params', 'text', (c) => c.notNull())
      .addColumn('origin', 'text', (c) => c.notNull())
      .addColumn('parent_number', 'integer')
      .addColumn('member', 'integer')
      .addColumn('bracket', 'integer')
      .addColumn('start_step', 'bigint', (c) => c.notNull())
      .addColumn('resume_from', 'text')
      .addColumn('run_id', 'text', (c) => c.notNull())
      .addColumn('attempt', 'integer', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('end_reason', 'text')
      .addColumn('train_ref', 'text')
      .addColumn('train_state', 'text')
      .addColumn('eval_ref', 'text')
      .addColumn('eval_state', 'text')
      .addColumn('objective_values', 'text')
      .addColumn('cost', 'double precision')
      .addColumn('rungs', 'text', (c) => c.notNull())
      .addColumn('stop_requested_at', 'bigint')
      .addColumn('error', 'text')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addColumn('activity_at', 'bigint', (c) => c.notNull())
      .addColumn('ended_at', 'bigint')
      .addPrimaryKeyConstraint('sweep_trials_pk', ['sweep_id', 'number'])
      .execute();
    await db.schema.createIndex('sweep_trials_run_idx').on('sweep_trials').column('run_id').execute();
  };
}
