/** Model lifecycle over HTTP: register, promote (and MODEL_PROMOTED events), production per config, rollback. */
import { describe, expect, it } from 'vitest';
import { eventually } from '../helpers/controller.js';
import { controllers, forEachDialect, rejected } from './support.js';

forEachDialect((dialect) => {
  const start = controllers(dialect);

  describe('models', () => {
    it('promotes one production model per config, archives the one before, and rolls back', async () => {
      const t = await start();
      const a = await t.admin.registerModel({ config_key: 'hex8_2p', path: '/m/a.pth', state: 'staging' });
      const b = await t.admin.registerModel({ config_key: 'hex8_2p', model_id: 'model-b', path: '/m/b.pth' });
      expect(a.model_id).toMatch(/^mdl_/);
      expect(b).toMatchObject({ model_id: 'model-b', state: 'training' });
      expect(
        (await rejected(t.admin.registerModel({ config_key: 'hex8_2p', model_id: 'model-b', path: '/x' })))
          .code,
      ).toBe('MODEL_EXISTS');
      expect((await rejected(t.admin.productionModel('hex8_2p'))).status).toBe(404);

      await t.admin.promoteModel(a.model_id, 'first');
      expect((await t.admin.productionModel('hex8_2p')).model_id).toBe(a.model_id);
      const promotedB = await t.admin.promoteModel('model-b');
      expect(promotedB).toMatchObject({ state: 'production', previous_model_id: a.model_id });
      expect(
        (await t.admin.listModels({ config: 'hex8_2p', state: 'archived' })).models.map((m) => m.model_id),
      ).toEqual([a.model_id]);

      const r = await t.admin.rollbackModel('model-b', 'regression');
      expect(r.rolled_back).toMatchObject({
        model_id: 'model-b',
        state: 'rolled_back',
        reason: 'regression',
      });
      expect(r.production).toMatchObject({ model_id: a.model_id, state: 'production' });
      expect((await t.admin.productionModel('hex8_2p')).model_id).toBe(a.model_id);
      // a was the first production model: nothing to roll back to.
      expect((await rejected(t.admin.rollbackModel(a.model_id))).code).toBe('NO_PREVIOUS_MODEL');
      expect((await rejected(t.admin.rollbackModel('model-b'))).code).toBe('MODEL_NOT_PRODUCTION');
      // Another config is independent.
      expect((await rejected(t.admin.productionModel('sq8_4p'))).status).toBe(404);
    });

    it('follows the stage events: trained → evaluating, evaluated → staging, MODEL_PROMOTED → production', async () => {
      const t = await start();
      await t.admin.publishEvent({
        type: 'TRAINING_COMPLETED',
        payload: { config_key: 'sq8_4p', model_path: '/m/1.pth', model_id: 'm1' },
      });
      await eventually(
        async () => (await t.admin.listModels({ config: 'sq8_4p' })).models[0]?.state === 'evaluating',
      );
      await t.admin.publishEvent({
        type: 'EVALUATION_COMPLETED',
        payload: { config_key: 'sq8_4p', model_id: 'm1', win_rate: 0.7, passed: true },
      });
      await eventually(
        async () => (await t.admin.listModels({ config: 'sq8_4p' })).models[0]?.state === 'staging',
      );
      await t.admin.publishEvent({
        type: 'MODEL_PROMOTED',
        payload: { config_key: 'sq8_4p', model_id: 'm1' },
      });
      const prod = await eventually(() => t.admin.productionModel('sq8_4p').catch(() => undefined));
      expect(prod).toMatchObject({ model_id: 'm1', metrics: { win_rate: 0.7 } });
      // A promotion of a model nobody registered registers it.
      await t.admin.publishEvent({
        type: 'MODEL_PROMOTED',
        payload: { config_key: 'sq8_4p', model_id: 'm2', model_path: '/m/2.pth' },
      });
      await eventually(async () => (await t.admin.productionModel('sq8_4p')).model_id === 'm2');
      expect(
        (await t.admin.listModels({ config: 'sq8_4p' })).models.find((m) => m.model_id === 'm1')?.state,
      ).toBe('archived');
    });

    it('can_spawn and the queue monitors over HTTP and in metrics', async () => {
      const t = await start();
      expect(await t.admin.canSpawn('selfplay')).toMatchObject({ allowed: true });
      const q = await t.admin.queues();
      expect(q.queues.map((x) => x.queue)).toEqual(['pending_jobs', 'dlq_pending', 'outbox_lag']);
      const res = await fetch(`${t.ctl.url}/metrics`, {
        headers: { authorization: `Bearer ${(t.admin as unknown as { token: string }).token}` },
      });
      const text = await res.text();
      expect(text).toMatch(/runplane_queue_backpressure_level\{queue="pending_jobs"\} 0/);
    });
  });
});
