import type { Kysely } from 'kysely';
import type { DialectName } from '../dialect.js';

/** Pod evaluator: participants (with league ratings), pods, their epochs, games and trace. */
export function up0003(dialect: DialectName) {
  return async (db: Kysely<unknown>): Promise<void> => {
    const seqColumn = <T extends Parameters<typeof db.schema.createTable>[0]>(table: T) =>
      dialect === 'postgres'
        ? db.schema.createTable(table).addColumn('seq', 'bigserial', (c) => c.primaryKey())
        : db.schema.createTable(table).addColumn('seq', 'integer', (c) => c.primaryKey().autoIncrement());

    await db.schema
      .createTable('participants')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('model_version', 'text')
      .addColumn('mu', 'double precision', (c) => c.notNull())
      .addColumn('sigma', 'double precision', (c) => c.notNull())
      .addColumn('games', 'bigint', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();

    await seqColumn('pods')
      .addColumn('id', 'text', (c) => c.notNull().unique())
      .addColumn('spec_hash', 'text', (c) => c.notNull().unique())
      .addColumn('participants', 'text', (c) => c.notNull())
      .addColumn('seed', 'bigint', (c) => c.notNull())
      .addColumn('config', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('stop_reason', 'text')
      .addColumn('epochs_dispatched', 'integer', (c) => c.notNull())
      .addColumn('epochs_since_reset', 'integer', (c) => c.notNull())
      .addColumn('last_epoch_size', 'integer')
      .addColumn('in_flight_epoch', 'integer')
      .addColumn('games_played', 'bigint', (c) => c.notNull())
      .addColumn('games_since_reset', 'bigint', (c) => c.notNull())
      .addColumn('duplicate_games', 'bigint', (c) => c.notNull())
      .addColumn('failed_epochs', 'integer', (c) => c.notNull())
      .addColumn('reset_count', 'integer', (c) => c.notNull())
      .addColumn('confidence', 'double precision', (c) => c.notNull())
      .addColumn('evaluation', 'text')
      .addColumn('last_error', 'text')
      .addColumn('converged_at', 'bigint')
      .addColumn('expires_at', 'bigint')
      .addColumn('last_reset_at', 'bigint')
      .addColumn('archived_at', 'bigint')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('pods_status_seq_idx').on('pods').columns(['status', 'seq']).execute();
    await db.schema.createIndex('pods_expires_idx').on('pods').columns(['status', 'expires_at']).execute();

    await db.schema
      .createTable('pod_participants')
      .addColumn('pod_id', 'text', (c) => c.notNull())
      .addColumn('participant_id', 'text', (c) => c.notNull())
      .addColumn('position', 'integer', (c) => c.notNull())
      .addColumn('model_version', 'text')
      .addColumn('p1', 'bigint', (c) => c.notNull())
      .addColumn('p2', 'bigint', (c) => c.notNull())
      .addColumn('p3', 'bigint', (c) => c.notNull())
      .addColumn('p4', 'bigint', (c) => c.notNull())
      .addColumn('e1', 'double precision', (c) => c.notNull())
      .addColumn('e2', 'double precision', (c) => c.notNull())
      .addColumn('e3', 'double precision', (c) => c.notNull())
      .addColumn('e4', 'double precision', (c) => c.notNull())
      .addColumn('turns', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('pod_participants_pk', ['pod_id', 'participant_id'])
      .execute();
    await db.schema
      .createIndex('pod_participants_participant_idx')
      .on('pod_participants')
      .columns(['participant_id', 'pod_id'])
      .execute();

    await db.schema
      .createTable('pod_epochs')
      .addColumn('pod_id', 'text', (c) => c.notNull())
      .addColumn('epoch_no', 'integer', (c) => c.notNull())
      .addColumn('size', 'integer', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('attempt', 'integer', (c) => c.notNull())
      .addColumn('job_id', 'text')
      .addColumn('games_received', 'integer', (c) => c.notNull())
      .addColumn('estimated_remaining', 'bigint')
      .addColumn('next_retry_at', 'bigint')
      .addColumn('last_error', 'text')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('finished_at', 'bigint')
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('pod_epochs_pk', ['pod_id', 'epoch_no'])
      .execute();
    await db.schema.createIndex('pod_epochs_job_idx').on('pod_epochs').column('job_id').execute();
    await db.schema
      .createIndex('pod_epochs_status_idx')
      .on('pod_epochs')
      .columns(['status', 'updated_at'])
      .execute();

    await seqColumn('pod_games')
      .addColumn('pod_id', 'text', (c) => c.notNull())
      .addColumn('game_id', 'text', (c) => c.notNull())
      .addColumn('epoch_no', 'integer')
      .addColumn('placements', 'text', (c) => c.notNull())
      .addColumn('turns', 'integer')
      .addColumn('replay', 'text')
      .addColumn('recorded_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema
      .createIndex('pod_games_pod_game_uq')
      .on('pod_games')
      .columns(['pod_id', 'game_id'])
      .unique()
      .execute();
    await db.schema.createIndex('pod_games_pod_seq_idx').on('pod_games').columns(['pod_id', 'seq']).execute();

    await seqColumn('pod_trace')
      .addColumn('pod_id', 'text', (c) => c.notNull())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('epoch_no', 'integer')
      .addColumn('games_played', 'bigint', (c) => c.notNull())
      .addColumn('confidence', 'double precision')
      .addColumn('detail', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('pod_trace_pod_seq_idx').on('pod_trace').columns(['pod_id', 'seq']).execute();
  };
}
