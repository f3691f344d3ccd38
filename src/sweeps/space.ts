/**
 * Sweep search space — pure model: parameter specs, their validation with field-level errors,
 * conditional activity, and the mapping between parameter values and the unit interval that
 * every numeric optimizer works in.
 */
import type { FieldError } from '../shared/errors.js';

export type ParamValue = string | number | boolean;
/** Values of one trial; inactive conditional parameters are absent. */
export type Params = Record<string, ParamValue>;
/** `when: {act: relu}` or `when: {act: [relu, gelu]}`: every listed parent must match. */
export type Condition = Record<string, ParamValue | ParamValue[]>;
export type ParamSpec =
  | { type: 'float'; low: number; high: number; log?: boolean; step?: number; when?: Condition }
  | { type: 'int'; low: number; high: number; log?: boolean; step?: number; when?: Condition }
  | { type: 'categorical'; choices: ParamValue[]; when?: Condition };
export type Space = Record<string, ParamSpec>;
export type NumericSpec = Extract<ParamSpec, { type: 'float' | 'int' }>;

const NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
const KNOWN_KEYS: Record<ParamSpec['type'], readonly string[]> = {
  float: ['type', 'low', 'high', 'log', 'step', 'when'],
  int: ['type', 'low', 'high', 'log', 'step', 'when'],
  categorical: ['type', 'choices', 'when'],
};

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const isScalar = (v: unknown): v is ParamValue =>
  typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));

/** Field-level errors (FieldError from src/shared/errors.ts), paths like `parameters.lr.low`. */
export function validateSpace(raw: unknown, path = 'parameters'): FieldError[] {
  const errors: FieldError[] = [];
  const err = (field: string, code: string, message: string): void => {
    errors.push({ field, code, message });
  };
  if (!isRecord(raw)) {
    err(path, 'INVALID_TYPE', 'parameters must be an object of name → spec');
    return errors;
  }
  const names = Object.keys(raw);
  if (names.length === 0) err(path, 'REQUIRED', 'at least one parameter is required');
  for (const name of names) {
    const p = `${path}.${name}`;
    if (!NAME_PATTERN.test(name)) {
      err(
        p,
        'INVALID_FORMAT',
        'a parameter name starts with a letter or _ and has only letters, digits, _ . -',
      );
    }
    validateParam(raw[name], p, err);
  }
  if (errors.length > 0) return errors;
  const space = raw as Space;
  for (const name of names) validateCondition(space, name, `${path}.${name}.when`, err);
  if (errors.length > 0) return errors;
  const cyclic = findCycle(space);
  if (cyclic !== null) err(`${path}.${cyclic}.when`, 'CYCLE', 'conditions form a cycle');
  return errors;
}

type Report = (field: string, code: string, message: string) => void;

function validateParam(raw: unknown, p: string, err: Report): void {
  if (!isRecord(raw)) {
    err(p, 'INVALID_TYPE', 'a parameter spec must be an object');
    return;
  }
  const type = raw.type;
  if (type !== 'float' && type !== 'int' && type !== 'categorical') {
    err(
      `${p}.type`,
      type === undefined ? 'REQUIRED' : 'INVALID_VALUE',
      'type must be float, int or categorical',
    );
    return;
  }
  for (const key of Object.keys(raw)) {
    if (!KNOWN_KEYS[type].includes(key))
      err(`${p}.${key}`, 'UNKNOWN_FIELD', `unknown field for a ${type} parameter`);
  }
  if (raw.when !== undefined && !isRecord(raw.when)) {
    err(`${p}.when`, 'INVALID_TYPE', 'when must be an object of parameter → value(s)');
  }
  if (type === 'categorical') {
    const choices = raw.choices;
    if (choices === undefined) err(`${p}.choices`, 'REQUIRED', 'choices is required');
    else if (!Array.isArray(choices)) err(`${p}.choices`, 'INVALID_TYPE', 'choices must be an array');
    else if (choices.length === 0) err(`${p}.choices`, 'INVALID_LENGTH', 'choices must not be empty');
    else {
      const seen = new Set<string>();
      choices.forEach((c, i) => {
        if (!isScalar(c)) err(`${p}.choices.${i}`, 'INVALID_TYPE', 'a choice is a string, number or boolean');
        else if (seen.has(choiceKey(c))) err(`${p}.choices.${i}`, 'DUPLICATE', 'choices must be distinct');
        else seen.add(choiceKey(c));
      });
    }
    return;
  }
  const low = raw.low;
  const high = raw.high;
  let bounds = true;
  for (const [key, v] of [
    ['low', low],
    ['high', high],
  ] as const) {
    if (v === undefined) err(`${p}.${key}`, 'REQUIRED', `${key} is required`);
    else if (typeof v !== 'number' || !Number.isFinite(v))
      err(`${p}.${key}`, 'INVALID_TYPE', `${key} must be a finite number`);
    else if (type === 'int' && !Number.isInteger(v))
      err(`${p}.${key}`, 'INVALID_TYPE', `${key} must be an integer`);
    else continue;
    bounds = false;
  }
  if (raw.log !== undefined && typeof raw.log !== 'boolean')
    err(`${p}.log`, 'INVALID_TYPE', 'log must be a boolean');
  const step = raw.step;
  if (step !== undefined) {
    if (typeof step !== 'number' || !Number.isFinite(step) || step <= 0) {
      err(`${p}.step`, 'OUT_OF_RANGE', 'step must be a positive number');
    } else if (type === 'int' && !Number.isInteger(step)) {
      err(`${p}.step`, 'INVALID_TYPE', 'step of an int parameter must be an integer');
    } else if (raw.log === true) {
      err(`${p}.step`, 'INVALID_VALUE', 'step and log cannot be combined');
    }
  }
  if (!bounds) return;
  const lo = low as number;
  const hi = high as number;
  if (type === 'float' ? !(lo < hi) : !(lo <= hi)) {
    err(
      `${p}.high`,
      'OUT_OF_RANGE',
      type === 'float' ? 'high must be greater than low' : 'high must be >= low',
    );
  }
  if (raw.log === true && !(lo > 0)) err(`${p}.low`, 'OUT_OF_RANGE', 'low must be > 0 on a log scale');
}

