import { AsyncLocalStorage } from 'node:async_hooks';
import { createRequire } from 'node:module';
import {
  CompiledQuery,
  type DatabaseConnection,
  type DatabaseIntrospector,
  type Driver,
  type Kysely,
  PostgresDialect,
  type PostgresDialectConfig,
  type QueryResult,
  type TransactionSettings,
} from 'kysely';
import pg from 'pg';
import { CurrentSchemaIntrospector } from './postgres-introspector.js';

/** The advisory lock every outbox writer holds until it commits (see Store.write). */
export const OUTBOX_LOCK_KEY = 7878001;

/**
 * A store write begun inside `lockFirst` takes the outbox lock in a round trip of its own,
 * before its code runs; any other store write takes it with its first statement.
 */
const lockFirstScope = new AsyncLocalStorage<true>();

/**
 * Runs `fn` so that the store write it begins holds the outbox lock before the write's code
 * runs, for code that decides what to write from in-memory state at the moment it holds the
 * lock (the heartbeat batcher takes what queued while it waited). It costs a round trip.
 */
export function lockFirst<T>(fn: () => Promise<T>): Promise<T> {
  return lockFirstScope.run(true, fn);
}

/**
 * Marks a statement whose result nobody reads (a transaction's deferred writes, see
 * deferred-writes.ts): in a transaction it is not sent on its own but with the next statement,
 * or with COMMIT. Outside a transaction it runs at once.
 */
export function sendWithNext(query: CompiledQuery): CompiledQuery {
  withNext.add(query);
  return query;
}
const withNext = new WeakSet<CompiledQuery>();

/**
 * A statement standing for several reads whose results do not depend on each other: the driver
 * sends them in one pipeline (one round trip) and answers with one "row" per read, the read's
 * rows (see read-together.ts).
 */
export function readsTogether(queries: readonly CompiledQuery[]): CompiledQuery {
  const batch = CompiledQuery.raw(queries.map((q) => q.sql).join(';\n'));
  together.set(batch, queries);
  return batch;
}
const together = new WeakMap<CompiledQuery, readonly CompiledQuery[]>();

/**
 * Kysely's Postgres dialect, with a driver that saves round trips inside transactions (see
 * PipeliningConnection) and an introspector that looks at the current schema only. A
 * transaction begun in `read write` access mode is a store write: the outbox lock is taken right
 * after its BEGIN, both sent with the write's first statement (or in a round trip of their own
 * under `lockFirst`).
 */
export class OutboxPostgresDialect extends PostgresDialect {
  readonly #config: PostgresDialectConfig & { pool: pg.Pool };

  constructor(config: PostgresDialectConfig & { pool: pg.Pool }) {
    super(config);
    this.#config = config;
  }

  override createDriver(): Driver {
    return new PipeliningPostgresDriver(this.#config.pool);
  }

  // biome-ignore lint/suspicious/noExplicitAny: Kysely's introspectors take an untyped instance
  override createIntrospector(db: Kysely<any>): DatabaseIntrospector {
    return new CurrentSchemaIntrospector(db);
  }
}

class PipeliningPostgresDriver implements Driver {
  readonly #connections = new WeakMap<pg.PoolClient, PipeliningConnection>();

  constructor(private pool: pg.Pool | null) {}

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    const pool = this.pool;
    if (!pool) throw new Error('driver has already been destroyed');
    const client = await pool.connect();
    let connection = this.#connections.get(client);
    if (!connection) {
      connection = new PipeliningConnection(client);
      this.#connections.set(client, connection);
    }
    return connection;
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    const text =
      settings.isolationLevel || settings.accessMode
        ? [
            'start transaction',
            settings.isolationLevel ? `isolation level ${settings.isolationLevel}` : '',
            settings.accessMode ?? '',
          ]
            .filter((part) => part !== '')
            .join(' ')
        : 'begin';
    const write = settings.accessMode === 'read write' && !settings.isolationLevel;
    const c = connection as PipeliningConnection;
    const begin = write ? [text, `select pg_advisory_xact_lock(${OUTBOX_LOCK_KEY})`] : [text];
    if (write && lockFirstScope.getStore()) await c.beginNow(begin);
    else c.beginWithNext(begin);
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await (connection as PipeliningConnection).end('commit');
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await (connection as PipeliningConnection).end('rollback');
  }

  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    (connection as PipeliningConnection).release();
  }

  async destroy(): Promise<void> {
    const pool = this.pool;
    this.pool = null;
    await pool?.end();
  }
}

interface Step {
  text: string;
  values: readonly unknown[];
}

