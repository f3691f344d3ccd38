import { existsSync, readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import {
  describeLimitErrors,
  parseLimitsFile,
  type TaskLimitsFile,
  validateLimits,
} from './coordination/limits-file.js';
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
  /** NATS JetStream (off when null): the relay publishes the outbox there, ingest subjects feed it. */
  natsUrl: string | null;
  /** JetStream stream of published events; the ingest stream is `<stream>_INGEST`. */
  natsStream: string;
  /** Subjects `<prefix>.events.<type>` (published) and `<prefix>.ingest.<type>` (external producers). */
  natsSubjectPrefix: string;
  /** Subject of the compact run-status documents (the seed's `run-status`). */
  natsRunStatusSubject: string;
  /** Same content published again within this window is a duplicate (0 = off). */
  eventDedupWindowMs: number;
  /** In-relay retries of a failing handler before its event is dead-lettered. */
  relayHandlerRetries: number;
  /** Dead-letter queue: retries, backoff min(base * 2^n, max), abandonment age, daemon cadence. */
  dlqMaxRetries: number;
  dlqBaseDelayMs: number;
  dlqMaxDelayMs: number;
  dlqAbandonAfterMs: number;
  dlqRetryIntervalMs: number;
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
  /** When set, alert webhook bodies are signed: X-Runplane-Signature: sha256=<HMAC-SHA256 hex>. */
  alertWebhookSecret: string | null;
  /** Cadence of the sweep controller loop (a round per active sweep). */
  sweepIntervalMs: number;
  /** Sweep files of the local and Slurm dispatchers (logs, exit files) and trial checkpoints. */
  sweepDir: string;
  /** A pipeline stage's completion launches the next stage's job (the seed's auto_trigger_pipeline). */
  autoTriggerPipeline: boolean;
  /** Default circuit breaker of a pipeline: consecutive stage failures that open it, and its cool-down. */
  pipelineFailureThreshold: number;
  pipelineCooldownMs: number;
  /** Cadence of the pipeline coordinator's loop (launch retries, breaker probes). */
  pipelineIntervalMs: number;
  /** can_spawn refuses new tasks on a node above these usages (percent; 0 = not checked). */
  spawnMaxDiskPct: number;
  spawnMaxMemoryPct: number;
  /** 1-minute load average per core, in percent. */
  spawnMaxCpuPct: number;
  /**
   * The task-limits file (YAML or JSON): can_spawn's per-task-type limits and defaults, node
   * thresholds (over the spawnMax* settings) and queue limits. Null: none (built-in defaults).
   */
  taskLimitsFile: string | null;
  /** The task-limits file, validated at load (a bad one is a startup error naming the key). */
  taskLimits: TaskLimitsFile | null;
}

type Raw = Record<string, string | number | undefined>;

/** Settings read from flags, env or file by name (the others are derived from them). */
type Key = Exclude<keyof Config, 'taskLimits'>;

const KEYS: Record<Key, { env: string; file: string }> = {
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
  natsUrl: { env: 'RUNPLANE_NATS_URL', file: 'nats_url' },
  natsStream: { env: 'RUNPLANE_NATS_STREAM', file: 'nats_stream' },
  natsSubjectPrefix: { env: 'RUNPLANE_NATS_SUBJECT_PREFIX', file: 'nats_subject_prefix' },
  natsRunStatusSubject: { env: 'RUNPLANE_NATS_RUN_STATUS_SUBJECT', file: 'nats_run_status_subject' },
  eventDedupWindowMs: { env: 'RUNPLANE_EVENT_DEDUP_WINDOW', file: 'event_dedup_window' },
  relayHandlerRetries: { env: 'RUNPLANE_RELAY_HANDLER_RETRIES', file: 'relay_handler_retries' },
  dlqMaxRetries: { env: 'RUNPLANE_DLQ_MAX_RETRIES', file: 'dlq_max_retries' },
  dlqBaseDelayMs: { env: 'RUNPLANE_DLQ_BASE_DELAY', file: 'dlq_base_delay' },
  dlqMaxDelayMs: { env: 'RUNPLANE_DLQ_MAX_DELAY', file: 'dlq_max_delay' },
  dlqAbandonAfterMs: { env: 'RUNPLANE_DLQ_ABANDON_AFTER', file: 'dlq_abandon_after' },
  dlqRetryIntervalMs: { env: 'RUNPLANE_DLQ_RETRY_INTERVAL', file: 'dlq_retry_interval' },
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
  alertWebhookSecret: { env: 'RUNPLANE_ALERT_WEBHOOK_SECRET', file: 'alert_webhook_secret' },
  sweepIntervalMs: { env: 'RUNPLANE_SWEEP_INTERVAL', file: 'sweep_interval' },
  sweepDir: { env: 'RUNPLANE_SWEEP_DIR', file: 'sweep_dir' },
  autoTriggerPipeline: { env: 'RUNPLANE_AUTO_TRIGGER_PIPELINE', file: 'auto_trigger_pipeline' },
  pipelineFailureThreshold: {
    env: 'RUNPLANE_PIPELINE_FAILURE_THRESHOLD',
    file: 'pipeline_failure_threshold',
  },
  pipelineCooldownMs: { env: 'RUNPLANE_PIPELINE_COOLDOWN', file: 'pipeline_cooldown' },
  pipelineIntervalMs: { env: 'RUNPLANE_PIPELINE_INTERVAL', file: 'pipeline_interval' },
  spawnMaxDiskPct: { env: 'RUNPLANE_SPAWN_MAX_DISK_PCT', file: 'spawn_max_disk_pct' },
  spawnMaxMemoryPct: { env: 'RUNPLANE_SPAWN_MAX_MEMORY_PCT', file: 'spawn_max_memory_pct' },
  spawnMaxCpuPct: { env: 'RUNPLANE_SPAWN_MAX_CPU_PCT', file: 'spawn_max_cpu_pct' },
  taskLimitsFile: { env: 'RUNPLANE_TASK_LIMITS', file: 'task_limits' },
};

