/**
 * External producers and the router: POST /api/v1/events validated against the catalog (422
 * with field errors, nothing written), delivery to wildcard subscribers, dedup by id and by
 * content within the window (on a fake clock), the stage-result transport, and the type list.
 */
import { afterEach, expect, it } from 'vitest';
import type { StoredEvent } from '../../src/events/catalog.js';
import { FakeClock } from '../helpers/clock.js';
import { eventually, startTestController, type TestController } from '../helpers/controller.js';
import type { DialectUnderTest } from '../helpers/store.js';
import { controllers, forEachDialect, rejected, storeCounts } from './support.js';

const training = {
  config_key: 'hex8_2p',
  model_path: '/models/hex8_2p_epoch_10.pth',
  metrics: { loss: 0.5 },
};

/** Controllers on a fake clock, closed after each test. */
function clockedControllers(dialect: DialectUnderTest) {
  const open: TestController[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((t) => t.close()));
  });
  return async (clock: FakeClock, overrides: Parameters<typeof startTestController>[1] = {}) => {
    const t = await startTestController(dialect, overrides, { clock });
    open.push(t);
    return t;
  };
}

async function stageEvents(
  t: TestController,
): Promise<Array<{ id: string; type: string; entity_id: string }>> {
  return t.ctl.store.db
    .selectFrom('events')
    .select(['id', 'type', 'entity_id'])
    .where((eb) => eb.or([eb('type', 'like', 'pipeline.%'), eb('type', '=', 'model.promoted')]))
    .orderBy('seq')
    .execute();
}

