import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import { registerTokenRoutes } from './auth/routes.js';
import { TokenService } from './auth/token-service.js';
import { ADMIN_TOKEN_FILE, type Config } from './config.js';
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
import { WorkerAgent } from './worker/agent.js';
import { LocalLink } from './worker/link.js';

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

  const agents: WorkerAgent[] = [];
  const link = new LocalLink(workers, config.publicUrl ?? url);
  for (let i = 0; i < config.workers; i++) {
    const name = `${hostname()}-local-${i + 1}`;
    const agent = new WorkerAgent(
      link,
      {
        name,
        capacity: { cpu: config.workerCpu, memory_mb: config.workerMemoryMb, gpu: config.workerGpu },
        deviceType: null,
        labels: { embedded: 'true' },
        address: null,
        workDir: join(config.dataDir, 'workers', name),
        killGraceMs: config.killGraceMs,
      },
      log.child({ worker: name }),
    );
    await agent.start();
    agents.push(agent);
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
      await Promise.all(agents.map((a) => a.stop()));
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
  if (existsSync(path)) {
    await tokens.ensure(readFileSync(path, 'utf8').trim(), 'admin', 'admin (data dir)');
    return path;
  }
  const { token } = await tokens.create('admin', 'admin (data dir)');
  writeFileSync(path, `${token}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
  return path;
}
