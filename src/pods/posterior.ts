/**
 * The Bayesian evaluator (pure). Each participant's placement distribution θ = (θ1..θ4) has a
 * Dirichlet(prior + counts) posterior, counts being the (possibly decayed) placements seen.
 * Its expected placement E = Σ k·θk is what the ranking and the precision test are about.
 *
 * A pod converges when, at the confidence target c:
 *  - precision: every participant's central c-credible interval of E is narrower than `precision`;
 *  - settled ranking: the order of the four by posterior mean of E holds with probability >= c.
 * The pod's current confidence is the largest c at which both hold.
 *
 * With little evidence the posterior of E is skewed and bounded, so it is estimated by Monte
 * Carlo from the Dirichlets with a seeded generator (reproducible). Past MC_MAX_EVIDENCE games per
 * participant the exact Dirichlet moments with a normal approximation are used instead: they are
 * accurate there, cost nothing, and resolve confidences like 0.99999 that sampling cannot.
 * The ranking probability is then bounded below by 1 - Σ P(adjacent pair swapped) (union bound):
 * the order holds exactly when every adjacent pair does.
 */
import { dirichlet, normalQuantile, normalTail, seededRng } from './random.js';

export const PLACEMENTS = 4;
/** Evidence per participant below which intervals are sampled rather than approximated. */
export const MC_MAX_EVIDENCE = 30;
export const MC_SAMPLES = 8000;

export interface Evidence {
  participant: string;
  /** Placements 1..4 seen (decayed after a reset, so not necessarily integers). */
  counts: readonly number[];
}

export interface EvaluateInput {
  evidence: readonly Evidence[];
  confidenceTarget: number;
  precision: number;
  /** Dirichlet prior concentration per placement (1 = uniform). */
  prior: number;
  /** Seed of the Monte Carlo estimate. */
  seed: number;
  /** False right after a reset: the pod may not converge on old, decayed evidence alone. */
  hasNewEvidence?: boolean;
  /** Force a method (tests compare them); by default chosen by the evidence. */
  method?: 'analytic' | 'monte_carlo';
}

export interface ParticipantPosterior {
  participant: string;
  /** Games seen (decayed evidence), the sum of counts. */
  evidence: number;
  /** Posterior mean of θ: the probability of each placement 1..4. */
  placement_probabilities: number[];
  /** Posterior mean of the expected placement. */
  expected_placement: number;
  /** Posterior standard deviation of the expected placement. */
  sd: number;
  /** Central credible interval of the expected placement at the confidence target. */
  interval: [number, number];
  interval_width: number;
}

export interface Evaluation {
  method: 'analytic' | 'monte_carlo';
  participants: ParticipantPosterior[];
  /** Participants best first (lowest expected placement). */
  ranking: string[];
  /** Probability that the ranking holds. */
  ranking_confidence: number;
  /** Largest confidence at which every interval is narrower than the precision. */
  precision_confidence: number;
  /** min(ranking_confidence, precision_confidence). */
  confidence: number;
  converged: boolean;
  /** Why the pod is, or is not, converged. */
  reasons: string[];
}

export interface Moments {
  /** Posterior mean of θ. */
  probabilities: number[];
  mean: number;
  /** Variance of one placement under the posterior mean θ. */
  placementVariance: number;
  /** Total Dirichlet concentration (prior + evidence). */
  concentration: number;
  /** Posterior variance of E. */
  variance: number;
}

/** Exact moments of E = Σ k·θk under Dirichlet(prior + counts). */
export function moments(counts: readonly number[], prior: number): Moments {
  const alpha = Array.from({ length: PLACEMENTS }, (_, k) => prior + (counts[k] ?? 0));
  const a0 = alpha.reduce((s, a) => s + a, 0);
  const p = alpha.map((a) => a / a0);
  const mean = p.reduce((s, pk, k) => s + (k + 1) * pk, 0);
  const second = p.reduce((s, pk, k) => s + (k + 1) ** 2 * pk, 0);
  const placementVariance = Math.max(0, second - mean * mean);
  return {
    probabilities: p,
    mean,
    placementVariance,
    concentration: a0,
    variance: placementVariance / (a0 + 1),
  };
}

const round = (x: number, digits = 6) => Number(x.toFixed(digits));
const clampPlacement = (x: number) => Math.min(PLACEMENTS, Math.max(1, x));
const pct = (c: number) => `${round(c * 100, 4)}%`;

/** Orders participants by expected placement (best first), ties by id so the order is stable. */
function rankOrder(means: ReadonlyMap<string, number>): string[] {
  return [...means.keys()].sort((a, b) => (means.get(a) ?? 0) - (means.get(b) ?? 0) || (a < b ? -1 : 1));
}

