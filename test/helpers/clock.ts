import type { Clock } from '../../src/shared/clock.js';

/** A clock a test moves by hand, so liveness, throttling and backoff take milliseconds. */
export class FakeClock implements Clock {
  constructor(private t = Date.now()) {}
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}
