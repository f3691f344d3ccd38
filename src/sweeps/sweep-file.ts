/**
 * The sweep file: parsed from YAML or JSON, validated with field-level errors (every problem
 * listed, paths like `scheduler.reduction_factor`), and normalised (defaults applied) into the
 * SweepSpec the controller stores. Pure: no I/O.
 */
import { parse as parseYaml } from 'yaml';
import { parseDuration } from '../shared/duration.js';
import type { FieldError } from '../shared/errors.js';
import {
  COMMAND_PLACEHOLDERS,
  type DispatcherSpec,
  type ObjectiveSpec,
  type SchedulerSpec,
  type SweepSpec,
  type TaskSpec,
} from './model.js';
import { type Direction, type OptimizerSpec, validateOptimizerSpec } from './optimizers/index.js';
import { type Space, validateSpace } from './space.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Parses a sweep file's text: JSON when it looks like JSON, YAML otherwise. */
export function parseSweepText(
  text: string,
): { ok: true; raw: unknown } | { ok: false; errors: FieldError[] } {
  try {
    const trimmed = text.trimStart();
    const raw = trimmed.startsWith('{') ? (JSON.parse(text) as unknown) : (parseYaml(text) as unknown);
    return { ok: true, raw };
  } catch (err) {
    return { ok: false, errors: [{ field: '', code: 'PARSE_ERROR', message: (err as Error).message }] };
  }
}

const TOP_LEVEL = [
  'name',
  'objective',
  'objectives',
  'parameters',
  'optimizer',
  'scheduler',
  'max_trials',
  'max_parallel_jobs',
  'train',
  'eval',
  'dispatcher',
  'stale_after',
  'stop_grace',
  'retry',
  'cost_metric',
  'warm_start',
  'labels',
  'task_type',
  'checkpoint_dir',
  'description',
];

/** Collects field errors while reading a raw object. */
class Reader {
  readonly errors: FieldError[] = [];
  err(field: string, code: string, message: string): void {
    this.errors.push({ field, code, message });
  }
  unknown(o: Obj, allowed: readonly string[], path: string): void {
    for (const k of Object.keys(o))
      if (!allowed.includes(k)) this.err(join(path, k), 'UNKNOWN_FIELD', 'is not a field here');
  }
  str(
    o: Obj,
    key: string,
    path: string,
    opts: { required?: boolean; pattern?: RegExp; max?: number } = {},
  ): string | undefined {
    const v = o[key];
    const f = join(path, key);
    if (v === undefined || v === null) {
      if (opts.required) this.err(f, 'REQUIRED', 'is required');
      return undefined;
    }
    if (typeof v !== 'string' || v.length === 0) {
      this.err(f, 'INVALID_TYPE', 'must be a non-empty string');
      return undefined;
    }
    if (opts.max !== undefined && v.length > opts.max) {
      this.err(f, 'INVALID_LENGTH', `must be at most ${opts.max} characters`);
      return undefined;
    }
    if (opts.pattern && !opts.pattern.test(v)) {
      this.err(f, 'INVALID_FORMAT', `must match ${opts.pattern}`);
      return undefined;
    }
    return v;
  }
  num(
    o: Obj,
    key: string,
    path: string,
    opts: { int?: boolean; min?: number; max?: number; exclusiveMin?: boolean; required?: boolean } = {},
  ): number | undefined {
    const v = o[key];
    const f = join(path, key);
    if (v === undefined || v === null) {
      if (opts.required) this.err(f, 'REQUIRED', 'is required');
      return undefined;
    }
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      this.err(f, 'INVALID_TYPE', 'must be a number');
      return undefined;
    }
    if (opts.int && !Number.isInteger(v)) {
      this.err(f, 'INVALID_TYPE', 'must be an integer');
      return undefined;
    }
    const low = opts.min === undefined ? false : opts.exclusiveMin ? v <= opts.min : v < opts.min;
    if (low || (opts.max !== undefined && v > opts.max)) {
      const lo = opts.min === undefined ? '' : `${opts.exclusiveMin ? '>' : '>='} ${opts.min}`;
      const hi = opts.max === undefined ? '' : `<= ${opts.max}`;
      this.err(f, 'OUT_OF_RANGE', `must be ${[lo, hi].filter(Boolean).join(' and ')}`);
      return undefined;
    }
    return v;
  }
  duration(o: Obj, key: string, path: string, dflt: string): number {
    const v = o[key];
    if (v === undefined || v === null) return parseDuration(dflt);
    if (typeof v !== 'string' && typeof v !== 'number') {
      this.err(join(path, key), 'INVALID_TYPE', 'must be a duration like 30s, 10m, 1h');
      return parseDuration(dflt);
    }
    try {
      const ms = parseDuration(v);
      if (ms <= 0) throw new Error('must be above 0');
      return ms;
    } catch (e) {
      this.err(join(path, key), 'INVALID_FORMAT', (e as Error).message);
      return parseDuration(dflt);
    }
  }
  obj(o: Obj, key: string, path: string, required = false): Obj | undefined {
    const v = o[key];
    if (v === undefined || v === null) {
      if (required) this.err(join(path, key), 'REQUIRED', 'is required');
      return undefined;
    }
    if (!isObj(v)) {
      this.err(join(path, key), 'INVALID_TYPE', 'must be an object');
      return undefined;
    }
    return v;
  }
  stringMap(o: Obj, key: string, path: string): Record<string, string> {
    const m = this.obj(o, key, path);
    if (!m) return {};
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(m)) {
      if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[k] = String(v);
      else this.err(join(join(path, key), k), 'INVALID_TYPE', 'must be a string');
    }
    return out;
  }
  direction(o: Obj, key: string, path: string, dflt?: Direction): Direction | undefined {
    const v = o[key];
    if (v === undefined && dflt !== undefined) return dflt;
    if (v === 'minimize' || v === 'maximize') return v;
    if (v === 'min') return 'minimize';
    if (v === 'max') return 'maximize';
    this.err(join(path, key), v === undefined ? 'REQUIRED' : 'INVALID_VALUE', 'must be minimize or maximize');
    return undefined;
  }
}

