import type { StoredEvent } from './catalog.js';

/** A subscriber's handler. Throwing means "not handled": it is retried, then dead-lettered. */
export type EventHandler = (event: StoredEvent) => Promise<void> | void;

/**
 * Runs before a subscriber's handler gets a batch of events (those it matches), so the
 * subscriber can look up what the batch needs in one query instead of one per event. Only an
 * optimisation: the handler must work without it (a dead-lettered event is replayed alone), and
 * a prepare that throws is logged and the batch delivered anyway.
 */
export type EventBatchPrepare = (events: readonly StoredEvent[]) => Promise<void>;

/** The message and stack of whatever a handler threw. */
export function errorInfo(err: unknown): { message: string; stack: string | null } {
  if (err instanceof Error) {
    // A validation error's field errors are the useful part of it.
    const details = (err as { details?: Array<{ field: string; code: string; message: string }> }).details;
    const fields = Array.isArray(details)
      ? details.map((d) => `; ${d.field}: ${d.message} (${d.code})`).join('')
      : '';
    return { message: `${err.message || err.name}${fields}`, stack: err.stack ?? null };
  }
  return { message: String(err), stack: null };
}
