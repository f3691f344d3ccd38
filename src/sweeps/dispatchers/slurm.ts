import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DispatchState } from '../model.js';
import type { Dispatcher, DispatchStatus, LaunchSpec } from './dispatcher.js';
import { DispatcherUnavailable, trialEnv } from './dispatcher.js';

/** Slurm job states (squeue %T, sacct State) as dispatch states. */
const STATES: Record<string, DispatchState> = {
  PENDING: 'pending',
  CONFIGURING: 'pending',
  REQUEUED: 'pending',
  REQUEUE_HOLD: 'pending',
  RESV_DEL_HOLD: 'pending',
  SUSPENDED: 'running',
  RUNNING: 'running',
  COMPLETING: 'running',
  STAGE_OUT: 'running',
  SIGNALING: 'running',
  RESIZING: 'running',
  COMPLETED: 'succeeded',
  FAILED: 'failed',
  TIMEOUT: 'failed',
  NODE_FAIL: 'failed',
  OUT_OF_MEMORY: 'failed',
  BOOT_FAIL: 'failed',
  DEADLINE: 'failed',
  CANCELLED: 'killed',
  PREEMPTED: 'killed',
  REVOKED: 'killed',
};

export interface SlurmOptions {
  /** Directory for batch scripts, job output and exit files (must be visible to the nodes). */
  dir: string;
  controllerUrl: () => string;
  /** Paths of the Slurm commands; default from PATH. */
  bin?: { sbatch?: string; squeue?: string; sacct?: string; scancel?: string };
  commandTimeoutMs?: number;
}

/**
 * Dispatches to a Slurm cluster with sbatch; states from squeue (and sacct when accounting is
 * on), stop with scancel. The batch script writes the command's exit status to `<name>.exit`,
 * so the outcome is known even after Slurm has forgotten the job (MinJobAge) on a cluster
 * without accounting. Idempotent by job name: a controller killed between sbatch and recording
 * the id finds the job in `<name>.jobid` or by name in squeue.
 */
export class SlurmDispatcher implements Dispatcher {
  readonly name = 'slurm';
  private readonly timeoutMs: number;

  constructor(private readonly opts: SlurmOptions) {
    this.timeoutMs = opts.commandTimeoutMs ?? 30_000;
    mkdirSync(opts.dir, { recursive: true });
  }

  private bin(name: 'sbatch' | 'squeue' | 'sacct' | 'scancel'): string {
    return this.opts.bin?.[name] ?? name;
  }

