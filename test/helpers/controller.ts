import pino from 'pino';
import { RunplaneClient } from '../../src/client/client.js';
import { type Config, loadConfig } from '../../src/config.js';
import { type Controller, type ControllerDeps, startController } from '../../src/runtime.js';
import { type DialectUnderTest, freshStore, type TestStore } from './store.js';

export const ADMIN = 'rp_test_admin_token_0123456789abcdef';

export interface TestController {
  ctl: Controller;
  ts: TestStore;
  admin: RunplaneClient;
  config: Config;
  /** A client holding a new token of the given role. */
  as(role: 'admin' | 'operator' | 'viewer' | 'worker'): Promise<RunplaneClient>;
  close(): Promise<void>;
}

/**
 * A real controller on a random port over a fresh database (SQLite file or Postgres
 * schema), with no embedded worker unless asked.
 */
export async function startTestController(
  dialect: DialectUnderTest,
  overrides: Partial<Record<keyof Config, string | number>> = {},
  deps: Omit<ControllerDeps, 'store'> = {},
): Promise<TestController> {
  const ts = await freshStore(dialect);
  const config = loadConfig(
    {
      port: 0,
      workers: 0,
      dataDir: ts.dir,
      // The store is handed over ready-made; the URL still tells the controller where it is (the
      // leader lock opens its own Postgres session there).
      databaseUrl: ts.schema ? `${ts.url}?schema=${ts.schema}` : ts.url,
      adminToken: ADMIN,
      killGraceMs: '2s',
      ...overrides,
    },
    {},
  );
  const ctl = await startController(config, {
    logger: pino({ level: process.env.RUNPLANE_TEST_LOG ?? 'silent' }),
    ...deps,
    store: ts.store,
  });
  const admin = new RunplaneClient(ctl.url, ADMIN);
  return {
    ctl,
    ts,
    admin,
    config,
    async as(role) {
      const { token } = await admin.createToken(role);
      return new RunplaneClient(ctl.url, token);
    },
    async close() {
      await ctl.stop();
      await ts.cleanup();
    },
  };
}

/** Polls until check() returns a value (not undefined/false) or the deadline passes. */
export async function eventually<T>(
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 20_000,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`condition not met within ${timeoutMs}ms${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
