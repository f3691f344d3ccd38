/**
 * Worker slice — the spawn helper.
 *
 * `fork()` copies the page tables of the process that calls it, and the child then takes a
 * copy-on-write fault for every page it touches before `exec`: the bigger the parent, the
 * dearer every spawn. The worker agent is a full Node application (HTTP client, supervisor,
 * logger, under tsx in development), so it does not spawn jobs itself: a bare `node` process with
 * nothing loaded but `child_process` does, on its behalf. For a job like `/bin/true` that halves
 * the CPU a spawn costs the worker and its child, and the agent's event loop never blocks in
 * `fork`.
 *
 * The helper opens the job's log files itself and hands them to the job as stdout and stderr,
 * so output goes straight to disk with no pipe for anyone to relay (see HELPER_SOURCE for the
 * unnamed files it writes first). It speaks newline-delimited
 * JSON over its stdin and stdout: a request to spawn, answered by the pid (or the error), and
 * later by the exit with the size of each log file. When the agent goes away its stdin ends and
 * the helper exits; jobs it started keep running, and the next agent reaps them (running.json).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';

export interface SpawnRequest {
  file: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  /** Log files, opened for appending; the process writes to them directly. */
  stdoutPath: string;
  stderrPath: string;
}

export interface SpawnExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /**
   * How much output the process left: what it wrote (when it wrote to unnamed files, see
   * SpawnedProcess.live), or the sizes of the log files.
   */
  stdoutBytes: number;
  stderrBytes: number;
}

/** A process the helper started, detached into its own process group (pgid = pid). */
export interface SpawnedProcess {
  pid: number;
  /**
   * Where its output can be read while it runs, when that is not the log files themselves: the
   * unnamed files it writes to, through the helper's open descriptors. Their content is appended
   * to the log files when it exits, before `exited` resolves.
   */
  live: { stdout: string; stderr: string } | null;
  exited: Promise<SpawnExit>;
}

type HelperReply =
  | { id: number; pid: number; fds?: [number, number] }
  | { id: number; error: string }
  | ({ id: number; exit: true } & SpawnExit);

interface Pending {
  spawned: (p: SpawnedProcess) => void;
  failed: (err: Error) => void;
  exit: ((e: SpawnExit) => void) | null;
  lost: ((err: Error) => void) | null;
}

/**
 * The helper's program: CommonJS, run by `node -e`, so it loads nothing else (no tsx, no
 * application modules). Replies are written once per turn of its event loop.
 *
 * Output goes first to unnamed files (O_TMPFILE) in the log directory: creating a named file
 * costs the file system a directory entry and most of a spawn's worth of time, and most short
 * jobs print nothing. A process's output is appended to its named log files when it exits, only
 * when there is some. Where unnamed files are not available (another OS or architecture, a file
 * system without them) the process writes to its named log files directly.
 */
const HELPER_SOURCE = `
const { spawn } = require('node:child_process');
const { openSync, closeSync, fstatSync, createReadStream, createWriteStream, constants } = require('node:fs');
const { dirname } = require('node:path');
const { pipeline } = require('node:stream/promises');
const O_TMPFILE = 0o20000000 | constants.O_DIRECTORY | constants.O_RDWR;
let unnamed = process.platform === 'linux' && (process.arch === 'x64' || process.arch === 'arm64');
let out = [];
const reply = (m) => {
  if (out.length === 0) setImmediate(() => { const s = out.join(''); out = []; process.stdout.write(s); });
  out.push(JSON.stringify(m) + '\\n');
};
const size = (fd) => { try { return fstatSync(fd).size; } catch { return 0; } };
const close = (fds) => { for (const fd of fds) try { closeSync(fd); } catch {} };
const openUnnamed = (dir) => {
  const fd = openSync(dir, O_TMPFILE, 0o644);
  const st = fstatSync(fd);
  if (!st.isFile() || st.nlink !== 0) { closeSync(fd); throw new Error('not an unnamed file'); }
  return fd;
};
const logFiles = (r) => {
  if (unnamed) {
    const fds = [];
    try {
      fds.push(openUnnamed(dirname(r.stdoutPath)), openUnnamed(dirname(r.stderrPath)));
      return { fds, unnamed: true };
    } catch {
      close(fds);
      unnamed = false;
    }
  }
  const fds = [openSync(r.stdoutPath, 'a')];
  try { fds.push(openSync(r.stderrPath, 'a')); } catch (err) { close(fds); throw err; }
  return { fds, unnamed: false };
};
const keep = async (fd, bytes, path) => {
  if (bytes > 0) await pipeline(createReadStream('', { fd, start: 0, end: bytes - 1, autoClose: false }), createWriteStream(path, { flags: 'a' }));
};
require('node:readline').createInterface({ input: process.stdin }).on('line', (line) => {
  const r = JSON.parse(line);
  let files = { fds: [], unnamed: false };
  let child;
  try {
    files = logFiles(r);
    child = spawn(r.file, r.args, { cwd: r.cwd, env: r.env, detached: true, stdio: ['ignore', files.fds[0], files.fds[1]] });
  } catch (err) {
    close(files.fds);
    return reply({ id: r.id, error: String(err && err.message) });
  }
  const fds = files.fds;
  if (child.pid === undefined) {
    close(fds);
    return child.once('error', (err) => reply({ id: r.id, error: String(err && err.message) }));
  }
  child.on('error', () => {});
  reply(files.unnamed ? { id: r.id, pid: child.pid, fds } : { id: r.id, pid: child.pid });
  child.once('exit', async (code, signal) => {
    const stdoutBytes = size(fds[0]);
    const stderrBytes = size(fds[1]);
    if (files.unnamed) {
      try {
        await Promise.all([keep(fds[0], stdoutBytes, r.stdoutPath), keep(fds[1], stderrBytes, r.stderrPath)]);
      } catch (err) {
        process.stderr.write('runplane spawn helper: could not keep the output of pid ' + child.pid + ': ' + (err && err.message) + '\\n');
      }
    }
    close(fds);
    reply({ id: r.id, exit: true, code, signal, stdoutBytes, stderrBytes });
  });
}).on('close', () => process.exit(0));
`;

