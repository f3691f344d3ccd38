import { expect, it } from 'vitest';
import { ADMIN, eventually } from '../helpers/controller.js';
import { controllers, forEachDialect } from './support.js';

forEachDialect((dialect) => {
  const start = controllers(dialect);

  it('GET /api/v1/health has the seed shape and is healthy on a fresh controller', async () => {
    const t = await start();
    const h = await t.admin.health();
    expect(h.status).toBe('healthy');
    expect(h.overall_health).toBe(1);
    expect(h.issues).toEqual([]);
    expect(h.leader).toMatchObject({ leader: true, terms: 1 });
    for (const c of [
      'store',
      'leader',
      'lifecycle',
      'relay',
      'dlq',
      'alerts',
      'workers',
      'scheduler',
      'coordination',
    ])
      expect(h.components[c], c).toMatchObject({ health: 1, status: 'healthy' });
    expect(h.coordinators.store).toBe(1);
    expect(h.handler_health).toMatchObject({ success_rate: 1, failing: 0 });
    // Layered lifecycle: the store first, the leader-only loops running on the leader.
    expect(h.lifecycle[0]).toMatchObject({ name: 'store', layer: 1, state: 'running' });
    const states = Object.fromEntries(h.lifecycle.map((c) => [c.name, c.state]));
    expect(states).toMatchObject({
      events: 'running',
      scheduler: 'running',
      liveness: 'running',
      pipelines: 'running',
    });
    const layers = h.lifecycle.map((c) => c.layer);
    expect(layers).toEqual([...layers].sort((a, b) => a - b));

    const viewer = await t.as('viewer');
    expect((await viewer.health()).status).toBe('healthy');
    const anonymous = await fetch(`${t.ctl.url}/api/v1/health`);
    expect(anonymous.status).toBe(401);

    const metrics = await (
      await fetch(`${t.ctl.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } })
    ).text();
    expect(metrics).toMatch(/^runplane_leader 1$/m);
  });

  it('degrades with readable issues: a failing event handler and jobs that no worker can take', async () => {
    const t = await start();
    await t.admin.launchJob({ command: ['true'] });
    const pending = await t.admin.health();
    expect(pending.status).toBe('degraded');
    expect(pending.components.scheduler).toMatchObject({ status: 'degraded', health: 0.5 });
    expect(pending.overall_health).toBeLessThan(1);
    expect(pending.issues).toContain('scheduler: 1 job(s) pending and no healthy worker to place them on');

    await t.ctl.relay.subscribe('test.ok', 'job.submitted', async () => {}, true);
    await t.ctl.relay.subscribe(
      'test.failing',
      'job.submitted',
      async () => {
        throw new Error('handler exploded');
      },
      true,
    );
    const failing = await eventually(async () => {
      const h = await t.admin.health();
      return h.components.relay?.status === 'degraded' ? h : undefined;
    });
    expect(
      failing.issues.some((i) =>
        /^relay: subscriber test\.failing is failing \(\d+ in a row: handler exploded\)$/.test(i),
      ),
    ).toBe(true);
    expect(failing.handler_health.failing).toBe(1);
    // Per call: the failing handler's calls are counted against every call the relay made.
    const hh = failing.handler_health;
    expect(hh.failed_calls).toBeGreaterThan(0);
    expect(hh.calls).toBeGreaterThan(hh.failed_calls);
    expect(hh.success_rate).toBe(Math.round(((hh.calls - hh.failed_calls) / hh.calls) * 1000) / 1000);
    expect(hh.success_rate).toBeLessThan(1);
  });

  it('stops the leader loops when deposed and says so in health', async () => {
    const t = await start();
    await t.ctl.leader.stop();
    const h = await t.admin.health();
    expect(h.leader.leader).toBe(false);
    const states = Object.fromEntries(h.lifecycle.map((c) => [c.name, c.state]));
    expect(states).toMatchObject({
      store: 'running',
      events: 'standby',
      scheduler: 'standby',
      sweeps: 'running',
    });
    const metrics = await (
      await fetch(`${t.ctl.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } })
    ).text();
    expect(metrics).toMatch(/^runplane_leader 0$/m);
    // A deposed replica's relay delivers nothing: a new event stays behind its cursor.
    const before = t.ctl.relay.status().find((l) => l.name === 'runs.jobs')?.cursor;
    await t.admin.launchJob({ command: ['true'] });
    t.ctl.relay.kick();
    expect(t.ctl.relay.status().find((l) => l.name === 'runs.jobs')?.cursor).toBe(before);
  });
});
