/** Numerical helpers: the normal distribution (pdf, cdf, quantile, truncated), the median. */

import { acklamNormalQuantile } from '../../shared/random.js';

export const LOG_SQRT_2PI = 0.5 * Math.log(2 * Math.PI);

/** erfc(x) with relative error below 1.2e-7 everywhere (Numerical Recipes' Chebyshev fit). */
export function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t *
                      (-0.18628806 +
                        t *
                          (0.27886807 +
                            t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

/** Standard normal CDF Φ(x). */
export function normCdf(x: number): number {
  return 0.5 * erfc(-x / Math.SQRT2);
}

export function normPdf(x: number): number {
  return Math.exp(-0.5 * x * x - LOG_SQRT_2PI);
}

/** Standard normal quantile Φ⁻¹(p) (Acklam's rational approximation, refined by one Halley step). */
export function normPpf(p: number): number {
  if (p <= 0) return Number.NEGATIVE_INFINITY;
  if (p >= 1) return Number.POSITIVE_INFINITY;
  let x = acklamNormalQuantile(p);
  if (p > 1e-300 && p < 1 - 1e-16) {
    const e = normCdf(x) - p;
    const u = e * Math.sqrt(2 * Math.PI) * Math.exp(0.5 * x * x);
    x = x - u / (1 + 0.5 * x * u);
  }
  return x;
}

/** Mass of N(0,1) between a < b, computed on the side of zero where it does not cancel. */
export function normMass(a: number, b: number): number {
  if (a > 0) return normCdf(-a) - normCdf(-b);
  if (b < 0) return normCdf(b) - normCdf(a);
  return 1 - normCdf(a) - normCdf(-b);
}

/** A draw from N(mu, sigma²) truncated to [low, high], by inverse CDF from u in [0, 1). */
export function truncNormalFromUniform(
  mu: number,
  sigma: number,
  low: number,
  high: number,
  u: number,
): number {
  const a = (low - mu) / sigma;
  const b = (high - mu) / sigma;
  let z: number;
  if (a > 0) {
    // Upper tail: sample through the survival function to keep precision.
    const qa = normCdf(-a);
    const qb = normCdf(-b);
    z = -normPpf(qa - u * (qa - qb));
  } else {
    const pa = normCdf(a);
    const pb = normCdf(b);
    z = normPpf(pa + u * (pb - pa));
  }
  if (!Number.isFinite(z)) z = Math.min(b, Math.max(a, 0));
  return Math.min(high, Math.max(low, mu + sigma * z));
}

/** log density of N(mu, sigma²) truncated to [low, high] at x. */
export function truncNormalLogPdf(x: number, mu: number, sigma: number, low: number, high: number): number {
  const z = (x - mu) / sigma;
  const mass = normMass((low - mu) / sigma, (high - mu) / sigma);
  return -0.5 * z * z - LOG_SQRT_2PI - Math.log(sigma) - Math.log(Math.max(mass, 1e-300));
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 === 1 ? (s[h] as number) : ((s[h - 1] as number) + (s[h] as number)) / 2;
}
