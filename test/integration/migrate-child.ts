/**
 * Child process of store.test.ts: opens the store at argv[2] (Postgres schema argv[3], if any),
 * says "ready", waits for a line on stdin, then migrates and prints what it applied as JSON.
 * The parent releases two of these at once, so they race on one database.
 */
import { once } from 'node:events';
import { Store } from '../../src/store/database.js';

const [url, schema] = process.argv.slice(2);
if (!url) throw new Error('usage: migrate-child.ts URL [PG_SCHEMA]');
const store = await Store.open(url, schema ? { pgSchema: schema, pgPoolSize: 2 } : {});
try {
  process.stdout.write('ready\n');
  await once(process.stdin, 'data');
  process.stdout.write(`${JSON.stringify(await store.migrate())}\n`);
} finally {
  process.stdin.destroy();
  await store.close();
}
