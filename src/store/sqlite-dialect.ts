import { closeSync, fdatasync, openSync } from 'node:fs';
import type SQLite from 'better-sqlite3';
import {
  CompiledQuery,
  type DatabaseConnection,
  type DialectAdapter,
  type Driver,
  type QueryResult,
  SqliteAdapter,
  type SqliteDatabase,
  SqliteDialect,
  SqliteDriver,
} from 'kysely';

/**
 * Makes commits durable off the event loop. The database runs with `synchronous = NORMAL`
 * (in WAL mode SQLite then syncs only at checkpoints), and every commit that wrote is made
 * durable here by an `fdatasync` of the WAL file on libuv's thread pool before it is
 * acknowledged: the store awaits `sync()` after each transaction, and a write outside a
 * transaction awaits it before its result is returned. A statement that changed no row (an
 * UPDATE that matched nothing) wrote nothing and needs none. Commits share fdatasync calls
 * (group commit: see MAX_FLUSHES), and the event loop keeps serving requests meanwhile instead of
 * blocking in `fsync` inside COMMIT as `synchronous = FULL` would. A commit is durable against
 * power loss once acknowledged, exactly as with FULL.
 */
export class WalSync {
  /** Commits that wrote, counted; `synced` is the count covered by a finished fdatasync. */
  private committed = 0;
  private synced = 0;
  private fd: number | null = null;
  /** The fdatasync calls running, each with the commit count it covers. */
  private flushes: Flush[] = [];
  /** Writes made in the open transaction (SQLite has one connection, so one transaction). */
  private txWrote = false;
  /** A write outside a transaction waits for its sync before the statement's result is returned. */
  autocommitPending = false;
  /** Finished fdatasync calls (tests and metrics). */
  syncs = 0;

  constructor(
    private readonly walPath: string,
    private readonly database: SQLite.Database,
  ) {}

  /**
   * Called after each statement that writes or ends a transaction; counts the commits that need
   * a sync. `kind` is decided once per prepared statement (see `statementKind`).
   */
  afterStatement(kind: StatementKind): void {
    if (this.database.inTransaction) {
      if (kind === 'write') this.txWrote = true;
      return;
    }
    if (kind === 'write') {
      this.committed += 1;
      this.autocommitPending = true;
      return;
    }
    if (kind === 'commit' && this.txWrote) this.committed += 1;
    this.txWrote = false;
  }

  /** Resolves once every commit made so far is on disk. */
  async sync(): Promise<void> {
    const target = this.committed;
    while (this.synced < target) {
      const covering = this.flushes.find((f) => f.covers >= target);
      if (covering) await covering.done;
      else if (this.flushes.length < MAX_FLUSHES) await this.startFlush().done;
      else await Promise.race(this.flushes.map((f) => f.done.catch(() => undefined)));
    }
  }

