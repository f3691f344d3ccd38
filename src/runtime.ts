import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import { AlertSinks } from './alerting/alert-sinks.js';
import { registerAlertRoutes } from './alerting/routes.js';
import type { Role } from './auth/model.js';
import { registerTokenRoutes } from './auth/routes.js';
import { TokenService } from './auth/token-service.js';
import { controllerComponents } from './cluster/controller-loops.js';
import { assessHealth } from './cluster/health.js';
import { LeaderElector } from './cluster/leader-elector.js';
import { leaderLockFor } from './cluster/leader-lock-for.js';
import { registerLeaderGauge } from './cluster/leader-metrics.js';
import { registerHealthRoutes } from './cluster/routes.js';
import { ADMIN_TOKEN_FILE, type Config, WORKER_TOKEN_FILE } from './config.js';
import { type Coordination, createCoordination } from './coordination/system.js';
import type { EventRelay } from './events/relay.js';
import { createEventSystem, type EventSystem } from './events/system.js';
import { type App, createApp } from './http/app.js';
import { registerDashboard } from './http/dashboard.js';
import { Metrics } from './http/metrics.js';
import { EndpointService } from './jobs/endpoint-service.js';
import { jobRepo } from './jobs/job-repo.js';
import { JobService } from './jobs/job-service.js';
import { PollWaiters } from './jobs/poll-waiters.js';
import { registerJobRoutes } from './jobs/routes.js';
import { SchedulerLoop } from './jobs/scheduler-loop.js';
import { workerRepo } from './jobs/worker-repo.js';
import { WorkerService } from './jobs/worker-service.js';
import { PodLoop } from './pods/pod-loop.js';
import { PodService } from './pods/pod-service.js';
import { registerPodRoutes } from './pods/routes.js';
import { registerAuditRoutes } from './runs/audit-routes.js';
import { AuditService } from './runs/audit-service.js';
import { CommandService } from './runs/command-service.js';
import { CommandWaiters } from './runs/command-waiters.js';
import { HeartbeatService } from './runs/heartbeat-service.js';
import { LivenessMonitor } from './runs/liveness-monitor.js';
import { registerRunRoutes } from './runs/routes.js';
import { runRepo } from './runs/run-repo.js';
import { RunService } from './runs/run-service.js';
import { StatusStream } from './runs/status-stream.js';
import { type Clock, systemClock } from './shared/clock.js';
import { newId } from './shared/ids.js';
import { Store } from './store/database.js';
import { SweepController } from './sweeps/controller.js';
import type { Dispatcher } from './sweeps/dispatchers/dispatcher.js';
import { LocalDispatcher } from './sweeps/dispatchers/local.js';
import { SlurmDispatcher } from './sweeps/dispatchers/slurm.js';
import { WorkersDispatcher } from './sweeps/dispatchers/workers.js';
import { registerSweepRoutes } from './sweeps/routes.js';
import { SweepService } from './sweeps/sweep-service.js';
import { registerHttpTracing } from './tracing/http-tracing.js';
import { Tracing } from './tracing/tracing.js';
import { VERSION } from './version.js';
import { EmbeddedWorkers } from './worker/embedded.js';

/** The sweep controller's lease identity, inside the data dir. */
const CONTROLLER_ID_FILE = 'controller.id';
/** The simulator-role token `runplane up` gives pod simulation jobs, inside the data dir. */
const SIMULATOR_TOKEN_FILE = 'simulator.token';

