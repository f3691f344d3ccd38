/**
 * Pipelines end to end over a real controller: stage jobs are small shell commands run by the
 * embedded worker; their completions come back as stage events through the outbox and relay,
 * launch the next stage with the previous stage's outputs, verify checksums, and fail stages.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { PipelineView } from '../../src/coordination/pipeline-views.js';
import { eventually } from '../helpers/controller.js';
import { controllers, forEachDialect, rejected } from './support.js';

const sh = (script: string) => ['sh', '-c', script];
const sha = (text: string) => createHash('sha256').update(text).digest('hex');

/** A stage script that writes `content` to `file` and reports it with its checksum (or a wrong one). */
function producing(file: string, content: string, extra: Record<string, unknown> = {}, wrongSum = false) {
  const result = JSON.stringify({
    ...extra,
    outputs: [{ path: file, sha256: wrongSum ? sha('other') : sha(content) }],
  });
  return sh(`printf '%s' '${content}' > ${file} && printf '%s' '${result}' > "$RUNPLANE_STAGE_RESULT"`);
}

async function settled(
  get: () => Promise<PipelineView>,
  until: (p: PipelineView) => boolean,
): Promise<PipelineView> {
  return eventually(async () => {
    const p = await get();
    return until(p) ? p : undefined;
  }, 30_000);
}

