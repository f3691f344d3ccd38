/**
 * Regenerates the committed schema snapshots (src/store/snapshots/<dialect>.sql) from fresh
 * databases migrated to the latest version: a new SQLite file and a new, then dropped, Postgres
 * schema. Postgres is taken from RUNPLANE_TEST_PG_URL (default postgres://postgres@127.0.0.1:5432/test).
 *
 *   npm run schema:snapshot
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dropPostgresSchema, Store } from '../src/store/database.js';
import { schemaSnapshot } from '../src/store/schema-snapshot.js';

const PG_URL = process.env.RUNPLANE_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const out = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'store', 'snapshots');

async function sqlite(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'runplane-snapshot-'));
  const store = await Store.open(`sqlite:${join(dir, 'snapshot.db')}`);
  try {
    await store.migrate();
    return await schemaSnapshot(store);
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function postgres(): Promise<string> {
  const schema = `snapshot_${process.pid}_${Date.now().toString(36)}`;
  const store = await Store.open(PG_URL, { pgSchema: schema, pgPoolSize: 2 });
  try {
    await store.migrate();
    return await schemaSnapshot(store);
  } finally {
    await store.close();
    await dropPostgresSchema(PG_URL, schema);
  }
}

for (const [dialect, make] of [
  ['sqlite', sqlite],
  ['postgres', postgres],
] as const) {
  const file = join(out, `${dialect}.sql`);
  writeFileSync(file, await make());
  console.log(`wrote ${file}`);
}
