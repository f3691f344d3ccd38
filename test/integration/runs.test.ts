/**
 * The run orchestrator over real HTTP on both dialects: runs, every heartbeat rule of the seed,
 * metrics, commands with long-poll delivery, redelivery and acknowledgement, liveness on a fake
 * clock, runs following their jobs, and the status stream.
 */
import { randomUUID } from 'node:crypto';
import { expect, it } from 'vitest';
import { RunplaneClient } from '../../src/client/client.js';
import type { CommandEnvelope } from '../../src/runs/schemas.js';
import { statusEventRepo } from '../../src/runs/status-event-repo.js';
import { FakeClock } from '../helpers/clock.js';
import { eventually, type TestController } from '../helpers/controller.js';
import { controllers, forEachDialect, ManualWorker, rejected, waitForState } from './support.js';

const hb = (run_id: string, over: Record<string, unknown> = {}) => ({
  run_id,
  status: 'running' as const,
  step: 100,
  samples_per_sec: 512.5,
  loss: 0.75,
  checkpoint_version: 1,
  ...over,
});

function envelope(type: CommandEnvelope['type'], payload: Record<string, unknown> = {}): CommandEnvelope {
  return {
    id: randomUUID(),
    type,
    issued_at: new Date().toISOString(),
    actor: { type: 'operator', id: 'ops@example.com' },
    payload,
  };
}

/** A raw request, for what the typed client cannot express (status codes, media types, sizes). */
async function raw(
  t: TestController,
  method: string,
  path: string,
  body: string | undefined,
  headers: Record<string, string> = {},
  token = 'rp_test_admin_token_0123456789abcdef',
): Promise<{ status: number; json: Record<string, unknown>; headers: Headers }> {
  const res = await fetch(t.ctl.url + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...headers },
    ...(body === undefined ? {} : { body }),
  });
  const text = await res.text();
  return {
    status: res.status,
    json: text ? (JSON.parse(text) as Record<string, unknown>) : {},
    headers: res.headers,
  };
}

