/**
 * The store itself: migrations (ledger, idempotence, concurrency), the committed schema snapshot,
 * and durability of acknowledged writes across a close and reopen.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import pino from 'pino';
import { expect, it } from 'vitest';
import { RunplaneClient } from '../../src/client/client.js';
import { loadConfig } from '../../src/config.js';
import type { NewEvent } from '../../src/events/catalog.js';
import { outboxRepo } from '../../src/events/outbox-repo.js';
import { commandRepo } from '../../src/runs/command-repo.js';
import { metricRepo } from '../../src/runs/metric-repo.js';
import { startController } from '../../src/runtime.js';
import { beforeCommit } from '../../src/store/commit-hooks.js';
import { type Executor, leaderLockTaken, Store } from '../../src/store/database.js';
import { writeExpecting } from '../../src/store/expected-write.js';
import { migrationsFor } from '../../src/store/migrations/index.js';
import { readTogether } from '../../src/store/read-together.js';
import { schemaSnapshot } from '../../src/store/schema-snapshot.js';
import { ADMIN, eventually } from '../helpers/controller.js';
import { PG_URL } from '../helpers/services.js';
import { type DialectUnderTest, dropSchema, freshStore } from '../helpers/store.js';
import { forEachDialect } from './support.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const SNAPSHOTS = join(HERE, '..', '..', 'src', 'store', 'snapshots');
let counter = 0;

interface EmptyDatabase {
  url: string;
  schema: string | null;
  open(): Promise<Store>;
  remove(): Promise<void>;
}

/** An empty database (no migrations applied) and how to open it again and remove it. */
function emptyDatabase(dialect: DialectUnderTest): EmptyDatabase {
  if (dialect === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'runplane-store-'));
    const url = `sqlite:${join(dir, 'runplane.db')}`;
    return {
      url,
      schema: null,
      open: () => Store.open(url),
      remove: async () => rmSync(dir, { recursive: true, force: true }),
    };
  }
  const schema = `m_${process.pid}_${Date.now().toString(36)}_${counter++}`;
  return {
    url: PG_URL,
    schema,
    open: () => Store.open(PG_URL, { pgSchema: schema, pgPoolSize: 3 }),
    remove: () => dropSchema(schema),
  };
}

/**
 * Migrates the database from several processes released at the same moment (each opens the
 * store first, then waits for the go); resolves with what each one applied.
 */
async function migrateInChildren(db: EmptyDatabase, n: number): Promise<string[][]> {
  const args = ['--import', 'tsx', join(HERE, 'migrate-child.ts'), db.url, ...(db.schema ? [db.schema] : [])];
  const children = Array.from({ length: n }, () => {
    const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const ready = new Promise<void>((resolve) => {
      child.stdout.on('data', (b: Buffer) => {
        out += b.toString();
        if (out.startsWith('ready\n')) resolve();
      });
    });
    child.stderr.on('data', (b: Buffer) => {
      err += b.toString();
    });
    const exited = new Promise<string[]>((resolve, reject) => {
      child.on('exit', (code) => {
        if (code === 0) resolve(JSON.parse(out.slice('ready\n'.length)) as string[]);
        else reject(new Error(`migrating in a child failed (exit ${code}):\n${err}`));
      });
    });
    return { child, ready, exited };
  });
  await Promise.race([Promise.all(children.map((c) => c.ready)), Promise.all(children.map((c) => c.exited))]);
  for (const c of children) c.child.stdin.write('go\n');
  return Promise.all(children.map((c) => c.exited));
}

async function ledger(store: Store): Promise<string[]> {
  const r = await sql<{ name: string }>`select name from schema_migrations order by name`.execute(store.db);
  return r.rows.map((x) => x.name);
}

/** An event of `type` for an entity, to append in a test. */
function testEvent(type: string): (id: string) => NewEvent {
  return (id) => ({ type, entity_id: id, payload: {} }) as unknown as NewEvent;
}