export class ConfigError extends Error {}

/** A boolean setting: true/1/yes/on or false/0/no/off (a YAML boolean too); absent is false. */
function bool(v: string | number | boolean | undefined, name: string): boolean {
  if (v === undefined || v === '') return false;
  const t = String(v).toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(t)) return true;
  if (['false', '0', 'no', 'off'].includes(t)) return false;
  throw new ConfigError(`${name}: expected true or false, got "${v}"`);
}

/**
 * Resolves the configuration. `flags` holds only what was given on the command line
 * (camelCase keys as in Config); `env` is usually process.env.
 */
export function loadConfig(
  flags: Partial<Record<Key, string | number>>,
  env: NodeJS.ProcessEnv = process.env,
  configFile?: string,
): Config {
  const filePath = configFile ?? env.RUNPLANE_CONFIG;
  let file: Raw = {};
  if (filePath) {
    if (!existsSync(filePath)) throw new ConfigError(`config file ${filePath} not found`);
    file = (parseYaml(readFileSync(filePath, 'utf8')) ?? {}) as Raw;
  }
  const pick = (k: Key): string | number | undefined => flags[k] ?? env[KEYS[k].env] ?? file[KEYS[k].file];
  const num = (k: Key, dflt: number, min = 0): number => {
    const v = pick(k);
    if (v === undefined || v === '') return dflt;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min)
      throw new ConfigError(`${KEYS[k].env}: expected a number >= ${min}, got "${v}"`);
    return n;
  };
  const dur = (k: Key, dflt: string): number => {
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
  const optional = (k: Key): string | null => {
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
    ...eventsConfig(pick, num, dur, optional),
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
    alertWebhookSecret: optional('alertWebhookSecret'),
    sweepIntervalMs: dur('sweepIntervalMs', '1s'),
    sweepDir: resolve(String(pick('sweepDir') ?? join(dataDir, 'sweeps'))),
    autoTriggerPipeline: bool(pick('autoTriggerPipeline'), KEYS.autoTriggerPipeline.env),
    pipelineFailureThreshold: Math.max(1, Math.floor(num('pipelineFailureThreshold', 3, 1))),
    pipelineCooldownMs: dur('pipelineCooldownMs', '5m'),
    pipelineIntervalMs: dur('pipelineIntervalMs', '1s'),
    spawnMaxDiskPct: num('spawnMaxDiskPct', 95),
    spawnMaxMemoryPct: num('spawnMaxMemoryPct', 95),
    spawnMaxCpuPct: num('spawnMaxCpuPct', 0),
    ...taskLimitsConfig(flags.taskLimitsFile ?? env[KEYS.taskLimitsFile.env], file[KEYS.taskLimitsFile.file]),
  };
}

/**
 * The task-limits file named by the flag or env (a path), or by the config file's `task_limits`
 * (a path, or the limits written inline as a mapping), read and validated now: a bad file stops
 * the start with every bad key named.
 */
