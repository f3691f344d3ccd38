import { describe, expect, it } from 'vitest';
import {
  crowdingDistance,
  hypervolume,
  nondominatedRanks,
  paretoFront,
} from '../../src/sweeps/optimizers/pareto.js';
import { Rng } from '../../src/sweeps/optimizers/rng.js';

describe('paretoFront', () => {
  it('finds the non-dominated points in each direction', () => {
    const pts = [
      [1, 5],
      [2, 3],
      [3, 4], // dominated by [2, 3]
      [4, 1],
      [5, 1], // dominated by [4, 1]
      [Number.NaN, 0], // never on the front
    ];
    expect(paretoFront(pts, ['minimize', 'minimize'])).toEqual([0, 1, 3]);
    // accuracy up, latency down
    const acc = [
      [0.9, 30],
      [0.8, 10],
      [0.85, 40], // worse accuracy and slower than [0.9, 30]
      [0.95, 100],
    ];
    expect(paretoFront(acc, ['maximize', 'minimize'])).toEqual([0, 1, 3]);
  });

  it('keeps duplicates of a front point (neither dominates the other)', () => {
    expect(
      paretoFront(
        [
          [1, 1],
          [1, 1],
          [2, 2],
        ],
        ['minimize', 'minimize'],
      ),
    ).toEqual([0, 1]);
  });
});

describe('hypervolume', () => {
  it('matches hand-computed values in 2-D', () => {
    // staircase of (1,3), (2,2), (3,1) under reference (4,4): 3 + 2 + 1 = 6
    expect(
      hypervolume(
        [
          [1, 3],
          [2, 2],
          [3, 1],
        ],
        ['minimize', 'minimize'],
        [4, 4],
      ),
    ).toBeCloseTo(6, 12);
    // dominated and out-of-reference points add nothing
    expect(
      hypervolume(
        [
          [1, 3],
          [2, 2],
          [3, 1],
          [3, 3],
          [5, 0],
        ],
        ['minimize', 'minimize'],
        [4, 4],
      ),
    ).toBeCloseTo(6, 12);
    // maximisation: (3,1),(2,2),(1,3) against reference (0,0)
    expect(
      hypervolume(
        [
          [3, 1],
          [2, 2],
          [1, 3],
        ],
        ['maximize', 'maximize'],
        [0, 0],
      ),
    ).toBeCloseTo(6, 12);
  });

  it('matches hand-computed values in 3-D', () => {
    // one box 1×2×3
    expect(hypervolume([[0, 0, 0]], ['minimize', 'minimize', 'minimize'], [1, 2, 3])).toBeCloseTo(6, 12);
    // two unit-cube corners of [0,2]^3: each box is 2·2·1 (or so), the union by inclusion–exclusion
    // A = [0,2]×[0,2]×[1,2] (point (0,0,1)), B = [1,2]×[0,2]×[0,2] (point (1,0,0)):
    // |A| = 4, |B| = 4, |A∩B| = [1,2]×[0,2]×[1,2] = 2 → 6
    expect(
      hypervolume(
        [
          [0, 0, 1],
          [1, 0, 0],
        ],
        ['minimize', 'minimize', 'minimize'],
        [2, 2, 2],
      ),
    ).toBeCloseTo(6, 12);
  });

  it('agrees with an independent cell count on random 3-D and 4-D sets', () => {
    const rng = new Rng(12345);
    for (const k of [3, 4]) {
      const pts = Array.from({ length: 9 }, () => Array.from({ length: k }, () => rng.next()));
      const ref = new Array<number>(k).fill(1);
      expect(hypervolume(pts, new Array(k).fill('minimize'), ref)).toBeCloseTo(cellVolume(pts, ref), 10);
    }
  });
});

/** Exact volume by coordinate compression: every grid cell is either dominated or not. */
function cellVolume(points: number[][], ref: number[]): number {
  const k = ref.length;
  const axes = ref.map((r, j) =>
    [...new Set([...points.map((p) => p[j] as number), r])].sort((a, b) => a - b),
  );
  let volume = 0;
  const walk = (j: number, lo: number[], size: number): void => {
    if (j === k) {
      if (points.some((p) => p.every((v, i) => v <= (lo[i] as number)))) volume += size;
      return;
    }
    const axis = axes[j] as number[];
    for (let c = 0; c + 1 < axis.length; c++)
      walk(j + 1, [...lo, axis[c] as number], size * ((axis[c + 1] as number) - (axis[c] as number)));
  };
  walk(0, [], 1);
  return volume;
}

describe('non-dominated sorting', () => {
  it('ranks fronts and gives boundary points infinite crowding', () => {
    const pts = [
      [1, 4],
      [2, 2],
      [4, 1],
      [3, 3],
      [5, 5],
    ];
    expect(nondominatedRanks(pts)).toEqual([0, 0, 0, 1, 2]);
    const crowd = crowdingDistance(pts.slice(0, 3));
    expect(crowd[0]).toBe(Number.POSITIVE_INFINITY);
    expect(crowd[2]).toBe(Number.POSITIVE_INFINITY);
    // middle point: (4-1)/(4-1) + (4-1)/(4-1) = 2
    expect(crowd[1]).toBeCloseTo(2, 12);
  });
});
