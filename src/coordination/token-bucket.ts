/**
 * A token bucket (pure, time passed in): `rate` tokens per second up to `burst`. A take costs
 * `cost` tokens (backpressure raises the cost, so producers slow down as consumers lag).
 */
export interface Bucket {
  tokens: number;
  at: number;
}

export interface BucketConfig {
  ratePerSec: number;
  burst: number;
}

export function fullBucket(cfg: BucketConfig, now: number): Bucket {
  return { tokens: cfg.burst, at: now };
}

export function refill(b: Bucket, cfg: BucketConfig, now: number): Bucket {
  const elapsed = Math.max(0, now - b.at) / 1000;
  return { tokens: Math.min(cfg.burst, b.tokens + elapsed * cfg.ratePerSec), at: Math.max(b.at, now) };
}

/** Takes `cost` tokens if there are enough; otherwise says how long until there will be. */
export function take(
  b: Bucket,
  cfg: BucketConfig,
  now: number,
  cost = 1,
): { ok: true; bucket: Bucket } | { ok: false; bucket: Bucket; retryAfterMs: number } {
  const r = refill(b, cfg, now);
  // A cost above the burst could never be paid: cap it, the bucket then only paces.
  const need = Math.min(cost, cfg.burst);
  if (r.tokens + 1e-9 >= need) return { ok: true, bucket: { tokens: r.tokens - need, at: r.at } };
  const retryAfterMs =
    cfg.ratePerSec > 0 ? Math.ceil(((need - r.tokens) / cfg.ratePerSec) * 1000) : Number.POSITIVE_INFINITY;
  return { ok: false, bucket: r, retryAfterMs };
}
