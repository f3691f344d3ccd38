import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import type { Role } from './auth/model.js';
import { registerTokenRoutes } from './auth/routes.js';
import { TokenService } from './auth/token-service.js';
import { ADMIN_TOKEN_FILE, type Config, WORKER_TOKEN_FILE } from './config.js';
import { EventRelay } from './events/relay.js';
import { type App, createApp } from './http/app.js';
import { Metrics } from './http/metrics.js';
import { EndpointService } from './jobs/endpoint-service.js';
import { jobRepo } from './jobs/job-repo.js';
import { JobService } from './jobs/job-service.js';
import { PollWaiters } from './jobs/poll-waiters.js';
import { registerJobRoutes } from './jobs/routes.js';
import { SchedulerLoop } from './jobs/scheduler-loop.js';
import { workerRepo } from './jobs/worker-repo.js';
import { WorkerService } from './jobs/worker-service.js';
import { type Clock, systemClock } from './shared/clock.js';
import { Store } from './store/database.js';
import { VERSION } from './version.js';
import { EmbeddedWorkers } from './worker/embedded.js';

export interface Controller {
  url: string;
  app: App;
  store: Store;
  jobs: JobService;
  workers: WorkerService;
  scheduler: SchedulerLoop;
  tokens: TokenService;
  relay: EventRelay;
  adminTokenPath: string | null;
  stop(): Promise<void>;
}

export interface ControllerDeps {
  clock?: Clock;
  logger?: Logger;
  /** Tests pass a prepared store (e.g. a fresh Postgres schema). */
  store?: Store;
}

/**
 * The composition root of `runplane up`: store and migrations, services, control loops,
 * the HTTP API and the embedded workers. Stops them in reverse order.
 */
export async function startController(config: Config, deps: ControllerDeps = {}): Promise<Controller> {
  const clock = deps.clock ?? systemClock;
  const log = deps.logger ?? pino({ level: config.logLevel, base: { svc: 'runplane' } });
  mkdirSync(config.dataDir, { recursive: true });
  const store = deps.store ?? (await Store.open(config.databaseUrl));
  const applied = await store.migrate();
  if (applied.length > 0) log.info({ migrations: applied }, 'migrations applied');

  const tokens = new TokenService(store, clock);
  const adminTokenPath = await ensureAdminToken(config, tokens);

  const waiters = new PollWaiters();
  let scheduler: SchedulerLoop | null = null;
  const signals = {
    kickScheduler: (full?: boolean) => scheduler?.kick(full),
    wakeWorkers: (ids: Iterable<string>) => waiters.wake(ids),
  };
  const metrics = new Metrics({
    jobsByState: () => jobRepo.countByState(store.db),
    workersByHealth: () => workerRepo.countByHealth(store.db),
  });
  scheduler = new SchedulerLoop(
    store,
    clock,
    log,
    (ids) => waiters.wake(ids),
    (s) => {
      metrics.schedulingPass.observe(s.durationMs / 1000);
      metrics.placements.inc(s.placed);
    },
  );
  const jobs = new JobService(store, clock, signals);
  const workers = new WorkerService(store, clock, log, waiters, signals, {
    workerTimeoutMs: config.workerTimeoutMs,
    heartbeatIntervalMs: config.workerHeartbeatMs,
  });
  const endpoints = new EndpointService(store, clock);
  const relay = new EventRelay(store, clock, log);

  const app = await createApp({ logger: log, tokens, metrics, version: VERSION });
  registerJobRoutes(app, { jobs, workers, endpoints });
  registerTokenRoutes(app, tokens);
  app.get('/healthz', { config: { public: true }, schema: { hide: true } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { config: { public: true }, schema: { hide: true } }, async (_req, reply) => {
    try {
      await store.ping();
      return { status: 'ready', store: store.dialect };
    } catch (err) {
      return reply.status(503).send({ status: 'unavailable', error: (err as Error).message });
    }
  });
  await app.listen({ host: config.host, port: config.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;

  scheduler.start(1000);
  relay.start();
  const healthTimer = setInterval(
    () => {
      workers.sweepHealth().catch((err: unknown) => log.error({ err }, 'health sweep failed'));
    },
    Math.max(200, Math.min(5000, config.workerTimeoutMs / 4)),
  );

  const embedded = new EmbeddedWorkers(
    {
      count: config.workers,
      controllerUrl: config.publicUrl ?? url,
      // Only issued when there are local workers to give it to.
      token:
        config.workers > 0
          ? await ensureTokenFile(
              tokens,
              join(config.dataDir, WORKER_TOKEN_FILE),
              'worker',
              'embedded workers',
            )
          : '',
      namePrefix: `${hostname()}-local`,
      cpu: config.workerCpu,
      memoryMb: config.workerMemoryMb,
      gpu: config.workerGpu,
      dataDir: config.dataDir,
      killGrace: `${config.killGraceMs}ms`,
      logLevel: config.logLevel,
    },
    log,
  );
  try {
    await embedded.start();
  } catch (err) {
    await embedded.stop();
    throw err;
  }

  let stopped = false;
  return {
    url,
    app,
    store,
    jobs,
    workers,
    scheduler,
    tokens,
    relay,
    adminTokenPath,
    async stop() {
      if (stopped) return;
      stopped = true;
      await embedded.stop();
      clearInterval(healthTimer);
      await app.close();
      await scheduler?.stop();
      await relay.stop();
      if (!deps.store) await store.close();
    },
  };
}

/**
 * The first start writes an admin token into the data dir (mode 0600) unless
 * RUNPLANE_ADMIN_TOKEN is set; either way that secret is made valid in the store.
 */
async function ensureAdminToken(config: Config, tokens: TokenService): Promise<string | null> {
  if (config.adminToken) {
    await tokens.ensure(config.adminToken, 'admin', 'admin (RUNPLANE_ADMIN_TOKEN)');
    return null;
  }
  const path = join(config.dataDir, ADMIN_TOKEN_FILE);
  await ensureTokenFile(tokens, path, 'admin', 'admin (data dir)');
  return path;
}

/** A token kept in a file of the data dir (mode 0600): read it back, or issue and write it. */
async function ensureTokenFile(
  tokens: TokenService,
  path: string,
  role: Role,
  name: string,
): Promise<string> {
  if (existsSync(path)) {
    const secret = readFileSync(path, 'utf8').trim();
    await tokens.ensure(secret, role, name);
    return secret;
  }
  const { token } = await tokens.create(role, name);
  writeFileSync(path, `${token}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
  return token;
}