  private startFlush(): Flush {
    const covers = this.committed;
    const done = (async () => {
      this.fd ??= openSync(this.walPath, 'r');
      const fd = this.fd;
      await new Promise<void>((resolve, reject) => fdatasync(fd, (err) => (err ? reject(err) : resolve())));
      this.syncs += 1;
      this.synced = Math.max(this.synced, covers);
    })();
    const flush = { covers, done };
    this.flushes.push(flush);
    const clear = () => {
      this.flushes = this.flushes.filter((f) => f !== flush);
    };
    done.then(clear, clear);
    return flush;
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

type StatementKind = 'write' | 'commit' | 'rollback';

interface Flush {
  covers: number;
  done: Promise<void>;
}

/**
 * fdatasync calls run at once. A commit made while one runs starts its own at once instead of
 * waiting for it to end first (that one may have begun before the commit, and covers nothing
 * of it); past this many, commits share the next one to start.
 */
const MAX_FLUSHES = 2;

/** A statement that changes rows, and only rows: its effect shows in total_changes(). */
const DML = /^\s*(insert|update|delete|replace|with)\b/i;

/**
 * What a statement means to the WAL sync: a write, the end of a transaction, or nothing (null).
 * Of the transaction control statements only the end matters (BEGIN IMMEDIATE counts as a
 * write to SQLite).
 */
function statementKind(text: string, stmt: SQLite.Statement): StatementKind | null {
  const control = /^\s*(begin|commit|end|rollback|savepoint|release)\b/i.exec(text)?.[1]?.toLowerCase();
  if (control === undefined) return stmt.readonly ? null : 'write';
  if (control === 'commit' || control === 'end') return 'commit';
  return control === 'rollback' ? 'rollback' : null;
}

/**
 * Kysely prepares every query anew; better-sqlite3 statements are reusable, so keep the
 * compiled ones (bounded: `IN (?, ?, …)` lists make many distinct texts). Each statement that
 * can write, or ends a transaction, tells the WAL sync when it has run.
 */
function withStatementCache(database: SQLite.Database, wal: WalSync | null): SqliteDatabase {
  const cache = new Map<string, SQLite.Statement>();
  // Rows changed so far on this connection, triggers included (sqlite3_total_changes), as last
  // read after a tracked statement. A change made past the tracked statements (a pragma, exec)
  // only makes the next DML look like a change: a sync too many, never one too few.
  const totalChanges = database.prepare('select total_changes()').pluck();
  let changesSeen = 0;
  const track = (text: string, stmt: SQLite.Statement): SQLite.Statement => {
    const kind = statementKind(text, stmt);
    if (!wal || kind === null) return stmt;
    // An INSERT, UPDATE or DELETE that changed no row wrote nothing (a long-poll's claim that
    // found no command, say): it needs no sync. Other writes (DDL) always count.
    const dml = kind === 'write' && DML.test(text);
    const s = stmt as unknown as Record<'run' | 'all' | 'get', (...a: unknown[]) => unknown>;
    for (const method of ['run', 'all', 'get'] as const) {
      const original = s[method].bind(stmt);
      s[method] = (...args: unknown[]) => {
        try {
          return original(...args);
        } finally {
          if (dml) {
            const now = totalChanges.get() as number;
            if (now !== changesSeen) wal.afterStatement(kind);
            changesSeen = now;
          } else wal.afterStatement(kind);
        }
      };
    }
    return stmt;
  };
  return {
    close: () => {
      wal?.close();
      database.close();
    },
    prepare: (text: string) => {
      let stmt = cache.get(text);
      if (!stmt) {
        if (cache.size >= 1000) cache.clear();
        stmt = track(text, database.prepare(text));
        cache.set(text, stmt);
      }
      return stmt;
    },
  };
}

/**
 * SQLite as runplane uses it. Transactions take the write lock when they begin (BEGIN IMMEDIATE),
 * so a second process waits for it (busy_timeout) instead of failing once its read snapshot is
 * stale. Migrations run inside that transaction: SQLite has transactional DDL, though Kysely's
 * adapter says otherwise and would migrate statement by statement with no lock. So a migration
 * applies entirely or not at all (a crash cannot leave half a schema), and two processes that
 * migrate one file at once apply it once. A write outside a transaction returns once durable.
 */
class RunplaneSqliteDriver extends SqliteDriver {
  constructor(
    config: ConstructorParameters<typeof SqliteDriver>[0],
    private readonly wal: WalSync | null,
  ) {
    super(config);
  }

  override async acquireConnection(): Promise<DatabaseConnection> {
    const connection = await super.acquireConnection();
    const wal = this.wal;
    if (!wal) return connection;
    return {
      executeQuery: async <R>(query: CompiledQuery): Promise<QueryResult<R>> => {
        const result = await connection.executeQuery<R>(query);
        if (wal.autocommitPending) {
          wal.autocommitPending = false;
          await wal.sync();
        }
        return result;
      },
      streamQuery: <R>(query: CompiledQuery, chunkSize: number) =>
        connection.streamQuery<R>(query, chunkSize),
    };
  }

  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

class TransactionalDdlSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}

export class RunplaneSqliteDialect extends SqliteDialect {
  private readonly database: SqliteDatabase;

  constructor(
    raw: SQLite.Database,
    private readonly wal: WalSync | null,
  ) {
    const database = withStatementCache(raw, wal);
    super({ database });
    this.database = database;
  }

  override createDriver(): Driver {
    return new RunplaneSqliteDriver({ database: this.database }, this.wal);
  }

  override createAdapter(): DialectAdapter {
    return new TransactionalDdlSqliteAdapter();
  }
}
