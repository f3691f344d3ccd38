/**
 * The sweep engine on a real controller over SQLite and Postgres: trials as runs and jobs,
 * derived statuses, the controller loop's rounds (driven by hand), dispatch through runplane's
 * workers (a hand-driven agent) and local subprocesses, ASHA stopping through the run's
 * terminate command then its job, stale trials retried, stop and resume, the API's field errors.
 */
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { RunplaneClient } from '../../src/client/client.js';
import type { SweepWire } from '../../src/sweeps/schemas.js';
import { FakeClock } from '../helpers/clock.js';
import { eventually, type TestController } from '../helpers/controller.js';
import { controllers, forEachDialect, ManualWorker, rejected, schedulingPass } from './support.js';

/** A dependency-free trainer: reports loss = (x-0.3)^2 + (y-2)^2 at step 1 and exits. */
function writeTrainer(dir: string): string {
  const file = join(dir, 'trainer.mjs');
  writeFileSync(
    file,
    `const p = JSON.parse(process.env.RUNPLANE_TRIAL_PARAMS);
const loss = (p.x - 0.3) ** 2 + (p.y - 2) ** 2;
const res = await fetch(\`\${process.env.RUNPLANE_CONTROLLER_URL}/api/v1/runs/\${process.env.RUNPLANE_RUN_ID}/metrics\`, {
  method: 'POST',
  headers: { 'content-type': 'application/json', authorization: \`Bearer \${process.env.RUNPLANE_RUN_TOKEN}\` },
  body: JSON.stringify({ step: 1, values: { loss } }),
});
if (!res.ok) { console.error(await res.text()); process.exit(3); }
`,
  );
  chmodSync(file, 0o644);
  return file;
}

async function untilDone(t: TestController, id: string, timeoutMs = 60_000): Promise<SweepWire> {
  return eventually(
    async () => {
      await t.ctl.sweepLoop.tick();
      const s = await t.admin.getSweep(id);
      return ['completed', 'failed', 'stopped'].includes(s.status) ? s : undefined;
    },
    timeoutMs,
    100,
  );
}

const base = {
  name: 'quad',
  objective: { metric: 'loss', direction: 'minimize' },
  parameters: {
    x: { type: 'float', low: 0, high: 1 },
    y: { type: 'int', low: 0, high: 4 },
  },
  optimizer: { type: 'random', seed: 7 },
  max_trials: 3,
  max_parallel_jobs: 2,
  train: { command: ['train', '--x', '{x}', '--y', '{y}'] },
};

