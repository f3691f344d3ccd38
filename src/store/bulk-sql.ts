import { CompiledQuery, PostgresAdapter } from 'kysely';
import type { Executor } from './database.js';

/**
 * A multi-row statement over a fixed list of columns, for the hot write paths (heartbeat
 * batches, metric points, outbox events, audit entries). Its SQL text is built once per dialect
 * and row count and then reused, where the query builder would rebuild and recompile the same
 * statement for every batch: for a batch of a few rows that costs more than the database takes
 * to run it.
 */
export interface BulkSpec<Row> {
  /** The table the statement writes. */
  table: string;
  /** An UPDATE of existing rows (deferred, it must see the rows written before it). */
  update?: boolean;
  /** Each row's parameters, in this order. */
  columns: readonly (keyof Row & string)[];
  /**
   * One row's tuple, given its placeholders in column order; each must appear exactly once and
   * in that order (SQLite's placeholders are positional). Default: `(p1, p2, …)`.
   */
  tuple?: (placeholders: readonly string[]) => string;
  /** The statement around the comma-separated tuples. */
  statement: (tuples: string) => string;
}

export interface BulkStatement<Row> {
  /** Writes the rows now, in statements of at most CHUNK rows. */
  (db: Executor, rows: readonly Row[]): Promise<void>;
  /** The statements that write the rows, at most CHUNK rows each. */
  compile(postgres: boolean, rows: readonly Row[]): CompiledQuery[];
  readonly table: string;
  readonly update: boolean;
  /** The text for `count` rows; on Postgres its placeholders are numbered from `offset` + 1. */
  text(postgres: boolean, count: number, offset: number): string;
  /** The rows' parameters, in placeholder order. */
  params(rows: readonly Row[]): unknown[];
}

/** Rows per statement: keeps every statement under SQLite's and Postgres's parameter limits. */
export const CHUNK = 500;

export function isPostgres(db: Executor): boolean {
  return db.getExecutor().adapter instanceof PostgresAdapter;
}

type TupleSpec<Row> = Pick<BulkSpec<Row>, 'columns' | 'tuple' | 'statement'>;

/** Builds (and keeps) a statement's text per dialect, row count and placeholder offset. */
function texts<Row>(spec: TupleSpec<Row>) {
  const tuple = spec.tuple ?? ((ph: readonly string[]) => `(${ph.join(', ')})`);
  const width = spec.columns.length;
  const cache = new Map<string, string>();
  const build = (postgres: boolean, count: number, offset: number): string => {
    const tuples: string[] = [];
    for (let r = 0; r < count; r++)
      tuples.push(tuple(spec.columns.map((_, c) => (postgres ? `$${offset + r * width + c + 1}` : '?'))));
    return spec.statement(tuples.join(', '));
  };
  // Kept: the statement alone (at most CHUNK texts per dialect). A text placed at an offset is
  // part of a combined statement, which its caller keeps whole.
  const text = (postgres: boolean, count: number, offset: number): string => {
    if (offset !== 0) return build(postgres, count, offset);
    const key = `${postgres ? 'pg' : 'sqlite'}:${count}`;
    let t = cache.get(key);
    if (t === undefined) {
      t = build(postgres, count, 0);
      cache.set(key, t);
    }
    return t;
  };
  const params = (rows: readonly Row[]): unknown[] => {
    const out: unknown[] = [];
    for (const row of rows) for (const c of spec.columns) out.push(row[c] ?? null);
    return out;
  };
  return { text, params };
}

export function bulkStatement<Row>(spec: BulkSpec<Row>): BulkStatement<Row> {
  const { text, params } = texts(spec);
  const compile = (postgres: boolean, rows: readonly Row[]): CompiledQuery[] => {
    const out: CompiledQuery[] = [];
    for (let i = 0; i < rows.length; i += CHUNK) {
      const chunk = rows.slice(i, i + CHUNK);
      out.push(CompiledQuery.raw(text(postgres, chunk.length, 0), params(chunk)));
    }
    return out;
  };
  const run = async (db: Executor, rows: readonly Row[]): Promise<void> => {
    for (const q of compile(isPostgres(db), rows)) await db.executeQuery(q);
  };
  return Object.assign(run, { compile, text, params, table: spec.table, update: spec.update ?? false });
}

/** A multi-row INSERT of `columns` into `table`; `suffix` follows the VALUES (e.g. ON CONFLICT). */
export function bulkInsert<Row>(
  table: string,
  columns: readonly (keyof Row & string)[],
  suffix = '',
): BulkStatement<Row> {
  return bulkStatement<Row>({
    table,
    columns,
    statement: (tuples) => `insert into ${table} (${columns.join(', ')}) values ${tuples}${suffix}`,
  });
}

/**
 * A query over a list of keys (`… where id in (…)`), its text built once per dialect and key
 * count like a bulk statement's; resolves with the rows of every chunk of keys.
 */
export function bulkSelect<Key, Out>(
  spec: TupleSpec<Key>,
): (db: Executor, keys: readonly Key[]) => Promise<Out[]> {
  const { text, params } = texts(spec);
  return async (db, keys) => {
    const postgres = isPostgres(db);
    const out: Out[] = [];
    for (let i = 0; i < keys.length; i += CHUNK) {
      const chunk = keys.slice(i, i + CHUNK);
      const r = await db.executeQuery<Out>(CompiledQuery.raw(text(postgres, chunk.length, 0), params(chunk)));
      for (const row of r.rows) out.push(row);
    }
    return out;
  };
}
