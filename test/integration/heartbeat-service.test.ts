/**
 * HeartbeatService on a real store: when its writes overlap (a write started while the previous
 * one is still committing or syncing), and against a store that refuses every write before it
 * begins (closed): queued heartbeats then get the store's error at once instead of waiting for
 * a store that never answers.
 */
import { rmSync } from 'node:fs';
import { expect, it } from 'vitest';
import { TokenService } from '../../src/auth/token-service.js';
import { HeartbeatService } from '../../src/runs/heartbeat-service.js';
import { RunService } from '../../src/runs/run-service.js';
import type { Store } from '../../src/store/database.js';
import { FakeClock } from '../helpers/clock.js';
import { dropSchema, freshStore } from '../helpers/store.js';
import { forEachDialect } from './support.js';

const hb = (run_id: string, step = 1) => ({
  run_id,
  status: 'running' as const,
  step,
  samples_per_sec: 1,
  loss: 1,
  checkpoint_version: 0,
});

forEachDialect((dialect) => {
  it('starts the next write while one is under way: on SQLite only once as many heartbeats wait as the last batch took', async () => {
    const ts = await freshStore(dialect);
    try {
      const clock = new FakeClock();
      const runs = new RunService(ts.store, clock, new TokenService(ts.store, clock), {
        heartbeatIntervalMs: 15_000,
      });
      const ids: string[] = [];
      for (let i = 0; i < 8; i++) ids.push((await runs.create({ config: { i } }, null, null)).run_id);
      // The service's own writes, seen as they happen: the hook runs inside the first write's
      // transaction, just after that write has taken its batch from the queue.
      let inTransaction: (() => void) | null = null;
      const observed = Object.create(ts.store) as Store;
      observed.write = (fn, opts) =>
        ts.store.write((tx) => {
          const result = fn(tx);
          const hook = inTransaction;
          inTransaction = null;
          hook?.();
          return result;
        }, opts);
      const service = new HeartbeatService(observed, clock, { minIntervalMs: 0, intervalMs: 15_000 });
      const accepted: Array<Promise<unknown>> = [];
      const inFlight: number[] = [];
      inTransaction = () => {
        // The first write took 4 heartbeats. Three more wait: on SQLite that is fewer than it
        // took, so they wait for it to end; the fourth lets the next write start at once.
        for (const id of ids.slice(4, 7)) accepted.push(service.accept(id, hb(id, 2)));
        inFlight.push(service.writesInFlight);
        accepted.push(service.accept(ids[7] as string, hb(ids[7] as string, 2)));
        inFlight.push(service.writesInFlight);
      };
      for (const id of ids.slice(0, 4)) accepted.push(service.accept(id, hb(id, 1)));
      expect(service.writesInFlight).toBe(1);
      await Promise.all(accepted.slice(0, 4));
      await Promise.all(accepted);
      // Postgres overlaps with whatever waits (the outbox lock orders the writes).
      expect(inFlight).toEqual(dialect === 'sqlite' ? [1, 2] : [2, 2]);
      expect(service.writesInFlight).toBe(0);
      for (const [i, id] of ids.entries()) {
        const run = await runs.get(id);
        expect(run.step).toBe(i < 4 ? 1 : 2);
      }
    } finally {
      await ts.cleanup();
    }
  });

  it('fails queued heartbeats with the error when the store refuses to begin a write', async () => {
    const ts = await freshStore(dialect);
    try {
      const service = new HeartbeatService(ts.store, new FakeClock(), {
        minIntervalMs: 0,
        intervalMs: 15_000,
      });
      await ts.store.close();
      const settled = await Promise.race([
        Promise.allSettled([service.accept('run_a', hb('run_a')), service.accept('run_b', hb('run_b'))]),
        new Promise<'hung'>((r) => setTimeout(() => r('hung'), 5_000)),
      ]);
      expect(settled).not.toBe('hung');
      const results = settled as PromiseSettledResult<unknown>[];
      expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    } finally {
      if (ts.schema) await dropSchema(ts.schema);
      rmSync(ts.dir, { recursive: true, force: true });
    }
  });
});