forEachDialect((dialect) => {
  const start = controllers(dialect);
  const startClocked = clockedControllers(dialect);

  it('publishes a valid event into the log, to the subscribers whose pattern matches', async () => {
    const t = await start();
    const completed: StoredEvent[] = [];
    const training_: StoredEvent[] = [];
    await t.ctl.events.router.subscribe('pipeline.*.completed', (e) => void completed.push(e), {
      name: 'test-completed',
    });
    await t.ctl.events.router.subscribe('pipeline.training.>', (e) => void training_.push(e), {
      name: 'test-training',
    });
    const op = await t.as('operator');

    const r = await op.publishEvent({ type: 'TRAINING_COMPLETED', payload: training });
    expect(r).toEqual({
      event_id: expect.stringMatching(/^evt_/),
      type: 'pipeline.training.completed',
      entity_id: 'hex8_2p',
      duplicate: false,
      duplicate_of: null,
    });
    await op.publishEvent({
      type: 'pipeline.training.failed',
      payload: { config_key: 'hex8_2p', error: 'OOM' },
    });
    await op.publishEvent({
      type: 'SELFPLAY_COMPLETE',
      entity_id: 'batch-1',
      payload: { config_key: 'hex8_2p', games_generated: 1000, db_path: '/data/games/selfplay.db' },
    });

    await eventually(() => completed.length === 2 && training_.length === 2);
    expect(completed.map((e) => [e.type, e.entity_id])).toEqual([
      ['pipeline.training.completed', 'hex8_2p'],
      ['pipeline.selfplay.completed', 'batch-1'],
    ]);
    expect(completed[0]).toMatchObject({ id: r.event_id, payload: training });
    expect(training_.map((e) => e.type)).toEqual(['pipeline.training.completed', 'pipeline.training.failed']);
    expect((await stageEvents(t)).map((e) => e.type)).toEqual([
      'pipeline.training.completed',
      'pipeline.training.failed',
      'pipeline.selfplay.completed',
    ]);
  });

  it('refuses unknown types, internal types and bad payloads with 422 field errors, writing nothing', async () => {
    const t = await start();
    const op = await t.as('operator');
    const before = await storeCounts(t);

    const unknown = await rejected(op.publishEvent({ type: 'NOT_AN_EVENT', payload: {} }));
    expect(unknown.status).toBe(422);
    expect(unknown.code).toBe('VALIDATION_FAILED');
    expect(unknown.details).toEqual([expect.objectContaining({ field: 'type', code: 'UNKNOWN_EVENT_TYPE' })]);

    // Internal events are runplane's own: nobody forges a job's state change.
    const internal = await rejected(
      op.publishEvent({ type: 'job.state_changed', entity_id: 'job_x', payload: { job_id: 'job_x' } }),
    );
    expect(internal.details.map((d) => d.field)).toEqual(['type']);

    const bad = await rejected(
      op.publishEvent({
        type: 'MODEL_PROMOTED',
        payload: { config_key: 'hex8_2p', model_id: '', elo: 'high' },
      }),
    );
    expect(bad.status).toBe(422);
    expect(Object.fromEntries(bad.details.map((d) => [d.field, d.code]))).toEqual({
      'payload.model_id': 'INVALID_LENGTH',
      'payload.elo': 'UNKNOWN_FIELD',
    });

    const shape = await rejected(
      op.request('POST', '/api/v1/events', { body: { type: 'TRAINING_COMPLETED', extra: 1, id: 'a b' } }),
    );
    expect(shape.status).toBe(422);
    expect(shape.details.map((d) => d.field).sort()).toEqual(['extra', 'id', 'payload']);

    expect(await storeCounts(t)).toEqual(before);

    const viewer = await t.as('viewer');
    expect(
      (await rejected(viewer.publishEvent({ type: 'TRAINING_COMPLETED', payload: training }))).status,
    ).toBe(403);
  });

  it('an id published twice is one event: the second answer is 200 with duplicate=true', async () => {
    const t = await start();
    const first = await t.admin.request<{ event_id: string; duplicate: boolean }>('POST', '/api/v1/events', {
      body: { type: 'TRAINING_COMPLETED', payload: training, id: 'train-hex8-e10' },
    });
    expect(first).toMatchObject({ event_id: 'train-hex8-e10', duplicate: false });
    // Same id, other content (a producer's retry after it changed its mind) is still the same event.
    const again = await t.admin.publishEvent({
      type: 'TRAINING_COMPLETED',
      payload: { ...training, metrics: { loss: 0.4 } },
      id: 'train-hex8-e10',
    });
    expect(again).toMatchObject({ event_id: 'train-hex8-e10', duplicate: true, duplicate_of: 'id' });
    expect((await stageEvents(t)).map((e) => e.id)).toEqual(['train-hex8-e10']);
  });

  it('the same content within the dedup window is one event; after the window it is new', async () => {
    const clock = new FakeClock(Date.parse('2025-05-01T00:00:00Z'));
    const t = await startClocked(clock, { eventDedupWindowMs: '60s' });
    const a = await t.admin.publishEvent({ type: 'TRAINING_COMPLETED', payload: training });
    clock.advance(59_000);
    // Keys in another order are the same content.
    const b = await t.admin.publishEvent({
      type: 'pipeline.training.completed',
      payload: { metrics: { loss: 0.5 }, model_path: training.model_path, config_key: 'hex8_2p' },
    });
    expect(b).toMatchObject({ event_id: a.event_id, duplicate: true, duplicate_of: 'content' });
    // Other content is another event at once.
    const c = await t.admin.publishEvent({
      type: 'TRAINING_COMPLETED',
      payload: { ...training, epochs: 10 },
    });
    expect(c.duplicate).toBe(false);
    clock.advance(1000);
    const d = await t.admin.publishEvent({ type: 'TRAINING_COMPLETED', payload: training });
    expect(d.duplicate).toBe(false);
    expect(d.event_id).not.toBe(a.event_id);
    expect((await stageEvents(t)).map((e) => e.id)).toEqual([a.event_id, c.event_id, d.event_id]);
  });

  it('a window of 0 turns content dedup off', async () => {
    const t = await start({ eventDedupWindowMs: '0s' });
    const a = await t.admin.publishEvent({ type: 'TRAINING_COMPLETED', payload: training });
    const b = await t.admin.publishEvent({ type: 'TRAINING_COMPLETED', payload: training });
    expect(b.duplicate).toBe(false);
    expect((await stageEvents(t)).map((e) => e.id)).toEqual([a.event_id, b.event_id]);
  });

  it('stage results from the stage transport become catalog events that onStage follows', async () => {
    const t = await start();
    const router = t.ctl.events.router;
    const promotion: StoredEvent[] = [];
    await router.onStage('promotion', 'test-promotion', (e) => void promotion.push(e));
    await router.publishStageResult('evaluation', {
      success: true,
      payload: { config_key: 'hex8_2p', model_id: 'm-10', win_rate: 0.62, passed: true },
    });
    await router.publishStageResult('promotion', {
      success: true,
      payload: { config_key: 'hex8_2p', model_id: 'm-10', previous_model_id: 'm-9' },
    });
    await router.publishStageResult('promotion', {
      success: false,
      payload: { config_key: 'hex8_2p', error: 'gate not passed' },
    });
    await eventually(() => promotion.length === 2);
    expect(promotion.map((e) => e.type)).toEqual(['model.promoted', 'pipeline.promotion.failed']);
    await expect(
      router.publishStageResult('training', { success: true, payload: { config_key: 'x' } as never }),
    ).rejects.toMatchObject({
      status: 422,
      details: [expect.objectContaining({ field: 'payload.model_path' })],
    });
  });

  it('lists the publishable types with their seed names and payload schemas', async () => {
    const t = await start();
    const viewer = await t.as('viewer');
    const { types } = await viewer.eventTypes();
    const promoted = types.find((x) => x.type === 'model.promoted');
    expect(promoted?.seed_name).toBe('MODEL_PROMOTED');
    expect((promoted!.schema as { required: string[] }).required).toEqual(['config_key', 'model_id']);
    expect(types.map((x) => x.seed_name)).toContain('DATA_SYNC_COMPLETED');
    expect(types.every((x) => !x.type.startsWith('job.'))).toBe(true);
  });
});
