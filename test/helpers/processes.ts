/**
 * Real processes for the end-to-end suites: `runplane up`, `runplane worker` and one-shot CLI
 * commands, started from the built CLI (bin/runplane.js → dist/) exactly as a user would.
 *
 * Nothing leaks: every child is tracked, and every process started here carries MARKER_ENV in
 * its environment. Workers pass their environment on to the jobs they run (minus RUNPLANE_*),
 * so job processes carry it too, including ones orphaned by a worker killed with SIGKILL.
 * cleanup() SIGKILLs the children, then sweeps /proc for anything still carrying the marker,
 * and fails if something survives.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RunplaneClient } from '../../src/client/client.js';
import type { JobListQuery, JobView } from '../../src/jobs/schemas.js';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = join(REPO_ROOT, 'bin', 'runplane.js');

/** Not RUNPLANE_*: the worker agent strips those before handing its environment to jobs. */
export const MARKER_ENV = 'RP_E2E_MARKER';
/** One per test file (vitest runs each file in its own process). */
export const MARKER = `${process.pid}-${randomUUID().slice(0, 8)}`;

const children = new Set<ChildProcess>();
const dirs: string[] = [];
let neutralCwd: string | null = null;

/** Keep temp dirs (data dirs, work dirs, logs) after the run, to look at a failure. */
const KEEP = process.env.RUNPLANE_TEST_KEEP === '1';

/** A fresh temporary directory, removed by cleanup(). */
export function tempDir(prefix = 'runplane-e2e-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

/**
 * The environment of every child: the test runner's, without RUNPLANE_* (a RUNPLANE_URL or
 * RUNPLANE_TOKEN of the developer's shell must not leak into a test), plus the marker.
 */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env))
    if (v !== undefined && !k.startsWith('RUNPLANE_')) env[k] = v;
  return { ...env, [MARKER_ENV]: MARKER, ...extra };
}

function startProcess(
  args: string[],
  opts: { env?: Record<string, string>; cwd?: string; logFile: string },
): ChildProcess {
  // stdout (JSON logs) goes to a file: nothing to drain, and it is there to read after a failure.
  const out = openSync(opts.logFile, 'a');
  try {
    const proc = spawn(process.execPath, [BIN, ...args], {
      cwd: opts.cwd ?? REPO_ROOT,
      env: childEnv(opts.env),
      stdio: ['ignore', out, 'pipe'],
    });
    children.add(proc);
    proc.once('exit', () => children.delete(proc));
    return proc;
  } finally {
    closeSync(out);
  }
}

function hasExited(proc: ChildProcess): boolean {
  return proc.exitCode !== null || proc.signalCode !== null;
}

/** Resolves once the process has exited (at once if it already has). */
export function exited(proc: ChildProcess): Promise<void> {
  if (hasExited(proc)) return Promise.resolve();
  return new Promise((r) => proc.once('exit', () => r()));
}

async function killAndWait(proc: ChildProcess): Promise<void> {
  if (hasExited(proc)) return;
  proc.kill('SIGKILL');
  await exited(proc);
}

/** SIGTERM, then SIGKILL if it has not exited within graceMs. */
async function terminate(proc: ChildProcess, graceMs = 20_000): Promise<void> {
  if (hasExited(proc)) return;
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
  await exited(proc);
  clearTimeout(timer);
}

/** Collects stderr (its last 64 KiB) and resolves when `pattern` shows up in it. */
function watchStderr(proc: ChildProcess, what: string, pattern: RegExp, timeoutMs: number) {
  let text = '';
  proc.stderr?.setEncoding('utf8');
  proc.stderr?.on('data', (chunk: string) => {
    text = (text + chunk).slice(-65536);
  });
  const ready = new Promise<RegExpExecArray>((resolveReady, reject) => {
    const check = () => {
      const m = pattern.exec(text);
      if (m) {
        cleanupListeners();
        resolveReady(m);
      }
    };
    const onExit = () => {
      cleanupListeners();
      reject(
        new Error(
          `${what} exited before it was ready (code ${proc.exitCode}, signal ${proc.signalCode}):\n${text}`,
        ),
      );
    };
    const timer = setTimeout(() => {
      cleanupListeners();
      reject(new Error(`${what} not ready within ${timeoutMs}ms:\n${text}`));
    }, timeoutMs);
    const cleanupListeners = () => {
      clearTimeout(timer);
      proc.stderr?.off('data', check);
      proc.off('exit', onExit);
    };
    proc.stderr?.on('data', check);
    proc.once('exit', onExit);
  });
  return { ready, stderr: () => text };
}

