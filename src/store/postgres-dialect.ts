import {
  CompiledQuery,
  type DatabaseConnection,
  type Driver,
  PostgresDialect,
  type PostgresDialectConfig,
  PostgresDriver,
} from 'kysely';

/** The advisory lock every outbox writer holds until it commits (see Store.write). */
export const OUTBOX_LOCK_KEY = 7878001;

/**
 * Kysely's Postgres dialect with one change: a transaction begun in `read write` access mode is
 * a store write, and its BEGIN also takes the outbox lock, in the same round trip (one simple
 * query holding both statements). Every other transaction begins as Kysely begins it.
 */
export class OutboxPostgresDialect extends PostgresDialect {
  readonly #config: PostgresDialectConfig;

  constructor(config: PostgresDialectConfig) {
    super(config);
    this.#config = config;
  }

  override createDriver(): Driver {
    return new OutboxPostgresDriver(this.#config);
  }
}

class OutboxPostgresDriver extends PostgresDriver {
  override async beginTransaction(
    connection: DatabaseConnection,
    settings: Parameters<PostgresDriver['beginTransaction']>[1],
  ): Promise<void> {
    if (settings.accessMode !== 'read write' || settings.isolationLevel)
      return super.beginTransaction(connection, settings);
    await connection.executeQuery(
      CompiledQuery.raw(`start transaction read write; select pg_advisory_xact_lock(${OUTBOX_LOCK_KEY})`),
    );
  }
}
