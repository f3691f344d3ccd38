/**
 * The seeded-randomness helpers shared by pods and sweep optimizers: published FNV-1a vectors,
 * the normal quantile, and the shuffle. The pinned sequences guard the seeded streams both slices
 * depend on (pod verdicts and sweep suggestions are pure functions of them).
 */
import { describe, expect, it } from 'vitest';
import { hashString, normalQuantile, seededRng, shuffled } from '../../src/pods/random.js';
import { acklamNormalQuantile, FNV1A_OFFSET, fnv1a32, shuffleInPlace } from '../../src/shared/random.js';
import { normCdf, normPpf } from '../../src/sweeps/optimizers/math.js';
import { hashParts, Rng } from '../../src/sweeps/optimizers/rng.js';

describe('fnv1a32', () => {
  it('matches the published FNV-1a 32-bit test vectors', () => {
    expect(fnv1a32('')).toBe(FNV1A_OFFSET);
    expect(fnv1a32('a')).toBe(0xe40c292c);
    expect(fnv1a32('foobar')).toBe(0xbf9cf968);
  });

  it('continues from a previous state as if the strings were concatenated', () => {
    expect(fnv1a32('bar', fnv1a32('foo'))).toBe(fnv1a32('foobar'));
  });

  it('is what the pod slice hashes ids with, and what sweep seeds are folded from', () => {
    expect(hashString('pod-1')).toBe(fnv1a32('pod-1'));
    expect(hashParts(7, 'tpe')).not.toBe(hashParts(7, 'tp', 'e'));
    expect(hashParts(7, 'tpe')).toBe(hashParts(7, 'tpe'));
  });
});

describe('acklamNormalQuantile', () => {
  it('returns the familiar quantiles and the infinities at the ends', () => {
    expect(acklamNormalQuantile(0.5)).toBe(0);
    expect(acklamNormalQuantile(0.975)).toBeCloseTo(1.959964, 6);
    expect(acklamNormalQuantile(0.001)).toBeCloseTo(-3.090232, 6);
    expect(acklamNormalQuantile(0)).toBe(Number.NEGATIVE_INFINITY);
    expect(acklamNormalQuantile(1)).toBe(Number.POSITIVE_INFINITY);
    expect(acklamNormalQuantile(Number.NaN)).toBeNaN();
  });

  it('is symmetric across all three regions', () => {
    for (const p of [0.001, 0.01, 0.02425, 0.2, 0.4]) {
      expect(acklamNormalQuantile(1 - p)).toBeCloseTo(-acklamNormalQuantile(p), 6);
    }
  });

  it('is the pods quantile unchanged, and the start of the sweeps refined one', () => {
    for (const p of [1e-9, 0.01, 0.3, 0.5, 0.9, 0.999]) {
      expect(normalQuantile(p)).toBe(acklamNormalQuantile(p));
      const x = acklamNormalQuantile(p);
      expect(Math.abs(normPpf(p) - x)).toBeLessThan(1e-7 * Math.max(1, Math.abs(x)));
      expect(normCdf(normPpf(p))).toBeCloseTo(p, 9);
    }
  });
});

describe('shuffleInPlace', () => {
  it('permutes in place and returns the same array', () => {
    const items = Array.from({ length: 50 }, (_, i) => i);
    const out = shuffleInPlace(items, seededRng(3));
    expect(out).toBe(items);
    expect([...out].sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(out).not.toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it('keeps the seeded orders both slices produced before it was shared', () => {
    const ten = () => [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
    expect(shuffled(ten(), seededRng(7))).toEqual([6, 5, 8, 1, 2, 3, 4, 7, 9, 0]);
    expect(new Rng(7).shuffle(ten())).toEqual([7, 6, 0, 1, 9, 5, 3, 8, 4, 2]);
  });

  it('leaves the input of the copying pods variant untouched', () => {
    const input = [1, 2, 3, 4, 5];
    shuffled(input, seededRng(1));
    expect(input).toEqual([1, 2, 3, 4, 5]);
  });
});
