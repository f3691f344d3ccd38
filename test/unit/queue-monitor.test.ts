import { describe, expect, it } from 'vitest';
import { levelOf, queueIssues, reading, worst } from '../../src/coordination/queue-monitor.js';

describe('queue monitors', () => {
  it('grades the depth between the soft and hard limits', () => {
    const l = { soft: 100, hard: 400 };
    expect([0, 99, 100, 199, 200, 299, 300, 399, 400, 1000].map((d) => levelOf(d, l))).toEqual([
      'none',
      'none',
      'low',
      'low',
      'medium',
      'medium',
      'high',
      'high',
      'critical',
      'critical',
    ]);
    expect(reading('q', 250, l)).toMatchObject({ level: 'medium', level_index: 2, throttle: 0.5 });
  });

  it('reports the worst queue and a sentence per queue above its soft limit', () => {
    const rs = [
      reading('a', 5, { soft: 10, hard: 20 }),
      reading('b', 25, { soft: 10, hard: 20 }),
      reading('c', 12, { soft: 10, hard: 20 }),
    ];
    expect(worst(rs)?.queue).toBe('b');
    expect(queueIssues(rs)).toEqual([
      'queue b: 25 at or above its hard limit 20 (backpressure critical, producers stopped)',
      'queue c: 12 above its soft limit 10 (backpressure low, throttle 0.75)',
    ]);
  });
});
