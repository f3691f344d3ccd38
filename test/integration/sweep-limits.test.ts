/**
 * Task and queue limits from the task-limits file, on a real controller over SQLite and Postgres:
 * a sweep's trial jobs obey can_spawn (a cluster limit of 1 holds a sweep of parallelism 3 to one
 * trial job at a time, the refusal shown with the waiting trials, every trial launched exactly
 * once and finished), GET /api/v1/limits shows the effective limits, and the file's queue limits
 * drive the backpressure levels and the health of the coordination component.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { RunplaneClient } from '../../src/client/client.js';
import { TASK_TYPE_LABEL } from '../../src/coordination/task-limiter.js';
import { DEFAULT_QUEUE_LIMITS, DEFAULT_TASK_LIMITS } from '../../src/coordination/task-limits.js';
import type { TrialWire } from '../../src/sweeps/schemas.js';
import { ADMIN, eventually, type TestController } from '../helpers/controller.js';
import { controllers, forEachDialect, ManualWorker, schedulingPass } from './support.js';

const dir = mkdtempSync(join(tmpdir(), 'rp-sweep-limits-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function limitsFile(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** Node thresholds off: the decisions here must not depend on this machine's disk or memory. */
const SWEEP_LIMITS = `
types:
  sweep_trial: {max_cluster: 1}
thresholds: {disk_pct: 0, memory_pct: 0, cpu_pct: 0}
`;

const sweepFile = {
  name: 'limited',
  objective: { metric: 'loss', direction: 'minimize' },
  parameters: { x: { type: 'float', low: 0, high: 1 } },
  optimizer: { type: 'random', seed: 3 },
  max_trials: 3,
  max_parallel_jobs: 3,
  train: { command: ['train', '--x', '{x}'] },
};

