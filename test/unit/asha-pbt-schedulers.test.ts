/**
 * Schedulers (pure): capped async and batched policies, ASHA rung arithmetic and promotions,
 * Hyperband brackets, median stopping, PBT exploit and explore with lineage.
 */
import { describe, expect, it } from 'vitest';
import type { SchedulerSpec } from '../../src/sweeps/model.js';
import { Rng } from '../../src/sweeps/optimizers/rng.js';
import { promoted, quantile, rungsOf } from '../../src/sweeps/schedulers/asha.js';
import { createScheduler, type SchedulerContext, type TrialView } from '../../src/sweeps/schedulers/index.js';
import { explore, perturbationPoints } from '../../src/sweeps/schedulers/pbt.js';
import type { Space } from '../../src/sweeps/space.js';

const space: Space = {
  lr: { type: 'float', low: 1e-4, high: 1, log: true },
  layers: { type: 'int', low: 1, high: 8 },
  act: { type: 'categorical', choices: ['relu', 'tanh', 'gelu'] },
};

function trial(number: number, over: Partial<TrialView> = {}): TrialView {
  return {
    number,
    status: 'IN_TRAINING',
    params: { lr: 0.01, layers: 2, act: 'relu' },
    values: null,
    series: [],
    rungs: {},
    bracket: 0,
    member: null,
    parentNumber: null,
    startStep: 0,
    active: true,
    needsTraining: false,
    ...over,
  };
}

function ctx(trials: TrialView[], over: Partial<SchedulerContext> = {}): SchedulerContext {
  return {
    trials,
    space,
    seed: 1,
    trialCount: trials.length,
    maxTrials: 20,
    maxParallel: 4,
    exhausted: false,
    stopping: false,
    ...over,
  };
}

const curve = (values: number[], start = 1) => values.map((value, i) => ({ step: start + i, value }));

describe('async, sequential and batched', () => {
  it('keeps max_parallel_jobs trials going until max_trials; evaluations and pending training first', () => {
    const s = createScheduler({ type: 'async' });
    const d = s.decide(
      ctx(
        [
          trial(0),
          trial(1, { status: 'TRAINING_DONE_NO_EVAL', active: false }),
          trial(2, { status: 'PENDING', active: false, needsTraining: true }),
        ],
        { maxParallel: 4 },
      ),
    );
    expect(d.jobs).toEqual([
      { type: 'LAUNCH_EVAL', number: 1 },
      { type: 'LAUNCH_TRAINING', number: 2 },
    ]);
    expect(d.create).toBe(1);
    expect(s.decide(ctx([trial(0)], { trialCount: 20 })).create).toBe(0);
    expect(s.decide(ctx([trial(0)], { trialCount: 20 })).finished).toBe(true);
    expect(s.decide(ctx([], { exhausted: true })).create).toBe(0);
    expect(s.decide(ctx([], { stopping: true })).create).toBe(0);
  });

  it('sequential runs one at a time; batched waits for the whole batch', () => {
    expect(createScheduler({ type: 'sequential' }).decide(ctx([trial(0)])).create).toBe(0);
    expect(
      createScheduler({ type: 'sequential' }).decide(ctx([trial(0, { status: 'COMPLETED', active: false })]))
        .create,
    ).toBe(1);
    const b = createScheduler({ type: 'batched', batch_size: 3 });
    expect(b.decide(ctx([])).create).toBe(3);
    expect(b.decide(ctx([trial(0, { status: 'COMPLETED', active: false }), trial(1)])).create).toBe(0);
    expect(
      b.decide(
        ctx(
          [trial(0, { status: 'COMPLETED', active: false }), trial(1, { status: 'FAILED', active: false })],
          { maxTrials: 4 },
        ),
      ).create,
    ).toBe(2);
  });
});

const asha: Extract<SchedulerSpec, { type: 'asha' | 'hyperband' }> = {
  type: 'asha',
  metric: 'loss',
  direction: 'minimize',
  reduction_factor: 3,
  grace_period: 1,
  max_t: 27,
  brackets: 1,
};

