/**
 * Worker slice — process supervisor.
 *
 * Runs attempts as real OS processes: one process group per process (setup or command), output
 * captured to <workDir>/logs and streamed as events, exactly one 'exited' event per started attempt.
 * The pids of live process groups are mirrored to <workDir>/running.json so that a later incarnation
 * of the worker can kill what a crashed one left behind (reapLeftovers).
 *
 * Every child gets RUNPLANE_ATTEMPT_ID=<attempt id> added to its environment: reapLeftovers uses it
 * to tell our leftover processes from unrelated ones that reused a recorded pid.
 */

import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import type { WriteStream } from 'node:fs';
import { createWriteStream, mkdirSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { StringDecoder } from 'node:string_decoder';

export interface AttemptSpec {
  attempt_id: string;
  job_id: string;
  /** argv; argv[0] resolved via PATH; never run through a shell. */
  command: string[];
  /** The complete environment for the child (RUNPLANE_ATTEMPT_ID is added). */
  env: Record<string, string>;
  /** null => a fresh per-attempt directory <workDir>/attempts/<attempt_id>. */
  cwd: string | null;
  /** Optional argv run (no shell) in the same cwd/env before the command, while BUILDING. */
  setup: string[] | null;
}

export type AttemptOutcome = 'SUCCEEDED' | 'FAILED' | 'KILLED';

export type SupervisorEvent =
  | { type: 'running'; attempt_id: string; pid: number; at: number }
  | { type: 'output'; attempt_id: string; stream: 'stdout' | 'stderr'; data: string }
  | {
      type: 'exited';
      attempt_id: string;
      outcome: AttemptOutcome;
      exit_code: number | null;
      signal: string | null;
      reason: string | null;
      at: number;
    };

export interface SupervisorOptions {
  /** Created if missing; holds attempts/<id>/ dirs, logs/<attempt_id>.stdout|.stderr, running.json. */
  workDir: string;
  /** SIGTERM, then SIGKILL to the whole process group after this. */
  killGraceMs: number;
  onEvent: (ev: SupervisorEvent) => void;
  now?: () => number;
}

export const ATTEMPT_ID_ENV = 'RUNPLANE_ATTEMPT_ID';

const FINISHED_MEMORY = 10_000;
let instanceSeq = 0;
/**
 * After the leader exits and its group has been SIGKILLed, the pipes can only stay open if some
 * descendant escaped the group (setsid) while holding them; stop waiting for EOF after this long.
 */
const PIPE_DRAIN_AFTER_EXIT_MS = 2_000;

interface RunningEntry {
  attempt_id: string;
  pid: number;
}

interface ProcResult {
  pid: number | null;
  code: number | null;
  signal: NodeJS.Signals | null;
  error: Error | null;
}

interface ExitInfo {
  outcome: AttemptOutcome;
  exit_code: number | null;
  signal: string | null;
  reason: string | null;
}

interface Attempt {
  spec: AttemptSpec;
  env: Record<string, string>;
  /** pid (= pgid) of the setup or command process while it is alive; null otherwise. */
  pid: number | null;
  /** Set once the command itself has exited (or failed to spawn): its own outcome then stands. */
  commandDone: boolean;
  killReason: string | null;
  killTimer: NodeJS.Timeout | null;
  stdout: LogSink | null;
  stderr: LogSink | null;
  done: Promise<void>;
}

/**
 * Append-only log file with backpressure towards the pipe that feeds it. The file is opened on the
 * first chunk: most short attempts print nothing, and two opens per spawn are a large share of the
 * cost of an attempt like /bin/true. No output => no file.
 */
class LogSink {
  private ws: WriteStream | null = null;
  private broken = false;

  constructor(private readonly path: string) {}

  write(buf: Buffer, src: Readable): void {
    if (this.broken) return;
    if (this.ws === null) {
      const ws = createWriteStream(this.path, { flags: 'a' });
      // A failing log file (disk full, dir removed) must not kill the worker or stall the child.
      ws.on('error', () => {
        this.broken = true;
        ws.emit('drain');
      });
      this.ws = ws;
    }
    if (!this.ws.write(buf)) {
      src.pause();
      this.ws.once('drain', () => src.resume());
    }
  }

  async close(): Promise<void> {
    if (this.ws === null) return;
    if (!this.broken) this.ws.end();
    try {
      await finished(this.ws);
    } catch {
      // already reported through 'error'; nothing more to flush
    }
  }
}

function signalGroup(pgid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pgid, sig);
  } catch {
    // ESRCH: the group is already gone.
  }
}

function assertSafeId(id: string): void {
  if (id === '' || id === '.' || id === '..' || /[/\\\0]/.test(id)) {
    throw new TypeError(`unsafe attempt id for use in paths: ${JSON.stringify(id)}`);
  }
}

