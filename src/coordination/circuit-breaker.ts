/**
 * The pipeline circuit breaker (pure): `failure_threshold` consecutive stage failures open it
 * and stop the pipeline; after `cooldown_ms` it is half-open and one probe attempt runs. The
 * probe's success closes it; its failure opens it again at once.
 */
export type BreakerState = 'closed' | 'open' | 'half_open';

export interface BreakerConfig {
  failure_threshold: number;
  cooldown_ms: number;
}

export interface Breaker {
  state: BreakerState;
  failures: number;
  opened_at: number | null;
}

export const CLOSED: Breaker = { state: 'closed', failures: 0, opened_at: null };

export function onFailure(b: Breaker, now: number, cfg: BreakerConfig): Breaker {
  const failures = b.failures + 1;
  if (b.state === 'half_open' || failures >= cfg.failure_threshold)
    return { state: 'open', failures, opened_at: now };
  return { state: b.state, failures, opened_at: b.opened_at };
}

export function onSuccess(_b: Breaker): Breaker {
  return CLOSED;
}

/** Whether an open breaker has cooled down enough for a probe. */
export function probeDue(b: Breaker, now: number, cfg: BreakerConfig): boolean {
  return b.state === 'open' && b.opened_at !== null && now - b.opened_at >= cfg.cooldown_ms;
}

export function halfOpen(b: Breaker): Breaker {
  return { ...b, state: 'half_open' };
}
