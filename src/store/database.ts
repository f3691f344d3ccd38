import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import { type CompiledQuery, Kysely, Migrator, sql, type Transaction } from 'kysely';
import pg from 'pg';
import { openCommitHooks, runCommitHooks } from './commit-hooks.js';
import { CAPABILITIES, type DialectCapabilities, type DialectName } from './dialect.js';
import { migrationsFor } from './migrations/index.js';
import { lockFirst, OutboxPostgresDialect, PreparingClient } from './postgres-dialect.js';
import type { DB } from './schema.js';
import { WalCheckpointer } from './sqlite-checkpointer.js';
import { RunplaneSqliteDialect, WalSync } from './sqlite-dialect.js';

export type Tx = Transaction<DB>;

/** What a committed transaction wrote to the outbox: its event types (empty: none). */
export interface CommitInfo {
  eventTypes: ReadonlySet<string>;
}
export type Executor = Kysely<DB> | Tx;

// Postgres returns int8 as strings by default; every bigint here is an epoch-ms time or a
// sequence number, both well inside Number.MAX_SAFE_INTEGER.
pg.types.setTypeParser(20, (v) => Number(v));
pg.types.setTypeParser(1700, (v) => Number(v));

export interface WriteOptions {
  /**
   * Postgres: hold the outbox lock before the write's code runs (one round trip more), for code
   * that takes from in-memory state what to write once it holds the lock, such as a batcher
   * taking what queued while it waited. Otherwise the lock goes with the first statement.
   */
  lockFirst?: boolean;
}

export interface StoreOptions {
  /** Postgres schema to use (created if missing); tests use one per test. */
  pgSchema?: string;
  /** Max pooled Postgres connections. */
  pgPoolSize?: number;
}

/**
 * The database: a Kysely instance over SQLite (default) or Postgres, the dialect's
 * capabilities, and a commit signal the event relay and scheduler listen to.
 */
export class Store {
  readonly caps: DialectCapabilities;
  private readonly commits = new EventEmitter();

  private constructor(
    readonly db: Kysely<DB>,
    readonly dialect: DialectName,
    readonly description: string,
    /** SQLite: makes each commit durable before it is acknowledged (see WalSync). */
    readonly wal: WalSync | null = null,
    private readonly checkpointer: WalCheckpointer | null = null,
  ) {
    this.caps = CAPABILITIES[dialect];
    this.commits.setMaxListeners(0);
  }