/** A step with the server-side name it runs under ('' for the unnamed statement). */
interface NamedStep extends Step {
  name: string;
}

/** The parts of pg's Result this module uses (pg/lib/result.js, which pg's own Query uses). */
interface PgResult {
  command: string | null;
  rowCount: number | null;
  rows: unknown[];
  addFields(fields: unknown[]): void;
  parseRow(fields: unknown[]): unknown;
  addRow(row: unknown): void;
  addCommandComplete(msg: unknown): void;
}

/** The parts of pg's protocol connection a pipeline writes to. */
interface PgConnection {
  stream: { cork?: () => void; uncork?: () => void };
  parsedStatements: Record<string, string>;
  parse(msg: { text: string; name: string }): void;
  bind(msg: { portal: string; statement: string; values: unknown[] }): void;
  describe(msg: { type: 'P'; name: string }): void;
  execute(msg: { portal: string; rows: number }): void;
  sync(): void;
  sendCopyFail(msg: string): void;
}

const require = createRequire(import.meta.url);
const Result = require('pg/lib/result.js') as new () => PgResult;
const { prepareValue } = require('pg/lib/utils.js') as { prepareValue(value: unknown): unknown };

/**
 * One pooled pg client, sending together what a transaction can send together: one write,
 * answered in one round trip (the extended protocol's pipelining: several Bind/Execute before
 * one Sync; after an error the server skips the rest up to the Sync, so nothing runs after a
 * statement that failed).
 * - A transaction's BEGIN (and a store write's outbox lock) goes with its first statement.
 * - Statements marked with `sendWithNext` (deferred writes) go with the next statement, usually
 *   COMMIT. Their errors surface there, and the transaction rolls back as it would have.
 * - A transaction that sent nothing ends without a round trip.
 * A statement not yet prepared on this connection is sent on its own first (pg parses it and
 * keeps it, as PreparingClient names it); a pipeline only binds prepared statements, or parses
 * unnamed ones, so a failed pipeline can never leave pg's record of what is prepared wrong.
 */
class PipeliningConnection implements DatabaseConnection {
  /** Statements to send with the next one: an unsent BEGIN, then writes nobody reads. */
  private pending: Step[] = [];
  /** How many of `pending` are the unsent BEGIN (and outbox lock). */
  private unsentBegin = 0;
  private inTransaction = false;

  constructor(private readonly client: pg.PoolClient) {}

  /**
   * Begins now (a store write under `lockFirst`: BEGIN and the outbox lock), so the
   * transaction's code runs only once the server has answered.
   */
  async beginNow(texts: readonly string[]): Promise<void> {
    this.inTransaction = true;
    this.pending = [];
    this.unsentBegin = 0;
    await this.run(texts.map((text) => ({ text, values: [] })));
  }

  /** Begins with the transaction's first statement (BEGIN, and a store write's outbox lock). */
  beginWithNext(texts: readonly string[]): void {
    this.inTransaction = true;
    this.pending = texts.map((text) => ({ text, values: [] }));
    this.unsentBegin = texts.length;
  }

