import { describe, expect, it } from 'vitest';
import { reading } from '../../src/coordination/queue-monitor.js';
import { decideSpawn, type SpawnInput } from '../../src/coordination/task-limits.js';
import { fullBucket, take } from '../../src/coordination/token-bucket.js';
import { FakeClock } from '../helpers/clock.js';

const limits = { rate_per_sec: 1, burst: 2, max_cluster: 3, max_per_node: 1 };
const base = (over: Partial<SpawnInput> = {}): SpawnInput => ({
  taskType: 'selfplay',
  node: 'gpu-1',
  now: 0,
  limits,
  thresholds: { disk_pct: 90, memory_pct: 90, cpu_pct: 95 },
  running: { cluster: 0, node: 0 },
  resources: { disk_pct: 10, memory_pct: 10, cpu_pct: 10 },
  backpressure: null,
  bucket: undefined,
  ...over,
});

describe('token bucket', () => {
  it('allows the burst, then refills at the rate', () => {
    const clock = new FakeClock(0);
    const cfg = { ratePerSec: 2, burst: 2 };
    let b = fullBucket(cfg, clock.now());
    for (let i = 0; i < 2; i++) {
      const r = take(b, cfg, clock.now());
      expect(r.ok).toBe(true);
      b = r.bucket;
    }
    const refused = take(b, cfg, clock.now());
    expect(refused).toMatchObject({ ok: false, retryAfterMs: 500 });
    clock.advance(500);
    expect(take(b, cfg, clock.now()).ok).toBe(true);
  });
});

describe('can_spawn', () => {
  it('answers with the reason of the first limit that refuses', () => {
    expect(decideSpawn(base()).decision).toEqual({ allowed: true, reason: 'allowed' });
    expect(decideSpawn(base({ running: { cluster: 3, node: 0 } })).decision.reason).toMatch(
      /^cluster limit: 3 selfplay/,
    );
    expect(decideSpawn(base({ running: { cluster: 1, node: 1 } })).decision.reason).toMatch(
      /^node limit: 1 selfplay task\(s\) on gpu-1/,
    );
    expect(decideSpawn(base({ resources: { disk_pct: 91 } })).decision.reason).toMatch(
      /^disk of gpu-1 is 91.0% used/,
    );
    expect(decideSpawn(base({ resources: { memory_pct: 95 } })).decision.reason).toMatch(/^memory/);
    expect(decideSpawn(base({ resources: { cpu_pct: 99 } })).decision.reason).toMatch(/^cpu/);
    const critical = reading('pending_jobs', 100, { soft: 10, hard: 100 });
    expect(decideSpawn(base({ backpressure: critical })).decision.reason).toMatch(
      /^backpressure: queue pending_jobs/,
    );
  });

  it('rate-limits per task type, and backpressure raises the cost of a start', () => {
    const clock = new FakeClock(0);
    let bucket: SpawnInput['bucket'];
    const spawn = (over: Partial<SpawnInput> = {}) => {
      const r = decideSpawn(base({ now: clock.now(), bucket, ...over }));
      bucket = r.bucket;
      return r.decision;
    };
    expect(spawn().allowed).toBe(true);
    expect(spawn().allowed).toBe(true);
    expect(spawn()).toMatchObject({ allowed: false, retry_after_ms: 1000 });
    clock.advance(1000);
    // At `medium` the throttle is 0.5: a start costs two tokens, one is there.
    const medium = reading('outbox_lag', 40, { soft: 10, hard: 70 });
    expect(medium.level).toBe('medium');
    expect(spawn({ backpressure: medium })).toMatchObject({ allowed: false });
    clock.advance(1000);
    expect(spawn({ backpressure: medium })).toMatchObject({
      allowed: true,
      reason: 'allowed (throttled 0.5 by outbox_lag)',
    });
  });
});
