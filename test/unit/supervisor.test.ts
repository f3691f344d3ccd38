import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AttemptSpec, SupervisorEvent } from '../../src/worker/supervisor.js';
import { Supervisor } from '../../src/worker/supervisor.js';

type Exited = Extract<SupervisorEvent, { type: 'exited' }>;

async function until<T>(
  what: string,
  probe: () => T | undefined | null | false,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Alive for our purposes: exists and is not a zombie (PID 1 in a container may never reap). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return st.slice(st.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Live (non-zombie) members of a process group, from /proc. */
function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const st = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = st.slice(st.lastIndexOf(')') + 2).split(' ');
      if (fields[0] !== 'Z' && Number(fields[2]) === pgid) out.push(Number(name));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

function readRunning(workDir: string): string {
  try {
    return readFileSync(join(workDir, 'running.json'), 'utf8');
  } catch {
    return ''; // not written yet
  }
}

class Harness {
  readonly events: SupervisorEvent[] = [];
  readonly sup: Supervisor;
  constructor(
    readonly workDir: string,
    killGraceMs = 300,
  ) {
    this.sup = new Supervisor({ workDir, killGraceMs, onEvent: (ev) => this.events.push(ev) });
  }
  of(id: string): SupervisorEvent[] {
    return this.events.filter((e) => e.attempt_id === id);
  }
  exited(id: string): Promise<Exited> {
    return until(`exit of ${id}`, () =>
      this.events.find((e): e is Exited => e.type === 'exited' && e.attempt_id === id),
    );
  }
  async pid(id: string): Promise<number> {
    const ev = await until(`running of ${id}`, () =>
      this.events.find((e) => e.type === 'running' && e.attempt_id === id),
    );
    if (ev.type !== 'running') throw new Error('unreachable');
    return ev.pid;
  }
  output(id: string, stream: 'stdout' | 'stderr'): string {
    return this.of(id)
      .map((e) => (e.type === 'output' && e.stream === stream ? e.data : ''))
      .join('');
  }
}

let dir: string;
let harnesses: Harness[];

function harness(killGraceMs?: number): Harness {
  const h = new Harness(join(dir, 'work'), killGraceMs);
  harnesses.push(h);
  return h;
}

function spec(attempt_id: string, command: string[], extra: Partial<AttemptSpec> = {}): AttemptSpec {
  return {
    attempt_id,
    job_id: `job-${attempt_id}`,
    command,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    cwd: null,
    setup: null,
    ...extra,
  };
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'runplane-supervisor-'));
  harnesses = [];
});

