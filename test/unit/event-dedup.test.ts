/** The dedup window (event ids, content hashes) and the content hash itself, on a fake clock. */
import { describe, expect, it } from 'vitest';
import { contentHash, DedupWindow } from '../../src/events/dedup.js';
import { FakeClock } from '../helpers/clock.js';

describe('DedupWindow', () => {
  it('remembers a key for the window and forgets it after', () => {
    const clock = new FakeClock(1_000_000);
    const w = new DedupWindow(60_000, clock);
    expect(w.has('evt_1')).toBe(false);
    w.add('evt_1');
    expect(w.has('evt_1')).toBe(true);
    clock.advance(59_999);
    expect(w.has('evt_1')).toBe(true);
    clock.advance(1);
    expect(w.has('evt_1')).toBe(false);
  });

  it('drops expired keys as new ones arrive, and the oldest when full', () => {
    const clock = new FakeClock(0);
    const w = new DedupWindow(1000, clock, 3);
    for (const k of ['a', 'b', 'c']) w.add(k);
    expect(w.size).toBe(3);
    w.add('d');
    expect(w.size).toBe(3);
    expect(w.has('a')).toBe(false);
    expect(w.has('d')).toBe(true);
    clock.advance(2000);
    w.add('e');
    expect(w.size).toBe(1);
    expect(w.has('b')).toBe(false);
  });

  it('seeing a key again renews it', () => {
    const clock = new FakeClock(0);
    const w = new DedupWindow(1000, clock);
    w.add('a');
    clock.advance(900);
    w.add('a');
    clock.advance(900);
    expect(w.has('a')).toBe(true);
  });

  it('a window of 0 remembers nothing', () => {
    const w = new DedupWindow(0, new FakeClock());
    w.add('a');
    expect(w.has('a')).toBe(false);
    expect(w.size).toBe(0);
  });
});

describe('contentHash', () => {
  it('is the same for the same content whatever the key order', () => {
    const a = contentHash('pipeline.training.completed', 'hex8_2p', {
      config_key: 'hex8_2p',
      model_path: '/m.pth',
      metrics: { loss: 0.5, accuracy: 0.75 },
    });
    const b = contentHash('pipeline.training.completed', 'hex8_2p', {
      metrics: { accuracy: 0.75, loss: 0.5 },
      model_path: '/m.pth',
      config_key: 'hex8_2p',
    });
    expect(a).toBe(b);
    expect(a).toMatch(/^[a-f0-9]{64}$/);
  });

  it('differs when the type, the entity or any payload value differs', () => {
    const base = contentHash('t.a', 'e', { x: 1 });
    expect(contentHash('t.b', 'e', { x: 1 })).not.toBe(base);
    expect(contentHash('t.a', 'f', { x: 1 })).not.toBe(base);
    expect(contentHash('t.a', 'e', { x: 2 })).not.toBe(base);
    expect(contentHash('t.a', 'e', { x: 1, y: null })).not.toBe(base);
  });
});
