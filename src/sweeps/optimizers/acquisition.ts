/** Acquisition functions on a posterior N(mean, variance), for minimisation. */
import { LOG_SQRT_2PI, normCdf } from './math.js';

/**
 * log of the expected improvement below `best`: log(σ · h(z)) with z = (best − μ)/σ and
 * h(z) = φ(z) + zΦ(z), using the asymptotic expansion deep in the lower tail so that
 * candidates far from improving still rank by how far they are.
 */
export function logExpectedImprovement(mean: number, variance: number, best: number): number {
  const sigma = Math.sqrt(variance);
  const z = (best - mean) / sigma;
  let logH: number;
  if (z > -6) {
    const h = Math.exp(-0.5 * z * z - LOG_SQRT_2PI) + z * normCdf(z);
    logH = Math.log(Math.max(h, 1e-300));
  } else {
    const z2 = z * z;
    // h(z) = φ(z) · (1/z² − 3/z⁴ + 15/z⁶ − …)
    logH = -0.5 * z2 - LOG_SQRT_2PI + Math.log(1 / z2 - 3 / (z2 * z2) + 15 / (z2 * z2 * z2));
  }
  return logH + Math.log(sigma);
}