afterEach(async () => {
  await Promise.all(harnesses.map((h) => h.sup.killAll('test cleanup')));
  for (const h of harnesses) h.sup.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('Supervisor', () => {
  it('runs /bin/true to SUCCEEDED with events in order running -> exited', async () => {
    const h = harness();
    expect(h.sup.start(spec('a1', ['/bin/true']))).toBe(true);
    expect(h.sup.active()).toEqual(['a1']);
    const ex = await h.exited('a1');
    expect(ex).toMatchObject({ outcome: 'SUCCEEDED', exit_code: 0, signal: null, reason: null });
    expect(h.of('a1').map((e) => e.type)).toEqual(['running', 'exited']);
    expect(h.sup.active()).toEqual([]);
    // cwd: null => a fresh per-attempt directory
    expect(existsSync(join(h.workDir, 'attempts', 'a1'))).toBe(true);
  });

  it('reports a non-zero exit as FAILED and captures stdout/stderr to logs and events', async () => {
    const h = harness();
    h.sup.start(spec('a1', ['sh', '-c', 'echo out; echo err >&2; exit 3']));
    const ex = await h.exited('a1');
    expect(ex).toMatchObject({ outcome: 'FAILED', exit_code: 3, signal: null, reason: 'exit code 3' });
    expect(h.output('a1', 'stdout')).toBe('out\n');
    expect(h.output('a1', 'stderr')).toBe('err\n');
    const paths = h.sup.logPaths('a1');
    expect(readFileSync(paths.stdout, 'utf8')).toBe('out\n');
    expect(readFileSync(paths.stderr, 'utf8')).toBe('err\n');
    // every output event precedes the single exited event
    const types = h.of('a1').map((e) => e.type);
    expect(types.filter((t) => t === 'exited')).toHaveLength(1);
    expect(types.at(-1)).toBe('exited');
  });

  it('passes argv literally, never through a shell', async () => {
    const h = harness();
    h.sup.start(spec('a1', ['printf', '%s|%s', '$HOME; echo x', 'two words']));
    expect((await h.exited('a1')).outcome).toBe('SUCCEEDED');
    expect(h.output('a1', 'stdout')).toBe('$HOME; echo x|two words');
  });

  it('passes the given env and honours cwd', async () => {
    const h = harness();
    const cwd = mkdtempSync(join(dir, 'cwd-'));
    h.sup.start(
      spec('a1', ['sh', '-c', 'echo "$MY_VAR"; echo "$RUNPLANE_ATTEMPT_ID"; pwd'], {
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', MY_VAR: 'hello world' },
        cwd,
      }),
    );
    expect((await h.exited('a1')).outcome).toBe('SUCCEEDED');
    expect(h.output('a1', 'stdout')).toBe(`hello world\na1\n${cwd}\n`);
  });

  it('fails when a given cwd does not exist', async () => {
    const h = harness();
    const cwd = join(dir, 'missing');
    h.sup.start(spec('a1', ['/bin/true'], { cwd }));
    const ex = await h.exited('a1');
    expect(ex).toMatchObject({ outcome: 'FAILED', exit_code: null, reason: `cwd does not exist: ${cwd}` });
    expect(h.of('a1').map((e) => e.type)).toEqual(['exited']);
  });

  it('runs setup first in the same cwd/env and logs its output', async () => {
    const h = harness();
    h.sup.start(
      spec('a1', ['cat', 'made-by-setup'], {
        setup: ['sh', '-c', 'echo setup-ran; echo "$MY_VAR" > made-by-setup'],
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', MY_VAR: 'v1' },
      }),
    );
    expect((await h.exited('a1')).outcome).toBe('SUCCEEDED');
    expect(h.output('a1', 'stdout')).toBe('setup-ran\nv1\n');
    expect(readFileSync(h.sup.logPaths('a1').stdout, 'utf8')).toBe('setup-ran\nv1\n');
  });

  it('fails on a setup failure without running the command', async () => {
    const h = harness();
    const cwd = mkdtempSync(join(dir, 'cwd-'));
    h.sup.start(spec('a1', ['touch', 'command-ran'], { cwd, setup: ['sh', '-c', 'exit 7'] }));
    const ex = await h.exited('a1');
    expect(ex).toMatchObject({ outcome: 'FAILED', reason: 'setup failed: exit 7' });
    expect(h.of('a1').some((e) => e.type === 'running')).toBe(false);
    expect(existsSync(join(cwd, 'command-ran'))).toBe(false);
  });

  it('fails with spawn failed for a nonexistent binary', async () => {
    const h = harness();
    h.sup.start(spec('a1', ['definitely-not-a-binary-xyz']));
    const ex = await h.exited('a1');
    expect(ex.outcome).toBe('FAILED');
    expect(ex.exit_code).toBeNull();
    expect(ex.reason).toMatch(/^spawn failed: .*ENOENT/);
  });

  it('reports a signal it did not send as FAILED', async () => {
    const h = harness();
    h.sup.start(spec('a1', ['sh', '-c', 'kill -SEGV $$']));
    const ex = await h.exited('a1');
    expect(ex).toMatchObject({ outcome: 'FAILED', exit_code: null, signal: 'SIGSEGV' });
    expect(ex.reason).toBe('killed by signal SIGSEGV');
  });

  it('kills a running sleep: KILLED with the reason, pid gone', async () => {
    const h = harness();
    h.sup.start(spec('a1', ['sleep', '100']));
    const pid = await h.pid('a1');
    h.sup.kill('a1', 'user asked');
    const ex = await h.exited('a1');
    expect(ex).toMatchObject({ outcome: 'KILLED', reason: 'user asked', signal: 'SIGTERM' });
    await until('sleep gone', () => !isAlive(pid));
    expect(h.sup.active()).toEqual([]);
  });

  it('escalates to SIGKILL for a process group that ignores SIGTERM', async () => {
    const h = harness(200);
    h.sup.start(spec('a1', ['sh', '-c', 'trap "" TERM; echo ready; sleep 100; echo never']));
    const pid = await h.pid('a1');
    await until('trap installed', () => h.output('a1', 'stdout').includes('ready'));
    h.sup.kill('a1', 'stop');
    const ex = await h.exited('a1');
    expect(ex).toMatchObject({ outcome: 'KILLED', reason: 'stop', signal: 'SIGKILL' });
    await until('group gone', () => groupMembers(pid).length === 0);
  });

  it('kills during setup: KILLED and the command never runs', async () => {
    const h = harness();
    h.sup.start(spec('a1', ['/bin/true'], { setup: ['sleep', '100'] }));
    await until('setup recorded as running', () => readRunning(h.workDir).includes('"a1"'));
    h.sup.kill('a1', 'cancelled');
    const ex = await h.exited('a1');
    expect(ex).toMatchObject({ outcome: 'KILLED', reason: 'cancelled' });
    expect(h.of('a1').some((e) => e.type === 'running')).toBe(false);
  });

  it('leaves no grandchildren behind after a kill', async () => {
    const h = harness();
    h.sup.start(spec('a1', ['sh', '-c', 'sleep 100 & echo $!; sleep 100']));
    const pid = await h.pid('a1');
    const line = await until('bg pid', () => /^\d+\n/.exec(h.output('a1', 'stdout'))?.[0]);
    const bg = Number(line.trim());
    await until('group formed', () => groupMembers(pid).length >= 3);
    expect(isAlive(bg)).toBe(true);
    h.sup.kill('a1', 'stop');
    expect((await h.exited('a1')).outcome).toBe('KILLED');
    await until('grandchild gone', () => !isAlive(bg));
    await until('group gone', () => groupMembers(pid).length === 0);
  });

  it('reaps stragglers left in the group after the leader exits normally', async () => {
    const h = harness();
    h.sup.start(spec('a1', ['sh', '-c', 'sleep 100 & echo $!']));
    const pid = await h.pid('a1');
    const ex = await h.exited('a1');
    expect(ex.outcome).toBe('SUCCEEDED');
    const bg = Number(h.output('a1', 'stdout').trim());
    await until('straggler gone', () => !isAlive(bg));
    await until('group gone', () => groupMembers(pid).length === 0);
  });

  it('treats a duplicate start as a no-op, also after the attempt finished', async () => {
    const h = harness();
    expect(h.sup.start(spec('a1', ['/bin/true']))).toBe(true);
    expect(h.sup.start(spec('a1', ['/bin/true']))).toBe(false);
    await h.exited('a1');
    expect(h.sup.start(spec('a1', ['/bin/true']))).toBe(false);
    expect(h.sup.active()).toEqual([]);
    expect(h.of('a1').filter((e) => e.type === 'exited')).toHaveLength(1);
  });

  it('ignores kill of unknown or finished attempts', async () => {
    const h = harness();
    h.sup.kill('nope', 'x');
    h.sup.start(spec('a1', ['/bin/true']));
    await h.exited('a1');
    h.sup.kill('a1', 'late');
    expect(h.of('a1').filter((e) => e.type === 'exited')).toHaveLength(1);
  });

  it('reapLeftovers kills process groups recorded by a previous incarnation', async () => {
    const a = harness();
    a.sup.start(spec('left1', ['sh', '-c', 'sleep 100 & sleep 100']));
    const pid = await a.pid('left1');
    await until('running.json records left1', () => readRunning(a.workDir).includes('left1'));
    await until('group formed', () => groupMembers(pid).length >= 3);

    const b = harness();
    expect(await b.sup.reapLeftovers()).toEqual(['left1']);
    await until('leftover group gone', () => groupMembers(pid).length === 0);
    // The old incarnation (still alive here, only because both share this test process) sees a
    // signal it did not send.
    expect(await a.exited('left1')).toMatchObject({ outcome: 'FAILED', signal: 'SIGKILL' });
    await until('running.json empty', () => readRunning(a.workDir) === '[]');
  });

  it('reapLeftovers does not kill a recorded pid that belongs to someone else', async () => {
    const a = harness();
    a.sup.start(spec('mine', ['sleep', '100']));
    const pid = await a.pid('mine');
    const runningPath = join(a.workDir, 'running.json');
    await until('running.json records mine', () => readRunning(a.workDir).includes('mine'));
    // Pretend running.json belongs to an attempt id the live process does not carry (pid reuse).
    writeFileSync(runningPath, JSON.stringify([{ attempt_id: 'other', pid }]));
    const b = harness();
    expect(await b.sup.reapLeftovers()).toEqual([]);
    expect(isAlive(pid)).toBe(true);
  });

  it('killAll kills everything and resolves after all exited', async () => {
    const h = harness();
    const ids = ['k1', 'k2', 'k3'];
    for (const id of ids) h.sup.start(spec(id, ['sh', '-c', 'sleep 100 & sleep 100']));
    const pids = await Promise.all(ids.map((id) => h.pid(id)));
    await h.sup.killAll('shutdown');
    expect(h.sup.active()).toEqual([]);
    for (const id of ids) {
      const ex = h.events.find((e): e is Exited => e.type === 'exited' && e.attempt_id === id);
      expect(ex).toMatchObject({ outcome: 'KILLED', reason: 'shutdown' });
    }
    for (const pid of pids) await until('group gone', () => groupMembers(pid).length === 0);
    expect(readRunning(h.workDir)).toBe('[]');
  });

  it('reads the output of a running process from its log file, and all of a large output at exit', async () => {
    const h = harness();
    h.sup.start(spec('a1', ['sh', '-c', 'echo early; sleep 100']));
    // Read back while the process still runs (the log files are tailed every second).
    await until('early output', () => h.output('a1', 'stdout') === 'early\n', 5_000);
    expect(h.sup.active()).toEqual(['a1']);
    // On Linux the output goes to an unnamed file first: the log file appears at the exit.
    if (process.platform === 'linux') expect(existsSync(h.sup.logPaths('a1').stdout)).toBe(false);
    h.sup.kill('a1', 'done');
    await h.exited('a1');
    expect(readFileSync(h.sup.logPaths('a1').stdout, 'utf8')).toBe('early\n');
    // Nothing written to stderr: no file for it.
    if (process.platform === 'linux') expect(existsSync(h.sup.logPaths('a1').stderr)).toBe(false);
    // 200,000 bytes and a multi-byte character at the end: several reads, nothing split or lost.
    h.sup.start(spec('a2', ['sh', '-c', 'head -c 200000 /dev/zero | tr "\\0" x; printf "\\342\\202\\254"']));
    expect((await h.exited('a2')).outcome).toBe('SUCCEEDED');
    expect(h.output('a2', 'stdout')).toBe(`${'x'.repeat(200_000)}\u20ac`);
    expect(readFileSync(h.sup.logPaths('a2').stdout, 'utf8')).toBe(`${'x'.repeat(200_000)}\u20ac`);
  });

  it('reports running attempts as lost, and kills them, when the spawn helper dies', async () => {
    const h = harness();
    h.sup.start(spec('a1', ['sleep', '100']));
    const pid = await h.pid('a1');
    // The helper: the child of this process that runs `node -e`.
    const helper = readdirSync('/proc')
      .filter((n) => /^\d+$/.test(n))
      .map(Number)
      .find((n) => {
        try {
          const st = readFileSync(`/proc/${n}/stat`, 'utf8');
          const ppid = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
          return ppid === process.pid && readFileSync(`/proc/${n}/cmdline`, 'utf8').split('\0')[1] === '-e';
        } catch {
          return false;
        }
      });
    expect(helper).toBeDefined();
    process.kill(helper as number, 'SIGKILL');
    const ex = await h.exited('a1');
    expect(ex).toMatchObject({ outcome: 'FAILED', exit_code: null });
    expect(ex.reason).toMatch(/^lost: spawn helper exited/);
    await until('sleep gone', () => !isAlive(pid));
    // A new helper serves the next attempt.
    h.sup.start(spec('a2', ['/bin/true']));
    expect((await h.exited('a2')).outcome).toBe('SUCCEEDED');
  });

  it('runs many short attempts concurrently', async () => {
    const h = harness();
    const ids = Array.from({ length: 100 }, (_, i) => `t${i}`);
    for (const id of ids) h.sup.start(spec(id, ['/bin/true']));
    for (const id of ids) expect((await h.exited(id)).outcome).toBe('SUCCEEDED');
    expect(h.sup.active()).toEqual([]);
  });
});