export interface Controller {
  url: string;
  app: App;
  store: Store;
  jobs: JobService;
  workers: WorkerService;
  scheduler: SchedulerLoop;
  tokens: TokenService;
  relay: EventRelay;
  /** Event router, dead-letter queue and NATS transport (relay is events.relay). */
  events: EventSystem;
  runs: RunService;
  heartbeats: HeartbeatService;
  commands: CommandService;
  /** The run-status tail behind `GET /stream/runs`. */
  statusStream: StatusStream;
  liveness: LivenessMonitor;
  alerts: AlertSinks;
  audit: AuditService;
  pods: PodService;
  podLoop: PodLoop;
  sweeps: SweepService;
  sweepLoop: SweepController;
  /** Pipelines, models, can_spawn and queue monitors. */
  coordination: Coordination;
  /** Leader election across replicas; the leader-only loops follow it. */
  leader: LeaderElector;
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
  let coordination: Coordination | null = null;
  let scheduler: SchedulerLoop | null = null;
  const signals = {
    kickScheduler: (full?: boolean) => scheduler?.kick(full),
    wakeWorkers: (ids: Iterable<string>) => waiters.wake(ids),
  };
  const metrics = new Metrics({
    jobsByState: () => jobRepo.countByState(store.db),
    workersByHealth: () => workerRepo.countByHealth(store.db),
    runsByStatusHealth: () => runRepo.countByStatusHealth(store.db),
    queueReadings: () => coordination?.queueReadings() ?? Promise.resolve([]),
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
  const runs = new RunService(store, clock, tokens, { heartbeatIntervalMs: config.heartbeatIntervalMs });
  const jobs = new JobService(store, clock, signals, runs);
  const workers = new WorkerService(store, clock, log, waiters, signals, {
    workerTimeoutMs: config.workerTimeoutMs,
    heartbeatIntervalMs: config.workerHeartbeatMs,
  });
  const endpoints = new EndpointService(store, clock);
  const events = createEventSystem(store, clock, log, config);
  const relay = events.relay;
  const heartbeats = new HeartbeatService(
    store,
    clock,
    { minIntervalMs: config.heartbeatMinIntervalMs, intervalMs: config.heartbeatIntervalMs },
    (ids) => metrics.heartbeats.inc(ids.length),
  );
  const commandWaiters = new CommandWaiters();
  const commands = new CommandService(store, clock, commandWaiters, {
    visibilityTimeoutMs: config.commandVisibilityTimeoutMs,
    // Another replica's write cannot wake this process's long-polls: look again every second.
    recheckMs: store.caps.advisoryLocks ? 1000 : 5000,
  });
  const liveness = new LivenessMonitor(store, clock, log, {
    staleAfterMs: config.staleAfterMs,
    unresponsiveAfterMs: config.unresponsiveAfterMs,
  });
  const statusStream = new StatusStream(store, log);
  await statusStream.start();
  // Runs follow their jobs from the log (durable cursor): a run whose process died never stays running.
  await relay.subscribe('runs.jobs', 'job.state_changed', (ev) => runs.onJobEvent(ev), true);
  const alerts = new AlertSinks(config, clock, log);
  // New subscribers start at the end of the log: turning a sink on does not replay old alerts.
  for (const s of alerts.subscriptions()) await relay.subscribe(s.name, s.pattern, s.handler);

  const audit = new AuditService(store, clock, config, log);

  // Simulation jobs post their games with a simulator-role token (it may do nothing else).
  const simulatorToken = await ensureTokenFile(
    tokens,
    join(config.dataDir, SIMULATOR_TOKEN_FILE),
    'simulator',
    'pod simulation jobs',
  );
  const pods = new PodService(store, clock, jobs, log, { simulatorToken });
  const podLoop = new PodLoop(pods, log);
  // Epoch ends arrive as job events (durable cursor); the loop reconciles any it missed.
  await podLoop.attach(relay);
  const coord = createCoordination(store, clock, log, config, { jobs, events });
  coordination = coord;
  await coord.attach();

  // The sweep controller's dispatchers: runplane's workers, local subprocesses, Slurm.
  let advertisedUrl = config.publicUrl ?? '';
  const sweepDispatchers = new Map<string, Dispatcher>([
    ['workers', new WorkersDispatcher(store, jobs)],
    [
      'local',
      new LocalDispatcher(join(config.sweepDir, 'local'), () => advertisedUrl, {
        killGraceMs: config.killGraceMs,
      }),
    ],
    [
      'slurm',
      new SlurmDispatcher({ dir: join(config.sweepDir, 'slurm'), controllerUrl: () => advertisedUrl }),
    ],
  ]);
  const sweepLoop = new SweepController(store, clock, log, runs, commands, tokens, sweepDispatchers, {
    leaseMs: Math.max(15_000, config.sweepIntervalMs * 10),
    checkpointDir: join(config.sweepDir, 'checkpoints'),
    controllerUrl: () => advertisedUrl,
    owner: controllerIdentity(config.dataDir),
    // Trial jobs obey can_spawn like pipeline stages (task limits, thresholds, backpressure).
    canSpawn: coord.limiter.canSpawn,
  });
  const sweeps = new SweepService(store, clock, () => sweepLoop.kick());

  const tracing = new Tracing({
    endpoint: process.env.OTEL_EXPORTER_OTLP_ENDPOINT || undefined,
    serviceName: 'runplane',
    serviceVersion: VERSION,
  });
  const app = await createApp({ logger: log, tokens, metrics, version: VERSION, https: tlsOptions(config) });
  registerHttpTracing(app, tracing);
  // Loops that must run once across replicas start on election and stop on deposition.
  const leader = new LeaderElector(leaderLockFor(store, config.databaseUrl, log), clock, log);
  const workerHealthEveryMs = Math.max(200, Math.min(5000, config.workerTimeoutMs / 4));
  let healthTimer: NodeJS.Timeout | null = null;
  const components = controllerComponents(
    {
      ping: () => store.ping(),
      events,
      scheduler: { start: () => scheduler?.start(1000), stop: async () => scheduler?.stop() },
      liveness: {
        start: () => liveness.start(Math.max(100, Math.min(1000, Math.floor(config.staleAfterMs / 10)))),
        stop: () => liveness.stop(),
      },
      workerHealth: {
        start: () => {
          healthTimer = setInterval(() => {
            workers.sweepHealth().catch((err: unknown) => log.error({ err }, 'health sweep failed'));
          }, workerHealthEveryMs);
        },
        stop: async () => {
          if (healthTimer) clearInterval(healthTimer);
          healthTimer = null;
        },
      },
      auditExport: { start: () => audit.start(), stop: () => audit.stop() },
      pods: { start: () => podLoop.start(1000), stop: () => podLoop.stop() },
      pipelines: { start: () => coord.start(), stop: () => coord.stop() },
      sweeps: { start: () => sweepLoop.start(config.sweepIntervalMs), stop: () => sweepLoop.stop() },
    },
    log,
  );
  leader.onChange((isLeader) => components.setLeader(isLeader));
  registerLeaderGauge(metrics.registry, () => leader.isLeader());
  registerHealthRoutes(app, () =>
    assessHealth(
      {
        pingStore: () => store.ping(),
        leader: () => leader.status(),
        lifecycle: () => components.status(),
        relayLanes: () => relay.status(),
        nats: () => events.router.transports().nats,
        dlqStats: () => events.dlq.stats(),
        alertSinks: () => alerts.health(),
        jobsByState: () => jobRepo.countByState(store.db),
        workersByHealth: () => workerRepo.countByHealth(store.db),
        coordination: () => coord.health(),
      },
      clock.now(),
    ),
  );
  registerJobRoutes(app, { jobs, workers, endpoints });
  registerAuditRoutes(app, audit);
  registerRunRoutes(app, { runs, heartbeats, commands, stream: statusStream });
  registerTokenRoutes(app, tokens);
  registerAlertRoutes(app, alerts);
  registerPodRoutes(app, pods);
  registerSweepRoutes(app, sweeps);
  events.registerRoutes(app);
  coord.registerRoutes(app);
  // The web UI at `/` (the API stays under /api/v1); its calls go through the same routes and audit.
  registerDashboard(app);
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
  const scheme = config.tlsCert ? 'https' : 'http';
  const url = `${scheme}://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  advertisedUrl = config.publicUrl ?? url;

  await components.start();
  // Resolves once the first try is decided: on a lone controller, its loops are running now.
  await leader.start();

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
    events,
    runs,
    heartbeats,
    commands,
    statusStream,
    liveness,
    alerts,
    audit,
    pods,
    podLoop,
    sweeps,
    sweepLoop,
    coordination: coord,
    leader,
    adminTokenPath,
    async stop() {
      if (stopped) return;
      stopped = true;
      await embedded.stop();
      await statusStream.stop();
      await app.close();
      // Deposes this replica (the leader loops stop in reverse order) and releases the lock.
      await leader.stop();
      await components.stop();
      await events.stop();
      await tracing.shutdown();
      if (!deps.store) await store.close();
    },
  };
}

/** HTTPS from the PEM files of --tls-cert/--tls-key; --tls-client-ca asks clients for certificates. */
function tlsOptions(config: Config) {
  if (!config.tlsCert || !config.tlsKey) return null;
  return {
    cert: readFileSync(config.tlsCert),
    key: readFileSync(config.tlsKey),
    ...(config.tlsClientCa ? { ca: readFileSync(config.tlsClientCa) } : {}),
    requestCert: config.tlsClientCa !== null,
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

/** This installation's identity, kept in its data dir (sweep leases survive its restarts). */
function controllerIdentity(dataDir: string): string {
  const path = join(dataDir, CONTROLLER_ID_FILE);
  if (existsSync(path)) return readFileSync(path, 'utf8').trim();
  const id = `${hostname()}:${newId('ctl')}`;
  writeFileSync(path, `${id}\n`);
  return id;
}
