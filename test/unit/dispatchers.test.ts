/**
 * The routing pool (first available member for the kind of job, falling back when one is down)
 * and the local dispatcher (detached subprocesses whose exit status outlives the controller).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Dispatcher, DispatchStatus, LaunchSpec } from '../../src/sweeps/dispatchers/dispatcher.js';
import { DispatcherUnavailable } from '../../src/sweeps/dispatchers/dispatcher.js';
import { LocalDispatcher } from '../../src/sweeps/dispatchers/local.js';
import { route } from '../../src/sweeps/dispatchers/pool.js';
import type { DispatcherSpec } from '../../src/sweeps/model.js';
import { eventually } from '../helpers/controller.js';

class FakeDispatcher implements Dispatcher {
  constructor(
    readonly name: string,
    public up: boolean,
  ) {}
  async launch(): Promise<string> {
    return 'x';
  }
  async status(): Promise<Map<string, DispatchStatus>> {
    return new Map();
  }
  async stop(): Promise<void> {}
  async available(): Promise<boolean> {
    return this.up;
  }
}

describe('dispatcher pool', () => {
  const pool: DispatcherSpec = {
    type: 'pool',
    members: {
      cluster: { type: 'slurm', partition: 'gpu', time_limit: null, extra_args: [] },
      here: { type: 'local', max_concurrent: 2 },
    },
    train: ['cluster', 'here'],
    eval: ['here'],
  };

  it('routes training to Slurm and evaluation to local, with each member’s options', async () => {
    const ds = new Map<string, Dispatcher>([
      ['slurm', new FakeDispatcher('slurm', true)],
      ['local', new FakeDispatcher('local', true)],
    ]);
    const train = await route(pool, 'train', ds);
    expect(train.map((c) => c.dispatcher.name)).toEqual(['slurm', 'local']);
    expect(train[0]?.options).toEqual({ partition: 'gpu', time_limit: null, extra_args: [] });
    expect((await route(pool, 'eval', ds)).map((c) => c.dispatcher.name)).toEqual(['local']);
  });

  it('falls back to the next member when one is down, and says so when none is left', async () => {
    const slurm = new FakeDispatcher('slurm', false);
    const local = new FakeDispatcher('local', true);
    const ds = new Map<string, Dispatcher>([
      ['slurm', slurm],
      ['local', local],
    ]);
    expect((await route(pool, 'train', ds)).map((c) => c.dispatcher.name)).toEqual(['local']);
    local.up = false;
    await expect(route(pool, 'train', ds)).rejects.toBeInstanceOf(DispatcherUnavailable);
    // A plain (non-pool) dispatcher is used as it is.
    expect((await route({ type: 'workers' }, 'train', new Map([['workers', local]]))).length).toBe(1);
  });
});

describe('local dispatcher', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const spec = (name: string, command: string[], options: Record<string, unknown> = {}): LaunchSpec => ({
    name,
    kind: 'train',
    sweepId: 'swp_t',
    number: 4,
    attempt: 0,
    runId: 'run_t',
    command,
    env: {},
    cwd: null,
    resources: { cpu: 1, memory_mb: 0, gpu: 0, device_type: null },
    maxRetries: 0,
    runToken: async () => 'tok',
    options,
  });
  const settled = async (d: LocalDispatcher, id: string) =>
    eventually(async () => {
      const s = (await d.status([id])).get(id);
      return s && s.state !== 'running' && s.state !== 'pending' ? s : undefined;
    });

  it('runs a command with the trial environment; its exit status survives a new dispatcher (a restart)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'runplane-local-'));
    dirs.push(dir);
    const out = join(dir, 'env.txt');
    const d = new LocalDispatcher(dir, () => 'http://ctl');
    const cmd = [
      'sh',
      '-c',
      `echo "$RUNPLANE_TRIAL_NUMBER $RUNPLANE_RUN_TOKEN $RUNPLANE_CONTROLLER_URL" > ${out}; exit 0`,
    ];
    const id = await d.launch(spec('ok', cmd));
    expect(await d.launch(spec('ok', cmd))).toBe(id);
    expect((await settled(d, id)).state).toBe('succeeded');
    expect(readFileSync(out, 'utf8').trim()).toBe('4 tok http://ctl');
    const restarted = new LocalDispatcher(dir, () => 'http://ctl');
    expect((await restarted.status([id])).get(id)?.state).toBe('succeeded');
    const bad = await d.launch(spec('bad', ['sh', '-c', 'exit 5']));
    expect(await settled(d, bad)).toMatchObject({ state: 'failed', reason: 'exit code 5' });
    expect((await d.status(['never-launched'])).get('never-launched')?.state).toBe('unknown');
  });

  it('stops a running job (its whole process group) and respects max_concurrent', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'runplane-local-'));
    dirs.push(dir);
    const d = new LocalDispatcher(dir, () => 'http://ctl', { killGraceMs: 200 });
    const id = await d.launch(spec('long', ['sh', '-c', 'sleep 30 & wait'], { max_concurrent: 1 }));
    await eventually(async () => (await d.status([id])).get(id)?.state === 'running');
    await expect(d.launch(spec('second', ['true'], { max_concurrent: 1 }))).rejects.toBeInstanceOf(
      DispatcherUnavailable,
    );
    await d.stop(id, 'test');
    expect((await settled(d, id)).state).toBe('killed');
  });
});
