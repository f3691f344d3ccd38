import { describe, expect, it } from 'vitest';
import { newId } from '../../src/shared/ids.js';

describe('newId', () => {
  it('sorts by time, increases within one millisecond and never repeats', () => {
    const ids: string[] = [];
    const base = 1_700_000_000_000;
    for (let ms = 0; ms < 2000; ms++) for (let k = 0; k < 3; k++) ids.push(newId('evt', base + ms));
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
    expect(ids.every((id) => /^evt_[0-9a-z]{26}$/.test(id))).toBe(true);
  });

  it('draws a fresh random part for each new millisecond', () => {
    const base = 1_800_000_000_000;
    const randomParts = Array.from({ length: 1000 }, (_, ms) => newId('x', base + ms).slice(12));
    // 1,000 draws of 80 random bits: any repeat means the randomness is being reused.
    expect(new Set(randomParts).size).toBe(randomParts.length);
  });
});