/** A port that was free a moment ago (to restart `runplane up` on the same address). */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => r());
  });
  const address = srv.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

export interface UpOptions {
  /** undefined: a fresh temp dir; null: no --data-dir (`up` then uses <cwd>/.runplane). */
  dataDir?: string | null;
  cwd?: string;
  /** Default 0 (a random port). */
  port?: number;
  /** Embedded workers; default 0. null: no --workers flag (runplane's default, 1). */
  workers?: number | null;
  /** e.g. '3s'; default: runplane's. */
  workerTimeout?: string;
  /** Default '1s'. */
  killGrace?: string;
  databaseUrl?: string;
  /** Sets RUNPLANE_ADMIN_TOKEN. */
  adminToken?: string;
  env?: Record<string, string>;
  args?: string[];
}

export interface UpProcess {
  url: string;
  port: number;
  dataDir: string;
  proc: ChildProcess;
  adminToken: string;
  /** Where `up` wrote the admin token, or null when it came from RUNPLANE_ADMIN_TOKEN. */
  adminTokenPath: string | null;
  /** The JSON log (stdout). */
  logFile: string;
  stderr(): string;
  /** SIGTERM, and waits for the exit (SIGKILL if it takes too long). */
  stop(): Promise<void>;
  /** SIGKILL, and waits for the exit. */
  kill9(): Promise<void>;
}

/** Starts `runplane up` and resolves once it prints its URL and where the admin token is. */
export async function startUp(opts: UpOptions = {}): Promise<UpProcess> {
  const cwd = opts.cwd ?? REPO_ROOT;
  const dataDir =
    opts.dataDir === null ? resolve(cwd, '.runplane') : (opts.dataDir ?? tempDir('runplane-e2e-data-'));
  const args = ['up', '--port', String(opts.port ?? 0)];
  if (opts.dataDir !== null) args.push('--data-dir', dataDir);
  if (opts.workers !== null) args.push('--workers', String(opts.workers ?? 0));
  if (opts.workerTimeout) args.push('--worker-timeout', opts.workerTimeout);
  args.push('--kill-grace', opts.killGrace ?? '1s');
  if (opts.databaseUrl) args.push('--database-url', opts.databaseUrl);
  args.push(...(opts.args ?? []));
  const logFile = join(tempDir('runplane-e2e-log-'), 'up.log');
  const env = { ...opts.env, ...(opts.adminToken ? { RUNPLANE_ADMIN_TOKEN: opts.adminToken } : {}) };
  const proc = startProcess(args, { env, cwd, logFile });
  const { ready, stderr } = watchStderr(
    proc,
    'runplane up',
    /runplane is up at (http:\/\/\S+)[^\n]*\nadmin token: ([^\n]*)\n/,
    60_000,
  );
  const m = await ready;
  const url = m[1]!;
  const tokenLine = m[2]!;
  let adminTokenPath: string | null = null;
  let adminToken: string;
  if (tokenLine.startsWith('RUNPLANE_ADMIN_TOKEN')) {
    if (!opts.adminToken)
      throw new Error(`runplane up says the admin token is RUNPLANE_ADMIN_TOKEN, but none was set`);
    adminToken = opts.adminToken;
  } else {
    adminTokenPath = tokenLine.replace(/\s+\(.*\)$/, '').trim();
    adminToken = readFileSync(adminTokenPath, 'utf8').trim();
  }
  return {
    url,
    port: Number(new URL(url).port),
    dataDir,
    proc,
    adminToken,
    adminTokenPath,
    logFile,
    stderr,
    stop: () => terminate(proc),
    kill9: () => killAndWait(proc),
  };
}

