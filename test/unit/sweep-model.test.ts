/**
 * The sweep engine's pure parts: the sweep file's validation (field-level errors, defaults),
 * derived trial statuses, the retry policy, command templating, analysis statistics.
 */
import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/shared/errors.js';
import { analyze } from '../../src/sweeps/analysis/analyze.js';
import { pedAnova } from '../../src/sweeps/analysis/importance.js';
import { historyPlot, importancePlot, parallelCoordinatesPlot } from '../../src/sweeps/analysis/plots.js';
import { mannWhitneyU, tTwoSidedP, welchTTest } from '../../src/sweeps/analysis/stats.js';
import {
  deriveTrialStatus,
  renderCommand,
  shouldRetry,
  type TrialFacts,
  valuesFromSummary,
} from '../../src/sweeps/model.js';
import { retrying } from '../../src/sweeps/retry.js';
import { parseSweepText, validateSweepFile } from '../../src/sweeps/sweep-file.js';

const GOOD = `
name: digits-lr
objective: {metric: val_loss, direction: minimize}
parameters:
  lr:     {type: float, low: 1.0e-4, high: 0.1, log: true}
  layers: {type: int, low: 1, high: 4}
  act:    {type: categorical, choices: [relu, tanh]}
  alpha:  {type: float, low: 0, high: 1, when: {act: relu}}
optimizer: {type: tpe, seed: 1}
scheduler: {type: asha, metric: val_loss, reduction_factor: 3, grace_period: 1, max_t: 27}
max_trials: 50
max_parallel_jobs: 4
train:
  command: ["python3", "examples/digits/train.py", "--lr", "{lr}", "--layers", "{layers}"]
  resources: {cpu: 1}
dispatcher: {type: workers}
`;

function parse(text: string) {
  const p = parseSweepText(text);
  if (!p.ok) throw new Error(JSON.stringify(p.errors));
  return validateSweepFile(p.raw);
}

