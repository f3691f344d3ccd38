import { statfs } from 'node:fs/promises';
import { cpus, freemem, loadavg, totalmem } from 'node:os';
import type { Clock } from '../shared/clock.js';
import type { Store } from '../store/database.js';
import { limitsRepo } from './limits-repo.js';
import type { QueueReading } from './queue-monitor.js';
import {
  DEFAULT_TASK_LIMITS,
  decideSpawn,
  limitsFor,
  type NodeResources,
  type SpawnDecision,
  type TaskLimitsConfig,
} from './task-limits.js';
import type { Bucket } from './token-bucket.js';

/** The label a job's task type is counted under (pipelines and sweeps set it). */
export const TASK_TYPE_LABEL = 'runplane.task_type';

/** Worker labels a remote worker may report its usage in (percent). */
export const RESOURCE_LABELS = {
  disk_pct: 'runplane.resources/disk_pct',
  memory_pct: 'runplane.resources/memory_pct',
  cpu_pct: 'runplane.resources/cpu_pct',
} as const;

export interface SpawnOptions {
  /** false: ask without taking a token. */
  consume?: boolean;
  /** Tasks of the type active outside the job table, counted against the cluster limit. */
  extraActive?: number;
}

/** `can_spawn` as producers (pipelines, sweeps) are handed it. */
export type CanSpawn = (taskType: string, node: string | null, opts?: SpawnOptions) => Promise<SpawnDecision>;

export interface TaskLimiterDeps {
  store: Store;
  clock: Clock;
  config?: TaskLimitsConfig;
  /** Backpressure from the queue monitors; null: none. */
  backpressure?: () => Promise<QueueReading | null>;
  /** The local node's usage (default: the OS; the data dir's file system for disk). */
  localResources?: () => Promise<NodeResources>;
}

/** Usage of this machine: disk of `dir`'s file system, memory, 1-minute load per core. */
export async function osResources(dir: string): Promise<NodeResources> {
  const fs = await statfs(dir).catch(() => null);
  return {
    disk_pct: fs && fs.blocks > 0 ? (1 - fs.bavail / fs.blocks) * 100 : undefined,
    memory_pct: (1 - freemem() / totalmem()) * 100,
    cpu_pct: ((loadavg()[0] ?? 0) / Math.max(1, cpus().length)) * 100,
  };
}

/**
 * `can_spawn(task_type, node)` for this controller: counts from the store, node usage from the
 * worker's reported labels (remote) or the OS (local, node null), backpressure from the queue
 * monitors, and a token bucket per task type kept in memory (a rate limit per process).
 */
export class TaskLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly config: TaskLimitsConfig;

  constructor(private readonly deps: TaskLimiterDeps) {
    this.config = deps.config ?? DEFAULT_TASK_LIMITS;
  }

  /**
   * The decision; `consume: false` asks without taking a token (the HTTP query). `extraActive`:
   * tasks of the type running outside runplane's job table (a sweep's local or Slurm jobs), which
   * the cluster count then includes.
   */
  readonly canSpawn = async (
    taskType: string,
    node: string | null = null,
    opts: SpawnOptions = {},
  ): Promise<SpawnDecision> => {
    const db = this.deps.store.db;
    const limits = limitsFor(this.config, taskType);
    const [jobsOfType, onNode, resources, backpressure] = await Promise.all([
      limitsRepo.activeOfType(db, TASK_TYPE_LABEL, taskType),
      node === null
        ? Promise.resolve(null)
        : limitsRepo.activeOfTypeOnNode(db, TASK_TYPE_LABEL, taskType, node),
      this.resourcesOf(node),
      this.deps.backpressure?.() ?? Promise.resolve(null),
    ]);
    const { decision, bucket } = decideSpawn({
      taskType,
      node,
      now: this.deps.clock.now(),
      limits,
      thresholds: this.config.thresholds,
      running: { cluster: jobsOfType + Math.max(0, opts.extraActive ?? 0), node: onNode },
      resources,
      backpressure,
      bucket: this.buckets.get(taskType),
    });
    if (bucket && opts.consume !== false) this.buckets.set(taskType, bucket);
    return decision;
  };

  private async resourcesOf(node: string | null): Promise<NodeResources | null> {
    if (node === null) return this.deps.localResources ? this.deps.localResources() : null;
    const labels = await limitsRepo.workerLabels(this.deps.store.db, node);
    if (!labels) return null;
    const l = JSON.parse(labels) as Record<string, string>;
    const num = (k: string) =>
      l[k] !== undefined && Number.isFinite(Number(l[k])) ? Number(l[k]) : undefined;
    return {
      disk_pct: num(RESOURCE_LABELS.disk_pct),
      memory_pct: num(RESOURCE_LABELS.memory_pct),
      cpu_pct: num(RESOURCE_LABELS.cpu_pct),
    };
  }
}