describe('ASHA', () => {
  it('rungs at grace_period · rf^(s+k) below max_t', () => {
    expect(rungsOf(asha, 0)).toEqual([1, 3, 9]);
    expect(rungsOf(asha, 1)).toEqual([3, 9]);
    expect(rungsOf({ grace_period: 2, reduction_factor: 2, max_t: 32 }, 0)).toEqual([2, 4, 8, 16]);
    expect(rungsOf({ grace_period: 1, reduction_factor: 4, max_t: 100 }, 0)).toEqual([1, 4, 16, 64]);
  });

  it('promotes the top 1/rf at a rung (numpy-style quantile cut-off), the first one always', () => {
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(promoted(5, [], 3, 'minimize')).toBe(true);
    // others 1..9: the best third are <= quantile(1/3) = 3.6667
    const others = [1, 2, 3, 4, 5, 6, 7, 8, 9];
    expect(promoted(3, others, 3, 'minimize')).toBe(true);
    expect(promoted(4, others, 3, 'minimize')).toBe(false);
    expect(promoted(7, others, 3, 'maximize')).toBe(true);
    expect(promoted(6, others, 3, 'maximize')).toBe(false);
  });

  it('records rung values and stops the trials below the cut-off', () => {
    const s = createScheduler(asha);
    // Trials 0-2 recorded at rung 1 earlier; trial 3 reaches rung 1 worse than all: stopped.
    const done = [0.5, 0.6, 0.7].map((v, i) => trial(i, { rungs: { '1': v }, series: curve([v]) }));
    const late = trial(3, { series: curve([0.9, 0.8]) });
    const good = trial(4, { series: curve([0.55, 0.4, 0.3]) });
    const d = s.decide(ctx([...done, late, good]));
    expect(d.stop.map((x) => x.number)).toEqual([3]);
    expect(d.stop[0]?.reason).toMatch(/rung 1/);
    // Trial 4 is promoted at rung 1 (0.55 ≤ cut-off 0.5667) and is the first at rung 3.
    expect(d.record).toEqual([
      { number: 3, rungs: { '1': 0.9 } },
      { number: 4, rungs: { '1': 0.55, '3': 0.3 } },
    ]);
  });

  it('a decided rung is never decided again; a trial past max_t rungs is left alone', () => {
    const s = createScheduler(asha);
    const t = trial(0, { rungs: { '1': 0.9, '3': 0.8, '9': 0.7 }, series: curve(Array(20).fill(0.9)) });
    const d = s.decide(
      ctx([trial(1, { rungs: { '1': 0.1 }, series: curve([0.1]), status: 'COMPLETED' }), t]),
    );
    expect(d.stop).toEqual([]);
    expect(d.record).toEqual([]);
  });

  it('Hyperband: every bracket, trial n in bracket n mod brackets, each bracket its own rungs', () => {
    const hb = createScheduler({ ...asha, type: 'hyperband', brackets: 4 });
    const d = hb.decide(ctx([]));
    expect([0, 1, 2, 3, 4].map((n) => d.assign(n).bracket)).toEqual([0, 1, 2, 3, 0]);
    // A bracket-1 trial is not judged at step 1 (its first rung is 3), nor against bracket 0.
    const b0 = trial(0, { bracket: 0, rungs: { '1': 0.1, '3': 0.1 }, series: curve([0.1, 0.1, 0.1]) });
    const b1 = trial(1, { bracket: 1, series: curve([0.9, 0.9, 0.9]) });
    const d2 = hb.decide(ctx([b0, b1]));
    expect(d2.stop).toEqual([]);
    expect(d2.record).toEqual([{ number: 1, rungs: { '3': 0.9 } }]);
  });
});

describe('median stopping', () => {
  const spec: Extract<SchedulerSpec, { type: 'median' }> = {
    type: 'median',
    metric: 'loss',
    direction: 'minimize',
    grace_period: 2,
    min_samples: 3,
  };
  it('stops a trial whose best is worse than the median of the others’ running means at its step', () => {
    const others = [
      trial(0, { status: 'COMPLETED', active: false, series: curve([1, 0.8, 0.6, 0.4]) }),
      trial(1, { status: 'COMPLETED', active: false, series: curve([1, 0.9, 0.7, 0.5]) }),
      trial(2, { status: 'COMPLETED', active: false, series: curve([1, 0.7, 0.5, 0.3]) }),
    ];
    const bad = trial(3, { series: curve([1.5, 1.4, 1.3]) });
    const fine = trial(4, { series: curve([0.5, 0.4, 0.3]) });
    const d = createScheduler(spec).decide(ctx([...others, bad, fine]));
    expect(d.stop.map((s) => s.number)).toEqual([3]);
  });

  it('not before the grace period, nor with fewer than min_samples trials that got as far', () => {
    const s = createScheduler(spec);
    expect(s.decide(ctx([trial(0, { series: curve([9]) })])).stop).toEqual([]);
    const two = [trial(0, { series: curve([1, 1, 1]) }), trial(1, { series: curve([1, 1, 1]) })];
    expect(s.decide(ctx([...two, trial(2, { series: curve([9, 9, 9]) })])).stop).toEqual([]);
  });
});