export function evaluate(input: EvaluateInput): Evaluation {
  const { evidence, confidenceTarget: c, precision, prior } = input;
  const ms = evidence.map((e) => ({
    e,
    m: moments(e.counts, prior),
    n: e.counts.reduce((s, x) => s + x, 0),
  }));
  const minEvidence = Math.min(...ms.map((x) => x.n));
  const method = input.method ?? (minEvidence >= MC_MAX_EVIDENCE ? 'analytic' : 'monte_carlo');
  const means = new Map(ms.map((x) => [x.e.participant, x.m.mean]));
  const ranking = rankOrder(means);

  let participants: ParticipantPosterior[];
  let precisionConfidence: number;
  let rankingConfidence: number;
  const pairViolation = new Map<string, number>();

  if (method === 'analytic') {
    const z = normalQuantile((1 + c) / 2);
    participants = ms.map(({ e, m, n }) => {
      const sd = Math.sqrt(m.variance);
      const lo = clampPlacement(m.mean - z * sd);
      const hi = clampPlacement(m.mean + z * sd);
      return posteriorView(e.participant, n, m, sd, lo, hi);
    });
    // width < precision ⇔ z < precision / (2 sd): the largest such confidence is 2Φ(·) - 1.
    precisionConfidence = Math.min(
      ...participants.map((p) => (p.sd === 0 ? 1 : 1 - 2 * normalTail(precision / (2 * p.sd)))),
    );
    let violation = 0;
    for (let i = 0; i + 1 < ranking.length; i++) {
      const a = participants.find((p) => p.participant === ranking[i]);
      const b = participants.find((p) => p.participant === ranking[i + 1]);
      if (!a || !b) continue;
      const s = Math.sqrt(a.sd ** 2 + b.sd ** 2);
      const gap = b.expected_placement - a.expected_placement;
      const v = s === 0 ? (gap > 0 ? 0 : 0.5) : normalTail(gap / s);
      pairViolation.set(`${a.participant}>${b.participant}`, v);
      violation += v;
    }
    rankingConfidence = Math.max(0, 1 - violation);
  } else {
    const rng = seededRng(input.seed);
    const samples = ms.map(() => new Float64Array(MC_SAMPLES));
    const alphas = ms.map(({ e }) =>
      Array.from({ length: PLACEMENTS }, (_, k) => prior + (e.counts[k] ?? 0)),
    );
    const index = new Map(ms.map((x, i) => [x.e.participant, i]));
    const order = ranking.map((id) => index.get(id) ?? 0);
    let held = 0;
    const pairHeld = new Array<number>(Math.max(0, order.length - 1)).fill(0);
    for (let s = 0; s < MC_SAMPLES; s++) {
      for (let i = 0; i < alphas.length; i++) {
        const theta = dirichlet(rng, alphas[i] ?? []);
        let ev = 0;
        for (let k = 0; k < PLACEMENTS; k++) ev += (k + 1) * (theta[k] ?? 0);
        (samples[i] as Float64Array)[s] = ev;
      }
      let all = true;
      for (let j = 0; j + 1 < order.length; j++) {
        const a = (samples[order[j] ?? 0] as Float64Array)[s] ?? 0;
        const b = (samples[order[j + 1] ?? 0] as Float64Array)[s] ?? 0;
        if (a < b) pairHeld[j] = (pairHeld[j] ?? 0) + 1;
        else all = false;
      }
      if (all) held++;
    }
    for (let j = 0; j + 1 < ranking.length; j++)
      pairViolation.set(`${ranking[j]}>${ranking[j + 1]}`, 1 - (pairHeld[j] ?? 0) / MC_SAMPLES);
    // A sample cannot certify more than 1 - 1/N.
    const cap = 1 - 1 / MC_SAMPLES;
    rankingConfidence = Math.min(cap, held / MC_SAMPLES);
    const perParticipant: number[] = [];
    participants = ms.map(({ e, m, n }, i) => {
      const sorted = Array.from(samples[i] as Float64Array).sort((x, y) => x - y);
      const q = (p: number) =>
        sorted[Math.min(sorted.length - 1, Math.max(0, Math.floor(p * sorted.length)))] ?? 0;
      const lo = q((1 - c) / 2);
      const hi = q((1 + c) / 2);
      let k = 0;
      const N = sorted.length;
      while (k < N / 2 && (sorted[N - 1 - k] ?? 0) - (sorted[k] ?? 0) >= precision) k++;
      perParticipant.push(Math.min(cap, (N - 2 * k) / N));
      return posteriorView(e.participant, n, m, Math.sqrt(m.variance), lo, hi);
    });
    precisionConfidence = Math.min(...perParticipant);
  }

  const confidence = Math.max(0, Math.min(rankingConfidence, precisionConfidence));
  const hasNew = input.hasNewEvidence ?? true;
  const converged = hasNew && confidence >= c;
  const reasons: string[] = [];
  if (converged) {
    reasons.push(
      `every ${pct(c)} interval is narrower than ${precision} and the ranking ${ranking.join(' > ')} (best first) holds with probability ${round(rankingConfidence, 6)}`,
    );
  } else {
    if (!hasNew) reasons.push('reset: waiting for games played since the reset');
    for (const p of participants)
      if (p.interval_width >= precision)
        reasons.push(
          `${p.participant}: the ${pct(c)} interval of expected placement is ${round(p.interval_width, 3)} wide (precision ${precision})`,
        );
    let pairReason = false;
    for (const [pair, v] of pairViolation) {
      if (1 - v < c) {
        const [a, b] = pair.split('>');
        reasons.push(`${a} ahead of ${b} holds with probability ${round(1 - v, 4)} < ${c}`);
        pairReason = true;
      }
    }
    if (rankingConfidence < c && !pairReason)
      reasons.push(`the whole ranking holds with probability ${round(rankingConfidence, 6)} < ${c}`);
    if (reasons.length === 0)
      reasons.push(
        `the intervals are narrower than ${precision} only at confidence ${round(precisionConfidence, 6)} < ${c}`,
      );
  }
  return {
    method,
    participants,
    ranking,
    ranking_confidence: round(rankingConfidence, 9),
    precision_confidence: round(precisionConfidence, 9),
    confidence: round(confidence, 9),
    converged,
    reasons,
  };
}

function posteriorView(
  participant: string,
  n: number,
  m: Moments,
  sd: number,
  lo: number,
  hi: number,
): ParticipantPosterior {
  return {
    participant,
    evidence: round(n, 6),
    placement_probabilities: m.probabilities.map((p) => round(p)),
    expected_placement: round(m.mean),
    sd: round(sd),
    interval: [round(lo), round(hi)],
    interval_width: round(hi - lo),
  };
}