function join(path: string, key: string | number): string {
  return path === '' ? String(key) : `${path}.${key}`;
}

/**
 * Validates a raw sweep file (already parsed) and returns the normalised spec, or every
 * field error found.
 */
export function validateSweepFile(
  raw: unknown,
): { ok: true; spec: SweepSpec } | { ok: false; errors: FieldError[] } {
  const r = new Reader();
  if (!isObj(raw))
    return { ok: false, errors: [{ field: '', code: 'INVALID_TYPE', message: 'a sweep file is an object' }] };
  r.unknown(raw, TOP_LEVEL, '');
  const name = r.str(raw, 'name', '', { required: true, pattern: /^[A-Za-z0-9][A-Za-z0-9_.-]*$/, max: 128 });

  // parameters
  const spaceErrors =
    raw.parameters === undefined
      ? [{ field: 'parameters', code: 'REQUIRED', message: 'is required' }]
      : validateSpace(raw.parameters, 'parameters');
  r.errors.push(...spaceErrors);
  const space = (spaceErrors.length === 0 ? raw.parameters : {}) as Space;
  // Placeholders and mutations are checked against the names even when a spec is wrong.
  const paramNames = isObj(raw.parameters) ? Object.keys(raw.parameters) : [];

  // objectives
  const objectives: ObjectiveSpec[] = [];
  const readObjective = (o: unknown, path: string): void => {
    if (!isObj(o)) {
      r.err(path, 'INVALID_TYPE', 'an objective is {metric, direction}');
      return;
    }
    r.unknown(o, ['metric', 'direction', 'aggregate'], path);
    const metric = r.str(o, 'metric', path, { required: true, max: 256 });
    const direction = r.direction(o, 'direction', path, 'minimize');
    const agg = o.aggregate ?? 'last';
    if (agg !== 'last' && agg !== 'best' && agg !== 'min' && agg !== 'max') {
      r.err(join(path, 'aggregate'), 'INVALID_VALUE', 'must be last, best, min or max');
    }
    if (metric && direction)
      objectives.push({ metric, direction, aggregate: agg as ObjectiveSpec['aggregate'] });
  };
  if (raw.objective !== undefined && raw.objectives !== undefined) {
    r.err('objectives', 'CONFLICT', 'give objective or objectives, not both');
  } else if (raw.objective !== undefined) {
    readObjective(raw.objective, 'objective');
  } else if (raw.objectives !== undefined) {
    if (!Array.isArray(raw.objectives) || raw.objectives.length === 0) {
      r.err('objectives', 'INVALID_TYPE', 'must be a non-empty list of {metric, direction}');
    } else {
      raw.objectives.forEach((o, i) => {
        readObjective(o, `objectives.${i}`);
      });
      const names = objectives.map((o) => o.metric);
      if (new Set(names).size !== names.length) r.err('objectives', 'DUPLICATE', 'each metric at most once');
    }
  } else {
    r.err('objective', 'REQUIRED', 'objective {metric, direction} (or objectives) is required');
  }
  const primary = objectives[0];

  // optimizer
  const optimizerRaw = raw.optimizer ?? { type: 'tpe' };
  const optErrors = validateOptimizerSpec(optimizerRaw, 'optimizer');
  r.errors.push(...optErrors);
  const optimizer = { ...(isObj(optimizerRaw) ? optimizerRaw : {}) } as OptimizerSpec;

  const maxTrials = r.num(raw, 'max_trials', '', { int: true, min: 1, max: 1_000_000 });
  const maxParallel = r.num(raw, 'max_parallel_jobs', '', { int: true, min: 1, max: 10_000 }) ?? 1;

  const scheduler = readScheduler(r, raw.scheduler, primary, paramNames);
  const train = readTask(r, raw, 'train', true, paramNames);
  const evalTask =
    raw.eval === undefined || raw.eval === null ? null : readTask(r, raw, 'eval', false, paramNames);
  const dispatcher = readDispatcher(r, raw.dispatcher, 'dispatcher', true) ?? { type: 'workers' };

  const retryRaw = r.obj(raw, 'retry', '');
  let retry: SweepSpec['retry'] = { max_retries: 1, on: ['stale'] };
  if (retryRaw) {
    r.unknown(retryRaw, ['max_retries', 'on'], 'retry');
    const max = r.num(retryRaw, 'max_retries', 'retry', { int: true, min: 0, max: 100 });
    let on: Array<'stale' | 'failed'> = ['stale'];
    if (retryRaw.on !== undefined) {
      if (!Array.isArray(retryRaw.on) || retryRaw.on.some((x) => x !== 'stale' && x !== 'failed')) {
        r.err('retry.on', 'INVALID_VALUE', 'must be a list of stale, failed');
      } else on = retryRaw.on as Array<'stale' | 'failed'>;
    }
    retry = { max_retries: max ?? 1, on };
  }
  const costMetric = r.str(raw, 'cost_metric', '', { max: 256 }) ?? null;
  let warmStart: string[] = [];
  if (raw.warm_start !== undefined) {
    const w = raw.warm_start;
    const list = isObj(w) ? w.sweeps : w;
    if (!Array.isArray(list) || list.some((s) => typeof s !== 'string' || s.length === 0)) {
      r.err('warm_start', 'INVALID_TYPE', 'must be a list of sweep ids (or {sweeps: [...]})');
    } else warmStart = list as string[];
  }
  const spec: SweepSpec = {
    name: name ?? '',
    objectives,
    parameters: space,
    optimizer,
    scheduler: scheduler ?? { type: 'async' },
    max_trials: maxTrials ?? null,
    max_parallel_jobs: maxParallel,
    train: train ?? emptyTask(),
    eval: evalTask,
    dispatcher,
    stale_after_ms: r.duration(raw, 'stale_after', '', '10m'),
    stop_grace_ms: r.duration(raw, 'stop_grace', '', '30s'),
    retry,
    cost_metric: costMetric,
    warm_start: warmStart,
    labels: r.stringMap(raw, 'labels', ''),
    task_type: r.str(raw, 'task_type', '', { pattern: /^[a-z0-9_-]+$/, max: 64 }) ?? 'sweep_trial',
    checkpoint_dir: r.str(raw, 'checkpoint_dir', '', { max: 4096 }) ?? null,
  };
  // Cross-field rules.
  if (
    spec.scheduler.type === 'sequential' &&
    spec.max_parallel_jobs !== 1 &&
    raw.max_parallel_jobs !== undefined
  ) {
    r.err('max_parallel_jobs', 'CONFLICT', 'a sequential scheduler runs one trial at a time');
  }
  if (
    spec.objectives.length > 1 &&
    ['asha', 'hyperband', 'median', 'pbt'].includes(spec.scheduler.type) &&
    isObj(raw.scheduler) &&
    raw.scheduler.metric === undefined
  ) {
    r.err('scheduler.metric', 'REQUIRED', 'a multi-objective sweep names the metric its scheduler compares');
  }
  if (spec.max_trials === null && spec.scheduler.type !== 'pbt' && optimizer.type !== 'grid') {
    r.err('max_trials', 'REQUIRED', 'is required unless the optimizer is grid (which ends with its grid)');
  }
  if (r.errors.length > 0) return { ok: false, errors: r.errors };
  return { ok: true, spec };
}

