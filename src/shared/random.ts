/**
 * Seeded-randomness building blocks shared by the pod evaluator (src/pods/random.ts) and the sweep
 * optimizers (src/sweeps/optimizers/rng.ts, math.ts). Pure, no I/O, never Math.random.
 *
 * The two slices keep their own generators on purpose: pods draw from mulberry32 and sweeps from
 * xoshiro128**, and stored pod verdicts and sweep suggestions are pure functions of those streams.
 * What lives here is what both use unchanged: the string hash that derives seeds, the Fisher-Yates
 * shuffle over any uniform source, and the rational approximation of the normal quantile.
 */

/** A uniform [0, 1) source. */
export type Uniform = () => number;

/** The FNV-1a 32-bit offset basis: the state {@link fnv1a32} starts from. */
export const FNV1A_OFFSET = 0x811c9dc5;

/**
 * 32-bit FNV-1a of `text`'s UTF-16 code units, continuing from `state` (pass a previous result to
 * hash several strings as one). Returns an unsigned 32-bit integer.
 */
export function fnv1a32(text: string, state: number = FNV1A_OFFSET): number {
  let h = state;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Fisher-Yates shuffle of `items` in place, drawing from `uniform`; returns `items`. */
export function shuffleInPlace<T>(items: T[], uniform: Uniform): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(uniform() * (i + 1));
    const t = items[i] as T;
    items[i] = items[j] as T;
    items[j] = t;
  }
  return items;
}

const ACKLAM_A = [
  -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716,
  2.506628277459239,
] as const;
const ACKLAM_B = [
  -54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572,
] as const;
const ACKLAM_C = [
  -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968,
  2.938163982698783,
] as const;
const ACKLAM_D = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416] as const;
const ACKLAM_LOW = 0.02425;

/** Horner evaluation of the polynomial with coefficients `cs` (highest degree first) at x. */
function horner(cs: readonly number[], x: number): number {
  let acc = 0;
  for (const k of cs) acc = acc * x + k;
  return acc;
}

/**
 * Standard normal quantile Φ⁻¹(p) by Acklam's rational approximation (relative error < 1.2e-9),
 * without refinement; -Infinity for p <= 0, +Infinity for p >= 1, NaN for NaN.
 */
export function acklamNormalQuantile(p: number): number {
  if (p <= 0) return Number.NEGATIVE_INFINITY;
  if (p >= 1) return Number.POSITIVE_INFINITY;
  if (p < ACKLAM_LOW) {
    const q = Math.sqrt(-2 * Math.log(p));
    return horner(ACKLAM_C, q) / (horner(ACKLAM_D, q) * q + 1);
  }
  if (p > 1 - ACKLAM_LOW) {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    return -horner(ACKLAM_C, q) / (horner(ACKLAM_D, q) * q + 1);
  }
  const q = p - 0.5;
  const r = q * q;
  return (horner(ACKLAM_A, r) * q) / (horner(ACKLAM_B, r) * r + 1);
}
