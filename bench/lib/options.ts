/**
 * Command-line flags of the benchmarks: one strict parser (an unknown flag is an error) and typed
 * readers that validate each value and name the flag in their error. A {@link UsageError} makes
 * bench/run.ts print the message and the benchmark's usage, and exit with status 2.
 */
import { parseArgs } from 'node:util';
import type { Dialect } from './bench-db.js';

/** A bad flag or value: reported with the benchmark's usage text, exit status 2. */
export class UsageError extends Error {}

type Kind = 'string' | 'boolean';
type Spec = Record<string, Kind>;
type NamesOf<S extends Spec, K extends Kind> = { [N in keyof S]: S[N] extends K ? N : never }[keyof S] &
  string;

const DIALECT_CHOICES = ['sqlite', 'postgres', 'both'] as const;
export type DialectChoice = (typeof DIALECT_CHOICES)[number];

/** The parsed flags of one benchmark; each reader validates its flag's value. */
export class Flags<S extends Spec> {
  constructor(private readonly values: Readonly<Record<string, string | boolean | undefined>>) {}

  /** The raw text of a string flag, undefined when it was not given. */
  str(name: NamesOf<S, 'string'>): string | undefined {
    const v = this.values[name];
    return typeof v === 'string' ? v : undefined;
  }

  /** Whether a boolean flag was given. */
  bool(name: NamesOf<S, 'boolean'>): boolean {
    return this.values[name] === true;
  }

  /** An integer >= `min` (default 1), `dflt` when the flag was not given. */
  int(name: NamesOf<S, 'string'>, dflt: number, min = 1): number {
    const v = this.str(name);
    return v === undefined ? dflt : intValue(name, v, min);
  }

  /** A finite number accepted by `ok`, `dflt` when the flag was not given. */
  num(name: NamesOf<S, 'string'>, dflt: number, ok: (n: number) => boolean): number {
    const v = this.str(name);
    if (v === undefined) return dflt;
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || !ok(n))
      throw new UsageError(`--${name}: invalid value "${v}"`);
    return n;
  }

  /** A comma-separated list (blank items dropped), `dflt` when the flag was not given. */
  list(name: NamesOf<S, 'string'>, dflt: readonly string[]): string[] {
    const v = this.str(name);
    if (v === undefined) return [...dflt];
    return v
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
  }

  /** A comma-separated list of integers >= `min`, `dflt` when the flag was not given. */
  intList(name: NamesOf<S, 'string'>, dflt: readonly number[], min = 1): number[] {
    const v = this.str(name);
    if (v === undefined) return [...dflt];
    return this.list(name, []).map((s) => intValue(name, s, min));
  }

  /** `--dialect sqlite | postgres | both` as the stores to measure, in that order. */
  dialects(name: NamesOf<S, 'string'>, dflt: DialectChoice): Dialect[] {
    const choice = this.str(name) ?? dflt;
    if (!(DIALECT_CHOICES as readonly string[]).includes(choice))
      throw new UsageError(`--${name}: sqlite, postgres or both, not "${choice}"`);
    return choice === 'both' ? ['sqlite', 'postgres'] : [choice as Dialect];
  }
}

function intValue(name: string, v: string, min: number): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < min)
    throw new UsageError(`--${name}: expected an integer >= ${min}, got "${v}"`);
  return n;
}

/**
 * Parses `argv` against `spec` (flag name -> 'string' | 'boolean'). Unknown flags, positional
 * arguments and a string flag without its value are usage errors.
 */
export function parseFlags<const S extends Spec>(argv: readonly string[], spec: S): Flags<S> {
  const options: Record<string, { type: Kind }> = {};
  for (const [name, type] of Object.entries(spec)) options[name] = { type };
  try {
    const { values } = parseArgs({ args: [...argv], strict: true, allowPositionals: false, options });
    return new Flags<S>(values);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}
