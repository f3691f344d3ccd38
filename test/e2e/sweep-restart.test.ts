/**
 * The sweep controller's crash invariants with real processes: `runplane up` running a grid
 * sweep on two `runplane worker`s is killed with SIGKILL at random moments and restarted on the
 * same data dir and port. Afterwards every grid point was tried by exactly one trial (no trial
 * lost, none duplicated, no suggestion repeated), trial numbers are 0..n-1, every attempt ran
 * at most once, and max_trials counted across the restarts. SQLite always; Postgres when reachable.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect } from 'vitest';
import type { SweepWire } from '../../src/sweeps/schemas.js';
import { eventually } from '../helpers/controller.js';
import { counts, readLines, tempDir } from '../helpers/processes.js';
import { itOnEachStore, sleep, startRestartableUp } from '../helpers/restart.js';

/**
 * A trainer that records that it ran, works a little, and reports its objective, retrying
 * while the controller is down (as a real learner does).
 */
function writeTrainer(dir: string, ranFile: string): string {
  const file = join(dir, 'trainer.mjs');
  writeFileSync(
    file,
    `import { appendFileSync } from 'node:fs';
const env = process.env;
const p = JSON.parse(env.RUNPLANE_TRIAL_PARAMS);
appendFileSync(${JSON.stringify(ranFile)}, \`\${env.RUNPLANE_TRIAL_NUMBER} \${env.RUNPLANE_TRIAL_ATTEMPT} \${p.x} \${p.y}\\n\`);
await new Promise((r) => setTimeout(r, 100 + Math.floor(Math.random() * 500)));
const loss = (p.x - 0.4) ** 2 + (p.y - 1) ** 2;
const deadline = Date.now() + 120000;
for (;;) {
  try {
    const res = await fetch(\`\${env.RUNPLANE_CONTROLLER_URL}/api/v1/runs/\${env.RUNPLANE_RUN_ID}/metrics\`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: \`Bearer \${env.RUNPLANE_RUN_TOKEN}\` },
      body: JSON.stringify({ step: 1, values: { loss } }),
    });
    if (res.ok) break;
    if (res.status < 500) { console.error(res.status, await res.text()); process.exit(3); }
  } catch {}
  if (Date.now() > deadline) process.exit(4);
  await new Promise((r) => setTimeout(r, 200));
}
`,
  );
  return file;
}

const XS = [0, 0.2, 0.4, 0.6, 0.8, 1];
const YS = [0, 1, 2];

async function crashLoop(databaseUrl?: string): Promise<void> {
  const cluster = await startRestartableUp({
    dataDirPrefix: 'runplane-e2e-sweep-',
    workerTimeout: '30s',
    databaseUrl,
    worker: { cpu: 2 },
  });
  const { client } = cluster;
  const ran = join(tempDir(), 'ran.txt');
  const trainer = writeTrainer(tempDir(), ran);
  const sweep = await client.createSweep({
    name: 'crash-grid',
    objective: { metric: 'loss', direction: 'minimize' },
    parameters: {
      x: { type: 'float', low: 0, high: 1, step: 0.2 },
      y: { type: 'int', low: 0, high: 2 },
    },
    optimizer: { type: 'grid' },
    max_parallel_jobs: 4,
    train: { command: [process.execPath, trainer] },
    retry: { max_retries: 3, on: ['stale', 'failed'] },
  });

  // Kill it at random moments while trials are being created, launched and finished.
  const delays: number[] = [];
  for (let crash = 0; crash < 3; crash++) {
    const delay = 300 + Math.floor(Math.random() * 2000);
    delays.push(delay);
    await sleep(delay);
    await cluster.up.kill9();
    await sleep(Math.floor(Math.random() * 500));
    await cluster.restart();
  }

  const done = await eventually(
    async () => {
      const s = await client.getSweep(sweep.sweep_id);
      return ['completed', 'failed', 'stopped'].includes(s.status) ? s : undefined;
    },
    240_000,
    250,
  ).catch((err: unknown) => {
    throw new Error(`sweep did not finish (crash delays ${delays.join(', ')} ms): ${String(err)}`);
  });
  const why = `crash delays ${delays.join(', ')} ms`;
  expect((done as SweepWire).status, why).toBe('completed');
  const { trials } = await client.sweepTrials(sweep.sweep_id);

  // No trial lost or duplicated, numbered 0..n-1, max_trials (the grid) counted across restarts.
  expect(
    trials.map((t) => t.number),
    why,
  ).toEqual(XS.flatMap((_, i) => YS.map((__, j) => i * YS.length + j)));
  expect(done.trial_count).toBe(XS.length * YS.length);
  // No suggestion repeated: every grid point exactly once.
  const points = trials.map((t) => `${t.params.x} ${t.params.y}`).sort();
  expect(points, why).toEqual(XS.flatMap((x) => YS.map((y) => `${x} ${y}`)).sort());
  expect(
    trials.every((t) => t.status === 'COMPLETED'),
    why,
  ).toBe(true);
  expect(done.best?.params).toEqual({ x: 0.4, y: 1 });

  // Each attempt ran at most once; each trial's last attempt ran.
  const lines = readLines(ran);
  const perAttempt = counts(lines.map((l) => l.split(' ').slice(0, 2).join(' ')));
  expect(
    [...perAttempt].filter(([, c]) => c !== 1),
    why,
  ).toEqual([]);
  for (const t of trials)
    expect(perAttempt.get(`${t.number} ${t.attempt}`), `${why}: trial ${t.number}`).toBe(1);
  // A ran line names the parameters of its trial.
  for (const l of lines) {
    const [n, , x, y] = l.split(' ');
    expect(`${x} ${y}`).toBe(`${trials[Number(n)]?.params.x} ${trials[Number(n)]?.params.y}`);
  }

  // One run per attempt, all of the sweep, none left going.
  const runs = await client.listRuns({ sweep: sweep.sweep_id, limit: 1000 });
  const attempts = trials.reduce((s, t) => s + t.attempt + 1, 0);
  expect(runs.runs).toHaveLength(attempts);
  expect(
    runs.runs.filter((r) => !['completed', 'failed', 'terminated'].includes(r.status)).map((r) => r.run_id),
  ).toEqual([]);
  const keys = runs.runs.map((r) => {
    const s = (r.config as { sweep: { trial: number; attempt: number } }).sweep;
    return `${s.trial} ${s.attempt}`;
  });
  expect(new Set(keys).size).toBe(keys.length);
}

describe('runplane up killed with SIGKILL during a sweep and restarted', () => {
  itOnEachStore('loses no trial, duplicates none, repeats no suggestion', crashLoop, 360_000);
});
