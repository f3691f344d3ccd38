import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type AttemptOutcome, afterAttempt, canTransition } from '../../src/jobs/model.js';

const policy = { max_retries_failure: 2, max_retries_preemption: 1 };
const zero = { failure_count: 0, preemption_count: 0 };

describe('retry policy', () => {
  it('retries a FAILED attempt while failure_count <= max_retries_failure', () => {
    let counters = zero;
    const seen: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = afterAttempt('FAILED', policy, counters, false);
      seen.push(r.next);
      counters = r.counters;
    }
    expect(seen).toEqual(['PENDING', 'PENDING', 'FAILED']);
    expect(counters.failure_count).toBe(3);
  });

  it('with max_retries_failure 0 the first failure is final', () => {
    expect(
      afterAttempt('FAILED', { max_retries_failure: 0, max_retries_preemption: 100 }, zero, false),
    ).toMatchObject({
      next: 'FAILED',
      retry: false,
    });
  });

  it('counts preemptions separately from failures', () => {
    const r1 = afterAttempt('WORKER_FAILED', policy, zero, false);
    expect(r1).toMatchObject({
      next: 'PENDING',
      retry: true,
      counters: { failure_count: 0, preemption_count: 1 },
    });
    const r2 = afterAttempt('WORKER_FAILED', policy, r1.counters, false);
    expect(r2).toMatchObject({ next: 'WORKER_FAILED', retry: false });
  });

  it('never retries a killed job or a success', () => {
    expect(afterAttempt('KILLED', policy, zero, false).next).toBe('KILLED');
    expect(afterAttempt('FAILED', policy, zero, true).next).toBe('KILLED');
    expect(afterAttempt('SUCCEEDED', policy, zero, false).next).toBe('SUCCEEDED');
  });

  it('total attempts are bounded by 1 + retries of each kind', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 5 }),
        fc.integer({ min: 0, max: 5 }),
        fc.array(fc.constantFrom<AttemptOutcome>('FAILED', 'WORKER_FAILED'), { minLength: 1, maxLength: 20 }),
        (maxF, maxP, outcomes) => {
          let counters = zero;
          let attempts = 0;
          for (const o of outcomes) {
            attempts++;
            const r = afterAttempt(
              o,
              { max_retries_failure: maxF, max_retries_preemption: maxP },
              counters,
              false,
            );
            counters = r.counters;
            if (!r.retry) break;
          }
          expect(attempts).toBeLessThanOrEqual(1 + maxF + maxP);
          expect(counters.failure_count).toBeLessThanOrEqual(maxF + 1);
          expect(counters.preemption_count).toBeLessThanOrEqual(maxP + 1);
        },
      ),
    );
  });
});

describe('attempt transitions', () => {
  it('follow the seed diagram', () => {
    expect(canTransition('BUILDING', 'RUNNING')).toBe(true);
    expect(canTransition('BUILDING', 'FAILED')).toBe(true);
    expect(canTransition('RUNNING', 'SUCCEEDED')).toBe(true);
    expect(canTransition('BUILDING', 'SUCCEEDED')).toBe(false);
    expect(canTransition('SUCCEEDED', 'RUNNING')).toBe(false);
    expect(canTransition('FAILED', 'RUNNING')).toBe(false);
  });
});
