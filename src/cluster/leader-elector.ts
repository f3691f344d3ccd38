import type { Logger } from 'pino';
import type { Clock } from '../shared/clock.js';

/**
 * Leader election across replicas of `runplane up` that share one database.
 *
 * Glossary:
 * - leader lock: a lock held for as long as a session lives (a Postgres session advisory lock
 *   on a connection of its own). Holding it is being the leader; losing the session loses it.
 * - follower: a replica that does not hold the lock; it serves the API and tries again every
 *   `retryMs`.
 * - elected / deposed: the transitions; listeners start and stop the loops that must run once.
 */
export interface LeaderLock {
  /** 'postgres-advisory' or 'single' (SQLite: one process owns the database file). */
  readonly kind: string;
  /** Tries once; true when this process now holds the lock. */
  tryAcquire(): Promise<boolean>;
  /** Resolves when a held lock is lost (its session dropped). */
  lost(): Promise<void>;
  /** Checks that the session that holds the lock is still alive (throws if not). */
  check(): Promise<void>;
  /** Releases the lock (if held) and closes the session. */
  close(): Promise<void>;
}

/** SQLite: one process writes the database file, so it is always the leader. */
export class SingleProcessLock implements LeaderLock {
  readonly kind = 'single';
  private readonly never = new Promise<void>(() => undefined);
  async tryAcquire(): Promise<boolean> {
    return true;
  }
  lost(): Promise<void> {
    return this.never;
  }
  async check(): Promise<void> {}
  async close(): Promise<void> {}
}

export interface LeaderStatus {
  leader: boolean;
  /** How the lock is held: postgres-advisory, single. */
  mode: string;
  /** When this process last became leader (epoch ms), or null. */
  since: number | null;
  /** Times this process has become leader. */
  terms: number;
  last_error: string | null;
}

export type LeadershipListener = (leader: boolean) => Promise<void>;

export interface LeaderElectorOptions {
  /** How often a follower tries for the lock, and a leader checks its session. Default 1000. */
  retryMs?: number;
}

/**
 * Holds the leader lock when it can; tells listeners when this process is elected and deposed.
 * Transitions run one at a time, in order: a deposed listener has finished stopping the loops
 * before the same process can be elected again.
 */
export class LeaderElector {
  private leader = false;
  private since: number | null = null;
  private terms = 0;
  private lastError: string | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopped = true;
  private round: Promise<void> | null = null;
  private transitions: Promise<void> = Promise.resolve();
  private quietUntil = 0;
  private readonly listeners: LeadershipListener[] = [];
  private readonly retryMs: number;

  constructor(
    private readonly lock: LeaderLock,
    private readonly clock: Clock,
    private readonly log: Logger,
    opts: LeaderElectorOptions = {},
  ) {
    this.retryMs = opts.retryMs ?? 1000;
  }

  /** Listeners are awaited in order on election and in reverse order on deposition. */
  onChange(listener: LeadershipListener): void {
    this.listeners.push(listener);
  }

  isLeader(): boolean {
    return this.leader;
  }

  status(): LeaderStatus {
    return {
      leader: this.leader,
      mode: this.lock.kind,
      since: this.since,
      terms: this.terms,
      last_error: this.lastError,
    };
  }

  /** Tries for the lock now (and awaits the election if it is won), then every retryMs. */
  async start(): Promise<void> {
    if (!this.stopped) return;
    this.stopped = false;
    await this.tick();
    this.timer = setInterval(() => {
      if (this.round !== null) return;
      this.round = this.tick().finally(() => {
        this.round = null;
      });
    }, this.retryMs);
  }

  /** Stops trying, deposes this process (listeners stop their loops) and releases the lock. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.round;
    if (this.leader) await this.transition(false);
    await this.transitions;
    await this.lock
      .close()
      .catch((err: unknown) => this.log.warn({ err }, 'releasing the leader lock failed'));
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    try {
      if (this.leader) {
        // A session that died quietly (no error event) is found here within retryMs.
        await this.lock.check();
        return;
      }
      // A replica that just lost its session is the likeliest to be in trouble: let the
      // followers take over first.
      if (this.clock.now() < this.quietUntil) return;
      if (!(await this.lock.tryAcquire()) || this.stopped) return;
      this.lastError = null;
      this.lock.lost().then(
        () => this.onLost('the leader lock session ended'),
        (err: unknown) => this.onLost((err as Error)?.message ?? String(err)),
      );
      await this.transition(true);
    } catch (err) {
      this.lastError = (err as Error)?.message ?? String(err);
      if (this.leader) await this.onLost(this.lastError);
      else this.log.debug({ err }, 'leader lock attempt failed');
    }
  }

  private async onLost(reason: string): Promise<void> {
    if (!this.leader) return;
    this.lastError = reason;
    this.quietUntil = this.clock.now() + 3 * this.retryMs;
    this.log.warn({ reason }, 'leadership lost; stopping the leader loops');
    await this.transition(false);
  }

  private transition(leader: boolean): Promise<void> {
    // Deposition is decided at once (no loop may act as leader after it), the listeners run in turn.
    if (this.leader === leader) return this.transitions;
    this.leader = leader;
    if (leader) {
      this.since = this.clock.now();
      this.terms += 1;
    }
    const listeners = leader ? [...this.listeners] : [...this.listeners].reverse();
    this.transitions = this.transitions.then(async () => {
      this.log.info({ leader, mode: this.lock.kind }, leader ? 'elected leader' : 'deposed');
      for (const l of listeners) {
        try {
          await l(leader);
        } catch (err) {
          this.log.error({ err, leader }, 'a leadership listener failed');
        }
      }
    });
    return this.transitions;
  }
}