forEachDialect((dialect) => {
  const all = Object.keys(migrationsFor(dialect)).sort();

  it('applies every migration once, records it in schema_migrations, and a second run applies nothing', async () => {
    const db = emptyDatabase(dialect);
    const store = await db.open();
    try {
      expect(all.length).toBeGreaterThan(0);
      expect(await store.migrate()).toEqual(all);
      expect(await ledger(store)).toEqual(all);
      const schema = await schemaSnapshot(store);
      expect(await store.migrate()).toEqual([]);
      expect(await ledger(store)).toEqual(all);
      expect(await schemaSnapshot(store)).toBe(schema);
    } finally {
      await store.close();
      await db.remove();
    }
  });

  it('applies migrations once when two processes migrate the same database at the same time', async () => {
    const db = emptyDatabase(dialect);
    try {
      const applied = await migrateInChildren(db, 3);
      expect(applied.flat().sort()).toEqual(all);
      const store = await db.open();
      try {
        expect(await ledger(store)).toEqual(all);
        expect(await store.migrate()).toEqual([]);
      } finally {
        await store.close();
      }
    } finally {
      await db.remove();
    }
  });

  it('has the schema of the committed snapshot', async () => {
    const ts = await freshStore(dialect);
    try {
      const actual = await schemaSnapshot(ts.store);
      const committed = readFileSync(join(SNAPSHOTS, `${dialect}.sql`), 'utf8');
      expect(
        actual,
        `the ${dialect} schema differs from src/store/snapshots/${dialect}.sql: run \`npm run schema:snapshot\` and commit the result`,
      ).toBe(committed);
      expect(actual).toContain('jobs');
      expect(actual).toContain('schema_migrations');
    } finally {
      await ts.cleanup();
    }
  });

  it('keeps acknowledged writes across closing and reopening the store', async () => {
    const db = emptyDatabase(dialect);
    const dataDir = mkdtempSync(join(tmpdir(), 'runplane-data-'));
    let store = await db.open();
    try {
      await store.migrate();
      const ctl = await startController(loadConfig({ port: 0, workers: 0, dataDir, adminToken: ADMIN }, {}), {
        store,
        logger: pino({ level: 'silent' }),
      });
      const client = new RunplaneClient(ctl.url, ADMIN);
      const kept = await client.launchJob({ name: 'kept', command: ['true'], labels: { a: 'b' } });
      const killed = await client.launchJob({ name: 'killed', command: ['true'] });
      await client.terminateJob(killed.job_id);
      await ctl.stop();
      await store.close();

      store = await db.open();
      expect(await store.migrate()).toEqual([]);
      const jobs = await store.db
        .selectFrom('jobs')
        .select(['id', 'name', 'state', 'labels'])
        .orderBy('seq')
        .execute();
      expect(jobs).toEqual([
        { id: kept.job_id, name: 'kept', state: 'PENDING', labels: '{"a":"b"}' },
        { id: killed.job_id, name: 'killed', state: 'KILLED', labels: '{}' },
      ]);
      const events = await store.db
        .selectFrom('events')
        .select(['type', 'entity_id'])
        .orderBy('seq')
        .execute();
      expect(events.filter((e) => e.type.startsWith('job.'))).toEqual([
        { type: 'job.submitted', entity_id: kept.job_id },
        { type: 'job.submitted', entity_id: killed.job_id },
        { type: 'job.state_changed', entity_id: killed.job_id },
      ]);
    } finally {
      await store.close();
      await db.remove();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('serialises store writes: a second write runs its statements only after the first commits, so events commit in seq order', async () => {
    const ts = await freshStore(dialect);
    try {
      const { store } = ts;
      const order: string[] = [];
      let release = () => {};
      const held = new Promise<void>((r) => {
        release = r;
      });
      let firstBegan = () => {};
      const began = new Promise<void>((r) => {
        firstBegan = r;
      });
      const append = async (tx: Parameters<Parameters<Store['write']>[0]>[0], name: string) => {
        await tx
          .insertInto('events')
          .values({ id: `evt_${name}`, type: 'test.order', entity_id: name, payload: '{}', created_at: 0 })
          .execute();
        order.push(`${name} wrote`);
      };
      // The first write holds the outbox lock (on Postgres, from its first statement) until released.
      const first = store.write(async (tx) => {
        order.push('first began');
        await append(tx, 'first');
        firstBegan();
        await held;
      });
      await began;
      // On Postgres a write's code runs at once and the outbox lock goes with its first
      // statement, which waits; with lockFirst its code waits for the lock. SQLite has one
      // connection, which the second and third wait for.
      const second = store.write(async (tx) => {
        order.push('second began');
        await append(tx, 'second');
      });
      const third = store.write(
        async (tx) => {
          order.push('third began');
          await append(tx, 'third');
        },
        { lockFirst: true },
      );
      // On Postgres, a transaction that is not a write never waits for the outbox lock.
      if (dialect === 'postgres')
        await store.transaction(async (tx) => {
          await tx.selectFrom('events').select('seq').execute();
        });
      await new Promise((r) => setTimeout(r, 200));
      const beforeRelease = [...order];
      release();
      await Promise.all([first, second, third]);
      expect(beforeRelease).toEqual(
        dialect === 'postgres'
          ? ['first began', 'first wrote', 'second began']
          : ['first began', 'first wrote'],
      );
      const rows = await store.db
        .selectFrom('events')
        .select('entity_id')
        .where('type', '=', 'test.order')
        .orderBy('seq')
        .execute();
      // Sequence numbers follow the order the writes wrote (and committed) in.
      const wrote = order.filter((o) => o.endsWith(' wrote')).map((o) => o.replace(' wrote', ''));
      expect(wrote).toHaveLength(3);
      expect(wrote[0]).toBe('first');
      expect(rows.map((r) => r.entity_id)).toEqual(wrote);
    } finally {
      await ts.cleanup();
    }
  });

  it('writes bulk statements of any size in chunks, each numbering its own placeholders', async () => {
    const ts = await freshStore(dialect);
    try {
      const { store } = ts;
      const points = (n: number, value: (i: number) => number) =>
        Array.from({ length: n }, (_, i) => ({
          run_id: `run_${i % 7}`,
          name: 'loss',
          step: i,
          value: value(i),
          recorded_at: i,
        }));
      // 1,201 rows: three statements of 500, 500 and 201 rows.
      await store.write((tx) =>
        metricRepo.upsert(
          tx,
          points(1201, (i) => i),
        ),
      );
      // A re-reported step replaces its value (the upsert's conflict clause), in a 3-row chunk.
      await store.write((tx) =>
        metricRepo.upsert(
          tx,
          points(3, (i) => -i - 1),
        ),
      );
      const rows = await store.db
        .selectFrom('run_metrics')
        .select(['step', 'value'])
        .orderBy('step')
        .execute();
      expect(rows).toHaveLength(1201);
      expect(rows.slice(0, 4).map((r) => r.value)).toEqual([-1, -2, -3, 3]);
      expect(rows.at(-1)).toEqual({ step: 1200, value: 1200 });
      expect(rows.every((r, i) => r.step === i)).toBe(true);
    } finally {
      await ts.cleanup();
    }
  });

  it('reads independent queries together, each answer in order, outside a transaction and first in a write', async () => {
    const ts = await freshStore(dialect);
    try {
      const { store } = ts;
      const ev = testEvent('test.together');
      await store.write((tx) => outboxRepo.append(tx, [ev('a'), ev('b')], 1));
      const ids = (db: Executor) =>
        db.selectFrom('events').select('entity_id').where('type', '=', 'test.together').orderBy('seq');
      const count = (db: Executor) =>
        db
          .selectFrom('events')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .where('type', '=', 'test.together');
      const [rows, counted] = await readTogether(store.db, [ids(store.db), count(store.db)]);
      expect(rows).toEqual([{ entity_id: 'a' }, { entity_id: 'b' }]);
      expect(Number(counted[0]?.n)).toBe(2);
      // A statement read for its rows may change them (a claim): the reads after it see the change.
      const [claimed, after] = await readTogether(store.db, [
        store.db
          .updateTable('events')
          .set({ payload: '"claimed"' })
          .where('type', '=', 'test.together')
          .where('entity_id', '=', 'a')
          .returning('entity_id'),
        store.db
          .selectFrom('events')
          .select('payload')
          .where('type', '=', 'test.together')
          .where('entity_id', '=', 'a'),
      ]);
      expect(claimed).toEqual([{ entity_id: 'a' }]);
      expect(after).toEqual([{ payload: '"claimed"' }]);
      // First in a store write (on Postgres with its BEGIN and outbox lock), with a leader lock.
      const seen = await store.write(async (tx) => {
        const leader = store.leaderLockQuery(tx, 'test-together');
        const [inTx, n, lock] = await readTogether(tx, [ids(tx), count(tx), ...(leader ? [leader] : [])]);
        expect(leaderLockTaken(lock)).toBe(true);
        await outboxRepo.append(tx, [ev('c')], 1);
        return { inTx, n: Number(n[0]?.n) };
      });
      expect(seen).toEqual({ inTx: [{ entity_id: 'a' }, { entity_id: 'b' }], n: 2 });
      if (dialect === 'postgres') {
        // A read that fails fails the write, and nothing of it stays.
        await expect(
          store.write(async (tx) => {
            await readTogether(tx, [ids(tx), sql<{ x: number }>`select 1 / ${0}::int as x`.compile(tx)]);
            await outboxRepo.append(tx, [ev('d')], 1);
          }),
        ).rejects.toThrow(/division by zero/);
      }
      expect((await ids(store.db).execute()).map((r) => r.entity_id)).toEqual(['a', 'b', 'c']);
    } finally {
      await ts.cleanup();
    }
  });

  it('writes a guarded update whose outcome is known, and fails the whole write when it changes other than the expected rows', async () => {
    const ts = await freshStore(dialect);
    try {
      const { store } = ts;
      const ev = testEvent('test.expect');
      await store.write((tx) => outboxRepo.append(tx, [ev('a'), ev('b'), ev('c')], 1));
      const mark = (tx: Executor, ids: string[], from: string, to: string) =>
        tx
          .updateTable('events')
          .set({ payload: to })
          .where('type', '=', 'test.expect')
          .where('entity_id', 'in', ids)
          .where('payload', '=', from);
      const payloads = async () =>
        (
          await store.db
            .selectFrom('events')
            .select(['entity_id', 'payload'])
            .where('type', '=', 'test.expect')
            .orderBy('seq')
            .execute()
        ).map((r) => `${r.entity_id}=${r.payload}`);
      // Changes exactly what it expects: committed, and a read after it in the write sees it.
      const seen = await store.write(async (tx) => {
        await writeExpecting(tx, mark(tx, ['a', 'b'], '{}', '{"v":1}'), 2);
        return (await tx.selectFrom('events').select('entity_id').where('payload', '=', '{"v":1}').execute())
          .length;
      });
      expect(seen).toBe(2);
      expect(await payloads()).toEqual(['a={"v":1}', 'b={"v":1}', 'c={}']);
      // 'a' is no longer '{}': one row changes where two were expected, and nothing of the write stays.
      await expect(
        store.write(async (tx) => {
          await outboxRepo.append(tx, [ev('d')], 1);
          await writeExpecting(tx, mark(tx, ['a', 'c'], '{}', '{"v":2}'), 2);
        }),
      ).rejects.toThrow(/expected a write to change 2 rows, it changed 1/);
      expect(await payloads()).toEqual(['a={"v":1}', 'b={"v":1}', 'c={}']);
    } finally {
      await ts.cleanup();
    }
  });

  it('defers appends to just before the commit, in order, with appends that commit hooks make', async () => {
    const ts = await freshStore(dialect);
    try {
      const { store } = ts;
      const ev = testEvent('test.defer');
      const events = (tx: Executor) =>
        tx.selectFrom('events').select('entity_id').where('type', '=', 'test.defer').orderBy('seq').execute();
      const seen = await store.write(async (tx) => {
        await outboxRepo.append(tx, [ev('a')], 1);
        await commandRepo.insert(tx, {
          id: 'cmd-defer',
          run_id: 'run-x',
          type: 'tune',
          payload: '{}',
          actor_type: 'operator',
          actor_id: 'ops',
          issued_at: 1,
          created_at: 1,
          delivered_at: null,
          acknowledged_at: null,
          delivery_count: 0,
          visible_at: 1,
        });
        await outboxRepo.append(tx, [ev('b')], 1);
        // A hook that runs at commit time and appends again gets its rows written too.
        beforeCommit(tx, () => outboxRepo.append(tx, [ev('c')], 1));
        await commandRepo.acknowledge(tx, 'cmd-defer', 5);
        return (await events(tx)).length;
      });
      expect(seen).toBe(0);
      expect((await events(store.db)).map((r) => r.entity_id)).toEqual(['a', 'b', 'c']);
      const cmd = await commandRepo.get(store.db, 'cmd-defer');
      expect(cmd).toMatchObject({ acknowledged_at: 5, delivered_at: 5 });
      // A failing deferred write rolls the whole transaction back.
      await expect(
        store.write(async (tx) => {
          await outboxRepo.append(tx, [ev('d')], 1);
          await commandRepo.insert(tx, { ...(cmd as NonNullable<typeof cmd>), id: 'cmd-defer' });
        }),
      ).rejects.toThrow();
      expect((await events(store.db)).map((r) => r.entity_id)).toEqual(['a', 'b', 'c']);
    } finally {
      await ts.cleanup();
    }
  });

  if (dialect === 'postgres') {
    it('sends a transaction in few round trips and keeps its one connection usable after a failure', async () => {
      const schema = `t_pipe_${process.pid}_${Date.now().toString(36)}`;
      // One pooled connection: every transaction below runs on it, after what the last one left.
      const store = await Store.open(PG_URL, { pgSchema: schema, pgPoolSize: 1 });
      try {
        await store.migrate();
        const ev = testEvent('test.pipe');
        const ids = (db: Executor) =>
          db
            .selectFrom('events')
            .select('entity_id')
            .where('type', '=', 'test.pipe')
            .orderBy('seq')
            .execute();
        // A read transaction's BEGIN goes with its first statement: the first time that statement
        // is prepared on the connection (on its own), the second time bound in the pipeline.
        for (let i = 0; i < 2; i++) expect(await store.transaction((tx) => ids(tx))).toEqual([]);
        // A write's deferred rows go with its COMMIT, and are there afterwards.
        await store.write(async (tx) => {
          await outboxRepo.append(tx, [ev('a'), ev('b')], 1);
        });
        expect(await store.transaction((tx) => ids(tx))).toEqual([{ entity_id: 'a' }, { entity_id: 'b' }]);
        // A statement that fails where BEGIN went with it: the transaction rolls back.
        await expect(
          store.transaction(async (tx) => {
            await sql`select 1 / ${0}::int as x`.execute(tx);
          }),
        ).rejects.toThrow(/division by zero/);
        // A deferred write that fails with COMMIT: nothing of the write stays.
        await expect(
          store.write(async (tx) => {
            await tx
              .updateTable('events')
              .set({ payload: '{"changed":true}' })
              .where('type', '=', 'test.pipe')
              .execute();
            await outboxRepo.appendWithIds(
              tx,
              [{ id: 'evt_dup', type: 'test.pipe', entity_id: 'c', payload: {} }],
              1,
            );
            await outboxRepo.appendWithIds(
              tx,
              [{ id: 'evt_dup', type: 'test.pipe', entity_id: 'd', payload: {} }],
              1,
            );
          }),
        ).rejects.toMatchObject({ code: '23505' });
        // A write whose first statement fails (sent with BEGIN and the outbox lock) rolls back,
        // and one refused before it sent anything sends nothing: neither leaves the lock held.
        await expect(
          store.write(async (tx) => {
            await sql`select 1 / ${0}::int as x`.execute(tx);
          }),
        ).rejects.toThrow(/division by zero/);
        await expect(
          store.write(async () => {
            throw new Error('refused');
          }),
        ).rejects.toThrow('refused');
        const locks = await sql<{ n: number }>`
          select count(*)::int as n from pg_locks where locktype = 'advisory' and pid = pg_backend_pid()
        `.execute(store.db);
        expect(locks.rows[0]?.n).toBe(0);
        // The connection serves the next transactions, which see none of the failed ones.
        expect(await ids(store.db)).toEqual([{ entity_id: 'a' }, { entity_id: 'b' }]);
        const payloads = await store.db
          .selectFrom('events')
          .select('payload')
          .where('type', '=', 'test.pipe')
          .execute();
        expect(payloads.every((r) => r.payload === '{}')).toBe(true);
        await store.write(async (tx) => {
          await outboxRepo.append(tx, [ev('e')], 1);
        });
        expect((await ids(store.db)).map((r) => r.entity_id)).toEqual(['a', 'b', 'e']);
        // A transaction that ran nothing ends without error, as does one rolled back before it ran anything.
        await store.transaction(async () => undefined);
        await expect(
          store.transaction(async () => {
            throw new Error('before any statement');
          }),
        ).rejects.toThrow('before any statement');
        expect(await store.transaction((tx) => ids(tx))).toHaveLength(3);
      } finally {
        await store.close();
        await dropSchema(schema);
      }
    });

    it("introspects only its own schema, so the migrator never reads another schema's tables", async () => {
      const mine = `t_own_${process.pid}_${Date.now().toString(36)}`;
      const other = `t_other_${process.pid}_${Date.now().toString(36)}`;
      const store = await Store.open(PG_URL, { pgSchema: mine, pgPoolSize: 1 });
      try {
        await store.migrate();
        await sql`create schema ${sql.id(other)}`.execute(store.db);
        await sql`create table ${sql.id(other, 'jobs')} (id text primary key, extra int)`.execute(store.db);
        const tables = await store.db.introspection.getTables();
        expect(new Set(tables.map((t) => t.schema))).toEqual(new Set([mine]));
        const names = tables.map((t) => t.name);
        expect(names).toContain('schema_migrations');
        const jobs = tables.find((t) => t.name === 'jobs');
        expect(jobs?.columns.map((c) => c.name)).toContain('state');
        expect(jobs?.columns.map((c) => c.name)).not.toContain('extra');
        expect((await store.db.introspection.getSchemas()).map((s) => s.name)).toEqual(
          expect.arrayContaining([mine, other]),
        );
        // With the other schema gone, migrating again still finds the ledger and applies nothing.
        await sql`drop schema ${sql.id(other)} cascade`.execute(store.db);
        expect(await store.migrate()).toEqual([]);
      } finally {
        await store.close();
        await dropSchema(other);
        await dropSchema(mine);
      }
    });

    it('runs parameterised statements as named prepared statements, except those selecting *', async () => {
      const ts = await freshStore('postgres');
      try {
        const { store } = ts;
        const prepared = await store.transaction(async (tx) => {
          // One connection for the whole transaction: its session's prepared statements.
          for (let i = 0; i < 2; i++) {
            await tx.selectFrom('runs').select(['id', 'status']).where('id', '=', `run_${i}`).execute();
            await tx.selectFrom('runs').selectAll().where('id', '=', `run_${i}`).execute();
          }
          const r = await sql<{ statement: string }>`select statement from pg_prepared_statements`.execute(
            tx,
          );
          return r.rows.map((x) => x.statement);
        });
        expect(prepared).toContain('select "id", "status" from "runs" where "id" = $1');
        expect(prepared.some((t) => t.includes('select *'))).toBe(false);
      } finally {
        await ts.cleanup();
      }
    });
  }

  if (dialect === 'sqlite') {
    it('checkpoints the WAL from its own thread, long before the automatic checkpoint would', async () => {
      const ts = await freshStore('sqlite');
      try {
        const file = join(ts.dir, 'runplane.db');
        const before = statSync(file).size;
        // About 400 KiB of rows: ~100 pages, far below the 10,000 of the automatic checkpoint.
        await ts.store.write(async (tx) => {
          for (let i = 0; i < 200; i++)
            await tx
              .insertInto('events')
              .values({
                id: `evt_ck_${i}`,
                type: 'test.ck',
                entity_id: 'x',
                payload: 'x'.repeat(2000),
                created_at: 0,
              })
              .execute();
        });
        await eventually(() => expect(statSync(file).size).toBeGreaterThan(before + 200 * 1024), 5000);
      } finally {
        await ts.cleanup();
      }
    });

    it('opens SQLite in WAL mode; every write that changed a row is fdatasync-ed before it returns, a read never waits for one', async () => {
      const ts = await freshStore('sqlite');
      try {
        const { store } = ts;
        const mode = await sql<{ journal_mode: string }>`pragma journal_mode`.execute(store.db);
        const sync = await sql<{ synchronous: number }>`pragma synchronous`.execute(store.db);
        expect(mode.rows[0]?.journal_mode).toBe('wal');
        // NORMAL: SQLite does not sync at COMMIT; the store's WalSync does, off the event loop.
        expect(sync.rows[0]?.synchronous).toBe(1);
        const wal = store.wal;
        if (!wal) throw new Error('a file database has a WAL sync');
        const row = (id: string) => ({ id, type: 'test.sync', entity_id: id, payload: '{}', created_at: 0 });
        let before = wal.syncs;
        await store.write(async (tx) => {
          await tx.insertInto('events').values(row('evt_in_tx')).execute();
        });
        expect(wal.syncs).toBeGreaterThan(before);
        before = wal.syncs;
        await store.db.insertInto('events').values(row('evt_autocommit')).execute();
        expect(wal.syncs).toBeGreaterThan(before);
        before = wal.syncs;
        await store.db.selectFrom('events').selectAll().execute();
        await store.transaction(async (tx) => {
          await tx.selectFrom('events').selectAll().execute();
        });
        await store
          .write(async (tx) => {
            await tx.insertInto('events').values(row('evt_rolled_back')).execute();
            throw new Error('roll back');
          })
          .catch(() => undefined);
        expect(wal.syncs).toBe(before);
        // A statement that changed no row wrote nothing, in a transaction or not: no sync.
        const setPayload = (id: string) =>
          store.db.updateTable('events').set({ payload: '{"x":1}' }).where('id', '=', id).execute();
        await setPayload('evt_none');
        await store.write(async (tx) => {
          await tx.deleteFrom('events').where('id', '=', 'evt_none').execute();
          await tx.updateTable('events').set({ payload: '{}' }).where('type', '=', 'no.such.type').execute();
        });
        expect(wal.syncs).toBe(before);
        // The same statement changing a row is synced.
        await setPayload('evt_in_tx');
        expect(wal.syncs).toBeGreaterThan(before);
        const changed = await store.db
          .selectFrom('events')
          .select('payload')
          .where('id', '=', 'evt_in_tx')
          .executeTakeFirst();
        expect(changed?.payload).toBe('{"x":1}');
        // Many commits at once share fdatasync calls.
        before = wal.syncs;
        await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            store.write(async (tx) => {
              await tx
                .insertInto('events')
                .values(row(`evt_group_${i}`))
                .execute();
            }),
          ),
        );
        expect(wal.syncs - before).toBeGreaterThan(0);
        expect(wal.syncs - before).toBeLessThan(20);
      } finally {
        await ts.cleanup();
      }
    });
  }
});
