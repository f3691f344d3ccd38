import type { Logger } from 'pino';

/**
 * The controller's long-running parts (loops, relays, timers) as components started in
 * dependency order and stopped in reverse.
 *
 * Glossary:
 * - layer: 1 foundational (store, leader election), 2 core (event relay, scheduler, liveness),
 *   3 application (pipelines, pods, sweeps, audit export). Lower layers start first.
 * - dependsOn: components that must be running for this one to start; when one failed or was
 *   skipped, this one is skipped too, and says why.
 * - leaderOnly: runs only while this replica is the leader (it must run once across replicas);
 *   started on election and stopped on deposition, in the same orders.
 */
export type ComponentState = 'stopped' | 'running' | 'standby' | 'failed' | 'skipped';

export interface Component {
  name: string;
  layer: 1 | 2 | 3;
  dependsOn?: readonly string[];
  leaderOnly?: boolean;
  start(): Promise<void> | void;
  stop(): Promise<void> | void;
}

export interface ComponentStatus {
  name: string;
  layer: number;
  leader_only: boolean;
  state: ComponentState;
  /** Why it failed or was skipped. */
  reason: string | null;
}

interface Entry {
  c: Component;
  state: ComponentState;
  reason: string | null;
}

export class Components {
  private readonly entries: Entry[] = [];
  private leader = false;
  private started = false;

  constructor(private readonly log: Logger) {}

  add(c: Component): this {
    if (this.entries.some((e) => e.c.name === c.name))
      throw new Error(`component ${c.name} is already registered`);
    for (const d of c.dependsOn ?? [])
      if (!this.entries.some((e) => e.c.name === d))
        throw new Error(`component ${c.name} depends on ${d}, which is not registered before it`);
    this.entries.push({ c, state: 'stopped', reason: null });
    return this;
  }

  /** Starts the components that run on every replica (and the leader's, if elected), layer by layer. */
  async start(): Promise<void> {
    this.started = true;
    for (const e of this.entries) if (e.c.leaderOnly && e.state === 'stopped') e.state = 'standby';
    await this.startWhere((c) => !c.leaderOnly || this.leader);
  }

  /** Called by the leader elector: starts the leader-only components, or stops them in reverse. */
  async setLeader(leader: boolean): Promise<void> {
    this.leader = leader;
    if (!this.started) return;
    if (leader) await this.startWhere((c) => c.leaderOnly === true);
    else await this.stopWhere((c) => c.leaderOnly === true, 'standby');
  }

  /** Stops everything in reverse order (the leader-only ones first if still running). */
  async stop(): Promise<void> {
    this.started = false;
    await this.stopWhere(() => true, 'stopped');
  }

  isLeader(): boolean {
    return this.leader;
  }

  status(): ComponentStatus[] {
    return this.ordered().map((e) => ({
      name: e.c.name,
      layer: e.c.layer,
      leader_only: e.c.leaderOnly === true,
      state: e.state,
      reason: e.reason,
    }));
  }

  private ordered(): Entry[] {
    // Stable: within a layer, registration order.
    return [...this.entries].sort((a, b) => a.c.layer - b.c.layer);
  }

  private async startWhere(pick: (c: Component) => boolean): Promise<void> {
    const byName = new Map(this.entries.map((e) => [e.c.name, e]));
    for (const e of this.ordered()) {
      if (!pick(e.c) || e.state === 'running') continue;
      const blocked = (e.c.dependsOn ?? []).find((d) => {
        const dep = byName.get(d);
        // A leader-only dependency waiting for election blocks only leader-only dependents.
        return !dep || (dep.state !== 'running' && !(dep.state === 'standby' && !e.c.leaderOnly));
      });
      if (blocked !== undefined) {
        const dep = byName.get(blocked);
        e.state = 'skipped';
        e.reason = `dependency ${blocked} is ${dep?.state ?? 'missing'}`;
        this.log.warn(
          { component: e.c.name, dependency: blocked },
          'component skipped: a dependency is not running',
        );
        continue;
      }
      try {
        await e.c.start();
        e.state = 'running';
        e.reason = null;
      } catch (err) {
        e.state = 'failed';
        e.reason = (err as Error)?.message ?? String(err);
        this.log.error({ err, component: e.c.name }, 'component failed to start');
      }
    }
  }

  private async stopWhere(pick: (c: Component) => boolean, after: ComponentState): Promise<void> {
    for (const e of this.ordered().reverse()) {
      if (!pick(e.c)) continue;
      if (e.state === 'running') {
        try {
          await e.c.stop();
        } catch (err) {
          this.log.error({ err, component: e.c.name }, 'component failed to stop');
        }
      }
      e.state = after;
      e.reason = null;
    }
  }
}
