/** The dead-letter retry schedule: min(base * 2^n, max), abandoned after max retries or past the age limit. */
import { describe, expect, it } from 'vitest';
import {
  afterFailedRetry,
  DEFAULT_DLQ_POLICY,
  expired,
  firstSchedule,
  retryDelayMs,
} from '../../src/events/dlq-model.js';

const H = 3_600_000;

describe('dead-letter policy', () => {
  it('defaults to the seed: 5 retries, min(60 * 2^n, 3600) s, abandon after 168 h', () => {
    expect(DEFAULT_DLQ_POLICY).toEqual({
      maxRetries: 5,
      baseDelayMs: 60_000,
      maxDelayMs: 3_600_000,
      abandonAfterMs: 168 * H,
    });
    expect([0, 1, 2, 3, 4, 5, 6, 7, 50, 5000].map((n) => retryDelayMs(DEFAULT_DLQ_POLICY, n) / 1000)).toEqual(
      [60, 120, 240, 480, 960, 1920, 3600, 3600, 3600, 3600],
    );
  });

  it('walks a failing entry through its retries to abandoned', () => {
    const created = 1_000_000;
    const first = firstSchedule(DEFAULT_DLQ_POLICY, created);
    expect(first).toEqual({ status: 'pending', next_retry_at: created + 60_000 });
    let entry = { retry_count: 0, created_at: created };
    let now = first.next_retry_at!;
    const seen: Array<[string, number | null]> = [];
    for (;;) {
      const next = afterFailedRetry(DEFAULT_DLQ_POLICY, entry, now);
      seen.push([next.status, next.next_retry_at === null ? null : (next.next_retry_at - now) / 1000]);
      if (next.status === 'abandoned') break;
      entry = { ...entry, retry_count: next.retry_count };
      now = next.next_retry_at!;
    }
    expect(seen).toEqual([
      ['pending', 120],
      ['pending', 240],
      ['pending', 480],
      ['pending', 960],
      ['abandoned', null],
    ]);
  });

  it('abandons an entry whose next retry would fall past the age limit', () => {
    const policy = { ...DEFAULT_DLQ_POLICY, maxRetries: 1000, abandonAfterMs: 2 * H };
    const created = 0;
    expect(afterFailedRetry(policy, { retry_count: 3, created_at: created }, H).status).toBe('pending');
    expect(afterFailedRetry(policy, { retry_count: 6, created_at: created }, 1.5 * H).status).toBe(
      'abandoned',
    );
    expect(expired(policy, { created_at: created }, 2 * H - 1)).toBe(false);
    expect(expired(policy, { created_at: created }, 2 * H)).toBe(true);
  });

  it('with no retries allowed, a dead letter is abandoned at once', () => {
    expect(firstSchedule({ ...DEFAULT_DLQ_POLICY, maxRetries: 0 }, 5)).toEqual({
      status: 'abandoned',
      next_retry_at: null,
    });
  });
});
