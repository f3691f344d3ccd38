/**
 * Adaptive epoch sizes (pure). While the posterior is wide, epochs grow along a ladder
 * (1 → 5 → 20 → 100 → 500 ...), so a pod with an obvious outcome stops after a handful of games and
 * a hard one is not dispatched one game at a time. Each epoch is also capped by an estimate of
 * how many more games the target needs, so sizes shrink as the target nears and few games are
 * simulated past the point of convergence. `epoch_size` is the largest epoch; without adaptive
 * scaling every epoch has exactly that size.
 */
import { type Evidence, moments } from './posterior.js';
import { normalQuantile } from './random.js';

export const EPOCH_LADDER = [1, 5, 20, 100, 500, 2000, 10000, 50000] as const;

/** The next ladder rung above `previous` (the first rung when there was no epoch yet). */
export function nextRung(previous: number | null): number {
  if (previous === null || previous < 1) return EPOCH_LADDER[0];
  for (const r of EPOCH_LADDER) if (r > previous) return r;
  return EPOCH_LADDER[EPOCH_LADDER.length - 1] ?? previous;
}

export interface RemainingInput {
  evidence: readonly Evidence[];
  prior: number;
  confidenceTarget: number;
  precision: number;
}

/**
 * Games still needed, by the normal approximation of the posterior: each game adds one unit of
 * evidence to every participant, and the variance of an expected placement falls as
 * σ²/(concentration + 1). Infinity when two participants look exactly equal.
 */
export function estimateRemainingGames(input: RemainingInput): number {
  const c = input.confidenceTarget;
  const z = normalQuantile((1 + c) / 2);
  // The ranking has three adjacent pairs sharing the allowed error (union bound).
  const zPair = normalQuantile(1 - (1 - c) / 3);
  // A floor on the per-game variance: a few identical placements make it look like zero.
  const ms = input.evidence.map((e) => {
    const m = moments(e.counts, input.prior);
    return { id: e.participant, mean: m.mean, v: Math.max(m.placementVariance, 0.05), a: m.concentration };
  });
  let need = 0;
  for (const m of ms) need = Math.max(need, (2 * z) ** 2 * (m.v / input.precision ** 2) - (m.a + 1));
  const sorted = [...ms].sort((x, y) => x.mean - y.mean);
  for (let i = 0; i + 1 < sorted.length; i++) {
    const a = sorted[i];
    const b = sorted[i + 1];
    if (!a || !b) continue;
    const gap = b.mean - a.mean;
    if (gap <= 1e-9) return Number.POSITIVE_INFINITY;
    need = Math.max(need, (zPair ** 2 * (a.v + b.v)) / gap ** 2 - (Math.min(a.a, b.a) + 1));
  }
  return Math.max(0, need);
}

export interface EpochSizeInput extends RemainingInput {
  adaptive: boolean;
  /** The fixed size, or with adaptive scaling the largest one. */
  epochSize: number;
  /** Size of the pod's previous epoch since its last reset, if any. */
  previousSize: number | null;
}

export interface EpochSizeDecision {
  size: number;
  /** The estimate of games still needed that capped it (null without adaptive scaling). */
  estimated_remaining: number | null;
}

export function nextEpochSize(input: EpochSizeInput): EpochSizeDecision {
  const cap = Math.max(1, Math.floor(input.epochSize));
  if (!input.adaptive) return { size: cap, estimated_remaining: null };
  const rung = nextRung(input.previousSize);
  const remaining = estimateRemainingGames(input);
  const wanted = Number.isFinite(remaining) ? Math.ceil(remaining * 1.1) : rung;
  return {
    size: Math.max(1, Math.min(cap, rung, wanted)),
    estimated_remaining: Number.isFinite(remaining) ? Math.ceil(remaining) : null,
  };
}
