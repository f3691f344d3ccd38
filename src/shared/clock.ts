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

export const toIso = (ms: number | null | undefined): string | null =>
  ms === null || ms === undefined ? null : new Date(ms).toISOString();