function emptyTask(): TaskSpec {
  return {
    command: [],
    env: {},
    cwd: null,
    resources: { cpu: 1, memory_mb: 0, gpu: 0, device_type: null },
    max_retries: 0,
  };
}

function readTask(
  r: Reader,
  raw: Obj,
  key: 'train' | 'eval',
  required: boolean,
  params: string[],
): TaskSpec | null {
  const o = r.obj(raw, key, '', required);
  if (!o) return null;
  r.unknown(o, ['command', 'env', 'cwd', 'resources', 'max_retries'], key);
  const cmd = o.command;
  let command: string[] = [];
  if (cmd === undefined) r.err(`${key}.command`, 'REQUIRED', 'is required');
  else if (!Array.isArray(cmd) || cmd.length === 0)
    r.err(`${key}.command`, 'INVALID_TYPE', 'must be a non-empty argv list');
  else {
    cmd.forEach((a, i) => {
      if (typeof a !== 'string' && typeof a !== 'number')
        r.err(`${key}.command.${i}`, 'INVALID_TYPE', 'must be a string');
    });
    command = cmd.map(String);
    const known = new Set<string>([...params, ...COMMAND_PLACEHOLDERS]);
    command.forEach((a, i) => {
      for (const m of a.replace(/\{\{|\}\}/g, '').matchAll(/\{([^{}]*)\}/g)) {
        if (!known.has(m[1] ?? '')) {
          r.err(
            `${key}.command.${i}`,
            'UNKNOWN_PLACEHOLDER',
            `{${m[1]}} is neither a parameter nor one of ${COMMAND_PLACEHOLDERS.join(', ')}`,
          );
        }
      }
    });
  }
  const res = r.obj(o, 'resources', key);
  const resources = { cpu: 1, memory_mb: 0, gpu: 0, device_type: null as string | null };
  if (res) {
    const p = `${key}.resources`;
    r.unknown(res, ['cpu', 'memory_mb', 'gpu', 'device_type'], p);
    resources.cpu = r.num(res, 'cpu', p, { min: 0, max: 100_000 }) ?? 1;
    resources.memory_mb = r.num(res, 'memory_mb', p, { int: true, min: 0 }) ?? 0;
    resources.gpu = r.num(res, 'gpu', p, { int: true, min: 0, max: 1024 }) ?? 0;
    resources.device_type = r.str(res, 'device_type', p, { max: 64 }) ?? null;
  }
  return {
    command,
    env: r.stringMap(o, 'env', key),
    cwd: r.str(o, 'cwd', key, { max: 4096 }) ?? null,
    resources,
    max_retries: r.num(o, 'max_retries', key, { int: true, min: 0, max: 100 }) ?? 0,
  };
}

