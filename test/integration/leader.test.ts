import pg from 'pg';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { LeaderElector, SingleProcessLock } from '../../src/cluster/leader-elector.js';
import { PostgresLeaderLock } from '../../src/cluster/postgres-leader-lock.js';
import { systemClock } from '../../src/shared/clock.js';
import { eventually } from '../helpers/controller.js';
import { PG_URL } from '../helpers/services.js';
import { dropSchema } from '../helpers/store.js';
import { pgOk } from './support.js';

const log = pino({ level: 'silent' });

describe('leader election on SQLite', () => {
  it('is always the leader', async () => {
    const e = new LeaderElector(new SingleProcessLock(), systemClock, log);
    const seen: boolean[] = [];
    e.onChange(async (l) => {
      seen.push(l);
    });
    await e.start();
    expect(e.status()).toMatchObject({ leader: true, mode: 'single', terms: 1 });
    await e.stop();
    expect(seen).toEqual([true, false]);
  });
});

describe.skipIf(!pgOk)('leader election on Postgres (session advisory lock)', () => {
  const electors: LeaderElector[] = [];
  const schemas: string[] = [];
  afterEach(async () => {
    await Promise.all(electors.splice(0).map((e) => e.stop()));
    for (const s of schemas.splice(0)) await dropSchema(s);
  });

  async function schemaUrl(): Promise<string> {
    const schema = `t_leader_${process.pid}_${Date.now().toString(36)}_${schemas.length}`;
    schemas.push(schema);
    const c = new pg.Client({ connectionString: PG_URL });
    await c.connect();
    await c.query(`create schema ${schema}`);
    await c.end();
    return `${PG_URL}?schema=${schema}`;
  }

  function elector(url: string, events: string[], name: string): LeaderElector {
    const e = new LeaderElector(new PostgresLeaderLock(url), systemClock, log, { retryMs: 100 });
    e.onChange(async (l) => {
      events.push(`${name}:${l ? 'elected' : 'deposed'}`);
    });
    electors.push(e);
    return e;
  }

  it('elects one replica per schema; a follower takes over when the leader session is killed', async () => {
    const url = await schemaUrl();
    const events: string[] = [];
    const a = elector(url, events, 'a');
    const b = elector(url, events, 'b');
    await a.start();
    await b.start();
    expect(a.isLeader()).toBe(true);
    expect(b.isLeader()).toBe(false);
    expect(b.status().mode).toBe('postgres-advisory');

    // Another schema of the same database elects its own leader.
    const other = elector(await schemaUrl(), events, 'other');
    await other.start();
    expect(other.isLeader()).toBe(true);

    // Kill the leader's session from the server side, as a dead process or a cut network would.
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    try {
      const killed = await admin.query<{ ok: boolean }>(
        `select pg_terminate_backend(l.pid) as ok from pg_locks l
           where l.locktype = 'advisory' and l.granted
             and l.objid = (hashtext('runplane.leader:' || current_database() || ':' || $1::text)::bigint & 4294967295)`,
        [new URL(url).searchParams.get('schema')],
      );
      expect(killed.rows).toEqual([{ ok: true }]);
    } finally {
      await admin.end();
    }
    await eventually(() => !a.isLeader() && b.isLeader(), 10_000).catch((err: unknown) => {
      throw new Error(`${String(err)}; transitions: ${events.join(', ')}`);
    });
    expect(events).toEqual(['a:elected', 'other:elected', 'a:deposed', 'b:elected']);
    expect(a.status().last_error).not.toBeNull();
  });

  it('hands over at once when the leader stops', async () => {
    const url = await schemaUrl();
    const events: string[] = [];
    const a = elector(url, events, 'a');
    const b = elector(url, events, 'b');
    await a.start();
    await b.start();
    await a.stop();
    await eventually(() => b.isLeader(), 5000);
    expect(events).toEqual(['a:elected', 'a:deposed', 'b:elected']);
  });
});