/** The agent's side of the helper: started on first use, started again if it dies. */
export class SpawnHelper {
  private child: ChildProcess | null = null;
  private stdin: Writable | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private outbox: Array<{ id: number; line: string }> = [];

  /** Starts `req`; resolves once it runs (with its pid) or rejects with why it could not. */
  spawn(req: SpawnRequest): Promise<SpawnedProcess> {
    this.ensure();
    const id = this.nextId++;
    const spawned = new Promise<SpawnedProcess>((resolve, reject) => {
      this.pending.set(id, { spawned: resolve, failed: reject, exit: null, lost: null });
    });
    if (this.outbox.length === 0) setImmediate(() => this.send());
    this.outbox.push({ id, line: `${JSON.stringify({ id, ...req })}\n` });
    this.setRef(true);
    return spawned;
  }

  /**
   * Writes the requests made this turn in one write. Those a helper that died meanwhile has
   * already failed (see `ensure`) are not sent to its successor.
   */
  private send(): void {
    const batch = this.outbox;
    this.outbox = [];
    const text = batch.flatMap((r) => (this.pending.has(r.id) ? [r.line] : [])).join('');
    if (text !== '') this.stdin?.write(text);
  }

  /** Ends the helper (processes it started keep running). */
  close(): void {
    this.stdin?.end();
    this.child = null;
    this.stdin = null;
  }

  private ensure(): Writable {
    if (this.child && this.stdin) return this.stdin;
    const child = spawn(process.execPath, ['-e', HELPER_SOURCE], {
      stdio: ['pipe', 'pipe', 'inherit'],
      // Only what the helper itself needs; each job gets its own environment in its request.
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    });
    this.child = child;
    this.stdin = child.stdin as Writable;
    // A write to a helper that died is reported through its exit below.
    this.stdin.on('error', () => undefined);
    createInterface({ input: child.stdout as Readable }).on('line', (line) =>
      this.onReply(JSON.parse(line) as HelperReply),
    );
    child.once('exit', (code, signal) => {
      if (this.child === child) {
        this.child = null;
        this.stdin = null;
      }
      const err = new Error(`spawn helper exited (code ${code}, signal ${signal})`);
      for (const p of this.pending.values()) {
        if (p.lost) p.lost(err);
        else p.failed(err);
      }
      this.pending.clear();
    });
    return this.stdin;
  }

  private onReply(r: HelperReply): void {
    const p = this.pending.get(r.id);
    if (!p) return;
    if ('error' in r) {
      this.pending.delete(r.id);
      p.failed(new Error(r.error));
    } else if ('pid' in r) {
      const helperPid = this.child?.pid;
      p.spawned({
        pid: r.pid,
        live:
          r.fds && helperPid !== undefined
            ? { stdout: `/proc/${helperPid}/fd/${r.fds[0]}`, stderr: `/proc/${helperPid}/fd/${r.fds[1]}` }
            : null,
        exited: new Promise<SpawnExit>((resolve, reject) => {
          p.exit = resolve;
          p.lost = reject;
        }),
      });
    } else {
      this.pending.delete(r.id);
      p.exit?.({ code: r.code, signal: r.signal, stdoutBytes: r.stdoutBytes, stderrBytes: r.stderrBytes });
    }
    if (this.pending.size === 0) this.setRef(false);
  }

  /** Holds the event loop open only while a process is being spawned or runs. */
  private setRef(ref: boolean): void {
    const child = this.child;
    if (!child) return;
    const streams = [child.stdout, child.stdin] as Array<{ ref?(): void; unref?(): void } | null>;
    if (ref) {
      child.ref();
      for (const s of streams) s?.ref?.();
    } else {
      child.unref();
      for (const s of streams) s?.unref?.();
    }
  }
}
