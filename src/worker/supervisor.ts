/**
 * Worker slice — process supervisor.
 *
 * Runs attempts as real OS processes, started through the spawn helper (see spawn-helper.ts): one
 * process group per process (setup or command), output written by the process straight to
 * <workDir>/logs and read back from there as events (at exit, and every second while it runs),
 * exactly one 'exited' event per started attempt.
 * The pids of live process groups are mirrored to <workDir>/running.json so that a later incarnation
 * of the worker can kill what a crashed one left behind (reapLeftovers).
 *
 * Every child gets RUNPLANE_ATTEMPT_ID=<attempt id> added to its environment: reapLeftovers uses it
 * to tell our leftover processes from unrelated ones that reused a recorded pid.
 */

import { mkdirSync, readFileSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { type SpawnExit, type SpawnedProcess, SpawnHelper } from './spawn-helper.js';

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
/** How often the output of running processes is read from their log files. */
const TAIL_EVERY_MS = 1_000;
const READ_CHUNK = 64 * 1024;

interface RunningEntry {
  attempt_id: string;
  pid: number;
}

interface ProcResult {
  pid: number | null;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** It could not be started. */
  error: Error | null;
  /** It was started but its exit can no longer be known (the spawn helper died); it was killed. */
  lost?: string;
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
  stdout: LogTail | null;
  stderr: LogTail | null;
  done: Promise<void>;
}

/**
 * The output of an attempt's stream, read back from where the last read stopped: from the log
 * file, or, while a process writes to an unnamed file first (see SpawnedProcess.live), from that
 * file. Offsets count bytes of the log file, which holds the output of the attempt's processes
 * one after another. Reads are serialised; a multi-byte character split across reads is held
 * until it is whole.
 */
class LogTail {
  private offset = 0;
  /** The unnamed file the running process writes to, and the log file's size when it started. */
  private live: { path: string; base: number } | null = null;
  private readonly decoder = new StringDecoder('utf8');
  private reading: Promise<void> = Promise.resolve();

  constructor(
    readonly path: string,
    private readonly emit: (data: string) => void,
  ) {}

  /** The process now running writes to `path` until it exits (call once the last read is done). */
  follow(path: string): void {
    this.live = { path, base: this.offset };
  }

  /**
   * Reads what was written since the last read. `known` is a size the log file is known to have
   * reached (nothing is read when it is no more than what was read); `final` also flushes a
   * trailing partial character.
   */
  read(known: number | null, final = false): Promise<void> {
    const source = this.live ?? { path: this.path, base: 0 };
    this.reading = this.reading.then(() => this.readNow(source, known, final));
    return this.reading;
  }

  /**
   * The process exited having left `written` bytes (in its unnamed file, now appended to the log
   * file, or the log file's size): reads the rest from the log file.
   */
  exited(written: number | null, final: boolean): Promise<void> {
    const known = written === null ? null : (this.live?.base ?? 0) + written;
    this.live = null;
    return this.read(known, final);
  }

  private async readNow(
    source: { path: string; base: number },
    known: number | null,
    final: boolean,
  ): Promise<void> {
    if (known === null || known > this.offset) {
      let fh: Awaited<ReturnType<typeof open>> | null = null;
      try {
        fh = await open(source.path, 'r');
        const buf = Buffer.alloc(READ_CHUNK);
        for (;;) {
          const { bytesRead } = await fh.read(buf, 0, READ_CHUNK, this.offset - source.base);
          if (bytesRead === 0) break;
          this.offset += bytesRead;
          const data = this.decoder.write(buf.subarray(0, bytesRead));
          if (data !== '') this.emit(data);
        }
      } catch {
        // No file yet, or it is gone (an unnamed file closed as its process ended): nothing to read.
      } finally {
        await fh?.close();
      }
    }
    if (final) {
      const rest = this.decoder.end();
      if (rest !== '') this.emit(rest);
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
  private readonly helper = new SpawnHelper();
  private tailTimer: NodeJS.Timeout | null = null;

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
    // No live process (between BUILDING steps, or being spawned): run() sees the reason before
    // spawning anything, and a process being spawned is stopped once its pid is known.
    this.stop(att);
  }

  /** SIGTERM to the attempt's live process group, SIGKILL after the grace period. */
  private stop(att: Attempt): void {
    const pid = att.pid;
    if (pid === null || att.killTimer !== null) return;
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

  /** Stops the spawn helper; call once nothing runs any more (after killAll). */
  close(): void {
    this.helper.close();
  }

  active(): string[] {
    return [...this.attempts.keys()];
  }

  /**
   * Where the attempt's output goes. On Linux a file appears when a process of the attempt exits
   * having written to that stream (until then the output is in an unnamed file, see
   * spawn-helper.ts); elsewhere it is created when the attempt's first process starts.
   */
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
    const id = spec.attempt_id;
    att.stdout = new LogTail(paths.stdout, (data) =>
      this.emit({ type: 'output', attempt_id: id, stream: 'stdout', data }),
    );
    att.stderr = new LogTail(paths.stderr, (data) =>
      this.emit({ type: 'output', attempt_id: id, stream: 'stderr', data }),
    );

    if (spec.setup !== null && spec.setup.length > 0) {
      const r = await this.runProcess(att, spec.setup, cwd, 'setup');
      const k = killed();
      if (k) return { ...k, exit_code: r.code, signal: r.signal };
      if (r.lost)
        return { outcome: 'FAILED', exit_code: null, signal: null, reason: `setup lost: ${r.lost}` };
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
    if (r.lost) return { outcome: 'FAILED', exit_code: null, signal: null, reason: `lost: ${r.lost}` };
    if (r.error)
      return { outcome: 'FAILED', exit_code: null, signal: null, reason: `spawn failed: ${r.error.message}` };
    if (r.code === 0) return { outcome: 'SUCCEEDED', exit_code: 0, signal: null, reason: null };
    if (r.code !== null)
      return { outcome: 'FAILED', exit_code: r.code, signal: null, reason: `exit code ${r.code}` };
    return { outcome: 'FAILED', exit_code: null, signal: r.signal, reason: `killed by signal ${r.signal}` };
  }

  /**
   * Spawns argv (through the helper) as its own process group and resolves once it has exited,
   * its group has been SIGKILLed (stragglers) and all of its output has been read back from the
   * log files and handed out as events.
   */
  private async runProcess(
    att: Attempt,
    argv: string[],
    cwd: string,
    role: 'setup' | 'command',
  ): Promise<ProcResult> {
    const [file, ...args] = argv;
    if (file === undefined || file === '')
      return { pid: null, code: null, signal: null, error: new Error('empty command') };
    const paths = this.logPaths(att.spec.attempt_id);
    let proc: SpawnedProcess;
    try {
      proc = await this.helper.spawn({
        file,
        args,
        cwd,
        env: att.env,
        stdoutPath: paths.stdout,
        stderrPath: paths.stderr,
      });
    } catch (err) {
      return {
        pid: null,
        code: null,
        signal: null,
        error: err instanceof Error ? err : new Error(String(err)),
      };
    }
    const pid = proc.pid;
    att.pid = pid;
    if (proc.live) {
      att.stdout?.follow(proc.live.stdout);
      att.stderr?.follow(proc.live.stderr);
    }
    this.scheduleRunningWrite();
    this.tailWhileRunning();
    if (role === 'command')
      this.emit({ type: 'running', attempt_id: att.spec.attempt_id, pid, at: this.now() });
    // Killed while it was being spawned.
    if (att.killReason !== null) this.stop(att);

    // The exit, or why it can no longer be known.
    const exit: SpawnExit | string = await proc.exited.catch((err: unknown) =>
      err instanceof Error ? err.message : String(err),
    );
    const known = typeof exit === 'string' ? null : exit;
    att.pid = null;
    if (role === 'command') att.commandDone = true;
    if (att.killTimer) {
      clearTimeout(att.killTimer);
      att.killTimer = null;
    }
    // Descendants left in the group would outlive the attempt (and could keep writing its logs).
    signalGroup(pid, 'SIGKILL');
    await Promise.all([
      att.stdout?.exited(known ? known.stdoutBytes : null, role === 'command'),
      att.stderr?.exited(known ? known.stderrBytes : null, role === 'command'),
    ]);
    if (!known) return { pid, code: null, signal: null, error: null, lost: exit as string };
    return { pid, code: known.code, signal: known.signal, error: null };
  }

  /** Reads the output of running processes every second, while any runs. */
  private tailWhileRunning(): void {
    if (this.tailTimer !== null) return;
    this.tailTimer = setInterval(() => {
      let running = 0;
      for (const att of this.attempts.values()) {
        if (att.pid === null) continue;
        running += 1;
        void att.stdout?.read(null);
        void att.stderr?.read(null);
      }
      if (running === 0 && this.tailTimer !== null) {
        clearInterval(this.tailTimer);
        this.tailTimer = null;
      }
    }, TAIL_EVERY_MS);
    this.tailTimer.unref();
  }

  private async finish(att: Attempt, info: ExitInfo): Promise<void> {
    // Output was read back in full when its last process exited (runProcess).
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