const SCHEDULER_FIELDS: Record<SchedulerSpec['type'], readonly string[]> = {
  async: ['type'],
  sequential: ['type'],
  batched: ['type', 'batch_size'],
  asha: ['type', 'metric', 'mode', 'direction', 'reduction_factor', 'grace_period', 'max_t', 'brackets'],
  hyperband: ['type', 'metric', 'mode', 'direction', 'reduction_factor', 'grace_period', 'min_t', 'max_t'],
  median: ['type', 'metric', 'mode', 'direction', 'grace_period', 'min_samples'],
  pbt: [
    'type',
    'metric',
    'mode',
    'direction',
    'population_size',
    'perturbation_interval',
    'max_t',
    'quantile',
    'resample_probability',
    'perturbation_factors',
    'mutations',
  ],
};

function readScheduler(
  r: Reader,
  raw: unknown,
  primary: ObjectiveSpec | undefined,
  params: string[],
): SchedulerSpec | null {
  if (raw === undefined || raw === null) return { type: 'async' };
  const p = 'scheduler';
  if (!isObj(raw)) {
    r.err(p, 'INVALID_TYPE', 'must be an object with a type');
    return null;
  }
  const type = raw.type as SchedulerSpec['type'];
  if (!(type in SCHEDULER_FIELDS)) {
    r.err(
      `${p}.type`,
      raw.type === undefined ? 'REQUIRED' : 'INVALID_VALUE',
      `must be one of ${Object.keys(SCHEDULER_FIELDS).join(', ')}`,
    );
    return null;
  }
  r.unknown(raw, SCHEDULER_FIELDS[type], p);
  if (type === 'async' || type === 'sequential') return { type };
  if (type === 'batched')
    return { type, batch_size: r.num(raw, 'batch_size', p, { int: true, min: 1, required: true }) ?? 1 };
  const metric = r.str(raw, 'metric', p, { max: 256 }) ?? primary?.metric ?? '';
  const dirKey = raw.mode !== undefined ? 'mode' : 'direction';
  const direction =
    raw[dirKey] === undefined
      ? metric === primary?.metric
        ? primary.direction
        : 'minimize'
      : (r.direction(raw, dirKey, p) ?? 'minimize');
  if (type === 'asha' || type === 'hyperband') {
    const rf = r.num(raw, 'reduction_factor', p, { min: 1, exclusiveMin: true, max: 1000 }) ?? 3;
    const grace =
      r.num(raw, type === 'hyperband' && raw.min_t !== undefined ? 'min_t' : 'grace_period', p, {
        min: 0,
        exclusiveMin: true,
      }) ?? 1;
    const maxT = r.num(raw, 'max_t', p, { min: 0, exclusiveMin: true, required: true }) ?? grace;
    if (maxT < grace) r.err(`${p}.max_t`, 'OUT_OF_RANGE', 'must be >= grace_period');
    const all = Math.floor(Math.log(maxT / grace) / Math.log(rf) + 1e-9) + 1;
    let brackets = type === 'hyperband' ? all : 1;
    if (type === 'asha' && raw.brackets !== undefined)
      brackets = r.num(raw, 'brackets', p, { int: true, min: 1, max: all }) ?? 1;
    return { type, metric, direction, reduction_factor: rf, grace_period: grace, max_t: maxT, brackets };
  }
  if (type === 'median') {
    return {
      type,
      metric,
      direction,
      grace_period: r.num(raw, 'grace_period', p, { min: 0 }) ?? 1,
      min_samples: r.num(raw, 'min_samples', p, { int: true, min: 1 }) ?? 3,
    };
  }
  const factors = raw.perturbation_factors ?? [0.8, 1.2];
  if (
    !Array.isArray(factors) ||
    factors.length !== 2 ||
    factors.some((f) => typeof f !== 'number' || !(f > 0))
  ) {
    r.err(`${p}.perturbation_factors`, 'INVALID_VALUE', 'must be two positive numbers, e.g. [0.8, 1.2]');
  }
  let mutations = params;
  if (raw.mutations !== undefined) {
    if (
      !Array.isArray(raw.mutations) ||
      raw.mutations.some((m) => typeof m !== 'string' || !params.includes(m))
    ) {
      r.err(`${p}.mutations`, 'INVALID_VALUE', 'must list parameters of the sweep');
    } else mutations = raw.mutations as string[];
  }
  const interval =
    r.num(raw, 'perturbation_interval', p, { min: 0, exclusiveMin: true, required: true }) ?? 1;
  const maxT = r.num(raw, 'max_t', p, { min: 0, exclusiveMin: true, required: true }) ?? interval;
  return {
    type,
    metric,
    direction,
    population_size: r.num(raw, 'population_size', p, { int: true, min: 2, max: 10_000 }) ?? 4,
    perturbation_interval: interval,
    max_t: maxT,
    quantile: r.num(raw, 'quantile', p, { min: 0, exclusiveMin: true, max: 0.5 }) ?? 0.25,
    resample_probability: r.num(raw, 'resample_probability', p, { min: 0, max: 1 }) ?? 0.25,
    perturbation_factors: (Array.isArray(factors) ? factors : [0.8, 1.2]) as [number, number],
    mutations,
  };
}

