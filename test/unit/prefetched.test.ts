/**
 * Rows a relay subscriber looked up for a batch of events: each handed out once, a key looked up
 * and not found kept as null, a key not looked up left to the handler (undefined).
 */
import { describe, expect, it } from 'vitest';
import { Prefetched } from '../../src/events/prefetched.js';

describe('Prefetched', () => {
  it('hands out each looked-up row once, null for a key that has none, undefined for one not looked up', async () => {
    const p = new Prefetched<{ id: string }>();
    await p.load(['a', 'b', 'a'], async (keys) => {
      expect(keys).toEqual(['a', 'b']);
      return [['a', { id: 'a' }]];
    });
    expect(p.take('a')).toEqual({ id: 'a' });
    expect(p.take('a')).toBeUndefined();
    expect(p.take('b')).toBeNull();
    expect(p.take('c')).toBeUndefined();
  });

  it('replaces what it kept with each load, and reads at most 500 keys at a time', async () => {
    const p = new Prefetched<number>();
    await p.load(['old'], async () => [['old', 1]]);
    const sizes: number[] = [];
    const keys = Array.from({ length: 1200 }, (_, i) => `k${i}`);
    await p.load(keys, async (chunk) => {
      sizes.push(chunk.length);
      return chunk.map((k) => [k, Number(k.slice(1))] as const);
    });
    expect(sizes).toEqual([500, 500, 200]);
    expect(p.take('old')).toBeUndefined();
    expect(p.take('k0')).toBe(0);
    expect(p.take('k1199')).toBe(1199);
  });

  it('reads a row itself only for a key that was not looked up', async () => {
    const p = new Prefetched<string>();
    await p.load(['a', 'b'], async () => [['a', 'row a']]);
    const reads: string[] = [];
    const readOne = (k: string) => async () => {
      reads.push(k);
      return `read ${k}`;
    };
    expect(await p.takeOr('a', readOne('a'))).toBe('row a');
    expect(await p.takeOr('b', readOne('b'))).toBeNull();
    expect(await p.takeOr('c', readOne('c'))).toBe('read c');
    expect(reads).toEqual(['c']);
  });
});
