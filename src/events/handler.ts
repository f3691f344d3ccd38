import type { StoredEvent } from './catalog.js';

/** A subscriber's handler. Throwing means "not handled": it is retried, then dead-lettered. */
export type EventHandler = (event: StoredEvent) => Promise<void> | void;

/** The message and stack of whatever a handler threw. */
export function errorInfo(err: unknown): { message: string; stack: string | null } {
  if (err instanceof Error) return { message: err.message || err.name, stack: err.stack ?? null };
  return { message: String(err), stack: null };
}
