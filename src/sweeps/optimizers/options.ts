/**
 * The options each optimizer type accepts, with their defaults and bounds: one table drives
 * both the validation of a sweep file (field-level errors) and the typed reading of a spec.
 */
import type { FieldError } from '../../shared/errors.js';

type OptionDef =
  | { kind: 'int'; min: number; max?: number; default: number }
  | { kind: 'number'; min: number; max?: number; exclusiveMin?: boolean; default: number }
  | { kind: 'boolean'; default: boolean }
  | { kind: 'intOrMap'; min: number; default: number | null };

const TPE_OPTIONS = {
  n_startup_trials: { kind: 'int', min: 0, default: 10 },
  n_ei_candidates: { kind: 'int', min: 1, max: 10_000, default: 24 },
  gamma: { kind: 'number', min: 0, max: 1, exclusiveMin: true, default: 0.1 },
  max_good: { kind: 'int', min: 1, default: 25 },
  multivariate: { kind: 'boolean', default: true },
  constant_liar: { kind: 'boolean', default: true },
  prior_weight: { kind: 'number', min: 0, exclusiveMin: true, default: 1 },
} as const satisfies Record<string, OptionDef>;

export const OPTION_TABLES = {
  grid: {
    resolution: { kind: 'intOrMap', min: 2, default: null },
    shuffle: { kind: 'boolean', default: false },
  },
  random: {},
  sobol: {
    scramble: { kind: 'boolean', default: true },
  },
  tpe: TPE_OPTIONS,
  motpe: TPE_OPTIONS,
  gp: {
    n_startup_trials: { kind: 'int', min: 1, default: 10 },
    max_points: { kind: 'int', min: 10, default: 128 },
    /** 0 = min(24, 8 + 4 · coordinates): a local model needs more trials in more dimensions */
    local_points: { kind: 'int', min: 0, default: 0 },
    n_candidates: { kind: 'int', min: 16, max: 100_000, default: 1024 },
    input_warping: { kind: 'boolean', default: false },
    output_warping: { kind: 'boolean', default: true },
    constant_liar: { kind: 'boolean', default: true },
    cost_aware: { kind: 'boolean', default: false },
  },
  cmaes: {
    sigma0: { kind: 'number', min: 0, max: 1, exclusiveMin: true, default: 0.2 },
    popsize: { kind: 'int', min: 2, max: 10_000, default: 0 },
    n_startup_trials: { kind: 'int', min: 0, default: 0 },
  },
  nsga2: {
    population_size: { kind: 'int', min: 2, max: 100_000, default: 50 },
    crossover_prob: { kind: 'number', min: 0, max: 1, default: 0.9 },
    mutation_prob: { kind: 'number', min: 0, max: 1, default: 0 },
    eta_crossover: { kind: 'number', min: 0, exclusiveMin: true, default: 20 },
    eta_mutation: { kind: 'number', min: 0, exclusiveMin: true, default: 20 },
  },
} as const satisfies Record<string, Record<string, OptionDef>>;

export type OptimizerType = keyof typeof OPTION_TABLES;

type ValueOf<D> = D extends { kind: 'boolean' }
  ? boolean
  : D extends { kind: 'intOrMap' }
    ? number | Record<string, number> | null
    : number;
export type Options<T extends OptimizerType> = {
  [K in keyof (typeof OPTION_TABLES)[T]]: ValueOf<(typeof OPTION_TABLES)[T][K]>;
};

export function validateOptions(
  type: OptimizerType,
  spec: Record<string, unknown>,
  path: string,
): FieldError[] {
  const table = OPTION_TABLES[type] as Record<string, OptionDef>;
  const errors: FieldError[] = [];
  for (const [key, value] of Object.entries(spec)) {
    const field = `${path}.${key}`;
    if (key === 'type') continue;
    if (key === 'seed') {
      if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
        errors.push({ field, code: 'INVALID_TYPE', message: 'seed must be an integer' });
      }
      continue;
    }
    const def = table[key];
    if (def === undefined) {
      const known = ['seed', ...Object.keys(table)].join(', ');
      errors.push({ field, code: 'UNKNOWN_FIELD', message: `unknown option for ${type} (known: ${known})` });
      continue;
    }
    errors.push(...checkValue(def, value, field));
  }
  return errors;
}

function checkValue(def: OptionDef, value: unknown, field: string): FieldError[] {
  if (def.kind === 'boolean') {
    return typeof value === 'boolean' ? [] : [{ field, code: 'INVALID_TYPE', message: 'must be a boolean' }];
  }
  if (def.kind === 'intOrMap' && typeof value === 'object' && value !== null && !Array.isArray(value)) {
    return Object.entries(value).flatMap(([k, v]) =>
      checkValue({ kind: 'int', min: def.min, default: 0 }, v, `${field}.${k}`),
    );
  }
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    return [{ field, code: 'INVALID_TYPE', message: 'must be a number' }];
  }
  if ((def.kind === 'int' || def.kind === 'intOrMap') && !Number.isInteger(value)) {
    return [{ field, code: 'INVALID_TYPE', message: 'must be an integer' }];
  }
  const max = 'max' in def ? def.max : undefined;
  const exclusive = def.kind === 'number' && def.exclusiveMin === true;
  if ((exclusive ? value <= def.min : value < def.min) || (max !== undefined && value > max)) {
    const range = `${exclusive ? '>' : '>='} ${def.min}${max !== undefined ? ` and <= ${max}` : ''}`;
    return [{ field, code: 'OUT_OF_RANGE', message: `must be ${range}` }];
  }
  return [];
}

/** The spec's options with defaults filled in (the spec is assumed valid). */
export function readOptions<T extends OptimizerType>(type: T, spec: Record<string, unknown>): Options<T> {
  const table = OPTION_TABLES[type] as Record<string, OptionDef>;
  const out: Record<string, unknown> = {};
  for (const [key, def] of Object.entries(table)) out[key] = spec[key] ?? def.default;
  return out as Options<T>;
}