describe('sweep file', () => {
  it('accepts the issue example and fills in defaults', () => {
    const r = parse(GOOD);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.spec.objectives).toEqual([{ metric: 'val_loss', direction: 'minimize', aggregate: 'last' }]);
    expect(r.spec.scheduler).toEqual({
      type: 'asha',
      metric: 'val_loss',
      direction: 'minimize',
      reduction_factor: 3,
      grace_period: 1,
      max_t: 27,
      brackets: 1,
    });
    expect(r.spec.max_parallel_jobs).toBe(4);
    expect(r.spec.train.resources).toEqual({ cpu: 1, memory_mb: 0, gpu: 0, device_type: null });
    expect(r.spec.retry).toEqual({ max_retries: 1, on: ['stale'] });
    expect(r.spec.stale_after_ms).toBe(600_000);
    expect(r.spec.dispatcher).toEqual({ type: 'workers' });
  });

  it('reads JSON as well as YAML', () => {
    const r = parse(
      JSON.stringify({
        name: 'j',
        objectives: [
          { metric: 'a', direction: 'minimize' },
          { metric: 'b', direction: 'maximize' },
        ],
        parameters: { x: { type: 'float', low: 0, high: 1 } },
        optimizer: { type: 'random' },
        max_trials: 3,
        train: { command: ['true'] },
      }),
    );
    expect(r.ok && r.spec.objectives.map((o) => o.direction)).toEqual(['minimize', 'maximize']);
  });

  it('rejects a bad file with every field error, by path', () => {
    const r = parse(`
name: "bad name!"
objective: {metric: val_loss, direction: sideways}
parameters:
  lr: {type: float, low: 0.1, high: 0.01, log: true}
  act: {type: categorical, choices: []}
optimizer: {type: annealing}
scheduler: {type: asha, reduction_factor: 1, max_t: 27}
max_trials: 0
max_parallel_jobs: 2.5
train: {command: ["train", "{nope}"], resources: {cpu: -1}}
dispatcher: {type: kubernetes}
retry: {on: [sometimes]}
stale_after: soon
colour: blue
`);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    const fields = r.errors.map((e) => `${e.field}:${e.code}`);
    expect(fields).toEqual(
      expect.arrayContaining([
        'name:INVALID_FORMAT',
        'objective.direction:INVALID_VALUE',
        'parameters.lr.high:OUT_OF_RANGE',
        'parameters.act.choices:INVALID_LENGTH',
        'optimizer.type:INVALID_VALUE',
        'scheduler.reduction_factor:OUT_OF_RANGE',
        'max_trials:OUT_OF_RANGE',
        'max_parallel_jobs:INVALID_TYPE',
        'train.command.1:UNKNOWN_PLACEHOLDER',
        'train.resources.cpu:OUT_OF_RANGE',
        'dispatcher.type:INVALID_VALUE',
        'retry.on:INVALID_VALUE',
        'stale_after:INVALID_FORMAT',
        'colour:UNKNOWN_FIELD',
      ]),
    );
  });

  it('needs a name, an objective, parameters, a training command and (unless grid) max_trials', () => {
    const r = validateSweepFile({});
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors.map((e) => e.field)).toEqual(
      expect.arrayContaining(['name', 'objective', 'parameters', 'train', 'max_trials']),
    );
    const grid = validateSweepFile({
      name: 'g',
      objective: { metric: 'loss' },
      parameters: { x: { type: 'int', low: 1, high: 3 } },
      optimizer: { type: 'grid' },
      train: { command: ['true'] },
    });
    expect(grid.ok).toBe(true);
  });

  it('checks a pool routes to its own members', () => {
    const r = validateSweepFile({
      name: 'p',
      objective: { metric: 'loss' },
      parameters: { x: { type: 'int', low: 1, high: 3 } },
      max_trials: 2,
      train: { command: ['true'] },
      dispatcher: {
        type: 'pool',
        members: { s: { type: 'slurm' }, l: { type: 'local' } },
        train: ['s', 'l'],
        eval: ['x'],
      },
    });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors.map((e) => e.field)).toEqual(['dispatcher.eval']);
  });

  it('a sweep file that is not a mapping, or not YAML at all', () => {
    expect(validateSweepFile([1, 2]).ok).toBe(false);
    expect(parseSweepText('{"name": ').ok).toBe(false);
  });
});

const base: TrialFacts = {
  status: 'PENDING',
  hasEval: false,
  trainState: null,
  evalState: null,
  values: null,
  runEnded: null,
  activityAt: 1000,
  now: 2000,
  staleAfterMs: 10_000,
  runHealth: 'healthy',
};