function validateCondition(space: Space, name: string, p: string, err: Report): void {
  const when = space[name]?.when;
  if (when === undefined) return;
  const keys = Object.keys(when);
  if (keys.length === 0) err(p, 'INVALID_LENGTH', 'when must name at least one parameter');
  for (const parent of keys) {
    const parentSpec = space[parent];
    const f = `${p}.${parent}`;
    if (parent === name) {
      err(f, 'CYCLE', 'a parameter cannot depend on itself');
      continue;
    }
    if (parentSpec === undefined) {
      err(f, 'UNKNOWN_PARAMETER', `no parameter named ${parent}`);
      continue;
    }
    const expected = when[parent];
    const values = Array.isArray(expected) ? expected : [expected];
    if (values.length === 0) err(f, 'INVALID_LENGTH', 'the list of accepted values must not be empty');
    values.forEach((v, i) => {
      const vf = Array.isArray(expected) ? `${f}.${i}` : f;
      if (!isScalar(v)) err(vf, 'INVALID_TYPE', 'a condition value is a string, number or boolean');
      else if (parentSpec.type === 'categorical') {
        if (!parentSpec.choices.some((c) => choiceKey(c) === choiceKey(v))) {
          err(vf, 'INVALID_VALUE', `${String(v)} is not one of ${parent}'s choices`);
        }
      } else if (typeof v !== 'number') err(vf, 'INVALID_TYPE', `${parent} is numeric`);
    });
  }
}

/** The first parameter found on a cycle of conditions, or null. */
function findCycle(space: Space): string | null {
  const state = new Map<string, 1 | 2>();
  const visit = (n: string): string | null => {
    const s = state.get(n);
    if (s === 2) return null;
    if (s === 1) return n;
    state.set(n, 1);
    for (const parent of Object.keys(space[n]?.when ?? {})) {
      const c = visit(parent);
      if (c !== null) return c;
    }
    state.set(n, 2);
    return null;
  };
  for (const n of Object.keys(space)) {
    const c = visit(n);
    if (c !== null) return c;
  }
  return null;
}

/** Distinguishes `1` from `'1'` and `true` from `'true'` when comparing choices. */
export function choiceKey(v: ParamValue): string {
  return `${typeof v}:${String(v)}`;
}

/** Which parameters are active for these values (conditions resolved in dependency order). */
export function isActive(space: Space, name: string, params: Params): boolean {
  return activeIn(space, name, params, 0);
}

function activeIn(space: Space, name: string, params: Params, depth: number): boolean {
  const spec = space[name];
  if (spec === undefined || depth > Object.keys(space).length) return false;
  if (spec.when === undefined) return true;
  for (const [parent, expected] of Object.entries(spec.when)) {
    if (!activeIn(space, parent, params, depth + 1)) return false;
    const v = params[parent];
    if (v === undefined) return false;
    const accepted = Array.isArray(expected) ? expected : [expected];
    if (!accepted.some((a) => choiceKey(a) === choiceKey(v))) return false;
  }
  return true;
}

