import { describe, expect, it } from 'vitest';
import { logExpectedImprovement } from '../../src/sweeps/optimizers/acquisition.js';
import { minimizeLbfgs } from '../../src/sweeps/optimizers/lbfgs.js';
import { cholesky, choleskyInverse, symmetricEigen } from '../../src/sweeps/optimizers/linalg.js';
import {
  normCdf,
  normPdf,
  normPpf,
  truncNormalFromUniform,
  truncNormalLogPdf,
} from '../../src/sweeps/optimizers/math.js';
import { Rng } from '../../src/sweeps/optimizers/rng.js';

function randomSpd(n: number, rng: Rng): Float64Array {
  const A = new Float64Array(n * n).map(() => rng.normal());
  const K = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let s = i === j ? n : 0;
      for (let k = 0; k < n; k++) s += (A[i * n + k] as number) * (A[j * n + k] as number);
      K[i * n + j] = s;
    }
  }
  return K;
}

describe('linear algebra', () => {
  it('inverts through the Cholesky factor', () => {
    const n = 7;
    const K = randomSpd(n, new Rng(1));
    const L = Float64Array.from(K);
    expect(cholesky(L, n)).toBe(true);
    const inv = choleskyInverse(L, n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let k = 0; k < n; k++) s += (K[i * n + k] as number) * (inv[k * n + j] as number);
        expect(s).toBeCloseTo(i === j ? 1 : 0, 9);
      }
    }
    expect(cholesky(Float64Array.from([1, 2, 2, 1]), 2)).toBe(false);
  });

  it('decomposes symmetric matrices: A = V diag(λ) Vᵀ', () => {
    const n = 5;
    const A = randomSpd(n, new Rng(2));
    const { values, vectors } = symmetricEigen(A, n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let k = 0; k < n; k++)
          s += (vectors[i * n + k] as number) * (values[k] as number) * (vectors[j * n + k] as number);
        expect(s).toBeCloseTo(A[i * n + j] as number, 8);
      }
    }
  });
});

describe('L-BFGS', () => {
  it('minimises Rosenbrock and respects the box', () => {
    const f = (x: Float64Array, g: Float64Array): number => {
      const a = x[0] as number;
      const b = x[1] as number;
      g[0] = -2 * (1 - a) - 400 * a * (b - a * a);
      g[1] = 200 * (b - a * a);
      return (1 - a) ** 2 + 100 * (b - a * a) ** 2;
    };
    const free = minimizeLbfgs(
      f,
      Float64Array.from([-1.2, 1]),
      Float64Array.from([-5, -5]),
      Float64Array.from([5, 5]),
      500,
    );
    expect(free.f).toBeLessThan(1e-8);
    const boxed = minimizeLbfgs(
      f,
      Float64Array.from([-1.2, 0]),
      Float64Array.from([-5, -5]),
      Float64Array.from([0.5, 5]),
      500,
    );
    expect(boxed.x[0]).toBeLessThanOrEqual(0.5);
    expect(boxed.x[0]).toBeCloseTo(0.5, 4);
  });
});

describe('normal distribution', () => {
  it('has a quantile that inverts the CDF, tails included', () => {
    for (const p of [1e-12, 1e-6, 0.01, 0.3, 0.5, 0.9, 0.999999])
      expect(normCdf(normPpf(p)) / p).toBeCloseTo(1, 5);
  });

  it('samples truncated normals inside their bounds, far tails included', () => {
    const rng = new Rng(3);
    for (const [mu, sigma] of [
      [0.5, 0.1],
      [-3, 0.1],
      [4, 0.05],
    ] as const) {
      for (let i = 0; i < 200; i++) {
        const x = truncNormalFromUniform(mu, sigma, 0, 1, rng.next());
        expect(x).toBeGreaterThanOrEqual(0);
        expect(x).toBeLessThanOrEqual(1);
      }
    }
    // the density integrates to 1 over the bounds
    let mass = 0;
    for (let i = 0; i < 10_000; i++)
      mass += Math.exp(truncNormalLogPdf((i + 0.5) / 10_000, 0.9, 0.2, 0, 1)) / 10_000;
    expect(mass).toBeCloseTo(1, 4);
  });

  it('computes log EI stably: matches the closed form and keeps ranking deep in the tail', () => {
    const direct = (mu: number, v: number, best: number): number => {
      const s = Math.sqrt(v);
      const z = (best - mu) / s;
      return Math.log(s * (z * normCdf(z) + normPdf(z)));
    };
    expect(logExpectedImprovement(0.3, 0.04, 0.1)).toBeCloseTo(direct(0.3, 0.04, 0.1), 6);
    // reference values from mpmath at 50 digits
    expect(logExpectedImprovement(0.4, 0.01, 0.1)).toBeCloseTo(-10.172271152597075, 9);
    expect(logExpectedImprovement(0.8, 0.01, 0.1)).toBeCloseTo(-31.670692276135327, 9);
    expect(logExpectedImprovement(10, 0.01, 0)).toBeCloseTo(-5012.432163893243, 6);
    const far = [10, 20, 40].map((mu) => logExpectedImprovement(mu, 0.01, 0));
    expect(far.every(Number.isFinite)).toBe(true);
    expect(far[0]).toBeGreaterThan(far[1] as number);
    expect(far[1]).toBeGreaterThan(far[2] as number);
  });
});
