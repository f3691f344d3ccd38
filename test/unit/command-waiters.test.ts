import { describe, expect, it } from 'vitest';
import type { CommandRow } from '../../src/runs/command-repo.js';
import { CommandWaiters } from '../../src/runs/command-waiters.js';

const row = (id: string): CommandRow => ({
  seq: 1,
  id,
  run_id: 'run_1',
  type: 'pause',
  payload: '{}',
  actor_type: 'user',
  actor_id: 'ada',
  issued_at: 0,
  created_at: 0,
  delivered_at: 0,
  acknowledged_at: null,
  delivery_count: 1,
  visible_at: 30_000,
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('CommandWaiters', () => {
  it('hands a reserved command to the oldest waiting poll only', async () => {
    const w = new CommandWaiters();
    const first = w.wait('run_1', 5_000);
    const second = w.wait('run_1', 50);
    const reservation = w.reserve('run_1');
    expect(reservation).not.toBeNull();
    expect(reservation?.deliver(row('c1'))).toBe(true);
    expect((await first)?.id).toBe('c1');
    expect(await second).toBeNull();
    expect(w.count('run_1')).toBe(0);
  });

  it('a wake that came before the wait began, after the poll looked, is not lost', async () => {
    const w = new CommandWaiters();
    // The poll looks at the store (finds nothing), a command commits and wakes nobody, then the
    // poll waits: it returns at once to look again instead of sleeping out its timeout.
    const seen = w.generation;
    w.wake(['run_1']);
    const early = w.wait('run_1', 60_000, undefined, seen);
    // It never started waiting: no poll is listed for the run.
    expect(w.count('run_1')).toBe(0);
    expect(await early).toBeNull();
    // With no wake since it looked, the poll waits (listed for the run) until woken.
    const waiting = w.wait('run_1', 60_000, undefined, w.generation);
    expect(w.count('run_1')).toBe(1);
    w.wake(['run_1']);
    expect(await waiting).toBeNull();
  });

  it('has nothing to reserve when no poll waits for the run', () => {
    const w = new CommandWaiters();
    void w.wait('run_2', 10);
    expect(w.reserve('run_1')).toBeNull();
  });

  it('keeps a reserved poll past its deadline until the write ends, and wake leaves it alone', async () => {
    const w = new CommandWaiters();
    let settled = false;
    const poll = w.wait('run_1', 10).then((r) => {
      settled = true;
      return r;
    });
    const reservation = w.reserve('run_1');
    w.wake(['run_1']);
    await sleep(40);
    expect(settled).toBe(false);
    expect(w.reserve('run_1')).toBeNull();
    reservation?.deliver(row('c2'));
    expect((await poll)?.id).toBe('c2');
  });

  it('a released reservation wakes the poll with nothing, so it reads the store again', async () => {
    const w = new CommandWaiters();
    const poll = w.wait('run_1', 5_000);
    const reservation = w.reserve('run_1');
    reservation?.release();
    expect(await poll).toBeNull();
    expect(reservation?.deliver(row('c3'))).toBe(false);
  });

  it('a poll whose client goes away during the write refuses the delivery', async () => {
    const w = new CommandWaiters();
    const abort = new AbortController();
    const poll = w.wait('run_1', 5_000, abort.signal);
    const reservation = w.reserve('run_1');
    abort.abort();
    expect(await poll).toBeNull();
    expect(reservation?.deliver(row('c4'))).toBe(false);
    expect(w.count('run_1')).toBe(0);
  });

  it('wake settles every waiting poll of the named runs with nothing', async () => {
    const w = new CommandWaiters();
    const a = w.wait('run_1', 5_000);
    const b = w.wait('run_1', 5_000);
    const other = w.wait('run_2', 30);
    w.wake(['run_1']);
    expect(await a).toBeNull();
    expect(await b).toBeNull();
    expect(await other).toBeNull();
  });
});