const DISPATCHER_TYPES = ['workers', 'local', 'slurm', 'pool'] as const;

function readDispatcher(r: Reader, raw: unknown, p: string, allowPool: boolean): DispatcherSpec | null {
  if (raw === undefined || raw === null) return { type: 'workers' };
  if (typeof raw === 'string') raw = { type: raw };
  if (!isObj(raw)) {
    r.err(p, 'INVALID_TYPE', 'must be an object with a type');
    return null;
  }
  const type = raw.type;
  if (
    !DISPATCHER_TYPES.includes(type as (typeof DISPATCHER_TYPES)[number]) ||
    (type === 'pool' && !allowPool)
  ) {
    r.err(
      `${p}.type`,
      type === undefined ? 'REQUIRED' : 'INVALID_VALUE',
      `must be one of ${allowPool ? DISPATCHER_TYPES.join(', ') : 'workers, local, slurm'}`,
    );
    return null;
  }
  if (type === 'workers') {
    r.unknown(raw, ['type'], p);
    return { type };
  }
  if (type === 'local') {
    r.unknown(raw, ['type', 'max_concurrent'], p);
    return { type, max_concurrent: r.num(raw, 'max_concurrent', p, { int: true, min: 1 }) ?? null };
  }
  if (type === 'slurm') {
    r.unknown(raw, ['type', 'partition', 'time_limit', 'extra_args'], p);
    const extra = raw.extra_args ?? [];
    if (!Array.isArray(extra) || extra.some((a) => typeof a !== 'string')) {
      r.err(`${p}.extra_args`, 'INVALID_TYPE', 'must be a list of sbatch arguments');
    }
    return {
      type,
      partition: r.str(raw, 'partition', p, { pattern: /^[A-Za-z0-9_.,-]+$/ }) ?? null,
      time_limit: r.str(raw, 'time_limit', p, { pattern: /^[0-9:-]+$/ }) ?? null,
      extra_args: Array.isArray(extra) ? (extra as string[]) : [],
    };
  }
  r.unknown(raw, ['type', 'members', 'train', 'eval'], p);
  const membersRaw = r.obj(raw, 'members', p, true) ?? {};
  const members: Record<string, Exclude<DispatcherSpec, { type: 'pool' }>> = {};
  for (const [name, m] of Object.entries(membersRaw)) {
    const d = readDispatcher(r, m, `${p}.members.${name}`, false);
    if (d && d.type !== 'pool') members[name] = d;
  }
  if (Object.keys(membersRaw).length === 0)
    r.err(`${p}.members`, 'REQUIRED', 'a pool needs at least one member');
  const route = (key: 'train' | 'eval'): string[] => {
    const v = raw[key] ?? Object.keys(membersRaw);
    const list = typeof v === 'string' ? [v] : v;
    if (
      !Array.isArray(list) ||
      list.length === 0 ||
      list.some((x) => typeof x !== 'string' || !(x in membersRaw))
    ) {
      r.err(`${p}.${key}`, 'INVALID_VALUE', 'must name members of the pool, first choice first');
      return [];
    }
    return list as string[];
  };
  return { type: 'pool', members, train: route('train'), eval: route('eval') };
}
