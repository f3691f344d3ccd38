/**
 * Queue monitors (pure): a queue's depth against its soft and hard limits gives a graded
 * backpressure level and a throttle factor producers multiply their rate by.
 *
 * - below the soft limit: none (1.0);
 * - between soft and hard: low (0.75), medium (0.5), high (0.25) by thirds;
 * - at or above the hard limit: critical (0: stop producing).
 */
export const BACKPRESSURE_LEVELS = ['none', 'low', 'medium', 'high', 'critical'] as const;
export type BackpressureLevel = (typeof BACKPRESSURE_LEVELS)[number];

export const THROTTLE: Record<BackpressureLevel, number> = {
  none: 1,
  low: 0.75,
  medium: 0.5,
  high: 0.25,
  critical: 0,
};

export interface QueueLimits {
  soft: number;
  hard: number;
}

export interface QueueReading {
  queue: string;
  depth: number;
  soft: number;
  hard: number;
  level: BackpressureLevel;
  /** 0..4, the level's index (for the Prometheus gauge). */
  level_index: number;
  throttle: number;
}

export function levelOf(depth: number, limits: QueueLimits): BackpressureLevel {
  if (depth >= limits.hard) return 'critical';
  if (depth < limits.soft) return 'none';
  const span = Math.max(1, limits.hard - limits.soft);
  const r = (depth - limits.soft) / span;
  return r < 1 / 3 ? 'low' : r < 2 / 3 ? 'medium' : 'high';
}

export function reading(queue: string, depth: number, limits: QueueLimits): QueueReading {
  const level = levelOf(depth, limits);
  return {
    queue,
    depth,
    soft: limits.soft,
    hard: limits.hard,
    level,
    level_index: BACKPRESSURE_LEVELS.indexOf(level),
    throttle: THROTTLE[level],
  };
}

/** The worst of several readings (the one producers must obey). */
export function worst(readings: readonly QueueReading[]): QueueReading | null {
  let w: QueueReading | null = null;
  for (const r of readings) if (!w || r.level_index > w.level_index) w = r;
  return w;
}

/** A readable sentence per queue above its soft limit (for health). */
export function queueIssues(readings: readonly QueueReading[]): string[] {
  return readings
    .filter((r) => r.level !== 'none')
    .map((r) =>
      r.level === 'critical'
        ? `queue ${r.queue}: ${r.depth} at or above its hard limit ${r.hard} (backpressure critical, producers stopped)`
        : `queue ${r.queue}: ${r.depth} above its soft limit ${r.soft} (backpressure ${r.level}, throttle ${r.throttle})`,
    );
}
