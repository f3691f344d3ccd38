/**
 * Median stopping rule (Golovin et al., Google Vizier) — pure. A running trial past its grace
 * period is stopped when its best value so far is worse than the median, over the other trials
 * that got at least as far, of their running means up to the same step; at least min_samples
 * such trials are needed before anything is stopped.
 */
import { better, type SchedulerSpec } from '../model.js';
import { quantile } from './asha.js';
import {
  baseJobs,
  latestStep,
  remainingTrials,
  type SchedulerContext,
  type SchedulerDecision,
  type SeriesPoint,
} from './common.js';

type MedianSpec = Extract<SchedulerSpec, { type: 'median' }>;

function runningMean(series: readonly SeriesPoint[], upTo: number): number | null {
  let sum = 0;
  let n = 0;
  for (const p of series) {
    if (p.step > upTo) break;
    sum += p.value;
    n++;
  }
  return n === 0 ? null : sum / n;
}

export function medianDecide(ctx: SchedulerContext, spec: MedianSpec): SchedulerDecision {
  const { jobs, free } = baseJobs(ctx);
  const stop: SchedulerDecision['stop'] = [];
  for (const t of ctx.trials) {
    if (t.status !== 'IN_TRAINING' || ctx.stopping) continue;
    const now = latestStep(t.series);
    if (now === null || now < spec.grace_period) continue;
    const means: number[] = [];
    for (const o of ctx.trials) {
      if (o.number === t.number || o.status === 'FAILED') continue;
      const reached = latestStep(o.series);
      if (reached === null || reached < now) continue;
      const m = runningMean(o.series, now);
      if (m !== null) means.push(m);
    }
    if (means.length < spec.min_samples) continue;
    const median = quantile(means, 0.5);
    const values = t.series.map((p) => p.value);
    const best = spec.direction === 'minimize' ? Math.min(...values) : Math.max(...values);
    if (better(median, best, spec.direction)) {
      stop.push({
        number: t.number,
        reason: `median stopping at step ${now}: best ${spec.metric}=${best} is worse than the median ${median} of ${means.length} trials`,
      });
    }
  }
  const left = remainingTrials(ctx);
  const canCreate = !ctx.stopping && !ctx.exhausted;
  return {
    jobs,
    create: canCreate ? Math.min(free, left) : 0,
    assign: () => ({ bracket: null, member: null }),
    stop,
    record: [],
    spawn: [],
    finished: ctx.exhausted || left === 0,
  };
}
