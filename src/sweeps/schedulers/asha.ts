/**
 * ASHA (asynchronous successive halving, Li et al. 2020) and asynchronous Hyperband — pure.
 *
 * Bracket s has rungs at grace_period · rf^(s+k) below max_t. When a running trial first reports
 * at or past a rung, the value it had there is recorded and compared with the values other
 * trials of its bracket recorded at that rung: it is promoted (continues) when it is within the
 * top 1/rf of them, else it is stopped. The first trial at a rung always continues. Decisions
 * are stored with the trial (its `rungs`) in the same transaction as a stop, so a restarted
 * controller never decides a rung twice. Hyperband runs every bracket, trial n in bracket
 * n mod brackets.
 */
import { better, type SchedulerSpec } from '../model.js';
import {
  baseJobs,
  remainingTrials,
  type SchedulerContext,
  type SchedulerDecision,
  type TrialView,
  valueAt,
} from './common.js';

type AshaSpec = Extract<SchedulerSpec, { type: 'asha' | 'hyperband' }>;

/** The rung milestones of bracket s, ascending, all below max_t. */
export function rungsOf(
  spec: Pick<AshaSpec, 'grace_period' | 'reduction_factor' | 'max_t'>,
  s: number,
): number[] {
  const out: number[] = [];
  for (let k = 0; k < 64; k++) {
    const m = spec.grace_period * spec.reduction_factor ** (s + k);
    if (m >= spec.max_t - 1e-9) break;
    out.push(Number(m.toPrecision(12)));
  }
  return out;
}

/**
 * numpy-style linear-interpolated quantile of the values (q in [0, 1]).
 */
export function quantile(values: readonly number[], q: number): number {
  const xs = [...values].sort((a, b) => a - b);
  if (xs.length === 0) return Number.NaN;
  const pos = (xs.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = xs[lo] ?? Number.NaN;
  const b = xs[hi] ?? Number.NaN;
  return a + (b - a) * (pos - lo);
}

/**
 * Whether a value recorded at a rung is promoted given the others recorded there: within the
 * best 1/rf (the first one at a rung always is).
 */
export function promoted(
  value: number,
  others: readonly number[],
  rf: number,
  direction: 'minimize' | 'maximize',
): boolean {
  if (others.length === 0) return true;
  const cutoff = direction === 'minimize' ? quantile(others, 1 / rf) : quantile(others, 1 - 1 / rf);
  return value === cutoff || better(value, cutoff, direction);
}

export function ashaDecide(ctx: SchedulerContext, spec: AshaSpec): SchedulerDecision {
  const { jobs, free } = baseJobs(ctx);
  const stop: SchedulerDecision['stop'] = [];
  const record: SchedulerDecision['record'] = [];
  // Values already recorded, by bracket and rung; decisions made this round count too.
  const recorded = new Map<string, number[]>();
  const key = (bracket: number, m: number) => `${bracket}:${m}`;
  for (const t of ctx.trials) {
    for (const [m, v] of Object.entries(t.rungs)) {
      const k = key(t.bracket ?? 0, Number(m));
      const list = recorded.get(k) ?? [];
      list.push(v);
      recorded.set(k, list);
    }
  }
  for (const t of ctx.trials) {
    if (t.status !== 'IN_TRAINING' || ctx.stopping) continue;
    const decided = decideTrial(t, spec, recorded, key);
    if (Object.keys(decided.rungs).length > 0) record.push({ number: t.number, rungs: decided.rungs });
    if (decided.stop) stop.push({ number: t.number, reason: decided.stop });
  }
  const left = remainingTrials(ctx);
  const canCreate = !ctx.stopping && !ctx.exhausted;
  return {
    jobs,
    create: canCreate ? Math.min(free, left) : 0,
    assign: (n) => ({ bracket: n % spec.brackets, member: null }),
    stop,
    record,
    spawn: [],
    finished: ctx.exhausted || left === 0,
  };
}

function decideTrial(
  t: TrialView,
  spec: AshaSpec,
  recorded: Map<string, number[]>,
  key: (bracket: number, m: number) => string,
): { rungs: Record<string, number>; stop: string | null } {
  const bracket = t.bracket ?? 0;
  const rungs: Record<string, number> = {};
  for (const m of rungsOf(spec, bracket)) {
    if (String(m) in t.rungs) continue;
    const v = valueAt(t.series, m);
    if (v === null || !Number.isFinite(v)) break;
    const k = key(bracket, m);
    const others = recorded.get(k) ?? [];
    const ok = promoted(v, others, spec.reduction_factor, spec.direction);
    rungs[String(m)] = v;
    recorded.set(k, [...others, v]);
    if (!ok)
      return {
        rungs,
        stop: `stopped at rung ${m} (${spec.metric}=${v}): not in the top 1/${spec.reduction_factor}`,
      };
  }
  return { rungs, stop: null };
}