describe('derived trial status', () => {
  it('follows the seed: PENDING → IN_TRAINING → TRAINING_DONE_NO_EVAL → IN_EVAL → EVAL_DONE_NOT_COMPLETED → COMPLETED', () => {
    const e = { ...base, hasEval: true };
    expect(deriveTrialStatus(e).status).toBe('PENDING');
    expect(deriveTrialStatus({ ...e, trainState: 'pending' }).status).toBe('PENDING');
    expect(deriveTrialStatus({ ...e, trainState: 'running' }).status).toBe('IN_TRAINING');
    expect(deriveTrialStatus({ ...e, trainState: 'succeeded' }).status).toBe('TRAINING_DONE_NO_EVAL');
    expect(deriveTrialStatus({ ...e, trainState: 'succeeded', evalState: 'running' }).status).toBe('IN_EVAL');
    expect(deriveTrialStatus({ ...e, trainState: 'succeeded', evalState: 'succeeded' }).status).toBe(
      'EVAL_DONE_NOT_COMPLETED',
    );
    expect(
      deriveTrialStatus({ ...e, trainState: 'succeeded', evalState: 'succeeded', values: [0.5] }).status,
    ).toBe('COMPLETED');
  });

  it('without eval: completed with an objective, failed without one', () => {
    expect(deriveTrialStatus({ ...base, trainState: 'succeeded', values: [1] }).status).toBe('COMPLETED');
    const none = deriveTrialStatus({ ...base, trainState: 'succeeded' });
    expect(none).toMatchObject({ status: 'FAILED', reason: 'no_objective' });
  });

  it('STALE when a running trial shows no sign of life, or its learner is unresponsive; a queued one never', () => {
    const quiet = { ...base, activityAt: 0, now: 10_000 };
    expect(deriveTrialStatus({ ...quiet, trainState: 'running' })).toMatchObject({
      status: 'STALE',
      reason: 'stale',
    });
    expect(deriveTrialStatus({ ...quiet, trainState: 'pending' }).status).toBe('PENDING');
    expect(deriveTrialStatus({ ...base, trainState: 'running', runHealth: 'unresponsive' }).status).toBe(
      'STALE',
    );
  });

  it('a failed, killed or lost training job fails the trial; final statuses never change', () => {
    for (const s of ['failed', 'killed', 'unknown'] as const)
      expect(deriveTrialStatus({ ...base, trainState: s }).status).toBe('FAILED');
    expect(deriveTrialStatus({ ...base, status: 'PRUNED', trainState: 'killed' }).status).toBe('PRUNED');
    expect(deriveTrialStatus({ ...base, status: 'COMPLETED', trainState: 'failed' }).status).toBe(
      'COMPLETED',
    );
  });

  it('retries by policy, never an interrupted trial, never past max_retries', () => {
    const policy = { max_retries: 1, on: ['stale' as const] };
    expect(shouldRetry('stale', 0, policy)).toBe(true);
    expect(shouldRetry('stale', 1, policy)).toBe(false);
    expect(shouldRetry('failed', 0, policy)).toBe(false);
    expect(shouldRetry('failed', 0, { max_retries: 2, on: ['failed'] })).toBe(true);
    expect(shouldRetry('interrupted', 0, { max_retries: 2, on: ['failed', 'stale'] })).toBe(false);
  });

  it('objective values come from the summary; every objective must be there', () => {
    const o = [
      { metric: 'a', direction: 'minimize' as const, aggregate: 'last' as const },
      { metric: 'b', direction: 'maximize' as const, aggregate: 'last' as const },
    ];
    expect(valuesFromSummary(o, { a: 1, b: 2 })).toEqual([1, 2]);
    expect(valuesFromSummary(o, { a: 1 })).toBeNull();
  });

  it('fills command placeholders, keeping {{ }} as braces', () => {
    expect(
      renderCommand(['--lr', '{lr}', 'x={trial}/{{lit}}', '{act}'], { lr: 0.01, trial: 3, act: null }),
    ).toEqual(['--lr', '0.01', 'x=3/{lit}', '']);
  });
});

describe('store retries', () => {
  it('retries a failing call with exponential backoff, never a domain error', async () => {
    const delays: number[] = [];
    const opts = {
      attempts: 4,
      baseDelayMs: 100,
      maxDelayMs: 300,
      sleep: async (ms: number) => void delays.push(ms),
    };
    let calls = 0;
    const v = await retrying(async () => {
      calls++;
      if (calls < 4) throw new Error('SQLITE_BUSY');
      return 'ok';
    }, opts);
    expect(v).toBe('ok');
    expect(delays).toHaveLength(3);
    // Full jitter in [0.5, 1] of min(base * 2^n, max).
    expect(delays[0]).toBeGreaterThanOrEqual(50);
    expect(delays[0]).toBeLessThanOrEqual(100);
    expect(delays[1]).toBeGreaterThanOrEqual(100);
    expect(delays[2]).toBeLessThanOrEqual(300);
    await expect(retrying(async () => Promise.reject(new Error('down')), opts)).rejects.toThrow('down');
    let domain = 0;
    await expect(
      retrying(async () => {
        domain++;
        throw new AppError(404, 'X', 'x');
      }, opts),
    ).rejects.toBeInstanceOf(AppError);
    expect(domain).toBe(1);
  });
});

