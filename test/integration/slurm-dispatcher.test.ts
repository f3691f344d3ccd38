/**
 * The Slurm dispatcher against a real Slurm cluster (bench/slurm/setup.sh starts a single-node
 * one; `.ci/run` does it and requires it): sbatch, squeue/sacct states with the exit file as
 * ground truth, scancel, idempotent launch by job name; then a sweep whose trials run on Slurm.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { LaunchSpec } from '../../src/sweeps/dispatchers/dispatcher.js';
import { SlurmDispatcher } from '../../src/sweeps/dispatchers/slurm.js';
import { eventually } from '../helpers/controller.js';
import { serviceAvailable } from '../helpers/services.js';
import { controllers } from './support.js';

const slurmOk = await serviceAvailable('slurm');

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function dir(): string {
  const d = mkdtempSync(join(tmpdir(), 'runplane-slurm-'));
  dirs.push(d);
  return d;
}

function spec(name: string, command: string[], over: Partial<LaunchSpec> = {}): LaunchSpec {
  return {
    name,
    kind: 'train',
    sweepId: 'swp_test',
    number: 0,
    attempt: 0,
    runId: 'run_test',
    command,
    env: { TRIAL_EXTRA: "it's quoted" },
    cwd: null,
    resources: { cpu: 1, memory_mb: 0, gpu: 0, device_type: null },
    maxRetries: 0,
    runToken: async () => 'rp_token_for_test',
    options: {},
    ...over,
  };
}

describe.skipIf(!slurmOk)('slurm dispatcher on a real cluster', () => {
  it('runs a job: pending/running → succeeded, with the trial environment; a repeated launch finds the same job', async () => {
    const d = dir();
    const out = join(d, 'env.txt');
    const slurm = new SlurmDispatcher({ dir: d, controllerUrl: () => 'http://127.0.0.1:7878' });
    expect(await slurm.available()).toBe(true);
    const command = [
      'sh',
      '-c',
      `echo "$RUNPLANE_RUN_ID $RUNPLANE_RUN_TOKEN $RUNPLANE_TRIAL_NUMBER $TRIAL_EXTRA" > ${out}`,
    ];
    const name = `rp-test-ok-${process.pid}-${Date.now()}`;
    const id = await slurm.launch(spec(name, command));
    expect(id).toMatch(/^\d+$/);
    expect(await slurm.launch(spec(name, command))).toBe(id);
    const done = await eventually(
      async () => {
        const s = (await slurm.status([id])).get(id);
        return s && !['pending', 'running'].includes(s.state) ? s : undefined;
      },
      60_000,
      200,
    );
    expect(done.state).toBe('succeeded');
    expect(readFileSync(out, 'utf8').trim()).toBe("run_test rp_token_for_test 0 it's quoted");
    // Another dispatcher over the same directory (a restarted controller) knows the job too.
    const again = new SlurmDispatcher({ dir: d, controllerUrl: () => 'x' });
    expect((await again.status([id])).get(id)?.state).toBe('succeeded');
    expect(await again.launch(spec(name, command))).toBe(id);
  });

  it('a failing job is failed with its exit code; a stopped one is killed', async () => {
    const d = dir();
    const slurm = new SlurmDispatcher({ dir: d, controllerUrl: () => 'http://127.0.0.1:7878' });
    const bad = await slurm.launch(spec(`rp-test-bad-${process.pid}-${Date.now()}`, ['sh', '-c', 'exit 3']));
    const failed = await eventually(
      async () => {
        const s = (await slurm.status([bad])).get(bad);
        return s && !['pending', 'running'].includes(s.state) ? s : undefined;
      },
      60_000,
      200,
    );
    expect(failed).toMatchObject({ state: 'failed', reason: 'exit code 3' });

    const long = await slurm.launch(spec(`rp-test-long-${process.pid}-${Date.now()}`, ['sleep', '300']));
    await eventually(async () => (await slurm.status([long])).get(long)?.state === 'running', 60_000, 200);
    await slurm.stop(long, 'test');
    const stopped = await eventually(
      async () => {
        const s = (await slurm.status([long])).get(long);
        return s && !['pending', 'running'].includes(s.state) ? s : undefined;
      },
      60_000,
      200,
    );
    expect(stopped.state).toBe('killed');
  });

  it('an unknown job id is unknown, and a cluster that cannot be reached is unavailable', async () => {
    const slurm = new SlurmDispatcher({ dir: dir(), controllerUrl: () => 'x' });
    expect((await slurm.status(['999999999'])).get('999999999')?.state).toBe('unknown');
    const down = new SlurmDispatcher({
      dir: dir(),
      controllerUrl: () => 'x',
      bin: { squeue: '/nonexistent/squeue' },
    });
    expect(await down.available()).toBe(false);
  });
});

describe.skipIf(!slurmOk)('a sweep on Slurm', () => {
  const start = controllers('sqlite');

  it('runs its trials as Slurm jobs that report to the controller', async () => {
    const t = await start({ sweepIntervalMs: '1h', sweepDir: join(dir(), 'sweeps') });
    const trainer = join(t.ts.dir, 'trainer.mjs');
    writeFileSync(
      trainer,
      `const p = JSON.parse(process.env.RUNPLANE_TRIAL_PARAMS);
const res = await fetch(\`\${process.env.RUNPLANE_CONTROLLER_URL}/api/v1/runs/\${process.env.RUNPLANE_RUN_ID}/metrics\`, {
  method: 'POST',
  headers: { 'content-type': 'application/json', authorization: \`Bearer \${process.env.RUNPLANE_RUN_TOKEN}\` },
  body: JSON.stringify({ step: 1, values: { loss: (p.x - 0.5) ** 2 } }),
});
process.exit(res.ok ? 0 : 3);
`,
    );
    const sweep = await t.admin.createSweep({
      name: 'on-slurm',
      objective: { metric: 'loss', direction: 'minimize' },
      parameters: { x: { type: 'float', low: 0, high: 1 } },
      optimizer: { type: 'random', seed: 3 },
      max_trials: 2,
      max_parallel_jobs: 2,
      train: { command: [process.execPath, trainer] },
      dispatcher: { type: 'slurm' },
    });
    const done = await eventually(
      async () => {
        await t.ctl.sweepLoop.tick();
        const s = await t.admin.getSweep(sweep.sweep_id);
        return ['completed', 'failed'].includes(s.status) ? s : undefined;
      },
      120_000,
      250,
    );
    expect(done.status).toBe('completed');
    const { trials } = await t.admin.sweepTrials(sweep.sweep_id);
    expect(trials.map((tr) => [tr.status, tr.train_job?.split(':')[0], tr.train_state])).toEqual([
      ['COMPLETED', 'slurm', 'succeeded'],
      ['COMPLETED', 'slurm', 'succeeded'],
    ]);
  });
});
