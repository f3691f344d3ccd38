/**
 * Two `runplane up` replicas on one Postgres schema: both serve the API, one leads the loops
 * that must run once. The leader is killed with SIGKILL under load; the follower takes over
 * within seconds, every job completes with exactly one attempt, and every event in the log is
 * delivered to every durable subscriber.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { RunplaneClient } from '../../src/client/client.js';
import { eventually } from '../helpers/controller.js';
import {
  cleanup,
  counts,
  listAll,
  readLines,
  sh,
  startUp,
  startWorker,
  tempDir,
} from '../helpers/processes.js';
import { PG_URL, serviceAvailable } from '../helpers/services.js';
import { dropSchema } from '../helpers/store.js';

const pgOk = await serviceAvailable('postgres');
const ADMIN = `rp_failover_${randomUUID().replaceAll('-', '')}`;
const JOBS = 60;

const schemas: string[] = [];
afterEach(async () => {
  await cleanup();
  for (const schema of schemas.splice(0)) await dropSchema(schema);
});

async function query<T extends pg.QueryResultRow>(schema: string, text: string): Promise<T[]> {
  const c = new pg.Client({ connectionString: PG_URL, options: `-c search_path=${schema}` });
  await c.connect();
  try {
    return (await c.query<T>(text)).rows;
  } finally {
    await c.end();
  }
}

describe.skipIf(!pgOk)('two replicas on one Postgres', () => {
  it('the follower takes over when the leader is killed; no job lost or run twice, every event delivered', async () => {
    const schema = `e2e_leader_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
    schemas.push(schema);
    const databaseUrl = `${PG_URL}?schema=${schema}`;
    const opts = { databaseUrl, adminToken: ADMIN, workerTimeout: '20s' };
    const a = await startUp(opts);
    const ca = new RunplaneClient(a.url, ADMIN);
    expect((await ca.health()).leader).toMatchObject({ leader: true, mode: 'postgres-advisory' });
    const b = await startUp(opts);
    const cb = new RunplaneClient(b.url, ADMIN);
    const hb = await cb.health();
    expect(hb.leader.leader).toBe(false);
    expect(hb.lifecycle.find((c) => c.name === 'scheduler')?.state).toBe('standby');

    // The worker talks to the follower; the leader places the jobs through the shared store.
    const { token } = await ca.createToken('worker');
    await startWorker(b.url, token, 'failover-w', { cpu: 4 });
    const ran = join(tempDir(), 'ran.txt');
    const command = sh(`echo "$RUNPLANE_JOB_ID" >> ${ran}; sleep 0.2`);
    const ids: string[] = [];
    // Under load through both replicas.
    for (let i = 0; i < JOBS / 2; i += 5)
      await Promise.all(
        Array.from({ length: 5 }, async (_, k) => {
          const c = (i + k) % 2 === 0 ? ca : cb;
          ids.push((await c.launchJob({ name: `pre-${i + k}`, command })).job_id);
        }),
      );
    await eventually(async () => (await listAll(cb, { state: 'SUCCEEDED' })).length >= 5, 60_000, 100);

    await a.kill9();
    // The rest goes through the survivor while it takes over.
    for (let i = JOBS / 2; i < JOBS; i += 5)
      await Promise.all(
        Array.from({ length: 5 }, async (_, k) => {
          ids.push((await cb.launchJob({ name: `post-${i + k}`, command })).job_id);
        }),
      );
    // Health says leader as soon as the lock is won; the leader-only loops start right after.
    const took = await eventually(
      async () => {
        const h = await cb.health();
        const loops = h.lifecycle.filter((c) => c.leader_only);
        return h.leader.leader && loops.every((c) => c.state === 'running') ? h : undefined;
      },
      10_000,
      100,
    );
    expect(took.leader.terms).toBe(1);
    expect(took.lifecycle.filter((c) => c.leader_only).every((c) => c.state === 'running')).toBe(true);

    const all = await eventually(
      async () => {
        const jobs = await listAll(cb);
        return jobs.length === JOBS && jobs.every((j) => j.state === 'SUCCEEDED') ? jobs : undefined;
      },
      180_000,
      250,
    );
    expect(new Set(all.map((j) => j.job_id))).toEqual(new Set(ids));

    // Exactly once: one attempt per job in the store, one run per job on the worker.
    const twice = await query<{ job_id: string; n: string }>(
      schema,
      'select job_id, count(*) as n from attempts group by job_id having count(*) <> 1',
    );
    expect(twice).toEqual([]);
    expect(
      (await query<{ n: number }>(schema, 'select count(distinct job_id)::int as n from attempts'))[0]?.n,
    ).toBe(JOBS);
    expect([...counts(readLines(ran))].filter(([, c]) => c !== 1)).toEqual([]);

    // Every event, including those written around the crash, reaches every durable subscriber.
    await eventually(
      async () => {
        const [last] = await query<{ seq: number }>(schema, 'select max(seq)::int as seq from events');
        const behind = await query<{ subscriber: string }>(
          schema,
          `select subscriber from event_cursors where last_seq < ${Number(last?.seq ?? 0)}`,
        );
        return behind.length === 0;
      },
      30_000,
      200,
    );
    const cursors = await query<{ subscriber: string }>(schema, 'select subscriber from event_cursors');
    expect(cursors.map((c) => c.subscriber)).toContain('runs.jobs');
    expect(await query(schema, 'select id from dead_letters')).toEqual([]);
  }, 300_000);
});
