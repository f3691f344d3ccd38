/**
 * Sweep analysis — pure: best configuration, top-k, hyperparameter importance (PED-ANOVA), the
 * Pareto front and its hypervolume (multi-objective), the score-vs-cost front (cost-aware), a
 * significance test between the two best configurations, and the optimisation history.
 */
import type { ObjectiveSpec, TrialStatus } from '../model.js';
import { better } from '../model.js';
import { hypervolume, paretoFront } from '../optimizers/pareto.js';
import type { Params, Space } from '../space.js';
import { pedAnova } from './importance.js';
import { mannWhitneyU, welchTTest } from './stats.js';

export interface AnalysisTrial {
  number: number;
  status: TrialStatus;
  params: Params;
  values: number[] | null;
  run_id: string;
  cost: number | null;
}

export interface RankedTrial {
  number: number;
  values: number[];
  params: Params;
  run_id: string;
  cost: number | null;
}

export interface Significance {
  a: number;
  b: number;
  test: string;
  statistic: number;
  p_value: number;
  n_a: number;
  n_b: number;
  significant: boolean;
  note: string;
}

export interface Analysis {
  objectives: ObjectiveSpec[];
  trials: { total: number; completed: number; failed: number; pruned: number };
  best: RankedTrial | null;
  top: RankedTrial[];
  importance: Array<{ param: string; importance: number }>;
  importance_method: string;
  pareto_front: number[];
  hypervolume: number | null;
  cost_front: number[];
  significance: Significance | null;
  history: Array<{ number: number; value: number | null; best: number | null; status: string }>;
}

/**
 * Samples for the significance test, per trial number: repeated measurements of its objective
 * (the last reported values of the metric; repeats of the same configuration pool together).
 */
export type SamplesOf = (number: number) => number[];

export function analyze(
  space: Space,
  objectives: ObjectiveSpec[],
  trials: readonly AnalysisTrial[],
  opts: { top?: number; samples?: SamplesOf; alpha?: number } = {},
): Analysis {
  const primary = objectives[0] ?? { metric: '', direction: 'minimize' as const, aggregate: 'last' as const };
  const completed = trials.filter(
    (t): t is AnalysisTrial & { values: number[] } =>
      t.status === 'COMPLETED' && t.values !== null && t.values.every(Number.isFinite),
  );
  const ranked = [...completed].sort((a, b) => {
    const x = a.values[0] ?? 0;
    const y = b.values[0] ?? 0;
    return better(x, y, primary.direction) ? -1 : better(y, x, primary.direction) ? 1 : a.number - b.number;
  });
  const toRanked = (t: AnalysisTrial & { values: number[] }): RankedTrial => ({
    number: t.number,
    values: t.values,
    params: t.params,
    run_id: t.run_id,
    cost: t.cost,
  });
  const directions = objectives.map((o) => o.direction);
  let pareto: number[] = [];
  let hv: number | null = null;
  if (objectives.length > 1 && completed.length > 0) {
    const points = completed.map((t) => t.values);
    pareto = paretoFront(points, directions)
      .map((i) => completed[i]?.number ?? -1)
      .sort((a, b) => a - b);
    // Reference point: the worst value of each objective, 10 % beyond.
    const reference = directions.map((d, k) => {
      const col = points.map((p) => p[k] ?? 0);
      const worst = d === 'minimize' ? Math.max(...col) : Math.min(...col);
      const span = Math.max(...col) - Math.min(...col) || Math.abs(worst) || 1;
      return d === 'minimize' ? worst + 0.1 * span : worst - 0.1 * span;
    });
    hv = hypervolume(points, directions, reference);
  }
  const costed = completed.filter((t) => t.cost !== null && Number.isFinite(t.cost));
  const costFront =
    costed.length > 0
      ? paretoFront(
          costed.map((t) => [t.values[0] ?? 0, t.cost ?? 0]),
          [primary.direction, 'minimize'],
        )
          .map((i) => costed[i]?.number ?? -1)
          .sort((a, b) => a - b)
      : [];

  let bestSoFar: number | null = null;
  const history = [...trials]
    .sort((a, b) => a.number - b.number)
    .map((t) => {
      const v = t.status === 'COMPLETED' ? (t.values?.[0] ?? null) : null;
      if (v !== null && (bestSoFar === null || better(v, bestSoFar, primary.direction))) bestSoFar = v;
      return { number: t.number, value: v, best: bestSoFar, status: t.status };
    });

  return {
    objectives,
    trials: {
      total: trials.length,
      completed: completed.length,
      failed: trials.filter((t) => t.status === 'FAILED').length,
      pruned: trials.filter((t) => t.status === 'PRUNED').length,
    },
    best: ranked[0] ? toRanked(ranked[0]) : null,
    top: ranked.slice(0, opts.top ?? 10).map(toRanked),
    importance: pedAnova(
      space,
      completed.map((t) => ({ params: t.params, value: t.values[0] ?? 0 })),
      primary.direction,
    ),
    importance_method: 'PED-ANOVA (top 25% vs all, Pearson divergence)',
    pareto_front: pareto,
    hypervolume: hv,
    cost_front: costFront,
    significance: significanceOf(ranked, opts.samples, opts.alpha ?? 0.05),
    history,
  };
}

function significanceOf(
  ranked: ReadonlyArray<AnalysisTrial & { values: number[] }>,
  samplesOf: SamplesOf | undefined,
  alpha: number,
): Significance | null {
  const [a, b] = ranked;
  if (!a || !b || !samplesOf) return null;
  const sa = samplesOf(a.number);
  const sb = samplesOf(b.number);
  const welch = welchTTest(sa, sb);
  if (welch) {
    return {
      a: a.number,
      b: b.number,
      test: 'welch-t',
      statistic: welch.t,
      p_value: welch.p,
      n_a: sa.length,
      n_b: sb.length,
      significant: welch.p < alpha,
      note: `Welch's t-test on repeated measurements of the objective (last reported values); alpha ${alpha}`,
    };
  }
  const mw = mannWhitneyU(sa, sb);
  if (!mw) return null;
  return {
    a: a.number,
    b: b.number,
    test: 'mann-whitney-u',
    statistic: mw.u,
    p_value: mw.p,
    n_a: sa.length,
    n_b: sb.length,
    significant: mw.p < alpha,
    note: 'too few measurements for a t-test; Mann-Whitney U (normal approximation)',
  };
}
