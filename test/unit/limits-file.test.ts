import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import {
  effectiveLimits,
  limitsView,
  parseLimitsFile,
  validateLimits,
} from '../../src/coordination/limits-file.js';
import { DEFAULT_QUEUE_LIMITS, DEFAULT_TASK_LIMITS, limitsFor } from '../../src/coordination/task-limits.js';

const YAML = `
defaults: {rate_per_sec: 5, burst: 10, max_cluster: null, max_per_node: 4}
types:
  training: {max_cluster: 2, rate_per_sec: 0.5}
  sweep_trial: {max_cluster: 8}
thresholds: {disk_pct: 90, memory_pct: 85, cpu_pct: 0}
queues:
  pending_jobs: {soft: 500, hard: 5000}
  dlq_pending: {hard: 50}
`;

function errorsOf(raw: unknown) {
  const r = validateLimits(raw);
  if (r.ok) throw new Error('expected the limits to be refused');
  return r.errors.map((e) => `${e.field} ${e.message}`);
}

describe('task-limits file', () => {
  it('parses YAML: the file over the built-in defaults, types keep only what they set', () => {
    const r = parseLimitsFile(YAML);
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.limits.defaults).toEqual({ rate_per_sec: 5, burst: 10, max_cluster: null, max_per_node: 4 });
    expect(r.limits.types).toEqual({
      training: { max_cluster: 2, rate_per_sec: 0.5 },
      sweep_trial: { max_cluster: 8 },
    });
    expect(r.limits.thresholds).toEqual({ disk_pct: 90, memory_pct: 85, cpu_pct: 0 });
    expect(r.limits.queues).toEqual({
      pending_jobs: { soft: 500, hard: 5000 },
      dlq_pending: { soft: DEFAULT_QUEUE_LIMITS.dlq_pending.soft, hard: 50 },
      outbox_lag: DEFAULT_QUEUE_LIMITS.outbox_lag,
    });
  });

  it('parses JSON, and an empty file sets nothing', () => {
    const r = parseLimitsFile('{"types": {"selfplay": {"burst": 3}}}');
    expect(r.ok && r.limits.types).toEqual({ selfplay: { burst: 3 } });
    const empty = parseLimitsFile('');
    if (!empty.ok) throw new Error('an empty file is valid');
    expect(empty.limits).toEqual({
      defaults: DEFAULT_TASK_LIMITS.defaults,
      types: {},
      thresholds: {},
      queues: DEFAULT_QUEUE_LIMITS,
    });
  });

  it('names every bad key by its path', () => {
    expect(errorsOf({ defaults: { burst: 2 }, limits: {}, types: { training: { speed: 1 } } })).toEqual([
      'limits is not a known key (expected one of defaults, types, thresholds, queues)',
      'types.training.speed is not a known key (expected one of rate_per_sec, burst, max_cluster, max_per_node)',
    ]);
    expect(errorsOf({ types: { training: { burst: -1, rate_per_sec: -2, max_cluster: -1 } } })).toEqual([
      'types.training.rate_per_sec must be a number > 0',
      'types.training.burst must be a number >= 1',
      'types.training.max_cluster must be an integer >= 0, or null for no limit',
    ]);
    expect(
      errorsOf({
        defaults: { burst: 'ten', max_per_node: 1.5 },
        thresholds: { disk_pct: '90%', gpu_pct: 1 },
      }),
    ).toEqual([
      'defaults.burst must be a number >= 1',
      'defaults.max_per_node must be an integer >= 0, or null for no limit',
      'thresholds.gpu_pct is not a known key (expected one of disk_pct, memory_pct, cpu_pct)',
      'thresholds.disk_pct must be a number >= 0 (percent, 0 = not checked)',
    ]);
    expect(errorsOf({ types: { 'Bad Type': {}, ok: 3 } })).toEqual([
      'types.Bad Type is not a task type name (/^[a-z0-9_-]{1,64}$/)',
      'types.ok must be a mapping',
    ]);
    expect(errorsOf([1, 2])).toEqual([
      ' must be a mapping with the keys defaults, types, thresholds, queues',
    ]);
  });

  it('refuses queue limits that are not integers >= 1, and soft above hard', () => {
    expect(
      errorsOf({
        queues: {
          pending_jobs: { soft: 600, hard: 500 },
          dlq_pending: { soft: 2000 },
          outbox_lag: { soft: 0, hard: 'many' },
          inbox: { soft: 1, hard: 2 },
        },
      }),
    ).toEqual([
      'queues.inbox is not a known key (expected one of pending_jobs, dlq_pending, outbox_lag)',
      'queues.pending_jobs.soft must not exceed hard (600 > 500)',
      'queues.dlq_pending.soft must not exceed hard (2000 > 1000, the default hard limit)',
      'queues.outbox_lag.soft must be an integer >= 1',
      'queues.outbox_lag.hard must be an integer >= 1',
    ]);
  });

  it('reports a syntax error as a parse error', () => {
    const r = parseLimitsFile('types: {training: [');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.errors[0]?.code).toBe('PARSE_ERROR');
  });

  it('merges with the RUNPLANE_SPAWN_MAX_* thresholds: the file wins, 0 turns a threshold off', () => {
    const env = { diskPct: 80, memoryPct: 70, cpuPct: 60 };
    const none = effectiveLimits(null, env);
    expect(none.task.thresholds).toEqual({ disk_pct: 80, memory_pct: 70, cpu_pct: 60 });
    expect(none.queues).toEqual(DEFAULT_QUEUE_LIMITS);
    const r = validateLimits({ thresholds: { disk_pct: 99, cpu_pct: 0 }, types: { training: { burst: 3 } } });
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    const e = effectiveLimits(r.limits, env);
    expect(e.task.thresholds).toEqual({ disk_pct: 99, memory_pct: 70, cpu_pct: Number.POSITIVE_INFINITY });
    expect(limitsFor(e.task, 'training')).toEqual({ ...DEFAULT_TASK_LIMITS.defaults, burst: 3 });
    const view = limitsView(e);
    expect(view.thresholds).toEqual({ disk_pct: 99, memory_pct: 70, cpu_pct: 0 });
    expect(view.types).toEqual({ training: { ...DEFAULT_TASK_LIMITS.defaults, burst: 3 } });
  });
});

