/**
 * The task-limits file (`--task-limits FILE`, RUNPLANE_TASK_LIMITS, config key `task_limits`):
 * YAML or JSON giving `can_spawn`'s per-task-type limits, their defaults, the node thresholds and
 * the queue monitors' soft and hard limits. Validated with every problem listed by key path
 * (`types.training.burst`), and merged with the built-in defaults and the RUNPLANE_SPAWN_MAX_*
 * settings (the file wins). Pure: no I/O.
 *
 *   defaults:   {rate_per_sec: 10, burst: 20, max_cluster: null, max_per_node: null}
 *   types:      {training: {max_cluster: 2, rate_per_sec: 0.5}, sweep_trial: {max_cluster: 8}}
 *   thresholds: {disk_pct: 95, memory_pct: 95, cpu_pct: 0}     # percent; 0 (or null) = not checked
 *   queues:     {pending_jobs: {soft: 500, hard: 5000}, outbox_lag: {...}, dlq_pending: {...}}
 */
import { parse as parseYaml } from 'yaml';
import type { FieldError } from '../shared/errors.js';
import type { QueueLimits } from './queue-monitor.js';
import {
  DEFAULT_QUEUE_LIMITS,
  DEFAULT_TASK_LIMITS,
  limitsFor,
  QUEUES,
  type QueueName,
  type ResourceThresholds,
  type TaskLimitsConfig,
  type TaskTypeLimits,
} from './task-limits.js';

/** A validated task-limits file, normalised. */
export interface TaskLimitsFile {
  /** Limits of every task type the file does not name: the file's over the built-in ones. */
  defaults: TaskTypeLimits;
  /** Per task type, only what the file sets (the defaults fill the rest). */
  types: Record<string, Partial<TaskTypeLimits>>;
  /** Only the thresholds the file sets, in percent, 0 = not checked (RUNPLANE_SPAWN_MAX_* fill the rest). */
  thresholds: Partial<ResourceThresholds>;
  /** Every queue's limits: the file's over the built-in ones. */
  queues: Record<QueueName, QueueLimits>;
}

/** The limits a controller runs with. */
export interface EffectiveLimits {
  /** For the limiter: a threshold that is not checked is +Infinity. */
  task: TaskLimitsConfig;
  queues: Record<QueueName, QueueLimits>;
}

/** `GET /api/v1/limits`: the effective limits, each task type's merged with the defaults. */
export interface LimitsView {
  defaults: TaskTypeLimits;
  types: Record<string, TaskTypeLimits>;
  /** Percent; 0 = not checked. */
  thresholds: ResourceThresholds;
  queues: Record<QueueName, QueueLimits>;
}

/** Task type names: as in pipeline files and job labels. */
export const TASK_TYPE_PATTERN = /^[a-z0-9_-]{1,64}$/;

const ROOT_KEYS = ['defaults', 'types', 'thresholds', 'queues'] as const;
const TYPE_KEYS = ['rate_per_sec', 'burst', 'max_cluster', 'max_per_node'] as const;
const THRESHOLD_KEYS = ['disk_pct', 'memory_pct', 'cpu_pct'] as const;
const QUEUE_KEYS = ['soft', 'hard'] as const;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const join = (path: string, key: string) => (path ? `${path}.${key}` : key);

/** Parses and validates a task-limits file's text (JSON when it starts with `{`, YAML otherwise). */
export function parseLimitsFile(
  text: string,
): { ok: true; limits: TaskLimitsFile } | { ok: false; errors: FieldError[] } {
  let raw: unknown;
  try {
    raw = text.trimStart().startsWith('{') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    return { ok: false, errors: [{ field: '', code: 'PARSE_ERROR', message: (err as Error).message }] };
  }
  return validateLimits(raw);
}

