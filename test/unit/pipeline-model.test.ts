import { describe, expect, it } from 'vitest';
import { CLOSED, halfOpen, onFailure, onSuccess, probeDue } from '../../src/coordination/circuit-breaker.js';
import { parsePipelineFile } from '../../src/coordination/pipeline-file.js';
import { nextStage, render, stageOfEventType } from '../../src/coordination/pipeline-model.js';
import { FakeClock } from '../helpers/clock.js';

const defaults = { failureThreshold: 3, cooldownMs: 300_000 };

describe('pipeline circuit breaker', () => {
  it('opens after N consecutive failures, half-opens after the cool-down, closes on success', () => {
    const clock = new FakeClock(1_000);
    const cfg = { failure_threshold: 3, cooldown_ms: 60_000 };
    let b = onFailure(CLOSED, clock.now(), cfg);
    b = onFailure(b, clock.now(), cfg);
    expect(b).toMatchObject({ state: 'closed', failures: 2 });
    b = onFailure(b, clock.now(), cfg);
    expect(b).toEqual({ state: 'open', failures: 3, opened_at: 1_000 });
    clock.advance(59_999);
    expect(probeDue(b, clock.now(), cfg)).toBe(false);
    clock.advance(1);
    expect(probeDue(b, clock.now(), cfg)).toBe(true);
    const probing = halfOpen(b);
    // A failed probe opens it again at once, whatever the count.
    expect(onFailure(probing, clock.now(), { ...cfg, failure_threshold: 100 })).toMatchObject({
      state: 'open',
      opened_at: clock.now(),
    });
    expect(onSuccess(probing)).toEqual(CLOSED);
  });
});

describe('pipeline file and stages', () => {
  it('normalises a YAML file, defaults applied', () => {
    const r = parsePipelineFile(
      'config_key: hex8_2p\ncircuit_breaker: {cooldown: 30s}\nstages:\n  training: {command: [train, "{prev.output}"]}\n  selfplay: {command: [play, "{config_key}"]}\n',
      defaults,
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.spec.circuit_breaker).toEqual({ failure_threshold: 3, cooldown_ms: 30_000 });
    expect(r.spec.stages.training?.task_type).toBe('training');
    expect(nextStage(r.spec, 'selfplay')).toBe('training');
    expect(nextStage(r.spec, 'training')).toBeNull();
  });

  it('lists every error with its field', () => {
    const r = parsePipelineFile(
      '{"config_key": "bad key", "stages": {"selfplay": {"command": []}}, "x": 1}',
      defaults,
    );
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors.map((e) => e.field).sort()).toEqual(['config_key', 'stages.selfplay.command', 'x']);
    const later = parsePipelineFile(
      'config_key: a\nstages:\n  selfplay: {command: ["{training.model_path}"]}\n  training: {command: [t]}\n',
      defaults,
    );
    expect(!later.ok && later.errors[0]).toMatchObject({
      field: 'stages.selfplay.command.0',
      code: 'UNKNOWN_PLACEHOLDER',
    });
    expect(parsePipelineFile('a: [', defaults)).toMatchObject({
      ok: false,
      errors: [{ code: 'PARSE_ERROR' }],
    });
  });

  it('renders placeholders from earlier results, and says which one has no value', () => {
    const ctx = {
      base: {
        config_key: 'k',
        pipeline_id: 'p',
        work_dir: '/w',
        stage: 'training',
        attempt: '1',
        result_file: '/w/r',
      },
      results: { npz_export: { npz_path: '/w/s.npz', outputs: [{ path: '/w/s.npz' }] } },
      prev: 'npz_export' as const,
    };
    expect(render('{prev.output} {npz_export.npz_path} {config_key}', ctx)).toBe('/w/s.npz /w/s.npz k');
    expect(() => render('{selfplay.db_path}', ctx)).toThrow(/\{selfplay\.db_path\} has no value/);
  });

  it('maps stage event types to stages', () => {
    expect(stageOfEventType('model.promoted')).toEqual({ stage: 'promotion', success: true });
    expect(stageOfEventType('pipeline.npz_export.failed')).toEqual({ stage: 'npz_export', success: false });
    expect(stageOfEventType('job.state_changed')).toBeNull();
  });
});