export interface WorkerOptions {
  /** Default 2. */
  cpu?: number;
  memoryMb?: number;
  /** Default: a fresh temp dir. */
  workDir?: string;
  /** Default '1s'. */
  killGrace?: string;
  env?: Record<string, string>;
}

export interface WorkerProcess {
  name: string;
  /** The worker id the controller gave it. */
  id: string;
  workDir: string;
  proc: ChildProcess;
  logFile: string;
  stderr(): string;
  stop(): Promise<void>;
  kill9(): Promise<void>;
}

/** Starts `runplane worker` and resolves once it has registered. */
export async function startWorker(
  url: string,
  token: string,
  name: string,
  opts: WorkerOptions = {},
): Promise<WorkerProcess> {
  const workDir = opts.workDir ?? tempDir(`runplane-e2e-${name}-`);
  const args = ['worker', '--controller', url, '--token', token, '--name', name];
  args.push('--cpu', String(opts.cpu ?? 2), '--work-dir', workDir, '--kill-grace', opts.killGrace ?? '1s');
  if (opts.memoryMb !== undefined) args.push('--memory-mb', String(opts.memoryMb));
  const logFile = join(tempDir('runplane-e2e-log-'), `${name}.log`);
  const proc = startProcess(args, { ...(opts.env ? { env: opts.env } : {}), logFile });
  const { ready, stderr } = watchStderr(
    proc,
    `runplane worker ${name}`,
    /registered with \S+ as (\S+)/,
    60_000,
  );
  const m = await ready;
  return {
    name,
    id: m[1]!,
    workDir,
    proc,
    logFile,
    stderr,
    stop: () => terminate(proc),
    kill9: () => killAndWait(proc),
  };
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs one CLI command to its end. Runs in an empty directory unless `opts.cwd` says otherwise,
 * so that no ./.runplane/admin.token lying around is picked up by accident.
 */
export async function runCli(
  args: string[],
  env: Record<string, string> = {},
  opts: { cwd?: string; timeoutMs?: number } = {},
): Promise<CliResult> {
  neutralCwd ??= tempDir('runplane-e2e-cwd-');
  const proc = spawn(process.execPath, [BIN, ...args], {
    cwd: opts.cwd ?? neutralCwd,
    env: childEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(proc);
  let stdout = '';
  let stderr = '';
  proc.stdout.setEncoding('utf8').on('data', (c: string) => {
    stdout += c;
  });
  proc.stderr.setEncoding('utf8').on('data', (c: string) => {
    stderr += c;
  });
  const timeoutMs = opts.timeoutMs ?? 60_000;
  return new Promise<CliResult>((resolveResult, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`runplane ${args.join(' ')} did not finish within ${timeoutMs}ms\n${stderr}`));
    }, timeoutMs);
    proc.once('error', (err) => {
      clearTimeout(timer);
      children.delete(proc);
      reject(err);
    });
    // 'close': after the exit and after both pipes are drained.
    proc.once('close', (code) => {
      clearTimeout(timer);
      children.delete(proc);
      resolveResult({ code, stdout, stderr });
    });
  });
}

/** `runplane --url URL --token TOKEN ...args`. */
export function cliAs(
  url: string,
  token: string,
): (args: string[], env?: Record<string, string>) => Promise<CliResult> {
  return (args, env) => runCli(['--url', url, '--token', token, ...args], env);
}

/** The process state letter from /proc/PID/stat (R, S, D, Z, ...), or null when there is none. */
function procState(pid: number): string | null {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ...": comm may hold spaces and parentheses.
    return st.slice(st.lastIndexOf(')') + 2).split(' ')[0] ?? null;
  } catch {
    return null;
  }
}

