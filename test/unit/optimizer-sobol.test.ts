import { describe, expect, it } from 'vitest';
import { createOptimizer } from '../../src/sweeps/optimizers/index.js';
import { JOE_KUO, primitivePolynomials, SobolSequence } from '../../src/sweeps/optimizers/sobol.js';
import type { Space } from '../../src/sweeps/space.js';

describe('sobol', () => {
  it('uses the primitive polynomials of Joe and Kuo, in their order', () => {
    expect(primitivePolynomials(JOE_KUO.length)).toEqual(JOE_KUO.map(([s, a]) => [s, a]));
    for (const [s, , m] of JOE_KUO) {
      m.forEach((v, k) => {
        expect(v % 2).toBe(1);
        expect(v).toBeLessThan(2 ** (k + 1));
      });
      expect(m).toHaveLength(s);
    }
  });

  it('stratifies every dimension: the first 2^k points fill each 1/2^k slice once', () => {
    for (const scramble of [false, true]) {
      const seq = new SobolSequence(40, scramble, 9);
      for (const k of [3, 6]) {
        const n = 2 ** k;
        const pts = Array.from({ length: n }, (_, i) => seq.point(i));
        for (let d = 0; d < 40; d++) {
          const slices = new Set(pts.map((p) => Math.floor((p[d] as number) * n)));
          expect(slices.size).toBe(n);
        }
      }
    }
  });

  it('stratifies pairs of dimensions as a (0,2)-net in the first two', () => {
    const seq = new SobolSequence(2, true, 3);
    const cells = new Set(
      Array.from({ length: 16 }, (_, i) => seq.point(i)).map(
        ([a, b]) => `${Math.floor((a as number) * 4)},${Math.floor((b as number) * 4)}`,
      ),
    );
    expect(cells.size).toBe(16);
  });

  it('maps points to parameters, trial n taking point n', () => {
    const space: Space = {
      lr: { type: 'float', low: 1e-4, high: 1, log: true },
      act: { type: 'categorical', choices: ['a', 'b'] },
    };
    const opt = createOptimizer({ type: 'sobol', seed: 2 }, space, ['minimize']);
    const seq = new SobolSequence(2, true, 2);
    const [u0, u1] = seq.point(5) as [number, number];
    const p = opt.suggest(5, [], []);
    expect(p?.lr).toBeCloseTo(1e-4 * 1e4 ** u0, 10);
    expect(p?.act).toBe(u1 < 0.5 ? 'a' : 'b');
  });
});
