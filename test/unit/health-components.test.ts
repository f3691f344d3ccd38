import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { Components } from '../../src/cluster/components.js';
import { assessHealth, type HealthSources } from '../../src/cluster/health.js';

const log = pino({ level: 'silent' });

function registry(order: string[], failing = new Set<string>()): Components {
  const c = (name: string, layer: 1 | 2 | 3, extra: { dependsOn?: string[]; leaderOnly?: boolean } = {}) => ({
    name,
    layer,
    ...extra,
    start() {
      if (failing.has(name)) throw new Error(`${name} cannot start`);
      order.push(`start ${name}`);
    },
    stop() {
      order.push(`stop ${name}`);
    },
  });
  // Registered out of layer order on purpose: layers decide the order.
  return new Components(log)
    .add(c('store', 1))
    .add(c('pipelines', 3, { dependsOn: ['store'], leaderOnly: true }))
    .add(c('events', 2, { dependsOn: ['store'], leaderOnly: true }))
    .add(c('pods', 3, { dependsOn: ['events'], leaderOnly: true }))
    .add(c('sweeps', 3, { dependsOn: ['store'] }));
}

function sources(components: Components, over: Partial<HealthSources> = {}): HealthSources {
  return {
    pingStore: async () => undefined,
    leader: () => ({ leader: components.isLeader(), mode: 'single', since: 0, terms: 1, last_error: null }),
    lifecycle: () => components.status(),
    relayLanes: () => [],
    nats: () => null,
    dlqStats: async () => ({ pending: 0, recovered: 0, abandoned: 0, by_subscriber: {} }),
    alertSinks: () => [],
    jobsByState: async () => [],
    workersByHealth: async () => [],
    ...over,
  };
}

describe('component lifecycle', () => {
  it('starts by layer, leader-only ones on election, and stops in reverse order', async () => {
    const order: string[] = [];
    const c = registry(order);
    await c.start();
    expect(order).toEqual(['start store', 'start sweeps']);
    await c.setLeader(true);
    expect(order.slice(2)).toEqual(['start events', 'start pipelines', 'start pods']);
    await c.setLeader(false);
    expect(order.slice(5)).toEqual(['stop pods', 'stop pipelines', 'stop events']);
    expect(c.status().find((s) => s.name === 'events')?.state).toBe('standby');
    await c.setLeader(true);
    order.length = 0;
    await c.stop();
    expect(order).toEqual(['stop sweeps', 'stop pods', 'stop pipelines', 'stop events', 'stop store']);
  });

  it('skips the dependents of a component that failed, and health says which and why', async () => {
    const order: string[] = [];
    const c = registry(order, new Set(['events']));
    await c.start();
    await c.setLeader(true);
    expect(order).toEqual(['start store', 'start sweeps', 'start pipelines']);
    const states = Object.fromEntries(c.status().map((s) => [s.name, [s.state, s.reason]]));
    expect(states.events).toEqual(['failed', 'events cannot start']);
    expect(states.pods).toEqual(['skipped', 'dependency events is failed']);

    const h = await assessHealth(sources(c), 0);
    expect(h.status).toBe('degraded');
    expect(h.components.lifecycle).toMatchObject({
      status: 'degraded',
      details: { failed: ['events'], skipped: ['pods'] },
    });
    expect(h.issues).toEqual([
      'events: failed to start (events cannot start)',
      'pods: skipped, dependency events is failed',
    ]);
  });

  it('rejects a dependency that is not registered first', () => {
    const c = new Components(log);
    expect(() => c.add({ name: 'a', layer: 2, dependsOn: ['b'], start() {}, stop() {} })).toThrow(
      /depends on b/,
    );
  });
});

describe('health aggregation', () => {
  it('is unhealthy with overall_health < 1 when the store cannot be reached, and says so', async () => {
    const c = registry([]);
    await c.start();
    await c.setLeader(true);
    const h = await assessHealth(
      sources(c, {
        pingStore: async () => {
          throw new Error('connection refused');
        },
        nats: () => ({ url: 'nats://x:4222', connected: false, stream: 'RUNPLANE' }),
        dlqStats: async () => ({ pending: 2, recovered: 1, abandoned: 0, by_subscriber: {} }),
      }),
      0,
    );
    expect(h.status).toBe('unhealthy');
    expect(h.components.store).toMatchObject({ health: 0, status: 'unhealthy' });
    expect(h.overall_health).toBeLessThan(1);
    expect(h.issues).toEqual([
      'store: cannot be read (connection refused)',
      'nats: not connected to nats://x:4222; events wait in the outbox',
      'dlq: 2 dead-lettered event(s) pending retry',
    ]);
    expect(h.handler_health.dead_letters).toEqual({ pending: 2, recovered: 1, abandoned: 0 });
  });
});