forEachDialect((dialect) => {
  const start = controllers(dialect);

  it('a grid sweep on the local dispatcher covers its grid exactly once and finds the best point', async () => {
    const t = await start({ sweepIntervalMs: '1h' });
    const trainer = writeTrainer(t.ts.dir);
    const sweep = await t.admin.createSweep({
      ...base,
      name: 'grid',
      parameters: {
        x: { type: 'float', low: 0.1, high: 0.5, step: 0.2 },
        y: { type: 'int', low: 1, high: 3 },
      },
      optimizer: { type: 'grid' },
      max_trials: undefined,
      max_parallel_jobs: 3,
      train: { command: [process.execPath, trainer] },
      dispatcher: { type: 'local' },
    });
    expect(sweep.status).toBe('running');
    const done = await untilDone(t, sweep.sweep_id);
    expect(done.status).toBe('completed');
    const { trials } = await t.admin.sweepTrials(sweep.sweep_id);
    expect(trials.map((tr) => tr.number)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    const points = trials.map((tr) => `${tr.params.x},${tr.params.y}`).sort();
    expect(points).toEqual(['0.1,1', '0.1,2', '0.1,3', '0.3,1', '0.3,2', '0.3,3', '0.5,1', '0.5,2', '0.5,3']);
    expect(trials.every((tr) => tr.status === 'COMPLETED' && tr.train_state === 'succeeded')).toBe(true);
    expect(done.best?.params).toEqual({ x: 0.3, y: 2 });
    expect(done.best?.value).toBeCloseTo(0, 12);
    expect(done.counts).toEqual({ COMPLETED: 9 });
    // Each trial is a run of the sweep, its parameters in the run's config.
    const run = await t.admin.getRun(trials[0]?.run_id ?? '');
    expect(run.sweep_id).toBe(sweep.sweep_id);
    expect(run.config).toMatchObject({ x: trials[0]?.params.x, y: trials[0]?.params.y });
    const analysis = await t.admin.sweepAnalysis(sweep.sweep_id, 3);
    expect(analysis.best?.number).toBe(done.best?.number);
    expect(analysis.top).toHaveLength(3);
    expect(analysis.importance.map((i) => i.param).sort()).toEqual(['x', 'y']);
  });

  it('runs trials as jobs on runplane workers: capped parallelism, completion, failure, max_trials', async () => {
    const t = await start({ sweepIntervalMs: '1h' });
    const worker = await ManualWorker.register(t, 'w1', { cpu: 8 });
    const sweep = await t.admin.createSweep(base);
    // Creating a sweep kicks a round; tick() runs after it.
    await t.ctl.sweepLoop.tick();
    const first = (await t.admin.sweepTrials(sweep.sweep_id)).trials;
    expect(first.map((tr) => tr.number)).toEqual([0, 1]);
    expect(first.every((tr) => tr.train_job?.startsWith('workers:job_'))).toBe(true);
    await schedulingPass(t);
    const got = await worker.assignments(2);
    expect(got.map((a) => a.run_id).sort()).toEqual(
      (await t.admin.sweepTrials(sweep.sweep_id)).trials.map((tr) => tr.run_id).sort(),
    );
    for (const a of got) await worker.report(a.attempt_id, 'RUNNING');
    await t.ctl.sweepLoop.tick();
    let trials = (await t.admin.sweepTrials(sweep.sweep_id)).trials;
    expect(trials.map((tr) => tr.status)).toEqual(['IN_TRAINING', 'IN_TRAINING']);
    // Trial 0 reports its objective with the learner token of its job and succeeds; trial 1 fails.
    const byRun = new Map(got.map((a) => [a.run_id, a]));
    const a0 = byRun.get(trials[0]?.run_id ?? '');
    const a1 = byRun.get(trials[1]?.run_id ?? '');
    if (!a0 || !a1) throw new Error('assignments do not match the trials');
    expect(a0.env.RUNPLANE_SWEEP_ID).toBe(sweep.sweep_id);
    expect(a0.command).toEqual([
      'train',
      '--x',
      String(trials[0]?.params.x),
      '--y',
      String(trials[0]?.params.y),
    ]);
    const learner = new RunplaneClient(t.ctl.url, a0.env.RUNPLANE_RUN_TOKEN ?? '');
    await learner.postMetrics(a0.run_id ?? '', { step: 1, values: { loss: 0.25 } });
    await worker.report(a0.attempt_id, 'SUCCEEDED', 0);
    await worker.report(a1.attempt_id, 'FAILED', 1);
    const r2 = (await t.ctl.sweepLoop.tick())[0];
    trials = (await t.admin.sweepTrials(sweep.sweep_id)).trials;
    expect(trials[0]).toMatchObject({ status: 'COMPLETED', values: [0.25] });
    expect(trials[1]).toMatchObject({ status: 'FAILED', end_reason: 'failed' });
    // The third and last trial takes a freed slot.
    expect(r2?.created).toEqual([2]);
    await schedulingPass(t);
    const [a2] = await worker.assignments(
      1,
      got.map((a) => a.attempt_id),
    );
    if (!a2) throw new Error('no assignment for trial 2');
    await worker.report(a2.attempt_id, 'RUNNING');
    await new RunplaneClient(t.ctl.url, a2.env.RUNPLANE_RUN_TOKEN ?? '').postMetrics(a2.run_id ?? '', {
      step: 3,
      values: { loss: 0.5 },
    });
    await worker.report(a2.attempt_id, 'SUCCEEDED', 0);
    const done = await untilDone(t, sweep.sweep_id);
    expect(done).toMatchObject({ status: 'completed', trial_count: 3, counts: { COMPLETED: 2, FAILED: 1 } });
    expect(done.best).toMatchObject({ number: 0, value: 0.25 });
    expect((await t.ctl.sweepLoop.tick()).length).toBe(0);
    // Every state change is in the event log.
    const types = await t.ctl.store.db
      .selectFrom('events')
      .select('type')
      .where('entity_id', '=', sweep.sweep_id)
      .orderBy('seq')
      .execute();
    const names = types.map((e) => e.type);
    expect(names.filter((n) => n === 'sweep.trial_created')).toHaveLength(3);
    expect(names[0]).toBe('sweep.created');
    expect(names[names.length - 1]).toBe('sweep.status_changed');
  });

  it('ASHA stops a trial below the cut-off: its run gets a terminate command, then its job is killed', async () => {
    const clock = new FakeClock();
    const t = await start({ sweepIntervalMs: '1h' }, { clock });
    const worker = await ManualWorker.register(t, 'w1', { cpu: 8 });
    const sweep = await t.admin.createSweep({
      ...base,
      max_trials: 2,
      scheduler: { type: 'asha', reduction_factor: 2, grace_period: 1, max_t: 4 },
      stop_grace: '30s',
    });
    await t.ctl.sweepLoop.tick();
    await schedulingPass(t);
    const got = await worker.assignments(2);
    for (const a of got) await worker.report(a.attempt_id, 'RUNNING');
    const trials = (await t.admin.sweepTrials(sweep.sweep_id)).trials;
    const as = (n: number) => got.find((a) => a.run_id === trials[n]?.run_id);
    const post = (n: number, step: number, loss: number) =>
      new RunplaneClient(t.ctl.url, as(n)?.env.RUNPLANE_RUN_TOKEN ?? '').postMetrics(
        trials[n]?.run_id ?? '',
        {
          step,
          values: { loss },
        },
      );
    await post(0, 1, 0.1);
    await t.ctl.sweepLoop.tick();
    expect((await t.admin.sweepTrials(sweep.sweep_id)).trials[0]?.rungs).toEqual({ '1': 0.1 });
    await post(1, 1, 0.9);
    const r = (await t.ctl.sweepLoop.tick())[0];
    expect(r?.stopped).toEqual([1]);
    const pruned = (await t.admin.sweepTrials(sweep.sweep_id)).trials[1];
    expect(pruned).toMatchObject({ status: 'PRUNED', end_reason: 'pruned', rungs: { '1': 0.9 } });
    const commands = await t.admin.listCommands(pruned?.run_id ?? '');
    expect(commands.commands.map((c) => c.type)).toEqual(['terminate']);
    // The learner ignores it: after the stop grace, its job is terminated.
    await t.ctl.sweepLoop.tick();
    expect((await t.admin.getJob(as(1)?.job_id ?? '')).state).toBe('RUNNING');
    clock.advance(31_000);
    await t.ctl.sweepLoop.tick();
    expect((await t.admin.getJob(as(1)?.job_id ?? '')).state).toBe('KILLED');
    expect((await t.admin.listCommands(pruned?.run_id ?? '')).commands).toHaveLength(1);
  });

  it('PBT: the worse member continues from the better one’s checkpoint with explored parameters (lineage)', async () => {
    const t = await start({ sweepIntervalMs: '1h' });
    const worker = await ManualWorker.register(t, 'w1', { cpu: 8 });
    const sweep = await t.admin.createSweep({
      ...base,
      max_trials: undefined,
      scheduler: {
        type: 'pbt',
        population_size: 2,
        perturbation_interval: 2,
        max_t: 10,
        quantile: 0.5,
        resample_probability: 0,
      },
      train: { command: ['train', '--x', '{x}', '--from', '{resume_from}', '--at', '{start_step}'] },
    });
    await t.ctl.sweepLoop.tick();
    await schedulingPass(t);
    const got = await worker.assignments(2);
    for (const a of got) await worker.report(a.attempt_id, 'RUNNING');
    const first = (await t.admin.sweepTrials(sweep.sweep_id)).trials;
    expect(first.map((tr) => tr.member)).toEqual([0, 1]);
    const token = (n: number) => got.find((a) => a.run_id === first[n]?.run_id)?.env.RUNPLANE_RUN_TOKEN ?? '';
    await new RunplaneClient(t.ctl.url, token(0)).postMetrics(first[0]?.run_id ?? '', {
      step: 2,
      values: { loss: 0.1 },
    });
    await new RunplaneClient(t.ctl.url, token(1)).postMetrics(first[1]?.run_id ?? '', {
      step: 2,
      values: { loss: 0.9 },
    });
    await t.ctl.sweepLoop.tick();
    const trials = (await t.admin.sweepTrials(sweep.sweep_id)).trials;
    expect(trials.map((tr) => [tr.number, tr.status, tr.member, tr.parent_number, tr.origin])).toEqual([
      [0, 'IN_TRAINING', 0, null, 'random'],
      [1, 'PRUNED', 1, null, 'random'],
      [2, 'PENDING', 1, 0, 'pbt'],
    ]);
    expect(trials[2]?.start_step).toBe(2);
    const x0 = trials[0]?.params.x as number;
    expect([0.8 * x0, 1.2 * x0].some((v) => Math.abs(v - (trials[2]?.params.x as number)) < 1e-9)).toBe(true);
    expect((await t.admin.listCommands(trials[1]?.run_id ?? '')).commands.map((c) => c.type)).toEqual([
      'terminate',
    ]);
    // The replaced member's job holds its slot until it has exited (max_parallel_jobs is 2).
    await t.ctl.sweepLoop.tick();
    expect((await t.admin.sweepTrials(sweep.sweep_id)).trials[2]?.train_job).toBeNull();
    const replaced = got.find((a) => a.run_id === trials[1]?.run_id);
    await worker.report(replaced?.attempt_id ?? '', 'SUCCEEDED', 0);
    await t.ctl.sweepLoop.tick();
    await schedulingPass(t);
    const [child] = await worker.assignments(
      1,
      got.map((a) => a.attempt_id),
    );
    expect(child?.run_id).toBe(trials[2]?.run_id);
    const from = join(t.config.sweepDir, 'checkpoints', sweep.sweep_id, 'trial-0');
    expect(child?.env.RUNPLANE_RESUME_FROM).toBe(from);
    expect(child?.command.slice(-4)).toEqual(['--from', from, '--at', '2']);
  });

  it('an eval job runs after training as {run_id}_eval and its metrics complete the trial', async () => {
    const t = await start({ sweepIntervalMs: '1h' });
    const worker = await ManualWorker.register(t, 'w1', { cpu: 8 });
    const sweep = await t.admin.createSweep({
      ...base,
      max_trials: 1,
      objective: { metric: 'eval_loss', direction: 'minimize' },
      eval: { command: ['evaluate', '--run', '{run_id}', '--from', '{checkpoint_dir}'] },
    });
    await t.ctl.sweepLoop.tick();
    await schedulingPass(t);
    const [train] = await worker.assignments(1);
    if (!train) throw new Error('no training assignment');
    await worker.report(train.attempt_id, 'RUNNING');
    await worker.report(train.attempt_id, 'SUCCEEDED', 0);
    await eventually(async () => (await t.admin.getRun(train.run_id ?? '')).status === 'completed');
    await t.ctl.sweepLoop.tick();
    const trial = (await t.admin.sweepTrials(sweep.sweep_id)).trials[0];
    expect(trial?.train_state).toBe('succeeded');
    expect(trial?.eval_job).toMatch(/^workers:job_/);
    await schedulingPass(t);
    const [ev] = await worker.assignments(1, [train.attempt_id]);
    if (!ev) throw new Error('no eval assignment');
    expect((await t.admin.getJob(ev.job_id)).name).toBe(`${trial?.run_id}_eval`);
    expect(ev.command.slice(0, 3)).toEqual(['evaluate', '--run', trial?.run_id]);
    expect(ev.env.RUNPLANE_RUN_ID).toBe(trial?.run_id);
    await worker.report(ev.attempt_id, 'RUNNING');
    await t.ctl.sweepLoop.tick();
    expect((await t.admin.sweepTrials(sweep.sweep_id)).trials[0]?.status).toBe('IN_EVAL');
    // The eval job reports to the (ended) training run with its own learner token.
    await new RunplaneClient(t.ctl.url, ev.env.RUNPLANE_RUN_TOKEN ?? '').postMetrics(trial?.run_id ?? '', {
      step: 1,
      values: { eval_loss: 0.125 },
    });
    await worker.report(ev.attempt_id, 'SUCCEEDED', 0);
    const done = await untilDone(t, sweep.sweep_id);
    expect(done.status).toBe('completed');
    expect((await t.admin.sweepTrials(sweep.sweep_id)).trials[0]).toMatchObject({
      status: 'COMPLETED',
      values: [0.125],
    });
  });

  it('a stale trial is failed, its job stopped, and retried as a new attempt with the same parameters', async () => {
    const clock = new FakeClock();
    const t = await start({ sweepIntervalMs: '1h' }, { clock });
    const worker = await ManualWorker.register(t, 'w1', { cpu: 8 });
    const sweep = await t.admin.createSweep({
      ...base,
      max_trials: 1,
      stale_after: '5m',
      retry: { max_retries: 1 },
    });
    await t.ctl.sweepLoop.tick();
    await schedulingPass(t);
    const [a] = await worker.assignments(1);
    if (!a) throw new Error('no assignment');
    await worker.report(a.attempt_id, 'RUNNING');
    await t.ctl.sweepLoop.tick();
    const before = (await t.admin.sweepTrials(sweep.sweep_id)).trials[0];
    expect(before?.status).toBe('IN_TRAINING');
    clock.advance(6 * 60_000);
    await worker.heartbeat();
    const r = (await t.ctl.sweepLoop.tick())[0];
    expect(r?.retried).toEqual([0]);
    const after = (await t.admin.sweepTrials(sweep.sweep_id)).trials[0];
    expect(after).toMatchObject({ number: 0, attempt: 1, params: before?.params });
    expect(after?.run_id).not.toBe(before?.run_id);
    expect((await t.admin.getJob(a.job_id)).state).toBe('KILLED');
    expect((await t.admin.getRun(before?.run_id ?? '')).status).not.toBe('running');
    expect((await t.admin.getSweep(sweep.sweep_id)).trial_count).toBe(1);
  });

  it('stop interrupts running trials; resume runs them again as new attempts', async () => {
    const t = await start({ sweepIntervalMs: '1h' });
    const worker = await ManualWorker.register(t, 'w1', { cpu: 8 });
    const sweep = await t.admin.createSweep({ ...base, stop_grace: '1s' });
    await t.ctl.sweepLoop.tick();
    await schedulingPass(t);
    const got = await worker.assignments(2);
    const stopped = await t.admin.stopSweep(sweep.sweep_id, 'maintenance');
    expect(stopped.status).toBe('stopping');
    expect(stopped.counts).toEqual({ FAILED: 2 });
    await eventually(async () => {
      await t.ctl.sweepLoop.tick();
      const kills = (await worker.poll(got.map((g) => g.attempt_id))).kill;
      for (const k of kills) await worker.report(k.attempt_id, 'KILLED');
      return (await t.admin.getSweep(sweep.sweep_id)).status === 'stopped';
    });
    expect((await rejected(t.admin.stopSweep('swp_nope'))).status).toBe(404);
    const resumed = await t.admin.resumeSweep(sweep.sweep_id);
    expect(resumed.status).toBe('running');
    const trials = (await t.admin.sweepTrials(sweep.sweep_id)).trials;
    expect(trials.map((tr) => [tr.number, tr.attempt, tr.status])).toEqual([
      [0, 1, 'PENDING'],
      [1, 1, 'PENDING'],
    ]);
    await t.ctl.sweepLoop.tick();
    const again = (await t.admin.sweepTrials(sweep.sweep_id)).trials;
    expect(again.map((tr) => [tr.number, tr.attempt])).toEqual([
      [0, 1],
      [1, 1],
    ]);
    // New attempts run as new jobs.
    const oldJobs = got.map((g) => `workers:${g.job_id}`);
    expect(again.map((tr) => tr.train_job !== null && !oldJobs.includes(tr.train_job))).toEqual([true, true]);
    expect((await t.admin.getSweep(sweep.sweep_id)).trial_count).toBe(2);
  });

  it('refuses a bad sweep file with field-level errors and changes nothing', async () => {
    const t = await start({ sweepIntervalMs: '1h' });
    const err = await rejected(
      t.admin.createSweep({
        ...base,
        parameters: { lr: { type: 'float', low: 1, high: 0 } },
        train: { command: ['train', '--lr', '{lr}'] },
        scheduler: { type: 'asha', max_t: 0 },
        max_parallel_jobs: 0,
      }),
    );
    expect(err.status).toBe(422);
    expect(err.details.map((d) => d.field).sort()).toEqual([
      'max_parallel_jobs',
      'parameters.lr.high',
      'scheduler.max_t',
    ]);
    expect((await t.admin.listSweeps()).sweeps).toEqual([]);
    const viewer = await t.as('viewer');
    expect((await rejected(viewer.createSweep(base))).status).toBe(403);
    expect((await rejected(t.admin.getSweep('swp_missing'))).code).toBe('SWEEP_NOT_FOUND');
    const warm = await rejected(t.admin.createSweep({ ...base, warm_start: ['swp_missing'] }));
    expect(warm.details).toEqual([
      { field: 'warm_start', code: 'UNKNOWN_SWEEP', message: 'sweep swp_missing not found' },
    ]);
  });
});
