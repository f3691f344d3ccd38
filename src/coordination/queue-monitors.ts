import type { LaneStatus } from '../events/relay.js';
import type { Store } from '../store/database.js';
import { limitsRepo } from './limits-repo.js';
import { type QueueLimits, type QueueReading, queueIssues, reading, worst } from './queue-monitor.js';
import { DEFAULT_QUEUE_LIMITS, type QueueName } from './task-limits.js';

// The queue names and default limits live with the other limits (pure, shared with limits-file.ts).
export { DEFAULT_QUEUE_LIMITS, QUEUES, type QueueName } from './task-limits.js';

/**
 * Reads the depth of runplane's queues from the store at call time (right across replicas and
 * restarts): jobs waiting for placement, pending dead letters, and the outbox lag (events the
 * slowest in-process subscriber has not handled yet).
 */
export class QueueMonitors {
  constructor(
    private readonly store: Store,
    private readonly lanes: () => LaneStatus[],
    /** Soft and hard limit of each queue (the task-limits file's `queues`, else the defaults). */
    readonly limits: Readonly<Record<QueueName, QueueLimits>> = DEFAULT_QUEUE_LIMITS,
  ) {}

  async sample(): Promise<QueueReading[]> {
    const db = this.store.db;
    const [pending, dlq, last] = await Promise.all([
      limitsRepo.pendingJobs(db),
      limitsRepo.pendingDeadLetters(db),
      limitsRepo.lastEventSeq(db),
    ]);
    const cursors = this.lanes().map((l) => l.cursor);
    const lag = cursors.length > 0 ? Math.max(0, last - Math.min(...cursors)) : 0;
    return [
      reading('pending_jobs', pending, this.limits.pending_jobs),
      reading('dlq_pending', dlq, this.limits.dlq_pending),
      reading('outbox_lag', lag, this.limits.outbox_lag),
    ];
  }

  /** The reading producers of new jobs obey: the worst queue. */
  async backpressure(): Promise<QueueReading | null> {
    return worst(await this.sample());
  }

  /** For the health endpoint: degraded above a soft limit, unhealthy at a hard one. */
  async health(): Promise<{
    status: 'healthy' | 'degraded' | 'unhealthy';
    issues: string[];
    queues: QueueReading[];
  }> {
    const queues = await this.sample();
    const w = worst(queues);
    const status = !w || w.level === 'none' ? 'healthy' : w.level === 'critical' ? 'unhealthy' : 'degraded';
    return { status, issues: queueIssues(queues), queues };
  }
}