function parseRunning(text: string): RunningEntry[] {
  const raw: unknown = JSON.parse(text);
  if (!Array.isArray(raw)) return [];
  const out: RunningEntry[] = [];
  for (const e of raw as unknown[]) {
    if (typeof e !== 'object' || e === null) continue;
    const { attempt_id, pid } = e as Record<string, unknown>;
    if (typeof attempt_id === 'string' && typeof pid === 'number' && Number.isInteger(pid) && pid > 1) {
      out.push({ attempt_id, pid });
    }
  }
  return out;
}

/** pgid -> member pids, from /proc. */
async function processGroups(): Promise<Map<number, number[]>> {
  const groups = new Map<number, number[]>();
  let names: string[];
  try {
    names = await readdir('/proc');
  } catch {
    return groups;
  }
  await Promise.all(
    names
      .filter((n) => /^\d+$/.test(n))
      .map(async (n) => {
        let st: string;
        try {
          st = await readFile(`/proc/${n}/stat`, 'utf8');
        } catch {
          return; // exited meanwhile
        }
        // "pid (comm) state ppid pgrp ..." — comm may contain spaces and parens.
        const fields = st.slice(st.lastIndexOf(')') + 2).split(' ');
        const pgrp = Number(fields[2]);
        if (!Number.isInteger(pgrp)) return;
        const members = groups.get(pgrp);
        if (members) members.push(Number(n));
        else groups.set(pgrp, [Number(n)]);
      }),
  );
  return groups;
}

async function environHas(pid: number, entry: string): Promise<boolean> {
  try {
    const env = await readFile(`/proc/${pid}/environ`, 'utf8');
    return env.split('\0').includes(entry);
  } catch {
    return false; // gone, or not ours to read
  }
}

export class Supervisor {
  private readonly workDir: string;
  private readonly logDir: string;
  private readonly attemptsDir: string;
  private readonly runningPath: string;
  /** Per instance, so two instances briefly sharing a workDir cannot rename each other's half-written file. */
  private readonly runningTmpPath: string;
  private readonly killGraceMs: number;
  private readonly onEvent: (ev: SupervisorEvent) => void;
  private readonly now: () => number;

  private readonly attempts = new Map<string, Attempt>();
  /** Insertion-ordered so the oldest ids can be forgotten first. */
  private readonly finished = new Set<string>();
  /** Entries of a previous incarnation, kept in running.json until reapLeftovers has dealt with them. */
  private leftovers: RunningEntry[];

  private writeQueued = false;
  private writeInFlight: Promise<void> | null = null;

  constructor(opts: SupervisorOptions) {
    this.workDir = opts.workDir;
    this.logDir = join(opts.workDir, 'logs');
    this.attemptsDir = join(opts.workDir, 'attempts');
    this.runningPath = join(opts.workDir, 'running.json');
    this.runningTmpPath = `${this.runningPath}.${process.pid}.${++instanceSeq}.tmp`;
    this.killGraceMs = opts.killGraceMs;
    this.onEvent = opts.onEvent;
    this.now = opts.now ?? Date.now;
    mkdirSync(this.logDir, { recursive: true });
    mkdirSync(this.attemptsDir, { recursive: true });
    // Read once, synchronously, so attempts started before reapLeftovers() cannot overwrite the record.
    try {
      this.leftovers = parseRunning(readFileSync(this.runningPath, 'utf8'));
    } catch {
      this.leftovers = [];
    }
  }

  async reapLeftovers(): Promise<string[]> {
    const leftovers = this.leftovers.filter((e) => !this.attempts.has(e.attempt_id));
    const killed: string[] = [];
    if (leftovers.length > 0) {
      const groups = await processGroups();
      for (const { attempt_id, pid } of leftovers) {
        const marker = `${ATTEMPT_ID_ENV}=${attempt_id}`;
        // The leader may be gone while its children live on in the group, so any member counts.
        let ours = false;
        for (const member of groups.get(pid) ?? []) {
          if (await environHas(member, marker)) {
            ours = true;
            break;
          }
        }
        if (!ours) continue;
        // Straight to SIGKILL: the control plane already considers these attempts lost.
        signalGroup(pid, 'SIGKILL');
        killed.push(attempt_id);
      }
    }
    this.leftovers = [];
    this.scheduleRunningWrite();
    await this.runningWritten();
    return killed;
  }