  static async open(url: string, opts: StoreOptions = {}): Promise<Store> {
    if (/^postgres(ql)?:\/\//.test(url)) {
      // `?schema=name` picks a Postgres schema (created if missing), e.g. one per tenant or test.
      const parsed = new URL(url);
      const schema = opts.pgSchema ?? parsed.searchParams.get('schema') ?? undefined;
      parsed.searchParams.delete('schema');
      url = parsed.toString();
      if (schema && !/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`invalid schema name ${schema}`);
      if (schema) {
        const c = new pg.Client({ connectionString: url });
        await c.connect();
        try {
          await c.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
        } catch (err) {
          // IF NOT EXISTS is not race-free: when replicas start together on a new schema, the
          // losers get a unique violation (or duplicate_schema) for a schema that now exists.
          const code = (err as { code?: string }).code;
          if (code !== '23505' && code !== '42P06') throw err;
        } finally {
          await c.end();
        }
      }
      const pool = new pg.Pool({
        Client: PreparingClient,
        connectionString: url,
        max: opts.pgPoolSize ?? 10,
        ...(schema ? { options: `-c search_path=${schema}` } : {}),
      });
      const db = new Kysely<DB>({ dialect: new OutboxPostgresDialect({ pool }) });
      const safe = url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');
      return new Store(db, 'postgres', schema ? `${safe} (schema ${schema})` : safe);
    }
    const file = url.startsWith('sqlite:') ? url.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '') : url;
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
    const database = new SQLite(file);
    // WAL for concurrent readers. An acknowledged commit survives power loss, not only kill -9:
    // with synchronous=NORMAL SQLite leaves the WAL unsynced at COMMIT, and WalSync syncs it
    // (on the thread pool, shared by the commits that land meanwhile) before the store returns.
    // An in-memory database has no file to sync.
    database.pragma('journal_mode = WAL');
    const memory = file === ':memory:';
    database.pragma(memory ? 'synchronous = FULL' : 'synchronous = NORMAL');
    database.pragma('foreign_keys = ON');
    database.pragma('busy_timeout = 5000');
    const wal = memory ? null : new WalSync(`${file}-wal`, database);
    // Checkpoints run on a thread of their own (WalCheckpointer); the automatic one, at 10x
    // SQLite's default size, is only a safety net.
    const checkpointer = memory ? null : new WalCheckpointer(file);
    if (checkpointer) database.pragma('wal_autocheckpoint = 10000');
    const db = new Kysely<DB>({ dialect: new RunplaneSqliteDialect(database, wal) });
    return new Store(db, 'sqlite', `sqlite:${file}`, wal, checkpointer);
  }

  /** Applies pending migrations under the migrator's lock; idempotent. */
  async migrate(): Promise<string[]> {
    // On Postgres, name the ledger's schema: unqualified, Kysely looks for its tables in every
    // schema of the database, takes another schema's ledger for ours and never creates our own.
    const ledgerSchema =
      this.dialect === 'postgres'
        ? (await sql<{ s: string }>`select current_schema() as s`.execute(this.db)).rows[0]?.s
        : undefined;
    const migrator = new Migrator({
      db: this.db,
      provider: { getMigrations: async () => migrationsFor(this.dialect) },
      migrationTableName: 'schema_migrations',
      migrationLockTableName: 'schema_migrations_lock',
      ...(ledgerSchema ? { migrationTableSchema: ledgerSchema } : {}),
    });
    const { error, results } = await migrator.migrateToLatest();
    await this.wal?.sync();
    if (error) throw error instanceof Error ? error : new Error(String(error));
    return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
  }

  /**
   * Runs fn in one transaction; on commit, listeners of onCommit() are told. `write` makes it
   * a store write (see `write`).
   */
  async transaction<T>(
    fn: (tx: Tx) => Promise<T>,
    opts: WriteOptions & { write?: boolean } = {},
  ): Promise<T> {
    const builder =
      opts.write && this.caps.advisoryLocks
        ? this.db.transaction().setAccessMode('read write')
        : this.db.transaction();
    let eventTypes: ReadonlySet<string> = new Set();
    const run = () =>
      builder.execute(async (tx) => {
        openCommitHooks(tx);
        const r = await fn(tx);
        eventTypes = await runCommitHooks(tx);
        return r;
      });
    // SQLite's writer holds its lock from BEGIN IMMEDIATE on: `lockFirst` matters on Postgres only.
    const result = await (opts.write && opts.lockFirst && this.caps.advisoryLocks ? lockFirst(run) : run());
    await this.wal?.sync();
    this.commits.emit('commit', { eventTypes } satisfies CommitInfo);
    return result;
  }

  /**
   * A state-changing transaction. On Postgres it takes the outbox lock before anything else,
   * sent with BEGIN and its first statement in one round trip (OutboxPostgresDialect begins
   * `read write` transactions that way): writers that append events then serialise, so event
   * sequence numbers become visible in commit order and the relay can never skip a
   * late-committing lower number, and they can never deadlock on the lock. With `lockFirst` the
   * lock is taken before `fn` runs, a round trip earlier. SQLite already has a single writer
   * (BEGIN IMMEDIATE, before `fn` runs).
   */
  async write<T>(fn: (tx: Tx) => Promise<T>, opts: WriteOptions = {}): Promise<T> {
    return this.transaction(fn, { ...opts, write: true });
  }

  /** Tells `listener` of every transaction this store commits, with the event types it wrote. */
  onCommit(listener: (info: CommitInfo) => void): () => void {
    this.commits.on('commit', listener);
    return () => this.commits.off('commit', listener);
  }

  /**
   * Takes a named transaction-scoped leader lock for loops that must run once across
   * replicas (scheduling pass, health sweep). Always true on SQLite.
   */
  async tryLeaderLock(tx: Tx, name: string): Promise<boolean> {
    const query = this.leaderLockQuery(tx, name);
    return query === null || leaderLockTaken((await tx.executeQuery(query)).rows);
  }

  /**
   * The statement `tryLeaderLock` runs, to send with other reads (read-together.ts); null on
   * SQLite, where the lock is always taken. `leaderLockTaken` reads its answer.
   */
  leaderLockQuery(tx: Tx, name: string): CompiledQuery<{ ok: boolean }> | null {
    if (!this.caps.advisoryLocks) return null;
    return sql<{ ok: boolean }>`select pg_try_advisory_xact_lock(${lockKey(name)}) as ok`.compile(tx);
  }

  async ping(): Promise<void> {
    await sql`select 1`.execute(this.db);
  }

  async close(): Promise<void> {
    await this.wal?.sync();
    await this.checkpointer?.stop();
    await this.db.destroy();
  }
}

/** Whether the answer of `Store.leaderLockQuery` says the lock was taken (none asked: taken). */
export function leaderLockTaken(rows: ReadonlyArray<{ ok: boolean }> | undefined): boolean {
  return rows === undefined || rows[0]?.ok === true;
}

function lockKey(name: string): number {
  let h = 7878;
  for (const ch of name) h = (Math.imul(h, 31) + ch.charCodeAt(0)) | 0;
  return h;
}

/** Drops a Postgres schema and everything in it (tests and benchmarks clean up with it). */
export async function dropPostgresSchema(url: string, schema: string): Promise<void> {
  if (!/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`invalid schema name ${schema}`);
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await c.end();
  }
}