describe('PBT', () => {
  const spec: Extract<SchedulerSpec, { type: 'pbt' }> = {
    type: 'pbt',
    metric: 'loss',
    direction: 'minimize',
    population_size: 4,
    perturbation_interval: 5,
    max_t: 20,
    quantile: 0.25,
    resample_probability: 0.25,
    perturbation_factors: [0.8, 1.2],
    mutations: ['lr', 'layers', 'act'],
  };

  it('starts the population, one trial per member', () => {
    const d = createScheduler(spec).decide(ctx([], { maxTrials: null, trialCount: 0 }));
    expect(d.create).toBe(4);
    expect([0, 1, 2, 3].map((n) => d.assign(n).member)).toEqual([0, 1, 2, 3]);
  });

  it('perturbation points after the start step, below max_t', () => {
    expect(perturbationPoints(spec, 0)).toEqual([5, 10, 15]);
    expect(perturbationPoints(spec, 7)).toEqual([10, 15]);
  });

  it('exploit: the bottom member is stopped and continues from a top member, with explored parameters', () => {
    const losses = [0.1, 0.5, 0.6, 0.9];
    const pop = losses.map((l, i) =>
      trial(i, {
        member: i,
        params: { lr: 0.01 * (i + 1), layers: 2, act: 'relu' },
        series: curve(Array(6).fill(l)),
      }),
    );
    const d = createScheduler(spec).decide(ctx(pop, { maxTrials: null }));
    expect(d.stop.map((s) => s.number)).toEqual([3]);
    expect(d.spawn).toHaveLength(1);
    const child = d.spawn[0];
    expect(child?.parent).toBe(0);
    expect(child?.member).toBe(3);
    expect(child?.startStep).toBe(6);
    // Every member records its value at step 5, once.
    expect(d.record.map((r) => r.number).sort()).toEqual([0, 1, 2, 3]);
    expect(d.record[0]?.rungs).toEqual({ '5': 0.1 });
    // The same inputs give the same choice (a restarted controller decides the same).
    expect(createScheduler(spec).decide(ctx(pop, { maxTrials: null })).spawn).toEqual(d.spawn);
    // A recorded point is not decided again.
    const recorded = pop.map((t) => ({ ...t, rungs: { '5': 0 } }));
    expect(createScheduler(spec).decide(ctx(recorded, { maxTrials: null })).spawn).toEqual([]);
  });

  it('explore perturbs numbers by a factor or resamples, moves categoricals to a neighbour, stays in the space', () => {
    const rng = Rng.for('test', 1);
    const start = { lr: 0.01, layers: 4, act: 'tanh' };
    let changed = 0;
    for (let i = 0; i < 200; i++) {
      const p = explore(space, start, { ...spec, resample_probability: 0 }, rng);
      const lr = p.lr as number;
      expect([0.008, 0.012].some((v) => Math.abs(lr - v) < 1e-12)).toBe(true);
      expect([3, 5]).toContain(p.layers);
      expect(['relu', 'gelu']).toContain(p.act);
      if (p.lr !== start.lr) changed++;
    }
    expect(changed).toBe(200);
    const resampled = explore(space, start, { ...spec, resample_probability: 1 }, Rng.for('x', 2));
    expect(resampled.lr).toBeGreaterThanOrEqual(1e-4);
    expect(resampled.lr).toBeLessThanOrEqual(1);
    // Parameters not listed in mutations never change.
    const fixed = explore(space, start, { ...spec, mutations: ['lr'] }, Rng.for('y', 3));
    expect(fixed.layers).toBe(4);
    expect(fixed.act).toBe('tanh');
  });

  it('finishes when every member has ended and nothing was spawned', () => {
    const ended = [0, 1, 2, 3].map((i) => trial(i, { member: i, status: 'COMPLETED', active: false }));
    expect(createScheduler(spec).decide(ctx(ended, { maxTrials: null })).finished).toBe(true);
    const going = [...ended.slice(0, 3), trial(3, { member: 3 })];
    expect(createScheduler(spec).decide(ctx(going, { maxTrials: null })).finished).toBe(false);
  });
});
