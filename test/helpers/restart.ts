/**
 * Set-up shared by the crash-and-restart end-to-end suites: a `runplane up` on a fixed port and
 * data dir, so that it can be killed with SIGKILL and started again in the same place, with two
 * `runplane worker`s; and the registration of a scenario on each store (SQLite always, Postgres
 * in a fresh schema when it is reachable), with processes and schemas cleaned up after each test.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, expect, it } from 'vitest';
import { RunplaneClient } from '../../src/client/client.js';
import {
  type CliResult,
  cleanup,
  cliAs,
  freePort,
  startUp,
  startWorker,
  tempDir,
  type UpOptions,
  type UpProcess,
  type WorkerOptions,
  type WorkerProcess,
} from './processes.js';
import { PG_URL, serviceAvailable } from './services.js';
import { dropSchema } from './store.js';

const pgOk = await serviceAvailable('postgres');

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Names of the two workers {@link startRestartableUp} starts. */
export const WORKER_NAMES = ['e2e-a', 'e2e-b'] as const;

export interface RestartableUp {
  /** The running `runplane up` (replaced by {@link RestartableUp.restart}). */
  up: UpProcess;
  /** The CLI as admin of this controller (the URL stays the same across restarts). */
  cli: (args: string[]) => Promise<CliResult>;
  /** An admin client of this controller (the URL stays the same across restarts). */
  client: RunplaneClient;
  /** The two workers, registered with a worker token created through the CLI. */
  workers: WorkerProcess[];
  /** Starts `runplane up` again on the same port, data dir and store (after `up.kill9()`). */
  restart(): Promise<UpProcess>;
}

/**
 * Starts `runplane up` on a free port and a fresh data dir (`dataDirPrefix`), creates a worker
 * token through the CLI and starts two workers with it.
 */
export async function startRestartableUp(opts: {
  dataDirPrefix: string;
  workerTimeout: string;
  databaseUrl?: string | undefined;
  worker?: WorkerOptions;
}): Promise<RestartableUp> {
  const upOpts: UpOptions = {
    port: await freePort(),
    dataDir: tempDir(opts.dataDirPrefix),
    workerTimeout: opts.workerTimeout,
    ...(opts.databaseUrl ? { databaseUrl: opts.databaseUrl } : {}),
  };
  const up = await startUp(upOpts);
  const cli = cliAs(up.url, up.adminToken);
  const token = await cli(['token', 'create', '--role', 'worker']);
  expect(token.code, token.stderr).toBe(0);
  const workers = await Promise.all(
    WORKER_NAMES.map((name) => startWorker(up.url, token.stdout.trim(), name, opts.worker)),
  );
  const cluster: RestartableUp = {
    up,
    cli,
    client: new RunplaneClient(up.url, up.adminToken),
    workers,
    restart: async () => {
      cluster.up = await startUp(upOpts);
      return cluster.up;
    },
  };
  return cluster;
}

/**
 * Registers `scenario` as two tests of the enclosing describe: `<name> (SQLite)`, and
 * `<name> (Postgres)` in a fresh schema when Postgres is reachable (skipped otherwise). After each
 * test the processes it started are killed and its schema is dropped.
 */
export function itOnEachStore(
  name: string,
  scenario: (databaseUrl?: string) => Promise<void>,
  timeoutMs: number,
): void {
  const schemas: string[] = [];
  afterEach(async () => {
    await cleanup();
    for (const schema of schemas.splice(0)) await dropSchema(schema);
  });
  it(`${name} (SQLite)`, () => scenario(), timeoutMs);
  it.skipIf(!pgOk)(
    `${name} (Postgres)`,
    async () => {
      const schema = `e2e_${randomUUID().replaceAll('-', '').slice(0, 16)}`;
      schemas.push(schema);
      await scenario(`${PG_URL}?schema=${schema}`);
    },
    timeoutMs,
  );
}
