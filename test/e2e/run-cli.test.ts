/**
 * `runplane run ...` end to end: the CLI as a user runs it against a real `runplane up`,
 * with a TypeScript learner (the one training scripts use) on the other side of the commands.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunplaneClient } from '../../src/client/client.js';
import { Learner } from '../../src/client/learner.js';
import type { CommandView, RunView } from '../../src/runs/schemas.js';
import { eventually } from '../helpers/controller.js';
import {
  type CliResult,
  cleanup,
  MARKER,
  MARKER_ENV,
  REPO_ROOT,
  runCli,
  startUp,
  tempDir,
  type UpProcess,
} from '../helpers/processes.js';

let up: UpProcess;
let admin: RunplaneClient;
const learners: Learner[] = [];

/** The CLI with the admin token, as user "cli-tester". */
const cli = (args: string[]): Promise<CliResult> =>
  runCli(['--url', up.url, '--token', up.adminToken, ...args], { USER: 'cli-tester' });

beforeAll(async () => {
  up = await startUp({
    workers: 0,
    env: { RUNPLANE_HEARTBEAT_INTERVAL: '1s', RUNPLANE_HEARTBEAT_MIN_INTERVAL: '100ms' },
  });
  admin = new RunplaneClient(up.url, up.adminToken);
});

afterAll(async () => {
  await Promise.all(learners.map((l) => l.close()));
  await cleanup();
});

/** A run with a learner heartbeating for it (status running), via `runplane run create --json`. */
async function runningRun(name: string): Promise<{ run: RunView; learner: Learner }> {
  const created = await cli(['run', 'create', '--name', name, '--json']);
  expect(created.code, created.stderr).toBe(0);
  const { run_id, token, run } = JSON.parse(created.stdout) as {
    run_id: string;
    token: string;
    run: RunView;
  };
  const learner = new Learner({ controllerUrl: up.url, runId: run_id, token, onError: () => undefined });
  learners.push(learner);
  await learner.start();
  return { run, learner };
}

