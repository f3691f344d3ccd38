/** Starts bench/lib/controller-proc.ts as a child process and talks to it over IPC. */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ControllerStats } from './controller-proc.js';

export interface ControllerProcess {
  url: string;
  child: ChildProcess;
  /** Starts the measurement window of the controller's own statistics. */
  mark(): Promise<void>;
  /** Statistics since mark(). */
  stats(): Promise<ControllerStats>;
  stop(): Promise<void>;
}

/**
 * Refuses to measure a stale build: `built` runs dist/, which must be at least as new as every
 * file under src/ (`npm install` builds it; `npm run build` rebuilds it).
 */
function assertFreshBuild(): void {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const built = join(root, 'dist', 'runtime.js');
  if (!existsSync(built)) throw new Error('--built needs dist/: run npm run build first');
  const builtAt = statSync(built).mtimeMs;
  const newest = (dir: string): number =>
    readdirSync(dir, { withFileTypes: true }).reduce((m, d) => {
      const p = join(dir, d.name);
      return Math.max(m, d.isDirectory() ? newest(p) : d.name.endsWith('.ts') ? statSync(p).mtimeMs : 0);
    }, 0);
  if (newest(join(root, 'src')) > builtAt)
    throw new Error('--built: dist/ is older than src/; run npm run build first');
}

export async function startControllerProcess(
  flags: Record<string, string | number>,
  profileDir: string | null,
  trace: boolean,
  built = false,
): Promise<ControllerProcess> {
  if (built) assertFreshBuild();
  const script = fileURLToPath(new URL('./controller-proc.ts', import.meta.url));
  const nodeArgs = profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [];
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', script, JSON.stringify(flags)], {
    stdio: ['pipe', 'pipe', 'inherit', 'ipc'],
    env: { ...process.env, RUNPLANE_BENCH_TRACE: trace ? '1' : '0', RUNPLANE_BENCH_BUILT: built ? '1' : '0' },
  });
  const ask = <T>(cmd: string): Promise<T> =>
    new Promise<T>((resolve) => {
      const onMessage = (msg: { cmd?: string; stats?: unknown }): void => {
        if (msg.cmd !== cmd) return;
        child.off('message', onMessage);
        resolve(msg.stats as T);
      };
      child.on('message', onMessage);
      child.send({ cmd });
    });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    rl.on('line', (line) => {
      const m = /^READY (\S+)/.exec(line);
      if (m?.[1]) resolve(m[1]);
      else if (line.trim() !== '') process.stderr.write(`[controller] ${line}\n`);
    });
    void exited.then((code) => reject(new Error(`controller process exited (${code}) before it was ready`)));
  });
  return {
    url,
    child,
    async mark() {
      await ask<unknown>('mark');
    },
    stats: () => ask<ControllerStats>('stats'),
    async stop() {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Any bench script that prints "READY <url>" (e.g. the bare Fastify anchor), as a child process. */
export async function startReadyProcess(
  scriptUrl: URL,
  args: string[] = [],
): Promise<{ url: string; stop(): Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(scriptUrl), ...args], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    rl.on('line', (line) => {
      const m = /^READY (\S+)/.exec(line);
      if (m?.[1]) resolve(m[1]);
    });
    void exited.then((code) =>
      reject(new Error(`${scriptUrl.pathname} exited (${code}) before it was ready`)),
    );
  });
  return {
    url,
    async stop() {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