  start(spec: AttemptSpec): boolean {
    const id = spec.attempt_id;
    assertSafeId(id);
    if (this.attempts.has(id) || this.finished.has(id)) return false;
    const att: Attempt = {
      spec,
      env: { ...spec.env, [ATTEMPT_ID_ENV]: id },
      pid: null,
      commandDone: false,
      killReason: null,
      killTimer: null,
      stdout: null,
      stderr: null,
      done: Promise.resolve(),
    };
    this.attempts.set(id, att);
    att.done = this.run(att).then(
      (info) => this.finish(att, info),
      (err: unknown) =>
        this.finish(att, {
          outcome: att.killReason !== null ? 'KILLED' : 'FAILED',
          exit_code: null,
          signal: null,
          reason: att.killReason ?? `supervisor error: ${err instanceof Error ? err.message : String(err)}`,
        }),
    );
    return true;
  }

  kill(attempt_id: string, reason: string): void {
    const att = this.attempts.get(attempt_id);
    if (!att || att.killReason !== null || att.commandDone) return;
    att.killReason = reason;
    const pid = att.pid;
    // No live process (between BUILDING steps): run() sees the reason before spawning anything.
    if (pid === null) return;
    signalGroup(pid, 'SIGTERM');
    att.killTimer = setTimeout(() => {
      att.killTimer = null;
      if (att.pid === pid) signalGroup(pid, 'SIGKILL');
    }, this.killGraceMs);
  }

  async killAll(reason: string): Promise<void> {
    const pending = [...this.attempts.values()];
    for (const att of pending) this.kill(att.spec.attempt_id, reason);
    await Promise.all(pending.map((a) => a.done));
    await this.runningWritten();
  }

  active(): string[] {
    return [...this.attempts.keys()];
  }

  /** Where the attempt's output goes; a file exists only once that stream produced output. */
  logPaths(attempt_id: string): { stdout: string; stderr: string } {
    assertSafeId(attempt_id);
    return {
      stdout: join(this.logDir, `${attempt_id}.stdout`),
      stderr: join(this.logDir, `${attempt_id}.stderr`),
    };
  }

  // ---- attempt lifecycle ----

  private async run(att: Attempt): Promise<ExitInfo> {
    const { spec } = att;
    const killed = (): ExitInfo | null =>
      att.killReason !== null
        ? { outcome: 'KILLED', exit_code: null, signal: null, reason: att.killReason }
        : null;

    // BUILDING
    let cwd: string;
    if (spec.cwd === null) {
      cwd = join(this.attemptsDir, spec.attempt_id);
      await mkdir(cwd, { recursive: true });
    } else {
      cwd = spec.cwd;
      let isDir = false;
      try {
        isDir = (await stat(cwd)).isDirectory();
      } catch {
        return { outcome: 'FAILED', exit_code: null, signal: null, reason: `cwd does not exist: ${cwd}` };
      }
      if (!isDir) {
        return { outcome: 'FAILED', exit_code: null, signal: null, reason: `cwd is not a directory: ${cwd}` };
      }
    }
    const early = killed();
    if (early) return early;

    const paths = this.logPaths(spec.attempt_id);
    att.stdout = new LogSink(paths.stdout);
    att.stderr = new LogSink(paths.stderr);

    if (spec.setup !== null && spec.setup.length > 0) {
      const r = await this.runProcess(att, spec.setup, cwd, 'setup');
      const k = killed();
      if (k) return { ...k, exit_code: r.code, signal: r.signal };
      if (r.error)
        return {
          outcome: 'FAILED',
          exit_code: null,
          signal: null,
          reason: `setup failed: spawn failed: ${r.error.message}`,
        };
      if (r.code !== 0) {
        const how = r.code !== null ? `exit ${r.code}` : `killed by signal ${r.signal}`;
        return { outcome: 'FAILED', exit_code: r.code, signal: r.signal, reason: `setup failed: ${how}` };
      }
    }

    // RUNNING
    const r = await this.runProcess(att, spec.command, cwd, 'command');
    att.commandDone = true;
    const k = killed();
    if (k) return { ...k, exit_code: r.code, signal: r.signal };
    if (r.error)
      return { outcome: 'FAILED', exit_code: null, signal: null, reason: `spawn failed: ${r.error.message}` };
    if (r.code === 0) return { outcome: 'SUCCEEDED', exit_code: 0, signal: null, reason: null };
    if (r.code !== null)
      return { outcome: 'FAILED', exit_code: r.code, signal: null, reason: `exit code ${r.code}` };
    return { outcome: 'FAILED', exit_code: null, signal: r.signal, reason: `killed by signal ${r.signal}` };
  }

