import { AppError } from '../shared/errors.js';

export interface RetryOptions {
  /** Tries in all (the first one included). */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  sleep?: (ms: number) => Promise<void>;
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

export const STORE_RETRY: RetryOptions = { attempts: 6, baseDelayMs: 50, maxDelayMs: 2000 };

/**
 * The seed's retry decorator for store calls: a call that fails for a reason other than a
 * domain error (a busy SQLite file, a dropped Postgres connection) is tried again after
 * min(base · 2^n, max) with full jitter; a domain error (AppError) is an answer, not a fault.
 */
export async function retrying<T>(fn: () => Promise<T>, opts: RetryOptions = STORE_RETRY): Promise<T> {
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof AppError || attempt >= opts.attempts) throw err;
      const delay =
        Math.min(opts.maxDelayMs, opts.baseDelayMs * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);
      opts.onRetry?.(err, attempt, delay);
      await sleep(delay);
    }
  }
}