/** Parameter names with every parent before its children (declaration order otherwise). */
export function dependencyOrder(space: Space): string[] {
  const out: string[] = [];
  const done = new Set<string>();
  const visit = (n: string, depth: number): void => {
    if (done.has(n) || depth > Object.keys(space).length) return;
    for (const parent of Object.keys(space[n]?.when ?? {})) visit(parent, depth + 1);
    if (!done.has(n)) {
      done.add(n);
      out.push(n);
    }
  };
  for (const n of Object.keys(space)) visit(n, 0);
  return out;
}

/** Removes the values of parameters that are inactive given the others (and unknown names). */
export function pruneInactive(space: Space, params: Params): Params {
  const out: Params = {};
  for (const name of dependencyOrder(space)) {
    const v = params[name];
    if (v !== undefined && isActive(space, name, out)) out[name] = v;
  }
  return out;
}

// ---- numeric encoding: each numeric parameter maps to [0, 1] (log-scaled when log: true) ----

/** The highest value reachable from low by whole steps, so step grids never overshoot high. */
function steppedHigh(spec: NumericSpec): number {
  if (spec.step === undefined) return spec.high;
  return spec.low + Math.floor((spec.high - spec.low) / spec.step + 1e-9) * spec.step;
}

/** Bounds of the internal scale: log(low..high) on a log scale; ints widened by ½ each side. */
function internalBounds(spec: NumericSpec): [number, number] {
  const high = steppedHigh(spec);
  if (spec.log === true) {
    if (spec.type === 'int') return [Math.log(spec.low - 0.5), Math.log(high + 0.5)];
    return [Math.log(spec.low), Math.log(high)];
  }
  if (spec.type === 'int' || spec.step !== undefined) {
    const half = (spec.step ?? 1) / 2;
    return [spec.low - half, high + half];
  }
  return [spec.low, high];
}

/** Maps a value of a numeric parameter to [0, 1] on its (log) scale. */
export function toUnit(spec: NumericSpec, value: number): number {
  const [a, b] = internalBounds(spec);
  if (b === a) return 0.5;
  const x = spec.log === true ? Math.log(Math.max(value, Number.MIN_VALUE)) : value;
  return Math.min(1, Math.max(0, (x - a) / (b - a)));
}

/** Maps u in [0, 1] back to a legal value: clamped, log-scaled, rounded to int/step. */
export function fromUnit(spec: NumericSpec, u: number): number {
  const [a, b] = internalBounds(spec);
  const t = Math.min(1, Math.max(0, Number.isFinite(u) ? u : 0.5));
  let x = a + t * (b - a);
  if (spec.log === true) x = Math.exp(x);
  return roundToSpec(spec, x);
}

/** Snaps a raw number to the parameter's legal set (bounds, int, step). */
export function roundToSpec(spec: NumericSpec, x: number): number {
  const high = steppedHigh(spec);
  let v = Math.min(high, Math.max(spec.low, x));
  if (spec.step !== undefined) {
    v = spec.low + Math.round((v - spec.low) / spec.step) * spec.step;
    v = Math.min(high, Math.max(spec.low, v));
    // Float steps accumulate binary error (0.1 * 3); keep the digits the step itself has.
    if (spec.type === 'float') v = Number(v.toFixed(decimals(spec.step, spec.low)));
  }
  if (spec.type === 'int') v = Math.min(high, Math.max(spec.low, Math.round(v)));
  return v;
}

function decimals(...xs: number[]): number {
  let d = 0;
  for (const x of xs) {
    const s = String(x);
    const e = s.indexOf('e-');
    if (e >= 0) d = Math.max(d, Number(s.slice(e + 2)) + (s.indexOf('.') >= 0 ? e - s.indexOf('.') - 1 : 0));
    else if (s.indexOf('.') >= 0) d = Math.max(d, s.length - s.indexOf('.') - 1);
  }
  return Math.min(15, d);
}

/** The finite set of values of a parameter, or null when it is continuous. */
export function discreteValues(spec: ParamSpec): ParamValue[] | null {
  if (spec.type === 'categorical') return spec.choices;
  if (spec.type === 'float' && spec.step === undefined) return null;
  const step = spec.step ?? 1;
  const n = Math.floor((spec.high - spec.low) / step + 1e-9) + 1;
  if (n > 1_000_000) return null;
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(roundToSpec(spec, spec.low + i * step));
  return out;
}
