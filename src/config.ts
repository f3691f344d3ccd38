import { existsSync, readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { parseDuration } from './shared/duration.js';

/** Where `runplane up` writes its first admin token, inside the data dir. */
export const ADMIN_TOKEN_FILE = 'admin.token';
/** The token `runplane up` gives its local worker processes. */
export const WORKER_TOKEN_FILE = 'worker.token';

/** One typed configuration for `runplane up`: flags > env RUNPLANE_* > config file > defaults. */
export interface Config {
  host: string;
  port: number;
  dataDir: string;
  databaseUrl: string;
  /** Embedded local workers started with the controller. */
  workers: number;
  workerCpu: number;
  workerMemoryMb: number;
  workerGpu: number;
  workerTimeoutMs: number;
  workerHeartbeatMs: number;
  killGraceMs: number;
  logLevel: string;
  adminToken: string | null;
  /** URL the controller advertises to jobs (RUNPLANE_CONTROLLER_URL). */
  publicUrl: string | null;
  /** Cadence learners are told to heartbeat at (the seed's 15 s). */
  heartbeatIntervalMs: number;
  /** No valid heartbeat for this long makes a run heartbeat_stale. */
  staleAfterMs: number;
  /** No valid heartbeat for this long makes a run unresponsive. */
  unresponsiveAfterMs: number;
  /** A heartbeat sooner than this after the last accepted one is refused with 429. */
  heartbeatMinIntervalMs: number;
  /** A delivered command not acknowledged within this is delivered again. */
  commandVisibilityTimeoutMs: number;
  /** How often the audit log is exported (0 = never automatically). */
  auditExportIntervalMs: number;
  /** Where audit exports go, laid out as object storage (audit/YYYY/MM/DD/HH.ndjson). */
  auditExportDir: string;
  /** TLS: server certificate and key (PEM files); with a client CA, client certificates are asked for. */
  tlsCert: string | null;
  tlsKey: string | null;
  tlsClientCa: string | null;
  /** Alert sinks: Slack incoming webhook (heartbeat_stale). */
  slackWebhookUrl: string | null;
  /** PagerDuty Events API v2 routing key (unresponsive) and the endpoint to send to. */
  pagerdutyRoutingKey: string | null;
  pagerdutyUrl: string;
  /** Generic webhook receiving terminate and errored events. */
  alertWebhookUrl: string | null;
}

type Raw = Record<string, string | number | undefined>;

const KEYS: Record<keyof Config, { env: string; file: string }> = {
  host: { env: 'RUNPLANE_HOST', file: 'host' },
  port: { env: 'RUNPLANE_PORT', file: 'port' },
  dataDir: { env: 'RUNPLANE_DATA_DIR', file: 'data_dir' },
  databaseUrl: { env: 'RUNPLANE_DATABASE_URL', file: 'database_url' },
  workers: { env: 'RUNPLANE_WORKERS', file: 'workers' },
  workerCpu: { env: 'RUNPLANE_WORKER_CPU', file: 'worker_cpu' },
  workerMemoryMb: { env: 'RUNPLANE_WORKER_MEMORY_MB', file: 'worker_memory_mb' },
  workerGpu: { env: 'RUNPLANE_WORKER_GPU', file: 'worker_gpu' },
  workerTimeoutMs: { env: 'RUNPLANE_WORKER_TIMEOUT', file: 'worker_timeout' },
  workerHeartbeatMs: { env: 'RUNPLANE_WORKER_HEARTBEAT', file: 'worker_heartbeat' },
  killGraceMs: { env: 'RUNPLANE_KILL_GRACE', file: 'kill_grace' },
  logLevel: { env: 'RUNPLANE_LOG_LEVEL', file: 'log_level' },
  adminToken: { env: 'RUNPLANE_ADMIN_TOKEN', file: 'admin_token' },
  publicUrl: { env: 'RUNPLANE_PUBLIC_URL', file: 'public_url' },
  heartbeatIntervalMs: { env: 'RUNPLANE_HEARTBEAT_INTERVAL', file: 'heartbeat_interval' },
  staleAfterMs: { env: 'RUNPLANE_STALE_AFTER', file: 'stale_after' },
  unresponsiveAfterMs: { env: 'RUNPLANE_UNRESPONSIVE_AFTER', file: 'unresponsive_after' },
  heartbeatMinIntervalMs: { env: 'RUNPLANE_HEARTBEAT_MIN_INTERVAL', file: 'heartbeat_min_interval' },
  commandVisibilityTimeoutMs: {
    env: 'RUNPLANE_COMMAND_VISIBILITY_TIMEOUT',
    file: 'command_visibility_timeout',
  },
  auditExportIntervalMs: { env: 'RUNPLANE_AUDIT_EXPORT_INTERVAL', file: 'audit_export_interval' },
  auditExportDir: { env: 'RUNPLANE_AUDIT_EXPORT_DIR', file: 'audit_export_dir' },
  tlsCert: { env: 'RUNPLANE_TLS_CERT', file: 'tls_cert' },
  tlsKey: { env: 'RUNPLANE_TLS_KEY', file: 'tls_key' },
  tlsClientCa: { env: 'RUNPLANE_TLS_CLIENT_CA', file: 'tls_client_ca' },
  slackWebhookUrl: { env: 'RUNPLANE_SLACK_WEBHOOK_URL', file: 'slack_webhook_url' },
  pagerdutyRoutingKey: { env: 'RUNPLANE_PAGERDUTY_ROUTING_KEY', file: 'pagerduty_routing_key' },
  pagerdutyUrl: { env: 'RUNPLANE_PAGERDUTY_URL', file: 'pagerduty_url' },
  alertWebhookUrl: { env: 'RUNPLANE_ALERT_WEBHOOK_URL', file: 'alert_webhook_url' },
};

export class ConfigError extends Error {}

/**
 * Resolves the configuration. `flags` holds only what was given on the command line
 * (camelCase keys as in Config); `env` is usually process.env.
 */
export function loadConfig(
  flags: Partial<Record<keyof Config, string | number>>,
  env: NodeJS.ProcessEnv = process.env,
  configFile?: string,
): Config {
  const filePath = configFile ?? env.RUNPLANE_CONFIG;
  let file: Raw = {};
  if (filePath) {
    if (!existsSync(filePath)) throw new ConfigError(`config file ${filePath} not found`);
    file = (parseYaml(readFileSync(filePath, 'utf8')) ?? {}) as Raw;
  }
  const pick = (k: keyof Config): string | number | undefined =>
    flags[k] ?? env[KEYS[k].env] ?? file[KEYS[k].file];
  const num = (k: keyof Config, dflt: number, min = 0): number => {
    const v = pick(k);
    if (v === undefined || v === '') return dflt;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min)
      throw new ConfigError(`${KEYS[k].env}: expected a number >= ${min}, got "${v}"`);
    return n;
  };
  const dur = (k: keyof Config, dflt: string): number => {
    const v = pick(k);
    try {
      return parseDuration(v === undefined || v === '' ? dflt : v);
    } catch (e) {
      throw new ConfigError(`${KEYS[k].env}: ${(e as Error).message}`);
    }
  };
  const dataDir = resolve(String(pick('dataDir') ?? '.runplane'));
  const port = num('port', 7878);
  if (!Number.isInteger(port) || port > 65535) throw new ConfigError(`port must be 0-65535, got ${port}`);
  const workerTimeoutMs = dur('workerTimeoutMs', '60s');
  // Workers must beat several times per timeout, or a short --worker-timeout (below the 5s
  // default beat) would call healthy workers silent and fail their running attempts.
  const heartbeatDefault = Math.max(100, Math.min(5000, Math.floor(workerTimeoutMs / 3)));
  const admin = pick('adminToken');
  const publicUrl = pick('publicUrl');
  const optional = (k: keyof Config): string | null => {
    const v = pick(k);
    return v === undefined || v === '' ? null : String(v);
  };
  const staleAfterMs = dur('staleAfterMs', '45s');
  const unresponsiveAfterMs = dur('unresponsiveAfterMs', '135s');
  if (unresponsiveAfterMs < staleAfterMs)
    throw new ConfigError('unresponsive-after must not be shorter than stale-after');
  const tls = { cert: optional('tlsCert'), key: optional('tlsKey') };
  if ((tls.cert === null) !== (tls.key === null))
    throw new ConfigError('TLS needs both a certificate (--tls-cert) and a key (--tls-key)');
  if (optional('tlsClientCa') !== null && tls.cert === null)
    throw new ConfigError('--tls-client-ca needs --tls-cert and --tls-key');
  return {
    host: String(pick('host') ?? '127.0.0.1'),
    port,
    dataDir,
    databaseUrl: String(pick('databaseUrl') ?? `sqlite:${join(dataDir, 'runplane.db')}`),
    workers: Math.floor(num('workers', 1)),
    workerCpu: num('workerCpu', cpus().length),
    workerMemoryMb: Math.floor(num('workerMemoryMb', Math.floor(totalmem() / 1024 / 1024))),
    workerGpu: Math.floor(num('workerGpu', 0)),
    workerTimeoutMs,
    workerHeartbeatMs: dur('workerHeartbeatMs', `${heartbeatDefault}ms`),
    killGraceMs: dur('killGraceMs', '10s'),
    logLevel: String(pick('logLevel') ?? 'info'),
    adminToken: admin === undefined || admin === '' ? null : String(admin),
    publicUrl: publicUrl === undefined || publicUrl === '' ? null : String(publicUrl),
    heartbeatIntervalMs: dur('heartbeatIntervalMs', '15s'),
    staleAfterMs,
    unresponsiveAfterMs,
    heartbeatMinIntervalMs: dur('heartbeatMinIntervalMs', '5s'),
    commandVisibilityTimeoutMs: dur('commandVisibilityTimeoutMs', '30s'),
    auditExportIntervalMs: dur('auditExportIntervalMs', '1h'),
    auditExportDir: resolve(String(pick('auditExportDir') ?? join(dataDir, 'exports'))),
    tlsCert: tls.cert,
    tlsKey: tls.key,
    tlsClientCa: optional('tlsClientCa'),
    slackWebhookUrl: optional('slackWebhookUrl'),
    pagerdutyRoutingKey: optional('pagerdutyRoutingKey'),
    pagerdutyUrl: String(pick('pagerdutyUrl') ?? 'https://events.pagerduty.com/v2/enqueue'),
    alertWebhookUrl: optional('alertWebhookUrl'),
  };
}
