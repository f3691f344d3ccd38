import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ApiError, RunplaneClient } from '../client/client.js';
import { ADMIN_TOKEN_FILE } from '../config.js';

/** Exit codes scripts can rely on. */
export const EXIT = {
  ok: 0,
  failed: 1,
  usage: 2,
  notFound: 3,
  auth: 4,
  conflict: 5,
  invalid: 6,
  unreachable: 7,
} as const;

export interface GlobalOptions {
  url?: string;
  token?: string;
  dataDir?: string;
}

/**
 * Finds the controller and a token: --url / RUNPLANE_URL (default http://127.0.0.1:7878);
 * --token / RUNPLANE_TOKEN, else the admin token `runplane up` wrote into the data dir.
 */
export function clientFrom(opts: GlobalOptions): RunplaneClient {
  const url = opts.url ?? process.env.RUNPLANE_URL ?? 'http://127.0.0.1:7878';
  let token = opts.token ?? process.env.RUNPLANE_TOKEN ?? null;
  if (!token) {
    const file = join(
      resolve(opts.dataDir ?? process.env.RUNPLANE_DATA_DIR ?? '.runplane'),
      ADMIN_TOKEN_FILE,
    );
    if (existsSync(file)) token = readFileSync(file, 'utf8').trim();
  }
  return new RunplaneClient(url, token);
}

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

/** Maps an API error to a message and an exit code. */
export function exitCodeFor(err: unknown): { message: string; code: number } {
  if (err instanceof CliError) return { message: err.message, code: err.exitCode };
  if (err instanceof ApiError) {
    const details = err.details.map((d) => `\n  ${d.field}: ${d.message} (${d.code})`).join('');
    const message = `${err.code}: ${err.message}${details}`;
    if (err.status === 0) return { message, code: EXIT.unreachable };
    if (err.status === 404) return { message, code: EXIT.notFound };
    if (err.status === 401 || err.status === 403) return { message, code: EXIT.auth };
    if (err.status === 409) return { message, code: EXIT.conflict };
    if ([400, 413, 415, 422].includes(err.status)) return { message, code: EXIT.invalid };
    return { message, code: EXIT.failed };
  }
  return { message: (err as Error).message ?? String(err), code: EXIT.failed };
}

/** Parses repeated `key=value` options into an object. */
export function keyValues(items: readonly string[] | undefined, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of (items ?? []).flatMap((s) => s.split(','))) {
    if (item === '') continue;
    const i = item.indexOf('=');
    if (i <= 0) throw new CliError(`${what} must be key=value, got "${item}"`, EXIT.usage);
    out[item.slice(0, i)] = item.slice(i + 1);
  }
  return out;
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function number(what: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n)) throw new CliError(`${what} must be a number, got "${value}"`, EXIT.usage);
    return n;
  };
}