describe('taskLimitsFile configuration', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rp-limits-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads the file named by the flag, the env or the config file (a path or inline)', () => {
    const file = join(dir, 'limits.yaml');
    writeFileSync(file, YAML);
    const byFlag = loadConfig({ dataDir: dir, taskLimitsFile: file }, {});
    expect(byFlag.taskLimitsFile).toBe(file);
    expect(byFlag.taskLimits?.types.training).toEqual({ max_cluster: 2, rate_per_sec: 0.5 });
    const byEnv = loadConfig({ dataDir: dir }, { RUNPLANE_TASK_LIMITS: file });
    expect(byEnv.taskLimits?.queues.pending_jobs).toEqual({ soft: 500, hard: 5000 });
    const cfg = join(dir, 'runplane.yaml');
    writeFileSync(cfg, `task_limits: ${file}\n`);
    expect(loadConfig({ dataDir: dir }, {}, cfg).taskLimits?.defaults.burst).toBe(10);
    const inline = join(dir, 'inline.yaml');
    writeFileSync(inline, 'task_limits:\n  types: {sweep_trial: {max_cluster: 1}}\n');
    const c = loadConfig({ dataDir: dir }, {}, inline);
    expect(c.taskLimitsFile).toBeNull();
    expect(c.taskLimits?.types).toEqual({ sweep_trial: { max_cluster: 1 } });
    expect(loadConfig({ dataDir: dir }, {}).taskLimits).toBeNull();
  });

  it('stops the start with the bad key named, or a missing file', () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'types: {training: {burst: -1}}\nqueues: {pending_jobs: {soft: 9, hard: 3}}\n');
    expect(() => loadConfig({ dataDir: dir, taskLimitsFile: bad }, {})).toThrow(ConfigError);
    expect(() => loadConfig({ dataDir: dir, taskLimitsFile: bad }, {})).toThrow(
      `task_limits: types.training.burst must be a number >= 1; queues.pending_jobs.soft must not exceed hard (9 > 3) (in ${bad})`,
    );
    expect(() => loadConfig({ dataDir: dir }, { RUNPLANE_TASK_LIMITS: join(dir, 'nope.yaml') })).toThrow(
      /task_limits: file .*nope\.yaml not found/,
    );
  });
});
