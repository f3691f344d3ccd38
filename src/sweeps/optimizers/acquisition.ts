/** Acquisition functions on a posterior N(mean, variance), for minimisation. */
import { LOG_SQRT_2PI, normCdf } from './math.js';

/**
 * log of the expected improvement below `best`: log(σ · h(z)) with z = (best − μ)/σ and
 * h(z) = φ(z) + zΦ(z). Below z = −3 the direct formula cancels; there h(−x) = φ(x)·t/(x + t)
 * with t = 1/(x + 2/(x + 3/(x + …))) (the Mills-ratio continued fraction), which has no
 * cancellation, so candidates far from improving still rank by how far they are.
 */
export function logExpectedImprovement(mean: number, variance: number, best: number): number {
  const sigma = Math.sqrt(variance);
  const z = (best - mean) / sigma;
  let logH: number;
  if (z > -3) {
    const h = Math.exp(-0.5 * z * z - LOG_SQRT_2PI) + z * normCdf(z);
    logH = Math.log(Math.max(h, 1e-300));
  } else {
    const x = -z;
    let t = 0;
    for (let k = 40; k >= 2; k--) t = k / (x + t);
    t = 1 / (x + t);
    logH = -0.5 * x * x - LOG_SQRT_2PI + Math.log(t / (x + t));
  }
  return logH + Math.log(sigma);
}