  async end(how: 'commit' | 'rollback'): Promise<void> {
    const pending = this.pending;
    // BEGIN has reached the server once a statement went with it.
    const begun = this.unsentBegin === 0;
    const onlyBegin = pending.length === this.unsentBegin;
    this.pending = [];
    this.unsentBegin = 0;
    this.inTransaction = false;
    if (how === 'rollback') {
      // Writes still pending are dropped; a transaction the server never saw needs no ROLLBACK.
      if (begun) await this.run([{ text: 'rollback', values: [] }]);
      return;
    }
    if (!begun && onlyBegin) return;
    await this.run([...pending, { text: 'commit', values: [] }]);
  }

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    const step = { text: query.sql, values: query.parameters };
    if (this.inTransaction && withNext.has(query)) {
      this.pending.push(step);
      return { rows: [] };
    }
    const reads = together.get(query);
    const own = reads ? reads.map((q) => ({ text: q.sql, values: q.parameters })) : [step];
    let steps = own;
    if (this.pending.length > 0) {
      steps = [...this.pending, ...own];
      this.pending = [];
      this.unsentBegin = 0;
    }
    const results = await this.run(steps);
    if (reads) return { rows: results.slice(results.length - reads.length).map((r) => r.rows) as R[] };
    const last = results.at(-1);
    if (!last) throw new Error('no statement was run');
    const { command, rowCount, rows } = last;
    return {
      numAffectedRows:
        command === 'INSERT' || command === 'UPDATE' || command === 'DELETE' || command === 'MERGE'
          ? BigInt(rowCount ?? 0)
          : undefined,
      rows: rows as R[],
    };
  }

  // biome-ignore lint/correctness/useYield: streaming needs a cursor, which runplane does not configure
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('streaming queries are not supported');
  }

  release(): void {
    this.pending = [];
    this.unsentBegin = 0;
    this.inTransaction = false;
    this.client.release();
  }

  /** Runs the steps in order; resolves with their results, one per step. */
  private async run(steps: readonly Step[]): Promise<PgResult[]> {
    const results: PgResult[] = [];
    let batch: NamedStep[] = [];
    const prepared = (this.client as unknown as { connection: PgConnection }).connection.parsedStatements;
    for (const step of steps) {
      const name = statementName(step.text, step.values);
      if (name === null || name in prepared) {
        batch.push({ ...step, name: name ?? '' });
        continue;
      }
      if (batch.length > 0) results.push(...(await this.pipeline(batch)));
      batch = [];
      results.push(await this.query(step));
    }
    if (batch.length === 1 && batch[0]) results.push(await this.query(batch[0]));
    else if (batch.length > 1) results.push(...(await this.pipeline(batch)));
    return results;
  }

  /** One statement the way pg sends it (PreparingClient names and prepares it). */
  private async query(step: Step): Promise<PgResult> {
    return (await this.client.query(step.text, [...step.values])) as unknown as PgResult;
  }

  private pipeline(steps: readonly NamedStep[]): Promise<PgResult[]> {
    return new Promise((resolve, reject) => {
      const prepared = steps.map((s) => ({ ...s, values: s.values.map((v) => prepareValue(v)) }));
      this.client.query(
        new Pipeline(prepared, (err, results) => (err ? reject(err) : resolve(results))) as never,
      );
    });
  }
}

/**
 * A pg submittable: the steps as one pipeline (Parse of unnamed statements, Bind, Describe,
 * Execute each, then one Sync). Each step's answer ends with CommandComplete; the results come
 * back one per step, in order.
 */
class Pipeline {
  private readonly results: PgResult[] = [];
  private current: PgResult | null = null;
  private failed: unknown = null;

  /** `steps`: each one's values already as pg sends them, its name '' when it runs unnamed. */
  constructor(
    private readonly steps: readonly NamedStep[],
    private readonly callback: (err: unknown, results: PgResult[]) => void,
  ) {}

  submit(connection: PgConnection): null {
    connection.stream.cork?.();
    try {
      for (const step of this.steps) {
        if (step.name === '') connection.parse({ text: step.text, name: '' });
        connection.bind({ portal: '', statement: step.name, values: [...step.values] });
        connection.describe({ type: 'P', name: '' });
        connection.execute({ portal: '', rows: 0 });
      }
      connection.sync();
    } finally {
      connection.stream.uncork?.();
    }
    return null;
  }

  private result(): PgResult {
    this.current ??= new Result();
    return this.current;
  }

  handleRowDescription(msg: { fields: unknown[] }): void {
    this.result().addFields(msg.fields);
  }

  handleDataRow(msg: { fields: unknown[] }): void {
    const r = this.result();
    try {
      r.addRow(r.parseRow(msg.fields));
    } catch (err) {
      this.failed ??= err;
    }
  }

  handleCommandComplete(msg: unknown): void {
    this.result().addCommandComplete(msg);
    this.results.push(this.result());
    this.current = null;
  }

  handleEmptyQuery(): void {
    this.results.push(this.result());
    this.current = null;
  }

  handlePortalSuspended(): void {}

  handleCopyInResponse(connection: PgConnection): void {
    connection.sendCopyFail('COPY is not supported in a pipeline');
  }

  handleCopyData(): void {}

  handleError(err: unknown): void {
    this.callback(err, []);
  }

  handleReadyForQuery(): void {
    if (this.failed) this.callback(this.failed, []);
    else this.callback(null, this.results);
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
    if (typeof config === 'string' && Array.isArray(values)) {
      const name = statementName(config, values);
      if (name !== null) return q.call(this, { name, text: config, values }, callback);
    }
    return q.call(this, config, values, callback);
  }
}

/** The server-side name a parameterised statement text runs under, or null: it runs unnamed. */
function statementName(text: string, values: readonly unknown[]): string | null {
  if (values.length === 0) return null;
  let name = named.get(text);
  if (name === undefined) {
    name = namedCount < MAX_NAMED && preparable(text) ? `rp${++namedCount}` : null;
    // Unnamed texts are remembered too (so `preparable` runs once per text), within a bound.
    if (name !== null || named.size < 4 * MAX_NAMED) named.set(text, name);
  }
  return name;
}
