/**
 * Dead-letter queue — pure model.
 *
 * Glossary:
 * - subscriber: a named, durable consumer of events (a relay subscription such as `runs.jobs`
 *   or an alert sink, a NATS consumer `nats:<durable>`, the NATS ingest `nats:ingest`).
 * - dead letter: an event one subscriber could not handle after the relay's short in-line
 *   retries; it holds the event, the last error and stack, and the attempt count. Other
 *   subscribers and the subscriber's later events are not held back by it.
 * - status: `pending` (the retry daemon will run the handler again at `next_retry_at`),
 *   `recovered` (a retry succeeded), `abandoned` (out of retries or too old; kept for operators,
 *   who can still retry it by hand).
 *
 * The retry schedule is the seed's: retry n (0-based) waits `min(base * 2^n, max)`, defaults
 * 60 s and 3600 s; after `maxRetries` (5) failed retries, or once the entry is older than
 * `abandonAfterMs` (168 h), it is abandoned.
 */
export const DEAD_LETTER_STATUSES = ['pending', 'recovered', 'abandoned'] as const;
export type DeadLetterStatus = (typeof DEAD_LETTER_STATUSES)[number];

export interface DlqPolicy {
  maxRetries: number;
  baseDelayMs: number;
  maxDelayMs: number;
  abandonAfterMs: number;
}

export const DEFAULT_DLQ_POLICY: DlqPolicy = {
  maxRetries: 5,
  baseDelayMs: 60_000,
  maxDelayMs: 3_600_000,
  abandonAfterMs: 168 * 3_600_000,
};

/** The wait before retry number `retryCount` (0 for the first). */
export function retryDelayMs(policy: DlqPolicy, retryCount: number): number {
  // 2^n overflows to Infinity for huge n, which min() caps all the same.
  return Math.min(policy.baseDelayMs * 2 ** Math.max(0, retryCount), policy.maxDelayMs);
}

/** What a dead letter becomes when first recorded at `now`. */
export function firstSchedule(
  policy: DlqPolicy,
  now: number,
): { status: DeadLetterStatus; next_retry_at: number | null } {
  if (policy.maxRetries <= 0) return { status: 'abandoned', next_retry_at: null };
  return { status: 'pending', next_retry_at: now + retryDelayMs(policy, 0) };
}

/**
 * What a pending dead letter becomes after retry number `retryCount` failed at `now`: pending
 * with the next time, or abandoned when out of retries or past the age limit.
 */
export function afterFailedRetry(
  policy: DlqPolicy,
  entry: { retry_count: number; created_at: number },
  now: number,
): { status: DeadLetterStatus; retry_count: number; next_retry_at: number | null } {
  const retryCount = entry.retry_count + 1;
  const next = now + retryDelayMs(policy, retryCount);
  if (retryCount >= policy.maxRetries || next - entry.created_at > policy.abandonAfterMs)
    return { status: 'abandoned', retry_count: retryCount, next_retry_at: null };
  return { status: 'pending', retry_count: retryCount, next_retry_at: next };
}

/** Whether a pending dead letter is past its age limit at `now` (abandoned without a retry). */
export function expired(policy: DlqPolicy, entry: { created_at: number }, now: number): boolean {
  return now - entry.created_at >= policy.abandonAfterMs;
}