forEachDialect((dialect) => {
  const start = controllers(dialect);

  describe('pipelines', () => {
    it('auto-triggers every stage with the previous outputs, and promotes the trained model', async () => {
      const t = await start({ workers: 1, workerCpu: 2, autoTriggerPipeline: 'true' });
      const file = stringify({
        config_key: 'hex8_2p',
        stages: {
          selfplay: { command: producing('games.db', 'games-1', { games_generated: 12 }) },
          data_sync: { command: sh('cp {prev.output} synced.db && echo synced.db'), outputs: ['synced.db'] },
          npz_export: { command: sh('cat {data_sync.output} > samples.npz'), outputs: ['samples.npz'] },
          training: { command: producing('model.pth', 'weights', { epochs: 3 }) },
          evaluation: {
            command: sh(`printf '{"passed":true,"win_rate":0.6}' > "$RUNPLANE_STAGE_RESULT"`),
          },
          promotion: { command: sh('echo promoting {training.model_path} for {config_key}') },
        },
      });
      const started = await t.admin.startPipeline(file);
      expect(started).toMatchObject({ config_key: 'hex8_2p', status: 'running', stage: 'SELFPLAY' });

      const done = await settled(
        () => t.admin.getPipeline('hex8_2p'),
        (p) => p.status !== 'running',
      );
      expect(done.last_error).toBeNull();
      expect(done).toMatchObject({ status: 'completed', stage: 'COMPLETE' });
      expect(done.attempts.map((a) => [a.stage, a.status])).toEqual([
        ['selfplay', 'succeeded'],
        ['data_sync', 'succeeded'],
        ['npz_export', 'succeeded'],
        ['training', 'succeeded'],
        ['evaluation', 'succeeded'],
        ['promotion', 'succeeded'],
      ]);
      // The previous stage's outputs reached the next stage's command.
      expect(readFileSync(join(done.work_dir, 'synced.db'), 'utf8')).toBe('games-1');
      expect(readFileSync(join(done.work_dir, 'samples.npz'), 'utf8')).toBe('games-1');
      expect(done.outputs.selfplay).toMatchObject({ games_generated: 12, config_key: 'hex8_2p' });

      // TRAINING_COMPLETED registered the model, EVALUATION_COMPLETED staged it, MODEL_PROMOTED made it production.
      const model = await eventually(() => t.admin.productionModel('hex8_2p').catch(() => undefined));
      expect(model.path).toBe(join(done.work_dir, 'model.pth'));
      expect(model.metrics.win_rate).toBe(0.6);
    });

    // The example is a user's first run: it must work as shipped (once, on SQLite, is enough).
    it.skipIf(dialect !== 'sqlite')('runs examples/pipelines/hex8_2p.yaml to completion', async () => {
      process.env.PIPELINE_EXAMPLE = resolve('examples/pipelines');
      const t = await start({ workers: 1, workerCpu: 2, autoTriggerPipeline: 'true' });
      await t.admin.startPipeline(readFileSync('examples/pipelines/hex8_2p.yaml', 'utf8'));
      const p = await settled(
        () => t.admin.getPipeline('hex8_2p'),
        (x) => x.status !== 'running',
      );
      expect(p.last_error).toBeNull();
      expect(p.status).toBe('completed');
      expect(p.outputs.selfplay).toMatchObject({ games_generated: 64 });
      const model = await eventually(() => t.admin.productionModel('hex8_2p').catch(() => undefined));
      expect(readFileSync(model.path ?? '', 'utf8')).toMatch(/^weights trained on .*samples\.npz/);
    });

    it('quarantines outputs whose checksum does not match and fails the stage', async () => {
      const t = await start({ workers: 1, workerCpu: 2, autoTriggerPipeline: 'true' });
      await t.admin.startPipeline({
        config_key: 'sq8_4p',
        circuit_breaker: { failure_threshold: 1 },
        stages: {
          selfplay: { command: producing('games.db', 'games-bad', {}, true) },
          data_sync: { command: sh('true') },
        },
      });
      const p = await settled(
        () => t.admin.getPipeline('sq8_4p'),
        (x) => x.status !== 'running',
      );
      expect(p).toMatchObject({ status: 'breaker_open', stage: 'SELFPLAY' });
      const attempt = p.attempts[0];
      expect(attempt?.status).toBe('failed');
      expect(attempt?.error).toMatch(/transfer verification failed: .*games\.db: sha256 .* does not match/);
      const q = attempt?.quarantine as Array<{ moved_to: string; actual: string }>;
      expect(q[0]?.actual).toBe(sha('games-bad'));
      expect(q[0]?.moved_to.startsWith(join(t.config.dataDir, 'quarantine'))).toBe(true);
      expect(readFileSync(q[0]?.moved_to ?? '', 'utf8')).toBe('games-bad');
      expect(existsSync(join(p.work_dir, 'games.db'))).toBe(false);
      // The next stage never started.
      expect(p.attempts.some((a) => a.stage === 'data_sync')).toBe(false);
    });

    it('a stage job that fails fails the stage; the stage is retried until the breaker opens', async () => {
      const t = await start({ workers: 1, workerCpu: 2, autoTriggerPipeline: 'true' });
      await t.admin.startPipeline({
        config_key: 'hex8_3p',
        circuit_breaker: { failure_threshold: 2, cooldown: '1h' },
        stages: { selfplay: { command: sh('echo broken >&2; exit 3') } },
      });
      const p = await settled(
        () => t.admin.getPipeline('hex8_3p'),
        (x) => x.status !== 'running',
      );
      expect(p.status).toBe('breaker_open');
      expect(p.breaker).toMatchObject({ state: 'open', consecutive_failures: 2 });
      expect(p.attempts.map((a) => a.status)).toEqual(['failed', 'failed']);
      expect(p.attempts[0]?.error).toMatch(/stage job .* ended FAILED/);
      expect(p.last_error).toMatch(/circuit breaker open after 2 consecutive failure/);
      const health = await t.ctl.coordination.health();
      expect(health.status).toBe('degraded');
      expect(health.issues.join('\n')).toMatch(/pipeline hex8_3p: circuit breaker open/);
    });

    it('validates the pipeline file with field errors; one active pipeline per config; stop', async () => {
      const t = await start();
      const bad = await rejected(
        t.admin.startPipeline(
          stringify({
            config_key: 'hex8_2p',
            stages: {
              selfplay: { command: ['echo', '{prev.output}'] },
              training: { env: { X: '{nope}' } },
              bogus: {},
            },
          }),
        ),
      );
      expect(bad.status).toBe(422);
      const fields = bad.details.map((d) => d.field);
      expect(fields).toContain('stages.bogus');
      const bad2 = await rejected(
        t.admin.startPipeline({
          config_key: 'hex8_2p',
          stages: { selfplay: { command: ['echo', '{prev.output}'] }, training: { env: { X: '{nope}' } } },
        }),
      );
      expect(bad2.details.map((d) => [d.field, d.code])).toEqual(
        expect.arrayContaining([
          ['stages.training.command', 'REQUIRED'],
          ['stages.selfplay.command.1', 'UNKNOWN_PLACEHOLDER'],
          ['stages.training.env.X', 'UNKNOWN_PLACEHOLDER'],
        ]),
      );
      expect((await t.admin.listPipelines()).pipelines).toEqual([]);

      const file = { config_key: 'hex8_2p', stages: { selfplay: { external: true } } };
      await t.admin.startPipeline(file);
      expect((await rejected(t.admin.startPipeline(file))).code).toBe('PIPELINE_ACTIVE');
      const stopped = await t.admin.stopPipeline('hex8_2p', 'enough');
      expect(stopped).toMatchObject({ status: 'stopped', last_error: 'enough' });
      expect(stopped.attempts[0]?.status).toBe('cancelled');
      expect((await rejected(t.admin.stopPipeline('hex8_2p'))).code).toBe('PIPELINE_NOT_ACTIVE');
      expect((await t.admin.startPipeline(file)).status).toBe('running');
      expect((await rejected(t.admin.getPipeline('nope'))).status).toBe(404);
    });

    it('external stage events drive the pipeline, idempotently by event id, with a circuit breaker on the clock', async () => {
      let now = Date.parse('2030-01-01T00:00:00Z');
      const clock = { now: () => now };
      const t = await start({ pipelineIntervalMs: '1h' }, { clock });
      await t.admin.startPipeline({
        config_key: 'hex8_2p',
        circuit_breaker: { failure_threshold: 2, cooldown: '60s' },
        stages: { selfplay: { external: true }, data_sync: { external: true } },
      });
      const get = () => t.admin.getPipeline('hex8_2p');
      // Distinct payloads: the same content again within the router's dedup window is a duplicate.
      const fail = (id: string) =>
        t.admin.publishEvent({
          type: 'SELFPLAY_FAILED',
          id,
          payload: { config_key: 'hex8_2p', error: `node lost (${id})` },
        });

      await fail('f-1');
      let p = await settled(get, (x) => x.attempt === 2);
      expect(p.breaker).toMatchObject({ state: 'closed', consecutive_failures: 1 });
      // The same event again (same id) is a duplicate and changes nothing.
      expect((await fail('f-1')).duplicate).toBe(true);
      await fail('f-2');
      p = await settled(get, (x) => x.status === 'breaker_open');
      expect(p.attempt).toBe(2);

      // Not cooled down yet: no probe.
      now += 59_000;
      expect(await t.ctl.coordination.pipelines.tick()).toMatchObject({ probed: 0 });
      now += 1_000;
      expect(await t.ctl.coordination.pipelines.tick()).toMatchObject({ probed: 1 });
      p = await get();
      expect(p).toMatchObject({ status: 'running', attempt: 3, breaker: { state: 'half_open' } });
      expect(p.attempts.at(-1)).toMatchObject({ stage: 'selfplay', attempt: 3, status: 'waiting' });

      // The probe fails: open again at once.
      await fail('f-3');
      p = await settled(get, (x) => x.status === 'breaker_open');
      expect(p.breaker.consecutive_failures).toBe(3);
      now += 60_000;
      await t.ctl.coordination.pipelines.tick();

      // The probe succeeds: closed, and the pipeline moves on.
      const ok = {
        type: 'SELFPLAY_COMPLETE',
        id: 'ok-1',
        payload: { config_key: 'hex8_2p', games_generated: 5 },
      };
      await t.admin.publishEvent(ok);
      p = await settled(get, (x) => x.stage === 'DATA_SYNC');
      expect(p).toMatchObject({
        status: 'running',
        attempt: 1,
        breaker: { state: 'closed', consecutive_failures: 0 },
      });
      expect((await t.admin.publishEvent(ok)).duplicate).toBe(true);
      // A completion of a stage the pipeline is not at is ignored.
      await t.admin.publishEvent({
        type: 'TRAINING_COMPLETED',
        payload: { config_key: 'hex8_2p', model_path: '/m.pth' },
      });
      await t.admin.publishEvent({
        type: 'DATA_SYNC_COMPLETED',
        id: 'ds-1',
        payload: { config_key: 'hex8_2p' },
      });
      p = await settled(get, (x) => x.status === 'completed');
      expect(p.attempts.map((a) => `${a.stage}:${a.attempt}:${a.status}`)).toEqual([
        'selfplay:1:failed',
        'selfplay:2:failed',
        'selfplay:3:failed',
        'selfplay:4:succeeded',
        'data_sync:1:succeeded',
      ]);
    });
  });
});
