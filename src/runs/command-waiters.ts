import type { CommandRow } from './command-repo.js';

type WaiterState = 'waiting' | 'reserved' | 'settled';

interface Waiter {
  state: WaiterState;
  settle(row: CommandRow | null): void;
}

/** A waiting long-poll set aside by a write that will hand it the command it commits. */
export interface Reservation {
  /** Gives the committed command to the poll; false when the poll went away meanwhile. */
  deliver(row: CommandRow): boolean;
  /** The write did not commit: the poll looks at the store again. */
  release(): void;
}

/**
 * The long-polls waiting for a run's next command, oldest first. A command written while one
 * waits is handed to it directly: the writing transaction reserves the oldest waiter, stamps the
 * delivery in its own insert and, once committed, gives the waiter the row, so the poll returns
 * without another statement (and, on Postgres, without a second durable commit). `wake` only
 * makes waiters look again, for changes they must read themselves.
 */
export class CommandWaiters {
  private readonly waiting = new Map<string, Set<Waiter>>();
  /**
   * Counts `wake` calls. A poll reads it before it looks at the store and hands it to `wait`: a
   * wake between the look and the wait (a command committed while the poll was not yet
   * waiting, so nobody was there to wake) makes the wait return at once, and the poll looks
   * again instead of sleeping until its next recheck.
   */
  generation = 0;

  /**
   * Resolves with a handed-over command, or null when woken, timed out or aborted; at once
   * (null) when `seen` is given and a wake has happened since that generation.
   */
  wait(runId: string, ms: number, signal?: AbortSignal, seen?: number): Promise<CommandRow | null> {
    return new Promise((resolve) => {
      if (signal?.aborted || (seen !== undefined && seen !== this.generation)) return resolve(null);
      let set = this.waiting.get(runId);
      if (!set) {
        set = new Set();
        this.waiting.set(runId, set);
      }
      const waiters = set;
      const unlist = () => {
        waiters.delete(waiter);
        if (waiters.size === 0 && this.waiting.get(runId) === waiters) this.waiting.delete(runId);
      };
      const waiter: Waiter = {
        state: 'waiting',
        settle: (row) => {
          if (waiter.state === 'settled') return;
          waiter.state = 'settled';
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          unlist();
          resolve(row);
        },
      };
      // A reserved waiter keeps waiting past its deadline for the write's outcome (a commit's
      // time at most); only its client going away ends it.
      const timer = setTimeout(() => {
        if (waiter.state === 'waiting') waiter.settle(null);
      }, ms);
      const onAbort = () => waiter.settle(null);
      signal?.addEventListener('abort', onAbort);
      waiters.add(waiter);
    });
  }

  wake(runIds: Iterable<string>): void {
    this.generation += 1;
    for (const id of runIds)
      for (const waiter of [...(this.waiting.get(id) ?? [])])
        if (waiter.state === 'waiting') waiter.settle(null);
  }

  /** Sets aside the run's oldest waiting poll for a write about to commit; null when none waits. */
  reserve(runId: string): Reservation | null {
    const set = this.waiting.get(runId);
    if (!set) return null;
    let waiter: Waiter | undefined;
    for (const w of set)
      if (w.state === 'waiting') {
        waiter = w;
        break;
      }
    if (!waiter) return null;
    const w = waiter;
    w.state = 'reserved';
    return {
      deliver: (row) => {
        if (w.state !== 'reserved') return false;
        w.settle(row);
        return true;
      },
      release: () => {
        if (w.state === 'reserved') w.settle(null);
      },
    };
  }

  /** Polls waiting or reserved for a run (tests, metrics). */
  count(runId: string): number {
    return this.waiting.get(runId)?.size ?? 0;
  }
}
