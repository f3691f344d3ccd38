import type { Logger } from 'pino';
import type { EventPayloads, StoredEvent } from '../events/catalog.js';
import type { EventRelay } from '../events/relay.js';
import type { PodService } from './pod-service.js';

/**
 * The pod loop of `runplane up`: epoch ends arrive as `job.state_changed` events; once a
 * second it also launches due retries and interrupted launches, reconciles running epochs
 * whose job ended without the event being seen, and resets expired converged pods.
 * Every step is a conditional update (and job names are unique per epoch attempt), so
 * replicas sharing a database may all run it without acting twice.
 */
export class PodLoop {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;

  constructor(
    private readonly pods: PodService,
    private readonly log: Logger,
  ) {}

  async attach(relay: EventRelay): Promise<void> {
    await relay.subscribe(
      'pods',
      'job.state_changed',
      (ev: StoredEvent) => {
        const p = ev.payload as EventPayloads['job.state_changed'];
        return this.pods.onJobEnded(p.job_id, p.state, p.reason);
      },
      false,
      this.pods.prepareJobEvents,
    );
  }

  start(intervalMs = 1000): void {
    const round = () => {
      if (this.running !== null) return;
      this.running = this.tick()
        .then(() => undefined)
        .catch((err: unknown) => this.log.error({ err }, 'pod loop failed'))
        .finally(() => {
          this.running = null;
        });
    };
    this.timer = setInterval(round, intervalMs);
  }

  /** One round of the loop's work; tests call it directly. */
  async tick(): Promise<{ launched: number; reconciled: number; expired: number }> {
    const launched = await this.pods.launchDue();
    const reconciled = await this.pods.reconcileRunning();
    const expired = await this.pods.expireDue();
    return { launched, reconciled, expired };
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }
}