async function getJson(t: TestController, path: string, token = ADMIN): Promise<Response> {
  return fetch(`${t.ctl.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
}

/** Trial jobs of the task type that are waiting or running, from the job table. */
async function activeTrialJobs(t: TestController, taskType: string): Promise<string[]> {
  const { jobs } = await t.admin.listJobs({ label: [`${TASK_TYPE_LABEL}=${taskType}`], limit: 100 });
  return jobs.filter((j) => ['PENDING', 'BUILDING', 'RUNNING'].includes(j.state)).map((j) => j.job_id);
}

forEachDialect((dialect) => {
  const start = controllers(dialect);

  it('a sweep of parallelism 3 under sweep_trial max_cluster 1 runs one trial job at a time, losing none', async () => {
    const t = await start({
      sweepIntervalMs: '1h',
      taskLimitsFile: limitsFile(`sweep-${dialect}.yaml`, SWEEP_LIMITS),
    });
    const worker = await ManualWorker.register(t, 'w1', { cpu: 8 });
    const sweep = await t.admin.createSweep(sweepFile);
    expect((sweep.spec as { task_type?: string }).task_type).toBe('sweep_trial');

    // Creating the sweep kicked a round (trials 0-2 created, one launched); tick() runs after it
    // and launches nothing more.
    const first = (await t.ctl.sweepLoop.tick())[0];
    expect(first?.launched).toEqual([]);
    expect(first?.blocked).toEqual([1, 2]);
    let trials = (await t.admin.sweepTrials(sweep.sweep_id)).trials;
    // Trial 0's job may already be placed on the worker (the scheduler loop runs on its own).
    expect(['PENDING', 'IN_TRAINING']).toContain(trials[0]?.status);
    expect(trials.slice(1).map((tr) => tr.status)).toEqual(['PENDING', 'PENDING']);
    expect(trials[0]?.train_job).toMatch(/^workers:job_/);
    expect(trials[0]?.launch_blocked).toBeNull();
    for (const tr of trials.slice(1)) {
      expect(tr.train_job).toBeNull();
      expect(tr.launch_blocked?.reason).toBe('cluster limit: 1 sweep_trial task(s) of at most 1');
      expect(Number.isNaN(Date.parse(tr.launch_blocked?.at ?? ''))).toBe(false);
      expect(tr.error).toBe('launch blocked: cluster limit: 1 sweep_trial task(s) of at most 1');
    }
    // The job carries the task type, so the limiter counts it; can_spawn agrees over HTTP.
    expect(await activeTrialJobs(t, 'sweep_trial')).toHaveLength(1);
    expect(await t.admin.canSpawn('sweep_trial')).toMatchObject({
      allowed: false,
      reason: 'cluster limit: 1 sweep_trial task(s) of at most 1',
    });

    const seen = new Set<string>();
    const launchedTrials: number[] = [];
    for (let round = 0; round < 3; round++) {
      trials = (await t.admin.sweepTrials(sweep.sweep_id)).trials;
      const going = trials.filter((tr) => tr.train_state === 'pending' || tr.train_state === 'running');
      expect(going).toHaveLength(1);
      const tr = going[0] as TrialWire;
      launchedTrials.push(tr.number);
      // The others wait with the refusal shown; none of them has a job.
      for (const other of trials.filter((o) => o.status === 'PENDING' && o.number !== tr.number)) {
        expect(other.train_job).toBeNull();
        expect(other.launch_blocked?.reason).toMatch(/^cluster limit: 1 sweep_trial/);
      }
      await schedulingPass(t);
      const [a] = await worker.assignments(1, [...seen]);
      if (!a) throw new Error('no assignment');
      seen.add(a.attempt_id);
      expect(a.run_id).toBe(tr.run_id);
      await worker.report(a.attempt_id, 'RUNNING');
      // A round while it runs launches nothing more.
      const during = (await t.ctl.sweepLoop.tick())[0];
      expect(during?.launched).toEqual([]);
      expect(await activeTrialJobs(t, 'sweep_trial')).toHaveLength(1);
      const learner = new RunplaneClient(t.ctl.url, a.env.RUNPLANE_RUN_TOKEN ?? '');
      await learner.postMetrics(a.run_id ?? '', { step: 1, values: { loss: 0.1 * (round + 1) } });
      await worker.report(a.attempt_id, 'SUCCEEDED', 0);
      // The job's end frees the slot: the next waiting trial is launched in the same round.
      const next = (await t.ctl.sweepLoop.tick())[0];
      expect(next?.launched).toHaveLength(round < 2 ? 1 : 0);
      expect(await activeTrialJobs(t, 'sweep_trial')).toHaveLength(round < 2 ? 1 : 0);
    }

    expect(launchedTrials.sort()).toEqual([0, 1, 2]);
    const done = await t.admin.getSweep(sweep.sweep_id);
    expect(done.status).toBe('completed');
    expect(done.counts).toEqual({ COMPLETED: 3 });
    trials = (await t.admin.sweepTrials(sweep.sweep_id)).trials;
    expect(trials.every((tr) => tr.launch_blocked === null && tr.error === null)).toBe(true);
    // Exactly one job per trial: nothing was launched twice.
    const { jobs } = await t.admin.listJobs({ label: [`${TASK_TYPE_LABEL}=sweep_trial`], limit: 100 });
    expect(jobs).toHaveLength(3);
    expect(new Set(jobs.map((j) => j.labels['runplane.trial'])).size).toBe(3);
  });

  it("jobs the local dispatcher runs count against the type's cluster limit too", async () => {
    const t = await start({
      sweepIntervalMs: '1h',
      taskLimitsFile: limitsFile(`local-${dialect}.yaml`, SWEEP_LIMITS),
    });
    const trainer = join(dir, `trainer-${dialect}.mjs`);
    writeFileSync(
      trainer,
      `const url = \`\${process.env.RUNPLANE_CONTROLLER_URL}/api/v1/runs/\${process.env.RUNPLANE_RUN_ID}/metrics\`;
const body = JSON.stringify({ step: 1, values: { loss: JSON.parse(process.env.RUNPLANE_TRIAL_PARAMS).x } });
for (let i = 0; ; i++) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: \`Bearer \${process.env.RUNPLANE_RUN_TOKEN}\` },
    body,
  }).catch((err) => ({ ok: false, status: 0, text: async () => String(err) }));
  if (res.ok) break;
  console.error(res.status, await res.text());
  if (i >= 4) process.exit(3);
  await new Promise((r) => setTimeout(r, 200));
}
`,
    );
    const sweep = await t.admin.createSweep({
      ...sweepFile,
      name: 'local',
      train: { command: [process.execPath, trainer] },
      dispatcher: { type: 'local' },
    });
    let blockedSeen = 0;
    let mostGoing = 0;
    const done = await eventually(
      async () => {
        const r = (await t.ctl.sweepLoop.tick())[0];
        blockedSeen += r?.blocked.length ?? 0;
        const trials = (await t.admin.sweepTrials(sweep.sweep_id)).trials;
        const going = trials.filter((tr) => tr.train_state === 'pending' || tr.train_state === 'running');
        mostGoing = Math.max(mostGoing, going.length);
        const s = await t.admin.getSweep(sweep.sweep_id);
        return s.status === 'completed' ? s : undefined;
      },
      60_000,
      100,
    );
    const ended = (await t.admin.sweepTrials(sweep.sweep_id)).trials;
    expect(ended.map((tr) => [tr.status, tr.error])).toEqual([
      ['COMPLETED', null],
      ['COMPLETED', null],
      ['COMPLETED', null],
    ]);
    expect(done.counts).toEqual({ COMPLETED: 3 });
    expect(mostGoing).toBe(1);
    expect(blockedSeen).toBeGreaterThan(0);
    // The local jobs are not in the job table: only the sweep's own count held them back.
    expect((await t.admin.listJobs({ limit: 10 })).jobs).toEqual([]);
  });

  it("a sweep's own task_type is limited under that type", async () => {
    const t = await start({
      sweepIntervalMs: '1h',
      taskLimitsFile: limitsFile(
        `type-${dialect}.yaml`,
        'types: {tuning: {max_cluster: 0}}\nthresholds: {disk_pct: 0, memory_pct: 0}\n',
      ),
    });
    const sweep = await t.admin.createSweep({ ...sweepFile, name: 'typed', task_type: 'tuning' });
    // After the round the create kicked: every trial created, none launched.
    const r = (await t.ctl.sweepLoop.tick())[0];
    expect(r?.launched).toEqual([]);
    expect(r?.blocked).toEqual([0, 1, 2]);
    const trials = (await t.admin.sweepTrials(sweep.sweep_id)).trials;
    expect(trials.map((tr) => tr.launch_blocked?.reason)).toEqual([
      'cluster limit: 0 tuning task(s) of at most 0',
      'cluster limit: 0 tuning task(s) of at most 0',
      'cluster limit: 0 tuning task(s) of at most 0',
    ]);
    // Blocked for rounds on end: no trial is lost, none created beyond the parallelism.
    const again = (await t.ctl.sweepLoop.tick())[0];
    expect(again?.created).toEqual([]);
    expect((await t.admin.getSweep(sweep.sweep_id)).trial_count).toBe(3);
    expect((await t.admin.listJobs({ limit: 100 })).jobs).toEqual([]);
  });

  it('GET /api/v1/limits shows the effective limits: the file over the spawn thresholds and defaults', async () => {
    const file = limitsFile(
      `limits-${dialect}.yaml`,
      `defaults: {rate_per_sec: 4, burst: 8}
types:
  training: {max_cluster: 2, rate_per_sec: 0.5}
  sweep_trial: {max_cluster: 8, max_per_node: 2}
thresholds: {memory_pct: 90, cpu_pct: 0}
queues:
  pending_jobs: {soft: 500, hard: 5000}
`,
    );
    const t = await start({ taskLimitsFile: file, spawnMaxDiskPct: 97, spawnMaxCpuPct: 50 });
    const { token: viewer } = await t.admin.createToken('viewer');
    const res = await getJson(t, '/api/v1/limits', viewer);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      defaults: { rate_per_sec: 4, burst: 8, max_cluster: null, max_per_node: null },
      types: {
        training: { rate_per_sec: 0.5, burst: 8, max_cluster: 2, max_per_node: null },
        sweep_trial: { rate_per_sec: 4, burst: 8, max_cluster: 8, max_per_node: 2 },
      },
      // disk from RUNPLANE_SPAWN_MAX_DISK_PCT; memory and cpu from the file (0: not checked).
      thresholds: { disk_pct: 97, memory_pct: 90, cpu_pct: 0 },
      queues: {
        pending_jobs: { soft: 500, hard: 5000 },
        dlq_pending: DEFAULT_QUEUE_LIMITS.dlq_pending,
        outbox_lag: DEFAULT_QUEUE_LIMITS.outbox_lag,
      },
    });
    expect((await fetch(`${t.ctl.url}/api/v1/limits`)).status).toBe(401);

    // Without a file: the built-in defaults and the spawn settings.
    const plain = await start();
    expect(await (await getJson(plain, '/api/v1/limits')).json()).toEqual({
      defaults: DEFAULT_TASK_LIMITS.defaults,
      types: {},
      thresholds: { disk_pct: 95, memory_pct: 95, cpu_pct: 0 },
      queues: DEFAULT_QUEUE_LIMITS,
    });
  });

  it("the file's queue limits set the backpressure levels, can_spawn and the coordination health", async () => {
    const t = await start({
      taskLimitsFile: limitsFile(
        `queues-${dialect}.yaml`,
        'queues: {pending_jobs: {soft: 1, hard: 3}}\nthresholds: {disk_pct: 0, memory_pct: 0}\n',
      ),
    });
    // No worker: the jobs stay pending.
    await t.admin.launchJob({ command: ['true'] });
    await t.admin.launchJob({ command: ['true'] });
    const q = await t.admin.queues();
    expect(q.queues.find((r) => r.queue === 'pending_jobs')).toMatchObject({
      depth: 2,
      soft: 1,
      hard: 3,
      level: 'medium',
      throttle: 0.5,
    });
    const h = await t.admin.health();
    expect(h.components.coordination).toMatchObject({ status: 'degraded' });
    expect(h.issues).toContain(
      'queue pending_jobs: 2 above its soft limit 1 (backpressure medium, throttle 0.5)',
    );
    const metrics = await (await getJson(t, '/metrics')).text();
    expect(metrics).toMatch(/^runplane_queue_backpressure_level\{queue="pending_jobs"\} 2$/m);
    expect((await t.admin.canSpawn('selfplay')).allowed).toBe(true);

    // At the hard limit producers stop, and the coordination component is unhealthy.
    await t.admin.launchJob({ command: ['true'] });
    expect(await t.admin.canSpawn('selfplay')).toEqual({
      allowed: false,
      reason: 'backpressure: queue pending_jobs is at its hard limit (3 >= 3)',
    });
    expect((await t.admin.health()).components.coordination).toMatchObject({ status: 'unhealthy' });

    // The same two pending jobs under the default limits leave the coordination component healthy.
    const plain = await start({ workers: 0 });
    await plain.admin.launchJob({ command: ['true'] });
    await plain.admin.launchJob({ command: ['true'] });
    const ph = await plain.admin.health();
    expect(ph.components.coordination).toMatchObject({ status: 'healthy' });
    expect((await plain.admin.queues()).queues.find((r) => r.queue === 'pending_jobs')?.level).toBe('none');
  });
});
