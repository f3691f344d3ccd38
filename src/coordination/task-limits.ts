/**
 * `can_spawn(task_type, node)` (the decision is pure; TaskLimits gathers its inputs).
 *
 * A task may start when, in this order: no queue it feeds is at its hard limit (backpressure);
 * the cluster and the node run fewer tasks of its type than their limits; the node's disk,
 * memory and cpu are under their thresholds; and the type's token bucket has a token. The
 * bucket's cost is 1 / throttle factor of the worst queue, so producers slow down as consumers
 * lag. Every refusal says why.
 */

import type { QueueLimits, QueueReading } from './queue-monitor.js';
import { type Bucket, type BucketConfig, fullBucket, take } from './token-bucket.js';

export interface TaskTypeLimits {
  /** Token bucket: starts per second and burst. */
  rate_per_sec: number;
  burst: number;
  /** Tasks of this type running or waiting across the cluster (null: no limit). */
  max_cluster: number | null;
  /** Tasks of this type on one node (null: no limit). */
  max_per_node: number | null;
}

export interface ResourceThresholds {
  disk_pct: number;
  memory_pct: number;
  cpu_pct: number;
}

export interface TaskLimitsConfig {
  types: Record<string, Partial<TaskTypeLimits>>;
  defaults: TaskTypeLimits;
  thresholds: ResourceThresholds;
}

/** Usage of a node in percent; a missing figure is not checked. */
export interface NodeResources {
  disk_pct?: number | undefined;
  memory_pct?: number | undefined;
  cpu_pct?: number | undefined;
}

export interface SpawnDecision {
  allowed: boolean;
  reason: string;
  /** When refused by the rate limit: how long until a token is there. */
  retry_after_ms?: number;
}

export interface SpawnInput {
  taskType: string;
  node: string | null;
  now: number;
  limits: TaskTypeLimits;
  thresholds: ResourceThresholds;
  running: { cluster: number; node: number | null };
  resources: NodeResources | null;
  backpressure: QueueReading | null;
  bucket: Bucket | undefined;
}

export const DEFAULT_TASK_LIMITS: TaskLimitsConfig = {
  types: {},
  defaults: { rate_per_sec: 10, burst: 20, max_cluster: null, max_per_node: null },
  thresholds: { disk_pct: 95, memory_pct: 95, cpu_pct: Number.POSITIVE_INFINITY },
};

/** The queues runplane monitors (their depth is read from the store). */
export const QUEUES = ['pending_jobs', 'dlq_pending', 'outbox_lag'] as const;
export type QueueName = (typeof QUEUES)[number];

export const DEFAULT_QUEUE_LIMITS: Record<QueueName, QueueLimits> = {
  pending_jobs: { soft: 1000, hard: 10_000 },
  dlq_pending: { soft: 10, hard: 1000 },
  outbox_lag: { soft: 1000, hard: 100_000 },
};

/** The task type a sweep's trial jobs are limited under when its sweep file names none. */
export const SWEEP_TRIAL_TASK_TYPE = 'sweep_trial';

export function limitsFor(cfg: TaskLimitsConfig, taskType: string): TaskTypeLimits {
  return { ...cfg.defaults, ...(cfg.types[taskType] ?? {}) };
}

/** The decision, and the bucket to keep when it is allowed. */
export function decideSpawn(i: SpawnInput): { decision: SpawnDecision; bucket: Bucket | undefined } {
  const deny = (reason: string, extra: Partial<SpawnDecision> = {}) => ({
    decision: { allowed: false, reason, ...extra },
    bucket: i.bucket,
  });
  const bp = i.backpressure;
  if (bp && bp.level === 'critical')
    return deny(`backpressure: queue ${bp.queue} is at its hard limit (${bp.depth} >= ${bp.hard})`);
  const l = i.limits;
  if (l.max_cluster !== null && i.running.cluster >= l.max_cluster)
    return deny(`cluster limit: ${i.running.cluster} ${i.taskType} task(s) of at most ${l.max_cluster}`);
  if (i.node !== null && l.max_per_node !== null && (i.running.node ?? 0) >= l.max_per_node)
    return deny(
      `node limit: ${i.running.node ?? 0} ${i.taskType} task(s) on ${i.node} of at most ${l.max_per_node}`,
    );
  const where = i.node ?? 'the local node';
  const r = i.resources;
  const t = i.thresholds;
  if (r?.disk_pct !== undefined && r.disk_pct >= t.disk_pct)
    return deny(`disk of ${where} is ${r.disk_pct.toFixed(1)}% used (threshold ${t.disk_pct}%)`);
  if (r?.memory_pct !== undefined && r.memory_pct >= t.memory_pct)
    return deny(`memory of ${where} is ${r.memory_pct.toFixed(1)}% used (threshold ${t.memory_pct}%)`);
  if (r?.cpu_pct !== undefined && r.cpu_pct >= t.cpu_pct)
    return deny(`cpu of ${where} is ${r.cpu_pct.toFixed(1)}% loaded (threshold ${t.cpu_pct}%)`);
  const cfg: BucketConfig = { ratePerSec: l.rate_per_sec, burst: l.burst };
  const throttle = bp ? bp.throttle : 1;
  const cost = throttle > 0 ? 1 / throttle : Number.POSITIVE_INFINITY;
  const got = take(i.bucket ?? fullBucket(cfg, i.now), cfg, i.now, cost);
  if (!got.ok)
    return {
      decision: {
        allowed: false,
        reason: `rate limit: ${i.taskType} is limited to ${l.rate_per_sec}/s (burst ${l.burst})${
          throttle < 1 ? `, throttled to ${throttle} by backpressure on ${bp?.queue}` : ''
        }`,
        retry_after_ms: got.retryAfterMs,
      },
      bucket: got.bucket,
    };
  return {
    decision: {
      allowed: true,
      reason: throttle < 1 ? `allowed (throttled ${throttle} by ${bp?.queue})` : 'allowed',
    },
    bucket: got.bucket,
  };
}
