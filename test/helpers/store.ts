import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dropPostgresSchema, Store } from '../../src/store/database.js';
import { PG_URL } from './services.js';

export type DialectUnderTest = 'sqlite' | 'postgres';

export interface TestStore {
  store: Store;
  url: string;
  /** For Postgres: the schema this test owns. */
  schema: string | null;
  dir: string;
  cleanup(): Promise<void>;
}

let counter = 0;

/** A fresh database per test: a new SQLite file, or a new Postgres schema. */
export async function freshStore(dialect: DialectUnderTest): Promise<TestStore> {
  const dir = mkdtempSync(join(tmpdir(), 'runplane-test-'));
  if (dialect === 'sqlite') {
    const url = `sqlite:${join(dir, 'runplane.db')}`;
    const store = await Store.open(url);
    await store.migrate();
    return {
      store,
      url,
      schema: null,
      dir,
      async cleanup() {
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const schema = `t_${process.pid}_${Date.now().toString(36)}_${counter++}`;
  const store = await Store.open(PG_URL, { pgSchema: schema, pgPoolSize: 5 });
  await store.migrate();
  return {
    store,
    url: PG_URL,
    schema,
    dir,
    async cleanup() {
      await store.close();
      await dropSchema(schema);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function dropSchema(schema: string): Promise<void> {
  await dropPostgresSchema(PG_URL, schema);
}