/** True while the process exists and is not a zombie (a zombie has finished: it only awaits its reaping). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') throw err;
  }
  const state = procState(pid);
  return state !== null && state !== 'Z' && state !== 'X';
}

/** Live processes whose environment carries `entry` (default: this file's marker). */
export function processesWithEnv(entry = `${MARKER_ENV}=${MARKER}`): number[] {
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    let environ: string;
    try {
      environ = readFileSync(`/proc/${name}/environ`, 'utf8');
    } catch {
      continue; // gone meanwhile, or not ours
    }
    if (environ.split('\0').includes(entry) && pidAlive(pid)) found.push(pid);
  }
  return found;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Kills everything this file started and everything those started (job processes, orphans of
 * a killed worker), removes the temp dirs, and throws if a process could not be killed.
 * Returns the pids that were still around after the tracked children were gone: a test that
 * expects its processes to have ended cleanly can assert that this is empty.
 */
export async function cleanup(): Promise<number[]> {
  await Promise.all([...children].map(killAndWait));
  const leftovers = processesWithEnv();
  let survivors = leftovers;
  for (let i = 0; i < 50 && survivors.length > 0; i++) {
    for (const pid of survivors) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await sleep(100);
    survivors = processesWithEnv();
  }
  if (KEEP) {
    if (dirs.length > 0) console.warn(`[keep] e2e dirs:\n  ${dirs.join('\n  ')}`);
    dirs.length = 0;
  } else {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  }
  neutralCwd = null;
  if (survivors.length > 0) throw new Error(`processes survived SIGKILL: ${survivors.join(', ')}`);
  return leftovers;
}

/** The lines of a file (none when it does not exist). */
export function readLines(file: string): string[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '');
}

/** How often each value occurs. */
export function counts(values: readonly string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const v of values) m.set(v, (m.get(v) ?? 0) + 1);
  return m;
}

export interface Cluster {
  up: UpProcess;
  /** Two `runplane worker` processes, named e2e-a and e2e-b. */
  workers: [WorkerProcess, WorkerProcess];
  /** A token with the worker role. */
  workerToken: string;
  /** A client holding the admin token. */
  client: RunplaneClient;
  /** The CLI pointed at this controller with the admin token. */
  cli: (args: string[], env?: Record<string, string>) => Promise<CliResult>;
  /** Graceful stop: the workers (which stop their attempts), then the controller. */
  stop(): Promise<void>;
}

/** `runplane up --workers 0` plus two `runplane worker` processes holding a worker-role token. */
export async function startCluster(opts: UpOptions & { worker?: WorkerOptions } = {}): Promise<Cluster> {
  const up = await startUp(opts);
  const cli = cliAs(up.url, up.adminToken);
  const created = await cli(['token', 'create', '--role', 'worker']);
  if (created.code !== 0) throw new Error(`token create failed (${created.code}): ${created.stderr}`);
  const workerToken = created.stdout.trim();
  const workers = await Promise.all([
    startWorker(up.url, workerToken, 'e2e-a', opts.worker),
    startWorker(up.url, workerToken, 'e2e-b', opts.worker),
  ]);
  return {
    up,
    workers: [workers[0], workers[1]],
    workerToken,
    client: new RunplaneClient(up.url, up.adminToken),
    cli,
    async stop() {
      await Promise.all(workers.map((w) => w.stop()));
      await up.stop();
    },
  };
}

/** Every job matching the query, following next_cursor to the end. */
export async function listAll(
  client: RunplaneClient,
  q: Omit<JobListQuery, 'cursor'> = {},
): Promise<JobView[]> {
  const jobs: JobView[] = [];
  let cursor: string | null = null;
  do {
    const page: { jobs: JobView[]; next_cursor: string | null } = await client.listJobs({
      limit: 1000,
      ...q,
      ...(cursor ? { cursor } : {}),
    });
    jobs.push(...page.jobs);
    cursor = page.next_cursor;
  } while (cursor);
  return jobs;
}

/** A shell command line as a job command (runplane runs argv without a shell). */
export const sh = (script: string): string[] => ['sh', '-c', script];
