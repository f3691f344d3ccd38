/** Injected time source so liveness and timeout logic can be tested in milliseconds. */
export interface Clock {
  now(): number;
}

let last = 0;
/**
 * Wall-clock milliseconds that never go backwards within this process, so an attempt can not
 * appear to start before it was assigned when the system clock is stepped back.
 */
export const systemClock: Clock = {
  now: () => {
    last = Math.max(last, Date.now());
    return last;
  },
};

/** A clock tests move by hand. */
export class ManualClock implements Clock {
  constructor(private t = 1_700_000_000_000) {}
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

export const toIso = (ms: number | null | undefined): string | null =>
  ms === null || ms === undefined ? null : new Date(ms).toISOString();