async function eventCount(t: TestController): Promise<number> {
  const r = await t.ctl.store.db
    .selectFrom('events')
    .select((eb) => eb.fn.countAll().as('n'))
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

forEachDialect((dialect) => {
  const start = controllers(dialect);

  async function setup(overrides: Parameters<typeof start>[0] = {}) {
    const clock = new FakeClock();
    const t = await start(overrides, { clock });
    const created = await t.admin.createRun({
      name: 'ppo-1',
      config: { b: 2, a: { z: 1, y: [3] } },
      labels: { team: 'rl' },
    });
    const learner = new RunplaneClient(t.ctl.url, created.token);
    return { t, clock, runId: created.run_id, token: created.token, learner };
  }

  it('creates a run with a canonical config and a learner token that acts on that run only', async () => {
    const { t, runId, learner } = await setup();
    const run = await t.admin.getRun(runId);
    expect(run).toMatchObject({
      run_id: runId,
      name: 'ppo-1',
      status: 'queued',
      health: 'healthy',
      labels: { team: 'rl' },
      config: { a: { y: [3], z: 1 }, b: 2 },
      step: null,
      heartbeat_interval_s: 15,
    });
    const stored = await t.ctl.store.db
      .selectFrom('runs')
      .select('config')
      .where('id', '=', runId)
      .executeTakeFirstOrThrow();
    expect(stored.config).toBe('{"a":{"y":[3],"z":1},"b":2}');
    expect((await learner.getRun(runId)).run_id).toBe(runId);

    const other = await t.admin.createRun({ name: 'other' });
    expect((await rejected(learner.getRun(other.run_id))).status).toBe(403);
    expect((await rejected(learner.heartbeat(other.run_id, hb(other.run_id)))).status).toBe(403);
    expect((await rejected(learner.listRuns())).status).toBe(403);
    expect((await rejected(learner.sendCommand(runId, envelope('pause')))).status).toBe(403);
  });

  it('lists runs newest first with status, health, label and sweep filters and a cursor', async () => {
    const { t, runId } = await setup();
    const a = await t.admin.createRun({ name: 'a', sweep_id: 'sw1', labels: { team: 'cv' } });
    const b = await t.admin.createRun({ name: 'b', sweep_id: 'sw1' });
    await t.admin.heartbeat(runId, hb(runId));
    const all = await t.admin.listRuns({ limit: 2 });
    expect(all.runs.map((r) => r.run_id)).toEqual([b.run_id, a.run_id]);
    expect(all.next_cursor).not.toBeNull();
    const rest = await t.admin.listRuns({ limit: 2, cursor: all.next_cursor ?? '' });
    expect(rest.runs.map((r) => r.run_id)).toEqual([runId]);
    expect(rest.next_cursor).toBeNull();
    expect((await t.admin.listRuns({ status: 'running' })).runs.map((r) => r.run_id)).toEqual([runId]);
    expect((await t.admin.listRuns({ sweep: 'sw1' })).runs).toHaveLength(2);
    expect((await t.admin.listRuns({ label: 'team=cv' })).runs.map((r) => r.run_id)).toEqual([a.run_id]);
    expect((await t.admin.listRuns({ health: 'heartbeat_stale' })).runs).toHaveLength(0);
    expect((await rejected(t.admin.listRuns({ status: 'sleeping' as never }))).status).toBe(422);
  });

  it('accepts a valid heartbeat: run fields, metrics series and summary are updated', async () => {
    const { t, runId, learner, clock } = await setup();
    const r = await learner.heartbeat(runId, hb(runId, { queued_commands: [], notes: 'warming up' }));
    expect(r).toMatchObject({
      accepted: true,
      run: { status: 'running', health: 'healthy' },
      next_heartbeat_s: 15,
    });
    clock.advance(5000);
    await learner.heartbeat(runId, hb(runId, { step: 200, loss: 0.5, checkpoint_version: 2 }));
    const run = await t.admin.getRun(runId);
    expect(run).toMatchObject({
      status: 'running',
      step: 200,
      loss: 0.5,
      samples_per_sec: 512.5,
      checkpoint_version: 2,
      notes: null,
      summary: { loss: 0.5, samples_per_sec: 512.5 },
    });
    expect(run.last_heartbeat_at).toBe(new Date(clock.now()).toISOString());
    await learner.postMetrics(runId, { step: 200, values: { val_loss: 0.9, 'eval/return': 12 } });
    await learner.postMetrics(runId, { step: 150, values: { val_loss: 1.5 } });
    const m = await t.admin.getMetrics(runId, { names: 'loss,val_loss' });
    expect(m.series.loss?.map((p) => [p.step, p.value])).toEqual([
      [100, 0.75],
      [200, 0.5],
    ]);
    expect(m.series.val_loss?.map((p) => p.step)).toEqual([150, 200]);
    expect(m.series['eval/return']).toBeUndefined();
    // The summary keeps the value of the highest step, even when an older step arrives later.
    expect((await t.admin.getRun(runId)).summary).toMatchObject({ val_loss: 0.9, 'eval/return': 12 });
  });

  it('checks heartbeats that arrive together against each other, across overlapping batches', async () => {
    const t = await start({ heartbeatMinIntervalMs: '0ms' });
    const runs = await Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        const r = await t.admin.createRun({ name: `burst-${i}` });
        return { id: r.run_id, learner: new RunplaneClient(t.ctl.url, r.token) };
      }),
    );
    // Every learner fires 20 heartbeats at once (steps 1..20; step 10 reports paused), so they
    // land in several group commits in an arrival order nobody controls.
    const outcomes = await Promise.all(
      runs.flatMap((r) =>
        Array.from({ length: 20 }, (_, k) => {
          const step = k + 1;
          const status = step === 10 ? ('paused' as const) : ('running' as const);
          return r.learner.heartbeat(r.id, hb(r.id, { step, status, loss: step })).then(
            () => ({ run: r.id, step, ok: true, code: '' }),
            (err: { status?: number; code?: string }) => ({
              run: r.id,
              step,
              ok: false,
              code: err.code ?? '',
            }),
          );
        }),
      ),
    );
    for (const r of runs) {
      const mine = outcomes.filter((o) => o.run === r.id);
      const accepted = mine.filter((o) => o.ok).map((o) => o.step);
      // A refusal is only ever a regression against a heartbeat accepted before it.
      expect(mine.filter((o) => !o.ok).every((o) => o.code === 'STEP_REGRESSION')).toBe(true);
      expect(accepted.length).toBeGreaterThan(0);
      const last = Math.max(...accepted);
      const run = await t.admin.getRun(r.id);
      expect(run.step).toBe(last);
      expect(run.loss).toBe(last);
      expect(run.status).toBe(last === 10 ? 'paused' : 'running');
      expect(run.health).toBe('healthy');
      const series = await t.admin.getMetrics(r.id, { names: 'loss' });
      expect(series.series.loss?.map((p) => p.step)).toEqual([...accepted].sort((a, b) => a - b));
      const events = await t.ctl.store.db
        .selectFrom('events')
        .select('payload')
        .where('type', '=', 'run.status')
        .where('entity_id', '=', r.id)
        .orderBy('seq')
        .execute();
      const steps = events
        .map((e) => (JSON.parse(e.payload) as { step: number | null }).step)
        .filter((x) => x !== null);
      // One status event per accepted heartbeat, in commit order: steps never go back.
      expect(steps).toHaveLength(accepted.length);
      expect(steps).toEqual([...steps].sort((a, b) => (a ?? 0) - (b ?? 0)));
    }
  });

  it('downsamples long metric series, keeping the first and last points', async () => {
    const { t, runId, learner } = await setup();
    for (let step = 0; step < 50; step++) await learner.postMetrics(runId, { step, values: { x: step } });
    const m = await t.admin.getMetrics(runId, { max_points: 10 });
    expect(m.downsampled).toBe(true);
    expect(m.series.x).toHaveLength(10);
    expect(m.series.x?.[0]?.step).toBe(0);
    expect(m.series.x?.[9]?.step).toBe(49);
    const ranged = await t.admin.getMetrics(runId, { from_step: 10, to_step: 19 });
    expect(ranged.series.x?.map((p) => p.step)).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
    expect(ranged.downsampled).toBe(false);
  });

  it('refuses every invalid heartbeat with the seed status and code, and changes nothing', async () => {
    const { t, runId, token, clock } = await setup();
    await t.admin.heartbeat(runId, hb(runId));
    clock.advance(6000);
    const before = await t.admin.getRun(runId);
    const events = await eventCount(t);
    const path = `/api/v1/runs/${runId}/heartbeat`;
    const json = { 'content-type': 'application/json' };

    const missing = await raw(t, 'POST', path, JSON.stringify({ run_id: runId }), json, token);
    expect(missing.status).toBe(422);
    const details = (missing.json.error as { details: Array<{ field: string; code: string }> }).details;
    expect(details.map((d) => [d.field, d.code]).sort()).toEqual(
      [
        ['checkpoint_version', 'REQUIRED'],
        ['loss', 'REQUIRED'],
        ['samples_per_sec', 'REQUIRED'],
        ['status', 'REQUIRED'],
        ['step', 'REQUIRED'],
      ].sort(),
    );
    const wrongTypes = await raw(
      t,
      'POST',
      path,
      JSON.stringify(hb(runId, { step: '7', loss: 'low', status: 'sleeping', checkpoint_version: 1.5 })),
      json,
      token,
    );
    expect(wrongTypes.status).toBe(422);
    expect(
      (wrongTypes.json.error as { details: Array<{ field: string; code: string }> }).details
        .map((d) => `${d.field}:${d.code}`)
        .sort(),
    ).toEqual([
      'checkpoint_version:INVALID_TYPE',
      'loss:INVALID_TYPE',
      'status:INVALID_VALUE',
      'step:INVALID_TYPE',
    ]);

    const mismatch = await raw(t, 'POST', path, JSON.stringify(hb('run_other')), json, token);
    expect(mismatch.status).toBe(422);
    expect((mismatch.json.error as { details: Array<{ code: string }> }).details[0]?.code).toBe(
      'RUN_ID_MISMATCH',
    );

    const text = await raw(
      t,
      'POST',
      path,
      JSON.stringify(hb(runId, { step: 500 })),
      { 'content-type': 'text/plain' },
      token,
    );
    expect(text.status).toBe(415);
    const big = await raw(
      t,
      'POST',
      path,
      JSON.stringify(hb(runId, { step: 500, notes: 'x'.repeat(33 * 1024) })),
      json,
      token,
    );
    expect(big.status).toBe(413);

    const unknown = await raw(
      t,
      'POST',
      '/api/v1/runs/run_nope/heartbeat',
      JSON.stringify(hb('run_nope')),
      json,
    );
    expect(unknown.status).toBe(404);
    expect((unknown.json.error as { code: string }).code).toBe('RUN_NOT_FOUND');

    const stepBack = await raw(t, 'POST', path, JSON.stringify(hb(runId, { step: 99 })), json, token);
    expect(stepBack.status).toBe(409);
    expect((stepBack.json.error as { code: string }).code).toBe('STEP_REGRESSION');
    const ckptBack = await raw(
      t,
      'POST',
      path,
      JSON.stringify(hb(runId, { step: 101, checkpoint_version: 0 })),
      json,
      token,
    );
    expect(ckptBack.status).toBe(409);
    expect((ckptBack.json.error as { code: string }).code).toBe('CHECKPOINT_REGRESSION');

    expect(await t.admin.getRun(runId)).toEqual(before);
    expect(await eventCount(t)).toBe(events);
  });

  it('throttles a heartbeat sooner than 5 s after the last accepted one with 429 and Retry-After', async () => {
    const { t, runId, token, clock } = await setup();
    await t.admin.heartbeat(runId, hb(runId));
    clock.advance(1500);
    const path = `/api/v1/runs/${runId}/heartbeat`;
    const soon = await raw(
      t,
      'POST',
      path,
      JSON.stringify(hb(runId, { step: 101 })),
      { 'content-type': 'application/json' },
      token,
    );
    expect(soon.status).toBe(429);
    expect(soon.headers.get('retry-after')).toBe('4');
    expect((soon.json.error as { code: string }).code).toBe('HEARTBEAT_TOO_FREQUENT');
    expect((await t.admin.getRun(runId)).step).toBe(100);
    // A refused heartbeat does not restart the interval.
    clock.advance(3500);
    const ok = await raw(
      t,
      'POST',
      path,
      JSON.stringify(hb(runId, { step: 101 })),
      { 'content-type': 'application/json' },
      token,
    );
    expect(ok.status).toBe(200);
  });

  it('takes commands: 202, idempotent duplicates, per-type validation with codes, state rules', async () => {
    const { t, runId, clock } = await setup();
    const path = `/api/v1/runs/${runId}/commands`;
    const json = { 'content-type': 'application/json' };
    const post = (body: unknown) => raw(t, 'POST', path, JSON.stringify(body), json);

    // Not running yet: pause and resume are refused.
    const early = await post(envelope('pause'));
    expect(early.status).toBe(422);
    expect((early.json.error as { code: string }).code).toBe('INVALID_STATE_TRANSITION');
    await t.admin.heartbeat(runId, hb(runId));
    clock.advance(5000);

    const tune = envelope('tune', { learning_rate: 0.001, notes: 'lower lr' });
    const first = await post(tune);
    expect(first.status).toBe(202);
    expect(first.json).toMatchObject({
      id: tune.id,
      run_id: runId,
      type: 'tune',
      delivered_at: null,
      acknowledged_at: null,
    });
    const again = await post({ ...tune, payload: { learning_rate: 0.5 } });
    expect(again.status).toBe(200);
    expect(again.json).toEqual(first.json);
    expect((await t.admin.listCommands(runId)).commands).toHaveLength(1);

    const codes = async (body: unknown) => {
      const r = await post(body);
      expect(r.status).toBe(422);
      return (r.json.error as { details: Array<{ field: string; code: string }> }).details.map(
        (d) => `${d.field}:${d.code}`,
      );
    };
    expect(await codes(envelope('tune', {}))).toEqual(['payload:NO_TUNABLE']);
    expect(await codes(envelope('tune', { learning_rate: 0 }))).toEqual([
      'payload.learning_rate:OUT_OF_RANGE',
    ]);
    expect(
      await codes(envelope('tune', { learning_rate: 1.5, entropy_coef: 0.2, clip_epsilon: 0.01 })),
    ).toEqual([
      'payload.learning_rate:OUT_OF_RANGE',
      'payload.entropy_coef:OUT_OF_RANGE',
      'payload.clip_epsilon:OUT_OF_RANGE',
    ]);
    expect(
      await codes(envelope('tune', { learning_rate: 1, entropy_coef: 0, clip_epsilon: 0.3, momentum: 1 })),
    ).toEqual(['payload.momentum:UNKNOWN_FIELD']);
    expect(await codes(envelope('terminate', {}))).toEqual(['payload.reason:REQUIRED']);
    expect(await codes(envelope('terminate', { reason: 'x'.repeat(257), final_checkpoint: 'yes' }))).toEqual([
      'payload.reason:INVALID_LENGTH',
      'payload.final_checkpoint:INVALID_TYPE',
    ]);
    expect(await codes(envelope('resume'))).toEqual(['type:INVALID_STATE_TRANSITION']);
    expect(await codes({ ...envelope('pause'), id: 'not-a-uuid' })).toEqual(['id:INVALID_FORMAT']);
    expect(await codes({ ...envelope('pause'), id: '6ba7b810-9dad-11d1-80b4-00c04fd430c8' })).toEqual([
      'id:INVALID_FORMAT',
    ]);
    expect(await codes({ ...envelope('pause'), issued_at: 'yesterday' })).toEqual([
      'issued_at:INVALID_FORMAT',
    ]);
    expect(await codes({ ...envelope('pause'), actor: { type: 'robot', id: 'x' } })).toEqual([
      'actor.type:INVALID_VALUE',
    ]);
    const unknownRun = await raw(
      t,
      'POST',
      '/api/v1/runs/run_nope/commands',
      JSON.stringify(envelope('pause')),
      json,
    );
    expect(unknownRun.status).toBe(404);
    expect((await t.admin.listCommands(runId)).commands).toHaveLength(1);
  });

  it('long-poll returns a command as soon as it is written, 204 when the wait ends', async () => {
    const { t, runId, learner } = await setup();
    await learner.heartbeat(runId, hb(runId));
    expect(await learner.nextCommand(runId, 0.2)).toBeNull();
    const waiting = learner.nextCommand(runId, 30);
    await new Promise((r) => setTimeout(r, 100));
    const cmd = envelope('pause');
    await t.admin.sendCommand(runId, cmd);
    const got = await waiting;
    expect(got).toMatchObject({ id: cmd.id, type: 'pause', delivery_count: 1 });
    expect(got?.delivered_at).not.toBeNull();
    // Delivered, not acknowledged, not yet visible again: nothing to deliver.
    expect(await learner.nextCommand(runId, 0)).toBeNull();
    const acked = await learner.ackCommand(runId, cmd.id);
    expect(acked.acknowledged_at).not.toBeNull();
    expect(await learner.ackCommand(runId, cmd.id)).toEqual(acked);
    expect((await t.admin.getRun(runId)).status).toBe('paused');
    expect((await rejected(learner.ackCommand(runId, randomUUID()))).status).toBe(404);
    // An admin's long-poll on a run that does not exist: 404 at once, not a wait.
    const unknown = await rejected(t.admin.nextCommand('run_nope', 5));
    expect(unknown.status).toBe(404);
  });

  it('hands a command to exactly one of the waiting polls; a poll gone before the commit leaves it deliverable', async () => {
    const { t, runId, learner } = await setup();
    const waiters = t.ctl.commands.waiters;
    await learner.heartbeat(runId, hb(runId));
    const polls = [learner.nextCommand(runId, 1), learner.nextCommand(runId, 1)];
    await eventually(async () => expect(waiters.count(runId)).toBe(2));
    const cmd = envelope('tune', { learning_rate: 0.02 });
    const accepted = await t.admin.sendCommand(runId, cmd);
    // Handed over in the accepting write: stamped delivered once, hidden until acknowledged.
    expect(accepted).toMatchObject({ id: cmd.id, delivery_count: 1 });
    expect(accepted.delivered_at).not.toBeNull();
    const got = await Promise.all(polls);
    expect(got.filter((c) => c?.id === cmd.id)).toHaveLength(1);
    expect(got.filter((c) => c === null)).toHaveLength(1);
    expect(await learner.nextCommand(runId, 0)).toBeNull();

    // The waiting poll's client goes away after the write reserved it and before the commit.
    const abort = new AbortController();
    const gone = t.ctl.commands.next(runId, 5_000, abort.signal);
    await eventually(async () => expect(waiters.count(runId)).toBe(1));
    const reserve = waiters.reserve.bind(waiters);
    waiters.reserve = (id) => {
      const reservation = reserve(id);
      abort.abort();
      return reservation;
    };
    const second = envelope('tune', { learning_rate: 0.03 });
    let issued: Awaited<ReturnType<typeof t.admin.sendCommand>>;
    try {
      issued = await t.admin.sendCommand(runId, second);
    } finally {
      waiters.reserve = reserve;
    }
    expect(await gone).toBeNull();
    expect(issued).toMatchObject({ id: second.id, delivery_count: 0, delivered_at: null });
    expect(await learner.nextCommand(runId, 0)).toMatchObject({ id: second.id, delivery_count: 1 });
  });

  it('redelivers a command not acknowledged within the visibility timeout, then stops once acked', async () => {
    const { t, runId, learner, clock } = await setup({ commandVisibilityTimeoutMs: '300ms' });
    await learner.heartbeat(runId, hb(runId));
    const cmd = envelope('tune', { learning_rate: 0.01 });
    await t.admin.sendCommand(runId, cmd);
    const first = await learner.nextCommand(runId, 5);
    expect(first).toMatchObject({ id: cmd.id, delivery_count: 1 });
    expect(await learner.nextCommand(runId, 0)).toBeNull();
    clock.advance(301);
    const second = await learner.nextCommand(runId, 0);
    expect(second).toMatchObject({ id: cmd.id, delivery_count: 2 });
    await learner.ackCommand(runId, cmd.id);
    clock.advance(1000);
    expect(await learner.nextCommand(runId, 0)).toBeNull();
    const [trail] = (await t.admin.listCommands(runId)).commands;
    expect(trail).toMatchObject({ delivery_count: 2 });
    expect(trail?.acknowledged_at).not.toBeNull();
  });

  it('moves the run through pause, resume and terminate as the learner acknowledges', async () => {
    const { t, runId, learner, clock } = await setup();
    await learner.heartbeat(runId, hb(runId));
    const cycle = async (type: CommandEnvelope['type'], payload: Record<string, unknown>, status: string) => {
      const c = envelope(type, payload);
      await t.admin.sendCommand(runId, c);
      const got = await learner.nextCommand(runId, 5);
      expect(got?.id).toBe(c.id);
      await learner.ackCommand(runId, c.id);
      expect((await t.admin.getRun(runId)).status).toBe(status);
    };
    await cycle('pause', {}, 'paused');
    await cycle('resume', {}, 'running');
    await cycle('terminate', { reason: 'budget spent', final_checkpoint: true }, 'terminating');
    // A learner that has not seen the terminate yet does not undo it.
    clock.advance(5000);
    await learner.heartbeat(runId, hb(runId, { step: 300 }));
    expect((await t.admin.getRun(runId)).status).toBe('terminating');
    const ended = await learner.finishRun(runId, { status: 'terminated' });
    expect(ended.status).toBe('terminated');
    expect(ended.ended_at).not.toBeNull();
    clock.advance(5000);
    expect((await rejected(learner.heartbeat(runId, hb(runId, { step: 400 })))).code).toBe('RUN_ENDED');
    const trail = (await t.admin.listCommands(runId)).commands;
    expect(trail.map((c) => c.type)).toEqual(['pause', 'resume', 'terminate']);
    expect(trail.every((c) => c.delivered_at !== null && c.acknowledged_at !== null)).toBe(true);
  });

  it('marks a quiet run stale at 45 s and unresponsive at 135 s; a heartbeat restores it; extensions delay it', async () => {
    const { t, runId, learner, clock } = await setup();
    await learner.heartbeat(runId, hb(runId));
    clock.advance(44_000);
    expect(await t.ctl.liveness.sweep()).toEqual([]);
    clock.advance(1_000);
    expect(await t.ctl.liveness.sweep()).toEqual([{ run_id: runId, health: 'heartbeat_stale' }]);
    expect((await t.admin.getRun(runId)).health).toBe('heartbeat_stale');
    clock.advance(89_000);
    expect(await t.ctl.liveness.sweep()).toEqual([]);
    clock.advance(1_000);
    expect(await t.ctl.liveness.sweep()).toEqual([{ run_id: runId, health: 'unresponsive' }]);
    const types = await t.ctl.store.db
      .selectFrom('events')
      .select(['type', 'payload'])
      .where('entity_id', '=', runId)
      .orderBy('seq')
      .execute();
    expect(types.map((e) => e.type)).toContain('run.terminate_recommended');
    const healths = types
      .filter((e) => e.type === 'run.status')
      .map((e) => (JSON.parse(e.payload) as { health: string; cause: string }).health);
    expect(healths.slice(-2)).toEqual(['heartbeat_stale', 'unresponsive']);

    const back = await learner.heartbeat(runId, hb(runId, { step: 101 }));
    expect(back.run.health).toBe('healthy');
    expect((await t.admin.getRun(runId)).health).toBe('healthy');

    // An operator gives it 100 s more: not stale at 45 s, stale at 145 s.
    const ext = await t.admin.extendLiveness(runId, { extend_s: 100, reason: 'checkpoint upload' });
    expect(ext.liveness_extension_s).toBe(100);
    clock.advance(60_000);
    expect(await t.ctl.liveness.sweep()).toEqual([]);
    clock.advance(85_000);
    expect(await t.ctl.liveness.sweep()).toEqual([{ run_id: runId, health: 'heartbeat_stale' }]);
    expect((await rejected(t.admin.extendLiveness(runId, { extend_s: 0, reason: 'x' }))).status).toBe(422);
  });

  it('gives a job launched with run_id the run token, and ends the run with the job', async () => {
    const { t, runId } = await setup();
    const w = await ManualWorker.register(t, 'w1', { cpu: 4 });
    const { job_id } = await t.admin.launchJob({ command: ['train'], run_id: runId });
    const [a] = await w.assignments(1);
    expect(a?.run_id).toBe(runId);
    const token = a?.env.RUNPLANE_RUN_TOKEN ?? '';
    expect(token).toMatch(/^rp_/);
    expect((await t.admin.getJob(job_id)).env.RUNPLANE_RUN_TOKEN).toBe('***');
    expect((await t.admin.getRun(runId)).job_id).toBe(job_id);
    await eventually(async () => (await t.admin.getRun(runId)).status === 'provisioning');
    const jobLearner = new RunplaneClient(t.ctl.url, token);
    await w.report(a?.attempt_id ?? '', 'RUNNING');
    await jobLearner.heartbeat(runId, hb(runId));
    await w.report(a?.attempt_id ?? '', 'FAILED', 3);
    await waitForState(t.admin, job_id, 'FAILED');
    const run = await eventually(async () => {
      const r = await t.admin.getRun(runId);
      return r.status === 'failed' ? r : undefined;
    });
    expect(run.last_error).toContain(`job ${job_id} ended FAILED`);
    expect(run.ended_at).not.toBeNull();

    const bad = await rejected(t.admin.launchJob({ command: ['train'], run_id: 'run_nope' }));
    expect(bad.status).toBe(422);
    expect(bad.details[0]?.code).toBe('UNKNOWN_RUN');
  });

  it('streams run-status events over SSE, resumable with Last-Event-ID', async () => {
    const { t, runId, learner, clock } = await setup();
    const read = async (headers: Record<string, string>, want: number) => {
      const ctrl = new AbortController();
      const res = await fetch(`${t.ctl.url}/api/v1/stream/runs?run_id=${runId}`, {
        headers: { authorization: 'Bearer rp_test_admin_token_0123456789abcdef', ...headers },
        signal: ctrl.signal,
      });
      expect(res.headers.get('content-type')).toContain('text/event-stream');
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      const decoder = new TextDecoder();
      let buf = '';
      const events: Array<{ id: number; data: { step: number; status: string } }> = [];
      return {
        async take(): Promise<typeof events> {
          while (events.length < want) {
            const { value, done } = await reader.read();
            if (done) break;
            buf += decoder.decode(value, { stream: true });
            let at = buf.indexOf('\n\n');
            while (at >= 0) {
              const block = buf.slice(0, at);
              buf = buf.slice(at + 2);
              const id = /^id: (\d+)$/m.exec(block)?.[1];
              const data = /^data: (.*)$/m.exec(block)?.[1];
              if (id && data && /^event: run-status$/m.test(block))
                events.push({ id: Number(id), data: JSON.parse(data) });
              at = buf.indexOf('\n\n');
            }
          }
          ctrl.abort();
          return events;
        },
      };
    };
    const live = await read({}, 2);
    await learner.heartbeat(runId, hb(runId, { step: 1 }));
    clock.advance(5000);
    await learner.heartbeat(runId, hb(runId, { step: 2 }));
    const got = await live.take();
    expect(got.map((e) => [e.data.step, e.data.status])).toEqual([
      [1, 'running'],
      [2, 'running'],
    ]);
    clock.advance(5000);
    await learner.heartbeat(runId, hb(runId, { step: 3 }));
    const resumed = await (await read({ 'last-event-id': String(got[0]?.id) }, 2)).take();
    expect(resumed.map((e) => e.data.step)).toEqual([2, 3]);
    // With nobody reading, the tail's timer moves its cursor past new events without reading
    // them: a reader resuming from before them still gets them (from the store), and a reader
    // starting at the present gets only what comes after.
    clock.advance(5000);
    await learner.heartbeat(runId, hb(runId, { step: 4 }));
    clock.advance(5000);
    await learner.heartbeat(runId, hb(runId, { step: 5 }));
    const newest = await statusEventRepo.latestStatusSeq(t.ctl.store.db);
    await eventually(() => t.ctl.statusStream.head >= newest);
    const behind = await (await read({ 'last-event-id': String(resumed[1]?.id) }, 2)).take();
    expect(behind.map((e) => e.data.step)).toEqual([4, 5]);
    // Its response headers arrive once its starting point is fixed.
    const present = await read({}, 1);
    clock.advance(5000);
    await learner.heartbeat(runId, hb(runId, { step: 6 }));
    expect((await present.take()).map((e) => e.data.step)).toEqual([6]);
  });
});
