import { spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import type { Dispatcher, DispatchStatus, LaunchSpec } from './dispatcher.js';
import { DispatcherUnavailable, trialEnv } from './dispatcher.js';

/**
 * Runs jobs as subprocesses on the controller's machine. Each job runs detached, in its own
 * process group, under `sh`, which writes the command's exit status into `<name>.exit` when it
 * ends: the status survives a controller killed meanwhile (the job keeps running), and a
 * restarted controller reads it from the file. Output goes to `<name>.log`, never to a pipe, so
 * a chatty job cannot block on a full one. A job's id is its (unique) name; `sh` writes its pid
 * into `<name>.pid`, and a pid counts as the job only while that process's environment names the
 * job's exit file, so a recycled pid is never taken for the job.
 */
export class LocalDispatcher implements Dispatcher {
  readonly name = 'local';

  constructor(
    private readonly dir: string,
    private readonly controllerUrl: () => string,
    private readonly opts: { killGraceMs: number } = { killGraceMs: 10_000 },
  ) {
    mkdirSync(dir, { recursive: true });
  }

  private files(id: string) {
    const base = join(this.dir, id.replace(/[^A-Za-z0-9_.-]/g, '_'));
    return {
      log: `${base}.log`,
      exit: `${base}.exit`,
      pid: `${base}.pid`,
      launched: `${base}.launched`,
      stopped: `${base}.stopped`,
    };
  }

  async launch(spec: LaunchSpec): Promise<string> {
    const id = spec.name;
    const f = this.files(id);
    // Launched before, maybe by a controller that died before recording it: the same job.
    if (existsSync(f.launched)) return id;
    const max = spec.options.max_concurrent;
    if (typeof max === 'number' && this.running() >= max) {
      throw new DispatcherUnavailable('local', `the local dispatcher runs its limit of ${max} jobs`);
    }
    const token = await spec.runToken();
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env))
      if (v !== undefined && !k.startsWith('RUNPLANE_')) env[k] = v;
    Object.assign(env, trialEnv(spec, this.controllerUrl(), token), {
      RUNPLANE_EXIT_FILE: f.exit,
      RUNPLANE_PID_FILE: f.pid,
    });
    // Marked before the spawn: a controller killed in between never starts a second copy (the
    // job then has no pid and no exit status, and the trial fails and is retried by policy).
    writeFileSync(f.launched, `${Date.now()}\n`);
    const out = openSync(f.log, 'a');
    let pid: number | undefined;
    try {
      const script =
        'echo $$ > "$RUNPLANE_PID_FILE"; "$@"; echo $? > "$RUNPLANE_EXIT_FILE.tmp" && mv "$RUNPLANE_EXIT_FILE.tmp" "$RUNPLANE_EXIT_FILE"';
      const child = spawn('/bin/sh', ['-c', script, 'sh', ...spec.command], {
        cwd: spec.cwd ?? process.cwd(),
        env,
        detached: true,
        stdio: ['ignore', out, out],
      });
      pid = child.pid;
      child.on('error', () => undefined);
      child.unref();
    } finally {
      closeSync(out);
    }
    if (pid === undefined) throw new Error(`could not start ${spec.command[0] ?? 'the command'}`);
    // sh writes it too; written here as well so the job counts as running from this moment.
    writeFileSync(f.pid, `${pid}\n`);
    return id;
  }

  /** Jobs of this dispatcher still running (for max_concurrent). */
  private running(): number {
    let n = 0;
    for (const entry of readdirSafe(this.dir)) {
      if (!entry.endsWith('.launched')) continue;
      const id = entry.slice(0, -'.launched'.length);
      if (!existsSync(this.files(id).exit) && this.alive(id)) n++;
    }
    return n;
  }

  private alive(id: string): boolean {
    const pid = this.pidOf(id);
    return pid !== null && processAlive(pid, this.files(id).exit);
  }

  /** The job's pid; null while there is none (or `sh` is rewriting the file: it truncates first). */
  private pidOf(id: string): number | null {
    try {
      const pid = Number(readFileSync(this.files(id).pid, 'utf8').trim());
      return Number.isInteger(pid) && pid > 0 ? pid : null;
    } catch {
      return null;
    }
  }

  async status(ids: readonly string[]): Promise<Map<string, DispatchStatus>> {
    const out = new Map<string, DispatchStatus>();
    for (const id of ids) out.set(id, this.statusOf(id));
    return out;
  }

  private statusOf(id: string): DispatchStatus {
    const f = this.files(id);
    const stopped = existsSync(f.stopped);
    if (existsSync(f.exit)) {
      const code = Number(readFileSync(f.exit, 'utf8').trim());
      const changedAt = statSync(f.exit).mtimeMs;
      if (code === 0) return { state: 'succeeded', reason: null, changedAt };
      return {
        state: stopped ? 'killed' : 'failed',
        reason: stopped ? 'stopped' : `exit code ${code}`,
        changedAt,
      };
    }
    if (this.alive(id)) return { state: 'running', reason: null, changedAt: null };
    // Just launched and not yet recognisable: sh has not written its pid, or it has but the
    // kernel has not yet set up the new program's environment (spawn returns mid-exec, and
    // /proc/<pid>/environ reads empty until then). Give it a moment before calling it lost.
    if (existsSync(f.launched) && Date.now() - statSync(f.launched).mtimeMs < 5000) {
      return { state: 'pending', reason: 'starting', changedAt: null };
    }
    if (stopped) return { state: 'killed', reason: 'stopped', changedAt: null };
    return { state: 'unknown', reason: 'the process is gone without an exit status', changedAt: null };
  }

  async stop(id: string, _reason: string): Promise<void> {
    const f = this.files(id);
    if (!existsSync(f.pid) || existsSync(f.exit)) return;
    writeFileSync(f.stopped, `${Date.now()}\n`);
    const pid = Number(readFileSync(f.pid, 'utf8').trim());
    if (!this.alive(id)) return;
    signalGroup(pid, 'SIGTERM');
    const timer = setTimeout(() => {
      if (this.alive(id)) signalGroup(pid, 'SIGKILL');
    }, this.opts.killGraceMs);
    timer.unref();
  }

  async available(): Promise<boolean> {
    return true;
  }
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // gone already
  }
}

/** The process exists, is not a zombie, and is the job's `sh` (its environment names the exit file). */
function processAlive(pid: number, exitFile: string): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = st.slice(st.lastIndexOf(')') + 2).split(' ')[0];
    if (state === 'Z' || state === 'X') return false;
    return readFileSync(`/proc/${pid}/environ`, 'utf8')
      .split('\0')
      .includes(`RUNPLANE_EXIT_FILE=${exitFile}`);
  } catch {
    return false;
  }
}
