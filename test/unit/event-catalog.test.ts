/**
 * The catalog's external side: which types producers may publish, the seed's names as aliases,
 * and payload validation with field errors.
 */
import { describe, expect, it } from 'vitest';
import { publishableTypes, validateExternalEvent } from '../../src/events/external.js';
import { PIPELINE_STAGES, STAGE_EVENTS, stageEventType } from '../../src/events/stage-events.js';

const training = {
  config_key: 'hex8_2p',
  model_path: '/models/hex8_2p_epoch_10.pth',
  metrics: { loss: 0.5 },
};

describe('external events', () => {
  it('has a completion and a failure event for every stage, MODEL_PROMOTED completing promotion', () => {
    expect(PIPELINE_STAGES).toEqual([
      'selfplay',
      'data_sync',
      'npz_export',
      'training',
      'evaluation',
      'promotion',
    ]);
    expect(stageEventType('promotion', true)).toBe('model.promoted');
    expect(stageEventType('training', false)).toBe('pipeline.training.failed');
    const types = publishableTypes();
    for (const stage of PIPELINE_STAGES) {
      expect(types.map((t) => t.type)).toContain(STAGE_EVENTS[stage].completed);
      expect(types.map((t) => t.type)).toContain(STAGE_EVENTS[stage].failed);
    }
    expect(types.find((t) => t.type === 'pipeline.npz_export.completed')?.seed_name).toBe(
      'NPZ_EXPORT_COMPLETE',
    );
  });

  it('accepts a valid event; the seed name resolves and the entity defaults to the config key', () => {
    const r = validateExternalEvent({ type: 'TRAINING_COMPLETED', payload: training });
    expect(r).toEqual({
      ok: true,
      event: { type: 'pipeline.training.completed', entity_id: 'hex8_2p', payload: training, id: null },
    });
    const s = validateExternalEvent({
      type: 'pipeline.selfplay.completed',
      entity_id: 'batch-7',
      id: 'sp-7',
      payload: { config_key: 'hex8_2p', games_generated: 1000, db_path: '/data/games/selfplay.db' },
    });
    expect(s.ok && s.event.entity_id).toBe('batch-7');
    expect(s.ok && s.event.id).toBe('sp-7');
  });

  it('refuses unknown and internal types', () => {
    for (const type of ['NOPE', 'job.state_changed', 'run.status', 'pipeline.*.completed', '']) {
      const r = validateExternalEvent({ type, payload: {} });
      expect(r.ok).toBe(false);
      expect(!r.ok && r.errors).toEqual([
        expect.objectContaining({ field: 'type', code: 'UNKNOWN_EVENT_TYPE' }),
      ]);
    }
  });

  it('names every bad payload field', () => {
    const r = validateExternalEvent({
      type: 'SELFPLAY_COMPLETE',
      id: 'has space',
      payload: {
        config_key: 'bad key!',
        games_generated: -1,
        extra: true,
        outputs: [{ path: 'a', sha256: 'xyz' }],
      },
    });
    expect(r.ok).toBe(false);
    const fields = !r.ok ? Object.fromEntries(r.errors.map((e) => [e.field, e.code])) : {};
    expect(fields).toEqual({
      id: 'INVALID_FORMAT',
      'payload.config_key': 'INVALID_FORMAT',
      'payload.games_generated': 'OUT_OF_RANGE',
      'payload.extra': 'UNKNOWN_FIELD',
      'payload.outputs.0.sha256': 'INVALID_FORMAT',
    });
  });

  it('requires the payload fields of the type, and an object payload', () => {
    const missing = validateExternalEvent({ type: 'MODEL_PROMOTED', payload: { config_key: 'hex8_2p' } });
    expect(!missing.ok && missing.errors).toEqual([
      expect.objectContaining({ field: 'payload.model_id', code: 'REQUIRED' }),
    ]);
    const notObject = validateExternalEvent({ type: 'MODEL_PROMOTED', payload: [1] });
    expect(!notObject.ok && notObject.errors).toEqual([
      expect.objectContaining({ field: 'payload', code: 'INVALID_TYPE' }),
    ]);
    const failed = validateExternalEvent({ type: 'EVALUATION_FAILED', payload: { config_key: 'hex8_2p' } });
    expect(!failed.ok && failed.errors.map((e) => e.field)).toEqual(['payload.error']);
  });
});