/** `runplane run watch` as a long-running process whose stdout lines the test reads. */
function watch(args: string[]): { proc: ChildProcess; lines: string[]; exited: Promise<number | null> } {
  const proc = spawn(
    process.execPath,
    [
      join(REPO_ROOT, 'bin', 'runplane.js'),
      '--url',
      up.url,
      '--token',
      up.adminToken,
      'run',
      'watch',
      ...args,
    ],
    { env: { PATH: process.env.PATH ?? '', [MARKER_ENV]: MARKER }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const lines: string[] = [];
  let partial = '';
  proc.stdout.setEncoding('utf8').on('data', (c: string) => {
    const parts = (partial + c).split('\n');
    partial = parts.pop() ?? '';
    lines.push(...parts);
  });
  proc.stderr.setEncoding('utf8').on('data', (c: string) => lines.push(`stderr: ${c}`));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return { proc, lines, exited };
}

describe('runplane run', { timeout: 120_000 }, () => {
  it('create, list and show', async () => {
    const config = join(tempDir(), 'config.json');
    writeFileSync(config, JSON.stringify({ lr: 0.1, layers: [64, 64] }));
    const created = await cli([
      'run',
      'create',
      '--name',
      'cli-run',
      '--config',
      config,
      '--label',
      'team=rl',
      '--label',
      'size=s',
    ]);
    expect(created.code, created.stderr).toBe(0);
    const runId = /^run_id\s+(\S+)$/m.exec(created.stdout)?.[1];
    expect(runId).toBeDefined();
    expect(created.stdout).toMatch(/^token\s+rp_\S+$/m);
    const run = await admin.getRun(runId!);
    expect(run).toMatchObject({
      name: 'cli-run',
      config: { lr: 0.1, layers: [64, 64] },
      labels: { team: 'rl', size: 's' },
      status: 'queued',
    });

    const env = await cli(['run', 'create', '--env']);
    expect(env.code).toBe(0);
    expect(env.stdout).toMatch(
      new RegExp(
        `^RUNPLANE_CONTROLLER_URL=${up.url}\\nRUNPLANE_RUN_ID=run_\\S+\\nRUNPLANE_RUN_TOKEN=rp_\\S+\\n$`,
      ),
    );

    const quiet = await cli(['run', 'create', '--quiet']);
    expect(quiet.stdout).toMatch(/^run_\S+\n$/);

    const listed = await cli(['run', 'list', '--label', 'team=rl', '--json']);
    expect(listed.code).toBe(0);
    expect((JSON.parse(listed.stdout) as { runs: RunView[] }).runs.map((r) => r.run_id)).toEqual([runId]);
    const table = await cli(['run', 'list', '--status', 'queued']);
    expect(table.stdout.split('\n')[0]).toMatch(/^RUN\s+NAME\s+STATUS\s+HEALTH/);
    expect(table.stdout).toMatch(new RegExp(`^${runId}\\s+cli-run\\s+queued\\s+healthy`, 'm'));
    const none = await cli(['run', 'list', '--status', 'running', '--label', 'team=rl', '--json']);
    expect(JSON.parse(none.stdout)).toEqual({ runs: [], next_cursor: null });

    const shown = await cli(['run', 'show', runId!]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/^status\s+queued\s+\(health healthy\)$/m);
    expect(shown.stdout).toMatch(/^labels\s+.*team=rl/m);
    const json = await cli(['run', 'show', runId!, '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ run_id: runId, name: 'cli-run' });

    expect((await cli(['run', 'show', 'run_does_not_exist'])).code).toBe(3);
    expect((await cli(['run', 'create', '--label', 'novalue'])).code).toBe(2);
  });

  it('tune, pause, resume and terminate reach the learner, with the envelope the CLI builds', async () => {
    const { run, learner } = await runningRun('cli-control');
    const id = run.run_id;

    const tuned = await cli([
      'run',
      'tune',
      id,
      '--lr',
      '0.003',
      '--entropy-coef',
      '0.01',
      '--notes',
      'calmer',
    ]);
    expect(tuned.code, tuned.stderr).toBe(0);
    const tuneId = new RegExp(`^(\\S+) tune ${id}$`).exec(tuned.stdout.trim())?.[1];
    expect(tuneId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    await eventually(() => learner.hyperparameters.learning_rate === 0.003);
    expect(learner.hyperparameters).toEqual({ learning_rate: 0.003, entropy_coef: 0.01 });

    // Refusals: no tunable (usage, before any request), out of range (the controller's 422).
    expect((await cli(['run', 'tune', id])).code).toBe(2);
    const outOfRange = await cli(['run', 'tune', id, '--lr', '5']);
    expect(outOfRange.code).toBe(6);
    expect(outOfRange.stderr).toContain('payload.learning_rate');
    // Resume of a running run is refused by the controller (422 → exit 6).
    const resumeRunning = await cli(['run', 'resume', id]);
    expect(resumeRunning.code).toBe(6);
    expect(resumeRunning.stderr).toContain('INVALID_STATE_TRANSITION');

    const pauseId = crypto.randomUUID();
    expect((await cli(['run', 'pause', id, '--id', pauseId])).code).toBe(0);
    await eventually(() => learner.paused);
    // The same id again is the same command: accepted, nothing new.
    const again = await cli(['run', 'pause', id, '--id', pauseId, '--json']);
    expect(again.code).toBe(0);
    expect((JSON.parse(again.stdout) as CommandView).id).toBe(pauseId);
    await eventually(async () => (await admin.getRun(id)).status === 'paused');
    expect((await cli(['run', 'resume', id])).code).toBe(0);
    await eventually(() => !learner.paused);

    const extended = await cli(['run', 'extend', id, '--seconds', '60', '--reason', 'slow data loader']);
    expect(extended.code, extended.stderr).toBe(0);
    expect(extended.stdout.trim()).toMatch(new RegExp(`^${id} (running|paused) healthy$`));

    const terminated = await cli(['run', 'terminate', id, '--reason', 'done here', '--final-checkpoint']);
    expect(terminated.code, terminated.stderr).toBe(0);
    await eventually(() => learner.shouldStop);
    expect(learner.terminateRequest).toEqual({ reason: 'done here', final_checkpoint: true });
    learner.update({ checkpoint_version: 1 });
    await learner.close();

    const trail = await cli(['run', 'commands', id, '--json']);
    const { commands } = JSON.parse(trail.stdout) as { commands: CommandView[] };
    expect(commands.map((c) => c.type)).toEqual(['tune', 'pause', 'resume', 'terminate']);
    for (const c of commands) {
      expect(c.actor).toEqual({ type: 'operator', id: 'cli-tester' });
      expect(c.acknowledged_at).not.toBeNull();
    }
    expect(commands[0]?.payload).toEqual({ learning_rate: 0.003, entropy_coef: 0.01, notes: 'calmer' });
    const text = await cli(['run', 'commands', id]);
    expect(text.stdout.split('\n')[0]).toMatch(/^COMMAND\s+TYPE\s+ACTOR/);
    expect(text.stdout).toContain('operator:cli-tester');
    expect((await admin.getRun(id)).status).toBe('terminated');
  });

  it('watch <run_id> prints the run, one line per change, and ends with the run', async () => {
    const { run, learner } = await runningRun('cli-watch');
    const w = watch([run.run_id]);
    await eventually(() => w.lines.some((l) => l.includes(run.run_id)));
    learner.update({ step: 42, loss: 0.125 });
    await eventually(() => w.lines.some((l) => /step=42\s+loss=0\.1250/.test(l)));
    await admin.sendCommand(run.run_id, {
      id: crypto.randomUUID(),
      type: 'terminate',
      issued_at: new Date().toISOString(),
      actor: { type: 'operator', id: 'cli-tester' },
      payload: { reason: 'watch test' },
    });
    await eventually(() => learner.shouldStop);
    await learner.close();
    expect(await w.exited).toBe(0);
    const last = w.lines.filter((l) => l.trim() !== '').at(-1) ?? '';
    expect(last).toMatch(new RegExp(`^\\S+Z\\s+${run.run_id}\\s+terminated\\s+healthy`));
    for (const l of w.lines.filter((x) => x.trim() !== '')) expect(l).toContain(run.run_id);
  });

  it('watch (all runs) follows until Ctrl-C, as JSON lines with --json', async () => {
    const { run } = await runningRun('cli-watch-all');
    const w = watch(['--json']);
    // The learner heartbeats every second; each accepted heartbeat is a status event.
    const line = await eventually(() => w.lines.find((l) => l.includes(run.run_id)));
    expect(JSON.parse(line)).toMatchObject({ run_id: run.run_id, status: 'running', health: 'healthy' });
    w.proc.kill('SIGINT');
    expect(await w.exited).toBe(0);
  });
});
