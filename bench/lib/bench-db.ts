/** Fresh databases for benchmarks: a new SQLite file or a new Postgres schema, dropped after. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { dropPostgresSchema, Store } from '../../src/store/database.js';

export type Dialect = 'sqlite' | 'postgres';

export const PG_URL =
  process.env.RUNPLANE_BENCH_PG_URL ??
  process.env.RUNPLANE_TEST_PG_URL ??
  'postgres://postgres@127.0.0.1:5432/test';

export interface BenchDb {
  url: string;
  schema: string | null;
  dir: string;
  /** Opens a store on it (the controller process opens its own). */
  open(): Promise<Store>;
  cleanup(): Promise<void>;
}

/** Null when Postgres answers, else why not. */
export async function pgReachable(): Promise<string | null> {
  const c = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3000 });
  try {
    await c.connect();
    await c.query('select 1');
    return null;
  } catch (err) {
    return (err as Error).message;
  } finally {
    await c.end().catch(() => undefined);
  }
}

let dbCounter = 0;

/** A fresh SQLite file or a fresh Postgres schema. */
export function freshDb(dialect: Dialect): BenchDb {
  const dir = mkdtempSync(join(tmpdir(), 'runplane-bench-'));
  if (dialect === 'sqlite') {
    const url = `sqlite:${join(dir, 'runplane.db')}`;
    return {
      url,
      schema: null,
      dir,
      open: () => Store.open(url),
      async cleanup() {
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const schema = `bench_${process.pid}_${Date.now().toString(36)}_${dbCounter++}`;
  const base = new URL(PG_URL);
  base.searchParams.set('schema', schema);
  return {
    url: base.toString(),
    schema,
    dir,
    open: () => Store.open(PG_URL, { pgSchema: schema, pgPoolSize: 4 }),
    async cleanup() {
      await dropPostgresSchema(PG_URL, schema);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN;
}
