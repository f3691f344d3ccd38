import {
  CompiledQuery,
  type DatabaseConnection,
  type Driver,
  PostgresDialect,
  type PostgresDialectConfig,
  PostgresDriver,
} from 'kysely';
import pg from 'pg';

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

/** Statement texts given a server-side name, at most this many (each connection keeps them). */
const MAX_NAMED = 2000;
/** Each text seen: its name, or null when it runs unnamed (selects `*`, or past MAX_NAMED). */
const named = new Map<string, string | null>();
let namedCount = 0;

/**
 * Whether a text may be kept prepared. Not one whose result columns are `*`: once another
 * process's migration adds a column, Postgres refuses to run such a prepared statement again
 * ("cached plan must not change result type") on every connection that holds it.
 */
function preparable(text: string): boolean {
  return !text.replaceAll('count(*)', '').includes('*');
}

/**
 * A pg client that runs each parameterised statement as a named prepared statement: Postgres
 * parses and plans a text once per connection instead of on every execution (the query builder
 * sends the same few texts over and over). Texts past the first MAX_NAMED (long `IN (…)` lists
 * make many) and texts that select `*` run unnamed, as pg runs them by default.
 */
export class PreparingClient extends pg.Client {
  // pg's overloads cannot be restated; every call shape goes on to pg unchanged but this one.
  override query(config: unknown, values?: unknown, callback?: unknown): never {
    const q = super.query as (...a: unknown[]) => never;
    if (typeof config === 'string' && Array.isArray(values) && values.length > 0) {
      let name = named.get(config);
      if (name === undefined) {
        name = namedCount < MAX_NAMED && preparable(config) ? `rp${++namedCount}` : null;
        // Unnamed texts are remembered too (so `preparable` runs once per text), within a bound.
        if (name !== null || named.size < 4 * MAX_NAMED) named.set(config, name);
      }
      if (name !== null) return q.call(this, { name, text: config, values }, callback);
    }
    return q.call(this, config, values, callback);
  }
}
