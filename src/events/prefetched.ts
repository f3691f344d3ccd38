/**
 * Rows a subscriber looked up for a batch of events (see EventBatchPrepare), by key, each handed
 * out once: the handler takes its row, or finds that nothing was looked up for it (undefined)
 * and reads the row itself. A key looked up and not found is kept as null.
 */
export class Prefetched<T> {
  private rows = new Map<string, T | null>();

  /** Replaces what was kept with the rows `read` finds for `keys` (in chunks of 500). */
  async load(
    keys: readonly string[],
    read: (keys: string[]) => Promise<Array<readonly [string, T]>>,
  ): Promise<void> {
    const unique = [...new Set(keys)];
    const rows = new Map<string, T | null>(unique.map((k) => [k, null]));
    for (let i = 0; i < unique.length; i += 500)
      for (const [k, row] of await read(unique.slice(i, i + 500))) rows.set(k, row);
    this.rows = rows;
  }

  /** The row kept for `key` (null: there is none), or undefined when it was not looked up. */
  take(key: string): T | null | undefined {
    const row = this.rows.get(key);
    this.rows.delete(key);
    return row;
  }

  /** The row kept for `key`, or, when it was not looked up, what `readOne` finds. */
  async takeOr(key: string, readOne: () => Promise<T | undefined>): Promise<T | null | undefined> {
    const row = this.take(key);
    return row === undefined ? readOne() : row;
  }
}
