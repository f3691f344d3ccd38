/**
 * Population-based training (Jaderberg et al. 2017) — pure.
 *
 * A population of `population_size` members trains at once; each member is a chain of trials
 * (lineage: a trial's `parent_number` is the trial whose checkpoint it continued from). Every
 * `perturbation_interval` steps a running trial's value is recorded; when it is in the bottom
 * `quantile` of the population, it is stopped (exploit) and a new trial of the same member
 * starts from the checkpoint of a trial of the top quantile with perturbed or resampled
 * hyperparameters (explore). Randomness comes from (seed, trial number, step), so a restarted
 * controller makes the same choice.
 */

import { better, type SchedulerSpec } from '../model.js';
import { Rng } from '../optimizers/rng.js';
import {
  dependencyOrder,
  fromUnit,
  isActive,
  type NumericSpec,
  type Params,
  roundToSpec,
  type Space,
} from '../space.js';
import {
  baseJobs,
  latestStep,
  remainingTrials,
  type SchedulerContext,
  type SchedulerDecision,
  type Spawn,
  type TrialView,
  valueAt,
} from './common.js';

type PbtSpec = Extract<SchedulerSpec, { type: 'pbt' }>;

/** Perturbation points of a trial that started at startStep: interval multiples after it, below max_t. */
export function perturbationPoints(
  spec: Pick<PbtSpec, 'perturbation_interval' | 'max_t'>,
  startStep: number,
): number[] {
  const out: number[] = [];
  const first = Math.floor(startStep / spec.perturbation_interval) + 1;
  for (let k = first; k * spec.perturbation_interval < spec.max_t && out.length < 10_000; k++) {
    out.push(k * spec.perturbation_interval);
  }
  return out;
}

/** The current (latest) trial of each member of the population. */
export function currentMembers(trials: readonly TrialView[]): Map<number, TrialView> {
  const out = new Map<number, TrialView>();
  for (const t of trials) {
    if (t.member === null) continue;
    const prev = out.get(t.member);
    if (!prev || prev.number < t.number) out.set(t.member, t);
  }
  return out;
}

/**
 * Explore: each mutable parameter is resampled (with resample_probability, and always for a
 * categorical without neighbours) or perturbed: numbers times one of the factors, categoricals
 * to a neighbouring choice. Parameters a condition turns on are sampled; those it turns off go.
 */
export function explore(
  space: Space,
  params: Params,
  spec: Pick<PbtSpec, 'mutations' | 'resample_probability' | 'perturbation_factors'>,
  rng: Rng,
): Params {
  const out: Params = {};
  for (const name of dependencyOrder(space)) {
    const p = space[name];
    if (!p || !isActive(space, name, out)) continue;
    const current = params[name];
    if (current === undefined) {
      out[name] = sample(p, rng);
      continue;
    }
    if (!spec.mutations.includes(name)) {
      out[name] = current;
      continue;
    }
    const resample = rng.next() < spec.resample_probability;
    if (p.type === 'categorical') {
      const i = p.choices.indexOf(current);
      if (resample || i < 0 || p.choices.length < 2) out[name] = sample(p, rng);
      else {
        const j = Math.min(p.choices.length - 1, Math.max(0, i + (rng.next() < 0.5 ? -1 : 1)));
        out[name] = p.choices[j] ?? current;
      }
      continue;
    }
    if (resample || typeof current !== 'number') {
      out[name] = sample(p, rng);
      continue;
    }
    const factor = rng.next() < 0.5 ? spec.perturbation_factors[0] : spec.perturbation_factors[1];
    let next = roundToSpec(p, current * factor);
    // An int that rounds back to itself moves one step in the factor's direction.
    if (next === current && p.type === 'int') next = roundToSpec(p, current + (factor > 1 ? 1 : -1));
    out[name] = next;
  }
  return out;
}

function sample(p: Space[string], rng: Rng): string | number | boolean {
  if (p.type === 'categorical') return p.choices[rng.int(p.choices.length)] ?? (p.choices[0] as string);
  return fromUnit(p as NumericSpec, rng.next());
}

export function pbtDecide(ctx: SchedulerContext, spec: PbtSpec): SchedulerDecision {
  const { jobs, free } = baseJobs(ctx);
  const stop: SchedulerDecision['stop'] = [];
  const record: SchedulerDecision['record'] = [];
  const spawn: Spawn[] = [];
  const members = currentMembers(ctx.trials);
  let left = remainingTrials(ctx);
  const initialLeft = Math.max(0, spec.population_size - ctx.trialCount);
  const canCreate = !ctx.stopping && !ctx.exhausted && members.size < spec.population_size;
  const create = canCreate ? Math.min(free, left, initialLeft) : 0;
  left -= create;

  // The population's standing: each member's latest reported value.
  const standing: Array<{ t: TrialView; value: number }> = [];
  for (const t of members.values()) {
    const last = t.series[t.series.length - 1];
    if (last !== undefined && Number.isFinite(last.value) && t.status !== 'FAILED')
      standing.push({ t, value: last.value });
  }
  standing.sort((a, b) =>
    better(a.value, b.value, spec.direction)
      ? -1
      : better(b.value, a.value, spec.direction)
        ? 1
        : a.t.number - b.t.number,
  );
  let q = Math.ceil(standing.length * spec.quantile);
  if (q > standing.length / 2) q = Math.floor(standing.length / 2);
  // A donor that already reached max_t has nothing left to hand on: continuing it would only
  // repeat its end.
  const top = standing
    .slice(0, q)
    .map((s) => s.t)
    .filter((t) => (latestStep(t.series) ?? 0) < spec.max_t);
  const bottom = new Set(standing.slice(standing.length - q).map((s) => s.t.number));

  if (!ctx.stopping) {
    for (const t of members.values()) {
      if (t.status !== 'IN_TRAINING' || t.member === null) continue;
      const reached = latestStep(t.series);
      if (reached === null) continue;
      const due = perturbationPoints(spec, t.startStep).filter(
        (b) => b <= reached && !(String(b) in t.rungs),
      );
      const point = due[due.length - 1];
      if (point === undefined) continue;
      const rungs: Record<string, number> = {};
      for (const b of due) {
        const v = valueAt(t.series, b);
        if (v !== null) rungs[String(b)] = v;
      }
      record.push({ number: t.number, rungs });
      if (!bottom.has(t.number) || top.length === 0 || left <= 0) continue;
      const rng = Rng.for('pbt', ctx.seed, t.number, point);
      const donor = top[rng.int(top.length)];
      if (!donor || donor.number === t.number) continue;
      const params = explore(ctx.space, donor.params, spec, rng);
      stop.push({
        number: t.number,
        reason: `pbt: bottom ${spec.quantile} at step ${point}; member continues from trial ${donor.number}`,
      });
      spawn.push({
        parent: donor.number,
        params,
        member: t.member,
        startStep: latestStep(donor.series) ?? point,
      });
      left--;
    }
  }
  const allDone =
    members.size >= spec.population_size &&
    [...members.values()].every((t) => ['COMPLETED', 'FAILED', 'PRUNED'].includes(t.status)) &&
    spawn.length === 0;
  return {
    jobs,
    create,
    assign: (n) => ({ bracket: null, member: n }),
    stop,
    record,
    spawn,
    finished:
      ctx.exhausted ||
      allDone ||
      (ctx.maxTrials !== null && remainingTrials(ctx) === 0 && spawn.length === 0),
  };
}