describe('analysis', () => {
  it('Welch and Mann-Whitney agree with known values', () => {
    // scipy.stats.ttest_ind([1,2,3,4,5],[6,7,8,9,10], equal_var=False) → t=-5, p≈0.001053
    const w = welchTTest([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]);
    expect(w?.t).toBeCloseTo(-5, 6);
    expect(w?.p).toBeCloseTo(0.001053, 4);
    expect(tTwoSidedP(0, 10)).toBeCloseTo(1, 9);
    expect(tTwoSidedP(2.228, 10)).toBeCloseTo(0.05, 3);
    const mw = mannWhitneyU([1, 2, 3], [4, 5, 6]);
    expect(mw?.u).toBe(0);
    expect(welchTTest([1], [2, 3])).toBeNull();
  });

  it('PED-ANOVA finds the parameter that matters', () => {
    const trials = [];
    for (let i = 0; i < 60; i++) {
      const x = ((i * 37) % 60) / 60;
      const noise = ((i * 13) % 60) / 60;
      trials.push({ params: { x, noise }, value: (x - 0.2) ** 2 });
    }
    const space = {
      x: { type: 'float' as const, low: 0, high: 1 },
      noise: { type: 'float' as const, low: 0, high: 1 },
    };
    const imp = pedAnova(space, trials, 'minimize');
    expect(imp[0]?.param).toBe('x');
    expect(imp[0]?.importance).toBeGreaterThan(0.8);
  });

  it('best, top-k, Pareto front and history of a two-objective sweep; SVG plots', () => {
    const space = { x: { type: 'float' as const, low: 0, high: 1 } };
    const objectives = [
      { metric: 'a', direction: 'minimize' as const, aggregate: 'last' as const },
      { metric: 'b', direction: 'minimize' as const, aggregate: 'last' as const },
    ];
    const trials = [
      { number: 0, status: 'COMPLETED' as const, params: { x: 0.1 }, values: [1, 4], run_id: 'r0', cost: 10 },
      { number: 1, status: 'COMPLETED' as const, params: { x: 0.5 }, values: [2, 2], run_id: 'r1', cost: 5 },
      { number: 2, status: 'COMPLETED' as const, params: { x: 0.9 }, values: [3, 3], run_id: 'r2', cost: 1 },
      { number: 3, status: 'FAILED' as const, params: { x: 0.3 }, values: null, run_id: 'r3', cost: null },
    ];
    const a = analyze(space, objectives, trials, {
      top: 2,
      samples: (n) => (n === 0 ? [1, 1.1, 0.9] : [2, 2.1, 1.9]),
    });
    expect(a.best?.number).toBe(0);
    expect(a.top.map((t) => t.number)).toEqual([0, 1]);
    expect(a.pareto_front).toEqual([0, 1]);
    expect(a.hypervolume).toBeGreaterThan(0);
    expect(a.cost_front).toEqual([0, 1, 2]);
    expect(a.significance).toMatchObject({ a: 0, b: 1, test: 'welch-t', significant: true });
    expect(a.history.map((h) => h.best)).toEqual([1, 1, 1, 1]);
    expect(a.trials).toEqual({ total: 4, completed: 3, failed: 1, pruned: 0 });
    for (const svg of [
      historyPlot(a, 's'),
      parallelCoordinatesPlot(space, trials, a, 's'),
      importancePlot(a, 's'),
    ]) {
      expect(svg.startsWith('<svg')).toBe(true);
      expect(svg.trim().endsWith('</svg>')).toBe(true);
    }
    expect(parallelCoordinatesPlot(space, trials, a, 's').match(/<polyline/g)?.length).toBe(3);
  });
});
