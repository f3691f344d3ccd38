import type { Logger } from 'pino';
import { event, type NewEvent } from '../events/catalog.js';
import { outboxRepo } from '../events/outbox-repo.js';
import type { Clock } from '../shared/clock.js';
import type { Store } from '../store/database.js';
import { escalate, healthAt, type LivenessPolicy, type RunHealth, WATCHED_STATUSES } from './model.js';
import { type RunRow, runRepo } from './run-repo.js';
import { statusEvent } from './views.js';

const PAGE = 500;

/**
 * Marks quiet runs heartbeat_stale, then unresponsive (with a terminate recommendation), as
 * the seed's timeout policy says. One sweep runs across replicas at a time (leader lock);
 * only escalations are written here — a valid heartbeat is what restores a run to healthy.
 */
export class LivenessMonitor {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly policy: LivenessPolicy,
  ) {}

  start(everyMs: number): void {
    this.timer = setInterval(() => {
      this.running = this.sweep().catch((err: unknown) => this.log.error({ err }, 'liveness sweep failed'));
    }, everyMs);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  /** One sweep; returns the runs whose health changed (null when another replica holds the lock). */
  async sweep(): Promise<Array<{ run_id: string; health: RunHealth }> | null> {
    const now = this.clock.now();
    // Look first without the outbox lock: most sweeps change nothing, and then no write (which
    // other writers would queue behind) is begun.
    const silent = await runRepo.silentSince(
      this.store.db,
      WATCHED_STATUSES,
      now - this.policy.staleAfterMs,
      PAGE,
    );
    if (!silent.some((run) => this.healthNow(run, now) !== null)) return [];
    return this.store.write(async (tx) => {
      if (!(await this.store.tryLeaderLock(tx, 'runs.liveness'))) return null;
      const changed: Array<{ run_id: string; health: RunHealth }> = [];
      const rows = await runRepo.silentSince(tx, WATCHED_STATUSES, now - this.policy.staleAfterMs, PAGE);
      for (const run of rows) {
        const health = this.healthNow(run, now);
        if (health === null || run.last_heartbeat_at === null) continue;
        await runRepo.update(tx, run.id, { health, updated_at: now });
        const events: NewEvent[] = [
          event('run.status', run.id, statusEvent({ ...run, health }, run, 'liveness')),
        ];
        if (health === 'unresponsive') {
          events.push(
            event('run.terminate_recommended', run.id, {
              run_id: run.id,
              reason: `no valid heartbeat for ${Math.round((now - run.last_heartbeat_at) / 1000)}s`,
              last_heartbeat_at: new Date(run.last_heartbeat_at).toISOString(),
            }),
          );
        }
        await outboxRepo.append(tx, events, now);
        changed.push({ run_id: run.id, health });
      }
      return changed;
    });
  }

  /** The health a silent run should move to now; null when it stays as it is. */
  private healthNow(run: RunRow, now: number): RunHealth | null {
    if (run.last_heartbeat_at === null) return null;
    const current = run.health as RunHealth;
    const health = escalate(
      current,
      healthAt(run.last_heartbeat_at, run.liveness_extension_ms, now, this.policy),
    );
    return health === current ? null : health;
  }
}