/** Validates an already parsed file (an empty file, null, sets nothing). */
export function validateLimits(
  raw: unknown,
): { ok: true; limits: TaskLimitsFile } | { ok: false; errors: FieldError[] } {
  const errors: FieldError[] = [];
  const err = (field: string, code: string, message: string) => errors.push({ field, code, message });
  const out: TaskLimitsFile = {
    defaults: { ...DEFAULT_TASK_LIMITS.defaults },
    types: {},
    thresholds: {},
    queues: { ...DEFAULT_QUEUE_LIMITS },
  };
  if (raw === null || raw === undefined) return { ok: true, limits: out };
  if (!isObj(raw)) {
    err('', 'INVALID_TYPE', `must be a mapping with the keys ${ROOT_KEYS.join(', ')}`);
    return { ok: false, errors };
  }
  const mapping = (o: Obj, key: string, path: string): Obj | undefined => {
    const v = o[key];
    if (v === undefined || v === null) return undefined;
    if (!isObj(v)) {
      err(join(path, key), 'INVALID_TYPE', 'must be a mapping');
      return undefined;
    }
    return v;
  };
  const unknown = (o: Obj, allowed: readonly string[], path: string) => {
    for (const k of Object.keys(o))
      if (!allowed.includes(k))
        err(join(path, k), 'UNKNOWN_FIELD', `is not a known key (expected one of ${allowed.join(', ')})`);
  };
  unknown(raw, ROOT_KEYS, '');

  /** A task type's limits, only the keys given. */
  const typeLimits = (o: Obj, path: string): Partial<TaskTypeLimits> => {
    unknown(o, TYPE_KEYS, path);
    const l: Partial<TaskTypeLimits> = {};
    const rate = o.rate_per_sec;
    if (rate !== undefined) {
      if (typeof rate !== 'number' || !Number.isFinite(rate) || rate <= 0)
        err(join(path, 'rate_per_sec'), 'OUT_OF_RANGE', 'must be a number > 0');
      else l.rate_per_sec = rate;
    }
    const burst = o.burst;
    if (burst !== undefined) {
      if (typeof burst !== 'number' || !Number.isFinite(burst) || burst < 1)
        err(join(path, 'burst'), 'OUT_OF_RANGE', 'must be a number >= 1');
      else l.burst = burst;
    }
    for (const k of ['max_cluster', 'max_per_node'] as const) {
      const v = o[k];
      if (v === undefined) continue;
      if (v === null) l[k] = null;
      else if (typeof v !== 'number' || !Number.isInteger(v) || v < 0)
        err(join(path, k), 'OUT_OF_RANGE', 'must be an integer >= 0, or null for no limit');
      else l[k] = v;
    }
    return l;
  };

  const defaults = mapping(raw, 'defaults', '');
  if (defaults) out.defaults = { ...out.defaults, ...typeLimits(defaults, 'defaults') };

  const types = mapping(raw, 'types', '');
  if (types) {
    for (const [name, v] of Object.entries(types)) {
      const path = join('types', name);
      if (!TASK_TYPE_PATTERN.test(name)) {
        err(path, 'INVALID_FORMAT', `is not a task type name (${TASK_TYPE_PATTERN})`);
        continue;
      }
      if (v === null || v === undefined) {
        out.types[name] = {};
        continue;
      }
      if (!isObj(v)) {
        err(path, 'INVALID_TYPE', 'must be a mapping');
        continue;
      }
      out.types[name] = typeLimits(v, path);
    }
  }

  const thresholds = mapping(raw, 'thresholds', '');
  if (thresholds) {
    unknown(thresholds, THRESHOLD_KEYS, 'thresholds');
    for (const k of THRESHOLD_KEYS) {
      const v = thresholds[k];
      if (v === undefined) continue;
      if (v === null) out.thresholds[k] = 0;
      else if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
        err(join('thresholds', k), 'OUT_OF_RANGE', 'must be a number >= 0 (percent, 0 = not checked)');
      else out.thresholds[k] = v;
    }
  }

  const queues = mapping(raw, 'queues', '');
  if (queues) {
    unknown(queues, QUEUES, 'queues');
    for (const q of QUEUES) {
      const path = join('queues', q);
      const o = mapping(queues, q, 'queues');
      if (!o) continue;
      unknown(o, QUEUE_KEYS, path);
      const merged = { ...out.queues[q] };
      let ok = true;
      for (const k of QUEUE_KEYS) {
        const v = o[k];
        if (v === undefined) continue;
        if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
          err(join(path, k), 'OUT_OF_RANGE', 'must be an integer >= 1');
          ok = false;
        } else merged[k] = v;
      }
      if (!ok) continue;
      if (merged.soft > merged.hard) {
        err(
          join(path, 'soft'),
          'CONFLICT',
          `must not exceed hard (${merged.soft} > ${merged.hard}${o.hard === undefined ? ', the default hard limit' : ''})`,
        );
        continue;
      }
      out.queues[q] = merged;
    }
  }
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, limits: out };
}

/** Percent, 0 = not checked → what the limiter compares against (+Infinity = not checked). */
const checked = (pct: number) => (pct > 0 ? pct : Number.POSITIVE_INFINITY);

/**
 * The limits to run with: the file (when there is one) over the RUNPLANE_SPAWN_MAX_* thresholds
 * (percent, 0 = not checked) over the built-in defaults.
 */
export function effectiveLimits(
  file: TaskLimitsFile | null,
  spawnMax: { diskPct: number; memoryPct: number; cpuPct: number },
): EffectiveLimits {
  const t = file?.thresholds ?? {};
  return {
    task: {
      defaults: { ...(file?.defaults ?? DEFAULT_TASK_LIMITS.defaults) },
      types: { ...(file?.types ?? {}) },
      thresholds: {
        disk_pct: checked(t.disk_pct ?? spawnMax.diskPct),
        memory_pct: checked(t.memory_pct ?? spawnMax.memoryPct),
        cpu_pct: checked(t.cpu_pct ?? spawnMax.cpuPct),
      },
    },
    queues: { ...(file?.queues ?? DEFAULT_QUEUE_LIMITS) },
  };
}

/** The effective limits as `GET /api/v1/limits` shows them (thresholds not checked are 0). */
export function limitsView(e: EffectiveLimits): LimitsView {
  const shown = (v: number) => (Number.isFinite(v) ? v : 0);
  const th = e.task.thresholds;
  return {
    defaults: { ...e.task.defaults },
    types: Object.fromEntries(Object.keys(e.task.types).map((name) => [name, limitsFor(e.task, name)])),
    thresholds: {
      disk_pct: shown(th.disk_pct),
      memory_pct: shown(th.memory_pct),
      cpu_pct: shown(th.cpu_pct),
    },
    queues: Object.fromEntries(QUEUES.map((q) => [q, { ...e.queues[q] }])) as Record<QueueName, QueueLimits>,
  };
}

/** One line for a startup error: `types.training.burst must be a number >= 1; …`. */
export function describeLimitErrors(errors: readonly FieldError[]): string {
  return errors.map((e) => (e.field ? `${e.field} ${e.message}` : e.message)).join('; ');
}
