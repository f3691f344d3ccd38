import { createHash } from 'node:crypto';
import { canonicalJson } from '../shared/canonical-json.js';
import type { Clock } from '../shared/clock.js';

/**
 * A time window of keys seen recently (event ids, content hashes). Bounded: the oldest keys are
 * forgotten first when it is full. A window of 0 remembers nothing.
 */
export class DedupWindow {
  private readonly seenAt = new Map<string, number>();

  constructor(
    private readonly windowMs: number,
    private readonly clock: Clock,
    private readonly maxKeys = 100_000,
  ) {}

  /** True when `key` was recorded within the window. */
  has(key: string): boolean {
    if (this.windowMs <= 0) return false;
    const at = this.seenAt.get(key);
    return at !== undefined && this.clock.now() - at < this.windowMs;
  }

  /** Records `key` as seen now. */
  add(key: string): void {
    if (this.windowMs <= 0) return;
    const now = this.clock.now();
    // Re-inserting moves the key to the end, so the map stays in order of last sighting.
    this.seenAt.delete(key);
    this.seenAt.set(key, now);
    for (const [k, at] of this.seenAt) {
      if (this.seenAt.size <= this.maxKeys && now - at < this.windowMs) break;
      this.seenAt.delete(k);
    }
  }

  get size(): number {
    return this.seenAt.size;
  }
}

/**
 * The content hash of an event: SHA-256 over its type, entity and canonical payload, so the same
 * content published twice (a producer that retries without an id) hashes the same.
 */
export function contentHash(type: string, entityId: string, payload: unknown): string {
  return createHash('sha256')
    .update(canonicalJson([type, entityId, payload]))
    .digest('hex');
}
