/**
 * The pod evaluator's pure parts: the Dirichlet posterior and convergence test, adaptive epoch
 * sizes, and convergence on synthetic pods with known answers.
 */
import { describe, expect, it } from 'vitest';
import {
  EPOCH_LADDER,
  estimateRemainingGames,
  nextEpochSize,
  nextRung,
} from '../../src/pods/epoch-sizing.js';
import { DEFAULT_POD_CONFIG } from '../../src/pods/model.js';
import { evaluate, moments } from '../../src/pods/posterior.js';
import { dirichlet, normalCdf, normalQuantile, normalTail, seededRng } from '../../src/pods/random.js';
import { runPod } from '../../src/pods/simulation.js';

const P = ['a', 'b', 'c', 'd'];
const ev = (counts: number[][]) => P.map((participant, i) => ({ participant, counts: counts[i] ?? [] }));
const base = { confidenceTarget: 0.99, precision: 0.5, prior: 1, seed: 42 };

describe('random', () => {
  it('has a normal quantile that inverts the CDF, and an accurate far tail', () => {
    for (const p of [0.001, 0.025, 0.5, 0.9, 0.995, 0.999995])
      expect(normalCdf(normalQuantile(p))).toBeCloseTo(p, 6);
    expect(normalQuantile(0.975)).toBeCloseTo(1.959964, 5);
    expect(normalTail(5)).toBeCloseTo(2.866516e-7, 12);
    expect(normalTail(1)).toBeCloseTo(1 - normalCdf(1), 9);
  });

  it('samples Dirichlets with the right mean, reproducibly', () => {
    const draw = (seed: number) => {
      const rng = seededRng(seed);
      const sum = [0, 0, 0, 0];
      for (let i = 0; i < 20000; i++)
        for (const [k, x] of dirichlet(rng, [4, 2, 1, 1]).entries()) sum[k]! += x;
      return sum.map((s) => s / 20000);
    };
    const m = draw(1);
    for (const [k, x] of [0.5, 0.25, 0.125, 0.125].entries()) expect(m[k]).toBeCloseTo(x, 2);
    expect(draw(1)).toEqual(m);
  });
});

describe('posterior', () => {
  it('has exact Dirichlet moments that Monte Carlo agrees with', () => {
    const m = moments([10, 5, 3, 2], 1);
    expect(m.concentration).toBe(24);
    expect(m.mean).toBeCloseTo((11 + 2 * 6 + 3 * 4 + 4 * 3) / 24, 12);
    const rng = seededRng(7);
    const xs: number[] = [];
    for (let i = 0; i < 40000; i++)
      xs.push(dirichlet(rng, [11, 6, 4, 3]).reduce((s, p, k) => s + (k + 1) * p, 0));
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    const variance = xs.reduce((s, x) => s + (x - mean) ** 2, 0) / xs.length;
    expect(mean).toBeCloseTo(m.mean, 2);
    expect(variance).toBeCloseTo(m.variance, 3);
  });

  it('is reproducible: the same evidence and seed give the same verdict', () => {
    const input = {
      ...base,
      evidence: ev([
        [8, 1, 1, 0],
        [1, 6, 2, 1],
        [1, 2, 5, 2],
        [0, 1, 2, 7],
      ]),
    };
    const a = evaluate(input);
    expect(a.method).toBe('monte_carlo');
    expect(evaluate(input)).toEqual(a);
    expect(a.ranking).toEqual(['a', 'b', 'c', 'd']);
  });

  it('agrees between Monte Carlo and the analytic approximation with plenty of evidence', () => {
    const e = ev([
      [60, 25, 10, 5],
      [25, 40, 25, 10],
      [10, 25, 40, 25],
      [5, 10, 25, 60],
    ]);
    const mc = evaluate({ ...base, evidence: e, method: 'monte_carlo' });
    const an = evaluate({ ...base, evidence: e, method: 'analytic' });
    expect(evaluate({ ...base, evidence: e }).method).toBe('analytic');
    for (let i = 0; i < 4; i++) {
      expect(mc.participants[i]!.interval_width).toBeCloseTo(an.participants[i]!.interval_width, 1);
      expect(mc.participants[i]!.expected_placement).toBeCloseTo(an.participants[i]!.expected_placement, 6);
    }
    expect(Math.abs(mc.ranking_confidence - an.ranking_confidence)).toBeLessThan(0.02);
    expect(an.ranking).toEqual(mc.ranking);
  });

  it('converges on a clear, precise ranking and says why it does or does not', () => {
    const clear = evaluate({
      ...base,
      evidence: ev([
        [100, 0, 0, 0],
        [0, 100, 0, 0],
        [0, 0, 100, 0],
        [0, 0, 0, 100],
      ]),
    });
    expect(clear.converged).toBe(true);
    expect(clear.confidence).toBeGreaterThanOrEqual(0.99);
    expect(clear.reasons[0]).toMatch(/narrower than 0.5/);

    const few = evaluate({
      ...base,
      evidence: ev([
        [2, 0, 0, 0],
        [0, 2, 0, 0],
        [0, 0, 2, 0],
        [0, 0, 0, 2],
      ]),
    });
    expect(few.converged).toBe(false);
    expect(few.reasons.some((r) => /interval of expected placement is .* wide/.test(r))).toBe(true);

    const tied = evaluate({
      ...base,
      evidence: ev([
        [50, 50, 0, 0],
        [50, 50, 0, 0],
        [0, 0, 50, 50],
        [0, 0, 50, 50],
      ]),
    });
    expect(tied.converged).toBe(false);
    expect(tied.reasons.some((r) => /ahead of .* holds with probability/.test(r))).toBe(true);

    // Right after a reset, old evidence alone never converges a pod.
    const settled = ev([
      [100, 0, 0, 0],
      [0, 100, 0, 0],
      [0, 0, 100, 0],
      [0, 0, 0, 100],
    ]);
    const reset = evaluate({ ...base, evidence: settled, hasNewEvidence: false });
    expect(reset.converged).toBe(false);
    expect(reset.confidence).toBe(clear.confidence);
  });

  it('needs more evidence for a higher confidence target', () => {
    const e = ev([
      [30, 5, 3, 2],
      [5, 28, 5, 2],
      [3, 5, 27, 5],
      [2, 2, 5, 31],
    ]);
    const c99 = evaluate({ ...base, evidence: e });
    const c99999 = evaluate({ ...base, evidence: e, confidenceTarget: 0.99999 });
    expect(c99.participants[0]!.interval_width).toBeLessThan(c99999.participants[0]!.interval_width);
    expect(c99.confidence).toBe(c99999.confidence);
    expect(c99999.converged).toBe(c99.confidence >= 0.99999);
  });
});

