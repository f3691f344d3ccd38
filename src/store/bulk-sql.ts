import { CompiledQuery, PostgresAdapter } from 'kysely';
import type { Executor } from './database.js';

/**
 * A multi-row statement over a fixed list of columns, for the hot write paths (heartbeat
 * batches, metric points, outbox events). Its SQL text is built once per dialect and row count
 * and then reused, where the query builder would rebuild and recompile the same statement for
 * every batch: for a batch of a few rows that costs more than the database takes to run it.
 */
export interface BulkSpec<Row> {
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

/** Rows per statement: keeps every statement under SQLite's and Postgres's parameter limits. */
const CHUNK = 500;

export function bulkStatement<Row>(
  spec: BulkSpec<Row>,
): (db: Executor, rows: readonly Row[]) => Promise<void> {
  const tuple = spec.tuple ?? ((ph: readonly string[]) => `(${ph.join(', ')})`);
  const texts = new Map<string, string>();
  const text = (postgres: boolean, count: number): string => {
    const key = `${postgres ? 'pg' : 'sqlite'}:${count}`;
    let t = texts.get(key);
    if (t === undefined) {
      const width = spec.columns.length;
      const tuples: string[] = [];
      for (let r = 0; r < count; r++)
        tuples.push(tuple(spec.columns.map((_, c) => (postgres ? `$${r * width + c + 1}` : '?'))));
      t = spec.statement(tuples.join(', '));
      texts.set(key, t);
    }
    return t;
  };
  return async (db, rows) => {
    const postgres = db.getExecutor().adapter instanceof PostgresAdapter;
    for (let i = 0; i < rows.length; i += CHUNK) {
      const chunk = rows.slice(i, i + CHUNK);
      const params: unknown[] = [];
      for (const row of chunk) for (const c of spec.columns) params.push(row[c] ?? null);
      await db.executeQuery(CompiledQuery.raw(text(postgres, chunk.length), params));
    }
  };
}
