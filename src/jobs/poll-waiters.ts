/**
 * Wakes a worker's pending long-poll as soon as something is assigned to it or one of its
 * attempts must be killed, so dispatch never waits for a heartbeat or a poll interval.
 */
export class PollWaiters {
  private readonly waiting = new Map<string, Set<() => void>>();

  wait(workerId: string, ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      let set = this.waiting.get(workerId);
      if (!set) {
        set = new Set();
        this.waiting.set(workerId, set);
      }
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        set?.delete(done);
        if (set?.size === 0) this.waiting.delete(workerId);
        resolve();
      };
      const timer = setTimeout(done, ms);
      set.add(done);
      signal?.addEventListener('abort', done);
    });
  }

  wake(workerIds: Iterable<string>): void {
    for (const id of workerIds) for (const done of [...(this.waiting.get(id) ?? [])]) done();
  }
}