describe('adaptive epoch sizes', () => {
  const input = {
    adaptive: true,
    epochSize: 100,
    prior: 1,
    confidenceTarget: 0.99,
    precision: 0.5,
    evidence: ev([
      [0, 0, 0, 0],
      [0, 0, 0, 0],
      [0, 0, 0, 0],
      [0, 0, 0, 0],
    ]),
  };

  it('grows along the ladder while uncertainty is high, up to epoch_size', () => {
    expect(EPOCH_LADDER.slice(0, 4)).toEqual([1, 5, 20, 100]);
    expect(nextRung(null)).toBe(1);
    expect(nextRung(1)).toBe(5);
    expect(nextRung(7)).toBe(20);
    const sizes: number[] = [];
    let previous: number | null = null;
    for (let i = 0; i < 5; i++) {
      previous = nextEpochSize({ ...input, previousSize: previous }).size;
      sizes.push(previous);
    }
    expect(sizes).toEqual([1, 5, 20, 100, 100]);
  });

  it('shrinks as the target nears, and is fixed without adaptive scaling', () => {
    // Nearly converged evidence: few more games needed.
    const near = ev([
      [45, 5, 0, 0],
      [5, 40, 5, 0],
      [0, 5, 40, 5],
      [0, 0, 5, 45],
    ]);
    const remaining = estimateRemainingGames({ ...input, evidence: near });
    expect(remaining).toBeLessThan(50);
    const d = nextEpochSize({ ...input, evidence: near, previousSize: 100 });
    expect(d.size).toBeLessThan(100);
    expect(d.size).toBeGreaterThanOrEqual(1);
    expect(d.estimated_remaining).toBe(Math.ceil(remaining));
    expect(nextEpochSize({ ...input, adaptive: false, epochSize: 37, previousSize: 1 })).toEqual({
      size: 37,
      estimated_remaining: null,
    });
    const tied = ev([
      [25, 25, 0, 0],
      [25, 25, 0, 0],
      [0, 0, 25, 25],
      [0, 0, 25, 25],
    ]);
    expect(estimateRemainingGames({ ...input, evidence: tied })).toBe(Number.POSITIVE_INFINITY);
  });
});

describe('convergence on synthetic pods', () => {
  const config = { ...DEFAULT_POD_CONFIG, max_epochs_per_pod: 12 };
  const strengths = (s: number[]) => new Map(P.map((p, i) => [p, s[i] ?? 0]));

  it('converges fast on clear winners, slower on near-equal participants, and is capped by max_epochs_per_pod', () => {
    const clear = [1, 2, 3].map((seed) => runPod(P, strengths([3, 2, 1, 0]), config, seed));
    const close = [1, 2, 3].map((seed) => runPod(P, strengths([0.9, 0.6, 0.3, 0]), config, seed));
    for (const r of clear) {
      expect(r.converged).toBe(true);
      expect(r.evaluation?.ranking).toEqual(P);
    }
    const mean = (rs: typeof clear) => rs.reduce((s, r) => s + r.games.length, 0) / rs.length;
    expect(mean(close)).toBeGreaterThan(2 * mean(clear));
    for (const r of close) if (r.converged) expect(r.evaluation?.ranking).toEqual(P);

    const equal = runPod(P, strengths([0, 0, 0, 0]), { ...config, max_epochs_per_pod: 5 }, 1);
    expect(equal.converged).toBe(false);
    expect(equal.stop_reason).toBe('max_epochs');
    expect(equal.epochs).toEqual([1, 5, 20, 100, 100]);
    expect(equal.games).toHaveLength(226);
  });

  it('stops the moment the target is met, not at the end of the epoch', () => {
    const r = runPod(
      P,
      strengths([4, 2.5, 1, 0]),
      { ...config, adaptive_scaling: false, epoch_size: 1000 },
      9,
      {
        batch: 10,
      },
    );
    expect(r.converged).toBe(true);
    expect(r.games.length).toBeLessThan(1000);
    expect(r.games.length % 10).toBe(0);
  });
});
