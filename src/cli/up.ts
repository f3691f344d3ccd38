import type { Command } from 'commander';
import { type Config, ConfigError, loadConfig } from '../config.js';
import { CliError, EXIT, type GlobalOptions } from './context.js';

interface UpOptions {
  port?: string;
  host?: string;
  databaseUrl?: string;
  workers?: string;
  workerTimeout?: string;
  workerCpu?: string;
  workerMemoryMb?: string;
  workerGpu?: string;
  killGrace?: string;
  logLevel?: string;
  natsUrl?: string;
  natsStream?: string;
  config?: string;
  heartbeatInterval?: string;
  staleAfter?: string;
  unresponsiveAfter?: string;
  heartbeatMinInterval?: string;
  commandVisibilityTimeout?: string;
  slackWebhookUrl?: string;
  pagerdutyRoutingKey?: string;
  pagerdutyUrl?: string;
  alertWebhookUrl?: string;
  alertWebhookSecret?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsClientCa?: string;
  auditExportInterval?: string;
  auditExportDir?: string;
  sweepInterval?: string;
  sweepDir?: string;
  autoTriggerPipeline?: boolean;
  taskLimits?: string;
}

export function registerUp(program: Command, globals: () => GlobalOptions): void {
  program
    .command('up')
    .description('start the controller: API, scheduler, control loops and local workers')
    .option('--port <port>', 'API port (default 7878)')
    .option('--host <host>', 'address to listen on (default 127.0.0.1)')
    .option('--database-url <url>', 'sqlite:<file> or postgres://... (default SQLite in the data dir)')
    .option('--workers <n>', 'embedded local workers (default 1)')
    .option(
      '--worker-timeout <duration>',
      'no heartbeat for this long makes a worker unhealthy (default 60s)',
    )
    .option('--worker-cpu <n>', 'cpu capacity of each embedded worker (default: cores)')
    .option('--worker-memory-mb <n>', 'memory capacity of each embedded worker (default: RAM)')
    .option('--worker-gpu <n>', 'gpu capacity of each embedded worker (default 0)')
    .option('--kill-grace <duration>', 'SIGTERM to SIGKILL grace period (default 10s)')
    .option('--log-level <level>', 'log level (default info)')
    .option('--nats-url <url>', 'NATS JetStream to publish events to and ingest them from (default: off)')
    .option('--nats-stream <name>', 'JetStream stream of published events (default RUNPLANE_EVENTS)')
    .option('--config <file>', 'YAML config file (flags > env RUNPLANE_* > file > defaults)')
    .option('--heartbeat-interval <duration>', 'cadence learners are told to heartbeat at (default 15s)')
    .option('--stale-after <duration>', 'no valid heartbeat for this long: heartbeat_stale (default 45s)')
    .option(
      '--unresponsive-after <duration>',
      'no valid heartbeat for this long: unresponsive (default 135s)',
    )
    .option('--heartbeat-min-interval <duration>', 'heartbeats closer than this get 429 (default 5s)')
    .option(
      '--command-visibility-timeout <duration>',
      'a delivered command not acknowledged within this is delivered again (default 30s)',
    )
    .option('--slack-webhook-url <url>', 'Slack incoming webhook for heartbeat_stale warnings')
    .option('--pagerduty-routing-key <key>', 'PagerDuty Events API v2 routing key (pages unresponsive runs)')
    .option('--pagerduty-url <url>', 'PagerDuty Events API endpoint (default: PagerDuty v2/enqueue)')
    .option('--alert-webhook-url <url>', 'webhook for run terminate, errored and terminate_recommended')
    .option(
      '--alert-webhook-secret <secret>',
      'HMAC-SHA256 key signing alert webhook bodies (prefer RUNPLANE_ALERT_WEBHOOK_SECRET: flags show in ps)',
    )
    .option('--tls-cert <file>', 'serve HTTPS with this PEM certificate (needs --tls-key)')
    .option('--tls-key <file>', 'PEM private key of --tls-cert')
    .option(
      '--tls-client-ca <file>',
      'PEM CA: ask clients for certificates it signed; their fingerprints go into the audit log',
    )
    .option(
      '--audit-export-interval <duration>',
      'how often the audit log is exported (default 1h, 0 = never)',
    )
    .option('--audit-export-dir <dir>', 'where audit exports go (default <data dir>/exports)')
    .option('--sweep-interval <duration>', 'cadence of the sweep controller loop (default 1s)')
    .option('--sweep-dir <dir>', 'sweep job files and trial checkpoints (default <data dir>/sweeps)')
    .option(
      '--auto-trigger-pipeline',
      "a pipeline stage's completion launches the next stage (RUNPLANE_AUTO_TRIGGER_PIPELINE)",
    )
    .option(
      '--task-limits <file>',
      'YAML/JSON file of can_spawn limits per task type, node thresholds and queue limits (RUNPLANE_TASK_LIMITS)',
    )
    .action(async (o: UpOptions) => {
      const flags: Partial<Record<keyof Config, string>> = {};
      const set = (k: keyof Config, v: string | undefined) => {
        if (v !== undefined) flags[k] = v;
      };
      set('port', o.port);
      set('host', o.host);
      // --data-dir is a global option: the CLI's other commands read admin.token from there.
      set('dataDir', globals().dataDir);
      set('databaseUrl', o.databaseUrl);
      set('workers', o.workers);
      set('workerTimeoutMs', o.workerTimeout);
      set('workerCpu', o.workerCpu);
      set('workerMemoryMb', o.workerMemoryMb);
      set('workerGpu', o.workerGpu);
      set('killGraceMs', o.killGrace);
      set('logLevel', o.logLevel);
      set('natsUrl', o.natsUrl);
      set('natsStream', o.natsStream);
      set('heartbeatIntervalMs', o.heartbeatInterval);
      set('staleAfterMs', o.staleAfter);
      set('unresponsiveAfterMs', o.unresponsiveAfter);
      set('heartbeatMinIntervalMs', o.heartbeatMinInterval);
      set('commandVisibilityTimeoutMs', o.commandVisibilityTimeout);
      set('slackWebhookUrl', o.slackWebhookUrl);
      set('pagerdutyRoutingKey', o.pagerdutyRoutingKey);
      set('pagerdutyUrl', o.pagerdutyUrl);
      set('alertWebhookUrl', o.alertWebhookUrl);
      set('alertWebhookSecret', o.alertWebhookSecret);
      set('tlsCert', o.tlsCert);
      set('tlsKey', o.tlsKey);
      set('tlsClientCa', o.tlsClientCa);
      set('auditExportIntervalMs', o.auditExportInterval);
      set('auditExportDir', o.auditExportDir);
      set('sweepIntervalMs', o.sweepInterval);
      set('sweepDir', o.sweepDir);
      set('taskLimitsFile', o.taskLimits);
      if (o.autoTriggerPipeline) flags.autoTriggerPipeline = 'true';
      let config: Config;
      try {
        config = loadConfig(flags, process.env, o.config);
      } catch (err) {
        if (err instanceof ConfigError) throw new CliError(err.message, EXIT.usage);
        throw err;
      }
      // Loaded here, not at the top: every other command (a worker above all, whose spawns cost
      // more the larger its process is) then starts without the controller's modules.
      const { startController } = await import('../runtime.js');
      const ctl = await startController(config);
      process.stderr.write(
        `runplane is up at ${ctl.url}  (store: ${ctl.store.description}, workers: ${config.workers})\n` +
          (ctl.adminTokenPath
            ? `admin token: ${ctl.adminTokenPath}  (the CLI reads it from there)\n`
            : 'admin token: RUNPLANE_ADMIN_TOKEN\n'),
      );
      let stopping = false;
      const shutdown = (signal: string) => {
        if (stopping) return;
        stopping = true;
        process.stderr.write(`${signal}: stopping runplane\n`);
        ctl.stop().then(
          () => process.exit(0),
          (err: unknown) => {
            process.stderr.write(`shutdown failed: ${String(err)}\n`);
            process.exit(1);
          },
        );
      };
      process.on('SIGINT', () => shutdown('SIGINT'));
      process.on('SIGTERM', () => shutdown('SIGTERM'));
      // Runs until a signal arrives.
      await new Promise<never>(() => {});
    });
}