  /**
   * Spawns argv as its own process group and resolves once it has exited, its group has been
   * SIGKILLed (stragglers) and all of its output has been handed to the log sinks and events.
   */
  private runProcess(
    att: Attempt,
    argv: string[],
    cwd: string,
    role: 'setup' | 'command',
  ): Promise<ProcResult> {
    return new Promise<ProcResult>((resolve) => {
      const fail = (error: Error): void => resolve({ pid: null, code: null, signal: null, error });
      const [file, ...args] = argv;
      if (file === undefined || file === '') {
        fail(new Error('empty command'));
        return;
      }
      let child: ChildProcess;
      try {
        child = spawn(file, args, { cwd, env: att.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      } catch (err) {
        fail(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      const pid = child.pid;
      if (pid === undefined) {
        // ENOENT, EACCES, ...: 'error' follows on the next tick (then a 'close' we don't need).
        child.once('error', fail);
        return;
      }
      att.pid = pid;
      this.scheduleRunningWrite();
      const id = att.spec.attempt_id;
      if (role === 'command') this.emit({ type: 'running', attempt_id: id, pid, at: this.now() });

      const pipe = (src: Readable, stream: 'stdout' | 'stderr'): void => {
        const sink = stream === 'stdout' ? att.stdout : att.stderr;
        const decoder = new StringDecoder('utf8');
        src.on('data', (buf: Buffer) => {
          sink?.write(buf, src);
          const data = decoder.write(buf);
          if (data !== '') this.emit({ type: 'output', attempt_id: id, stream, data });
        });
        src.on('end', () => {
          const rest = decoder.end();
          if (rest !== '') this.emit({ type: 'output', attempt_id: id, stream, data: rest });
        });
      };
      if (child.stdout) pipe(child.stdout, 'stdout');
      if (child.stderr) pipe(child.stderr, 'stderr');

      let exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
      let drainTimer: NodeJS.Timeout | null = null;
      child.on('error', () => {
        // Only signalling errors can occur after a successful spawn, and we signal via process.kill.
      });
      child.once('exit', (code, signal) => {
        exit = { code, signal };
        att.pid = null;
        if (role === 'command') att.commandDone = true;
        if (att.killTimer) {
          clearTimeout(att.killTimer);
          att.killTimer = null;
        }
        // Descendants left in the group would outlive the attempt (and keep our pipes open).
        signalGroup(pid, 'SIGKILL');
        drainTimer = setTimeout(() => {
          child.stdout?.destroy();
          child.stderr?.destroy();
        }, PIPE_DRAIN_AFTER_EXIT_MS);
        drainTimer.unref();
      });
      // 'close' comes after 'exit' and after both pipes have ended, i.e. after every 'data' event.
      child.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
        if (drainTimer) clearTimeout(drainTimer);
        const e = exit ?? { code, signal };
        resolve({ pid, code: e.code, signal: e.signal, error: null });
      });
    });
  }

  private async finish(att: Attempt, info: ExitInfo): Promise<void> {
    // Logs must be complete on disk before anyone hears the attempt is over.
    await Promise.all([att.stdout?.close(), att.stderr?.close()]);
    const id = att.spec.attempt_id;
    this.attempts.delete(id);
    this.finished.add(id);
    if (this.finished.size > FINISHED_MEMORY) {
      const oldest = this.finished.values().next();
      if (!oldest.done) this.finished.delete(oldest.value);
    }
    this.scheduleRunningWrite();
    this.emit({ type: 'exited', attempt_id: id, ...info, at: this.now() });
  }

  private emit(ev: SupervisorEvent): void {
    try {
      this.onEvent(ev);
    } catch (err) {
      // A throwing listener is a bug in the caller; surface it without corrupting our bookkeeping.
      queueMicrotask(() => {
        throw err;
      });
    }
  }

  // ---- running.json ----

  /** Coalesces all changes made within one tick into a single atomic write. */
  private scheduleRunningWrite(): void {
    if (this.writeQueued) return;
    this.writeQueued = true;
    setImmediate(() => this.pumpRunningWrite());
  }

  private pumpRunningWrite(): void {
    if (this.writeInFlight !== null) return; // re-pumped when the in-flight write completes
    this.writeQueued = false;
    const entries: RunningEntry[] = [...this.leftovers];
    for (const [attempt_id, att] of this.attempts) {
      if (att.pid !== null) entries.push({ attempt_id, pid: att.pid });
    }
    const tmp = this.runningTmpPath;
    this.writeInFlight = writeFile(tmp, JSON.stringify(entries))
      .then(() => rename(tmp, this.runningPath))
      .catch(() => {
        // Best effort: the workDir may be gone (shutdown); the next change retries.
      })
      .finally(() => {
        this.writeInFlight = null;
        if (this.writeQueued) this.pumpRunningWrite();
      });
  }

  /** Resolves once running.json reflects the state as of the call. */
  private async runningWritten(): Promise<void> {
    while (this.writeQueued || this.writeInFlight !== null) {
      if (this.writeInFlight !== null) await this.writeInFlight;
      else await new Promise<void>((r) => setImmediate(r));
    }
  }
}