function taskLimitsConfig(
  given: string | number | undefined,
  inFile: unknown,
): Pick<Config, 'taskLimitsFile' | 'taskLimits'> {
  const key = KEYS.taskLimitsFile.file;
  const fail = (errors: Parameters<typeof describeLimitErrors>[0], where: string) =>
    new ConfigError(`${key}: ${describeLimitErrors(errors)} (in ${where})`);
  if ((given === undefined || given === '') && inFile !== null && typeof inFile === 'object') {
    const checked = validateLimits(inFile);
    if (!checked.ok) throw fail(checked.errors, 'the config file');
    return { taskLimitsFile: null, taskLimits: checked.limits };
  }
  const v = given ?? (typeof inFile === 'string' || typeof inFile === 'number' ? inFile : undefined);
  if (v === undefined || v === '') return { taskLimitsFile: null, taskLimits: null };
  const path = resolve(String(v));
  if (!existsSync(path)) throw new ConfigError(`${key}: file ${path} not found`);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`${key}: cannot read ${path}: ${(err as Error).message}`);
  }
  const parsed = parseLimitsFile(text);
  if (!parsed.ok) throw fail(parsed.errors, path);
  return { taskLimitsFile: path, taskLimits: parsed.limits };
}

/** The event router's part of the configuration (NATS, dedup, dead-letter queue), validated. */
function eventsConfig(
  pick: (k: Key) => string | number | undefined,
  num: (k: Key, dflt: number, min?: number) => number,
  dur: (k: Key, dflt: string) => number,
  optional: (k: Key) => string | null,
): Pick<
  Config,
  | 'natsUrl'
  | 'natsStream'
  | 'natsSubjectPrefix'
  | 'natsRunStatusSubject'
  | 'eventDedupWindowMs'
  | 'relayHandlerRetries'
  | 'dlqMaxRetries'
  | 'dlqBaseDelayMs'
  | 'dlqMaxDelayMs'
  | 'dlqAbandonAfterMs'
  | 'dlqRetryIntervalMs'
> {
  const natsStream = String(pick('natsStream') ?? 'RUNPLANE_EVENTS');
  if (!/^[A-Za-z0-9_-]{1,200}$/.test(natsStream))
    throw new ConfigError(`${KEYS.natsStream.env}: letters, digits, _ and - only, got "${natsStream}"`);
  const subject = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;
  const natsSubjectPrefix = String(pick('natsSubjectPrefix') ?? 'runplane');
  if (!subject.test(natsSubjectPrefix))
    throw new ConfigError(`${KEYS.natsSubjectPrefix.env}: not a NATS subject: "${natsSubjectPrefix}"`);
  const natsRunStatusSubject = String(pick('natsRunStatusSubject') ?? 'run-status');
  if (!subject.test(natsRunStatusSubject))
    throw new ConfigError(`${KEYS.natsRunStatusSubject.env}: not a NATS subject: "${natsRunStatusSubject}"`);
  if (natsRunStatusSubject.startsWith(`${natsSubjectPrefix}.`))
    throw new ConfigError(`${KEYS.natsRunStatusSubject.env}: must lie outside ${natsSubjectPrefix}.>`);
  const natsUrl = optional('natsUrl');
  if (natsUrl !== null && !/^(nats|tls|wss?):\/\/|^[^:/]+:\d+$/.test(natsUrl))
    throw new ConfigError(`${KEYS.natsUrl.env}: expected nats://host:port, got "${natsUrl}"`);
  const dlqBaseDelayMs = dur('dlqBaseDelayMs', '60s');
  const dlqMaxDelayMs = dur('dlqMaxDelayMs', '1h');
  if (dlqMaxDelayMs < dlqBaseDelayMs)
    throw new ConfigError(`${KEYS.dlqMaxDelayMs.env}: must not be shorter than ${KEYS.dlqBaseDelayMs.env}`);
  const dlqRetryIntervalMs = dur('dlqRetryIntervalMs', '10s');
  if (dlqRetryIntervalMs <= 0) throw new ConfigError(`${KEYS.dlqRetryIntervalMs.env}: must be above 0`);
  return {
    natsUrl,
    natsStream,
    natsSubjectPrefix,
    natsRunStatusSubject,
    eventDedupWindowMs: dur('eventDedupWindowMs', '60s'),
    relayHandlerRetries: Math.floor(num('relayHandlerRetries', 3)),
    dlqMaxRetries: Math.floor(num('dlqMaxRetries', 5)),
    dlqBaseDelayMs,
    dlqMaxDelayMs,
    dlqAbandonAfterMs: dur('dlqAbandonAfterMs', '168h'),
    dlqRetryIntervalMs,
  };
}
