/**
 * Seeded randomness and the few distributions the pod evaluator needs (pure, no I/O).
 * Every Monte Carlo estimate, shuffle and simulated game is drawn from a seeded generator, so
 * the same inputs always give the same answer: a pod's convergence verdict is reproducible.
 */

import { acklamNormalQuantile, fnv1a32, shuffleInPlace, type Uniform } from '../shared/random.js';

/** A uniform [0, 1) generator. */
export type Rng = Uniform;

/** Mixes any integers into one 32-bit seed (order matters). */
export function mixSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    // Both halves of values beyond 32 bits count, so large seeds stay distinct.
    const lo = p | 0;
    const hi = Math.floor(p / 4294967296) | 0;
    for (const v of [lo, hi]) {
      h = Math.imul(h ^ v, 0x85ebca6b);
      h ^= h >>> 13;
      h = Math.imul(h, 0xc2b2ae35);
      h ^= h >>> 16;
    }
  }
  return h >>> 0;
}

/** A 32-bit hash of a string (FNV-1a), to derive seeds from ids. */
export function hashString(s: string): number {
  return fnv1a32(s);
}

/** mulberry32: small, fast and good enough for simulation and Monte Carlo. */
export function seededRng(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A standard normal draw (Box-Muller). */
export function normal(rng: Rng): number {
  let u = 0;
  while (u === 0) u = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
}

/** A Gamma(shape, 1) draw (Marsaglia-Tsang; shape < 1 boosted by U^(1/shape)). */
export function gamma(rng: Rng, shape: number): number {
  if (shape <= 0) return 0;
  if (shape < 1) {
    let u = 0;
    while (u === 0) u = rng();
    return gamma(rng, shape + 1) * u ** (1 / shape);
  }
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = normal(rng);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = rng();
    if (u < 1 - 0.0331 * x * x * x * x) return d * v;
    if (Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
}

/** A Dirichlet(alpha) draw. */
export function dirichlet(rng: Rng, alpha: readonly number[]): number[] {
  const g = alpha.map((a) => gamma(rng, a));
  const sum = g.reduce((s, x) => s + x, 0);
  return sum > 0 ? g.map((x) => x / sum) : alpha.map(() => 1 / alpha.length);
}

/** Fisher-Yates shuffle into a new array. */
export function shuffled<T>(items: readonly T[], rng: Rng): T[] {
  return shuffleInPlace([...items], rng);
}

/** Standard normal CDF (Abramowitz-Stegun 7.1.26 via erf; |error| < 1.5e-7). */
export function normalCdf(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * z);
  const y =
    1 -
    ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) *
      t *
      Math.exp(-z * z);
  return x >= 0 ? 0.5 * (1 + y) : 0.5 * (1 - y);
}

/** The upper tail 1 - Φ(x), accurate far into the tail (where 1 - normalCdf would round to 0). */
export function normalTail(x: number): number {
  if (x < 3) return 1 - normalCdf(x);
  // Continued-fraction (Laplace) expansion of Mills' ratio.
  let f = x;
  for (let k = 40; k >= 1; k--) f = x + k / f;
  return Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI) / f;
}

/** Standard normal quantile Φ⁻¹(p) (Acklam's rational approximation; relative error < 1.2e-9). */
export function normalQuantile(p: number): number {
  return acklamNormalQuantile(p);
}
