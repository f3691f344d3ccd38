/**
 * HeartbeatService against a store that refuses every write before it begins (closed): queued
 * heartbeats get the store's error at once instead of waiting for a store that never answers.
 */
import { rmSync } from 'node:fs';
import { expect, it } from 'vitest';
import { HeartbeatService } from '../../src/runs/heartbeat-service.js';
import { FakeClock } from '../helpers/clock.js';
import { dropSchema, freshStore } from '../helpers/store.js';
import { forEachDialect } from './support.js';

forEachDialect((dialect) => {
  it('fails queued heartbeats with the error when the store refuses to begin a write', async () => {
    const ts = await freshStore(dialect);
    try {
      const service = new HeartbeatService(ts.store, new FakeClock(), {
        minIntervalMs: 0,
        intervalMs: 15_000,
      });
      await ts.store.close();
      const hb = (run_id: string) => ({
        run_id,
        status: 'running' as const,
        step: 1,
        samples_per_sec: 1,
        loss: 1,
        checkpoint_version: 0,
      });
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