  private run(cmd: 'sbatch' | 'squeue' | 'sacct' | 'scancel', args: string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile(
        this.bin(cmd),
        args,
        { timeout: this.timeoutMs, maxBuffer: 16 * 1024 * 1024 },
        (err, stdout, stderr) => {
          if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${stderr.trim() || err.message}`));
          else resolve(stdout);
        },
      );
    });
  }

  private files(name: string) {
    const base = join(this.opts.dir, name.replace(/[^A-Za-z0-9_.-]/g, '_'));
    return {
      script: `${base}.sbatch`,
      out: `${base}.out`,
      exit: `${base}.exit`,
      jobid: `${base}.jobid`,
      stopped: `${base}.stopped`,
    };
  }

  async launch(spec: LaunchSpec): Promise<string> {
    const f = this.files(spec.name);
    if (existsSync(f.jobid)) return readFileSync(f.jobid, 'utf8').trim();
    const already = await this.findByName(spec.name).catch(() => null);
    if (already) {
      writeFileSync(f.jobid, `${already}\n`);
      this.remember(already, spec.name);
      return already;
    }
    const token = await spec.runToken();
    const env = trialEnv(spec, this.opts.controllerUrl(), token);
    const lines = ['#!/bin/sh', `#SBATCH --job-name=${spec.name}`, `#SBATCH --output=${f.out}`];
    lines.push(`#SBATCH --cpus-per-task=${Math.max(1, Math.ceil(spec.resources.cpu))}`);
    if (spec.resources.memory_mb > 0) lines.push(`#SBATCH --mem=${spec.resources.memory_mb}M`);
    if (spec.resources.gpu > 0) {
      const type = spec.resources.device_type ? `${spec.resources.device_type}:` : '';
      lines.push(`#SBATCH --gres=gpu:${type}${spec.resources.gpu}`);
    }
    const o = spec.options;
    if (typeof o.partition === 'string') lines.push(`#SBATCH --partition=${o.partition}`);
    if (typeof o.time_limit === 'string') lines.push(`#SBATCH --time=${o.time_limit}`);
    if (Array.isArray(o.extra_args)) for (const a of o.extra_args) lines.push(`#SBATCH ${String(a)}`);
    for (const [k, v] of Object.entries(env)) {
      if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) lines.push(`export ${k}=${shQuote(v)}`);
    }
    if (spec.cwd) lines.push(`cd ${shQuote(spec.cwd)} || exit 1`);
    lines.push(spec.command.map(shQuote).join(' '));
    lines.push(
      `rc=$?`,
      `echo $rc > ${shQuote(`${f.exit}.tmp`)} && mv ${shQuote(`${f.exit}.tmp`)} ${shQuote(f.exit)}`,
      'exit $rc',
    );
    writeFileSync(f.script, `${lines.join('\n')}\n`, { mode: 0o600 });
    chmodSync(f.script, 0o700);
    let out: string;
    try {
      out = await this.run('sbatch', ['--parsable', f.script]);
    } catch (err) {
      throw new DispatcherUnavailable('slurm', (err as Error).message);
    }
    const id = out.trim().split(';')[0] ?? '';
    if (!/^\d+$/.test(id)) throw new Error(`sbatch answered "${out.trim()}"`);
    writeFileSync(f.jobid, `${id}\n`);
    this.remember(id, spec.name);
    return id;
  }

  private async findByName(name: string): Promise<string | null> {
    const out = await this.run('squeue', ['-h', '--states=all', `--name=${name}`, '-o', '%i']);
    return (
      out
        .trim()
        .split('\n')
        .find((l) => /^\d+$/.test(l.trim()))
        ?.trim() ?? null
    );
  }

  async status(ids: readonly string[]): Promise<Map<string, DispatchStatus>> {
    const out = new Map<string, DispatchStatus>();
    if (ids.length === 0) return out;
    const queue = new Map<string, { state: string; reason: string; name: string }>();
    const text = await this.run('squeue', ['-h', '--states=all', '-o', '%i|%T|%r|%j']);
    for (const line of text.split('\n')) {
      const [id, state, reason, name] = line.trim().split('|');
      if (id && state) queue.set(id, { state, reason: reason ?? '', name: name ?? '' });
    }
    for (const id of ids) {
      const q = queue.get(id);
      const name = q?.name ?? this.nameOf(id);
      const exit = name ? this.exitOf(name) : null;
      // The exit file is the ground truth once written (squeue says COMPLETING a while, and
      // only "NonZeroExitCode" where the file has the code).
      if (exit !== null) {
        out.set(id, exit);
        continue;
      }
      if (q) {
        out.set(id, {
          state: STATES[q.state] ?? 'unknown',
          reason: q.reason && q.reason !== 'None' ? q.reason : null,
          changedAt: null,
        });
        continue;
      }
      out.set(id, await this.fromAccounting(id, name));
    }
    return out;
  }

  /** `ids/<job id>` maps an id back to its job name once squeue has forgotten the job. */
  private remember(id: string, name: string): void {
    mkdirSync(join(this.opts.dir, 'ids'), { recursive: true });
    writeFileSync(join(this.opts.dir, 'ids', id), `${name}\n`);
  }

  private nameOf(id: string): string | null {
    const file = join(this.opts.dir, 'ids', id);
    return existsSync(file) ? readFileSync(file, 'utf8').trim() : null;
  }

  private exitOf(name: string): DispatchStatus | null {
    const f = this.files(name);
    if (!existsSync(f.exit)) return null;
    const code = Number(readFileSync(f.exit, 'utf8').trim());
    const changedAt = statSync(f.exit).mtimeMs;
    if (code === 0) return { state: 'succeeded', reason: null, changedAt };
    if (existsSync(f.stopped)) return { state: 'killed', reason: 'stopped', changedAt };
    return { state: 'failed', reason: `exit code ${code}`, changedAt };
  }

  private async fromAccounting(id: string, name: string | null): Promise<DispatchStatus> {
    try {
      const text = await this.run('sacct', ['-n', '-X', '-P', '-j', id, '-o', 'State']);
      const state = text.trim().split('\n')[0]?.split(' ')[0] ?? '';
      if (state) return { state: STATES[state] ?? 'unknown', reason: null, changedAt: null };
    } catch {
      // accounting is off on this cluster: the exit file was the only record
    }
    if (name && existsSync(this.files(name).stopped))
      return { state: 'killed', reason: 'stopped', changedAt: null };
    return { state: 'unknown', reason: `slurm job ${id} is unknown to squeue and sacct`, changedAt: null };
  }

  async stop(id: string, _reason: string): Promise<void> {
    const name = this.nameOf(id);
    if (name) writeFileSync(this.files(name).stopped, `${Date.now()}\n`);
    await this.run('scancel', [id]).catch(() => undefined);
  }

  async available(): Promise<boolean> {
    try {
      await this.run('squeue', ['-h', '-o', '%i']);
      return true;
    } catch {
      return false;
    }
  }
}

function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
