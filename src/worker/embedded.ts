import { type ChildProcess, fork } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';

export interface EmbeddedWorkerOptions {
  count: number;
  controllerUrl: string;
  /** A worker-role token, handed to the children in their environment (not argv). */
  token: string;
  namePrefix: string;
  cpu: number;
  memoryMb: number;
  gpu: number;
  dataDir: string;
  killGrace: string;
  logLevel: string;
}

const here = fileURLToPath(import.meta.url);
// Run from dist/ (built) or from src/ under tsx (tests, benchmarks): start the sibling CLI.
const fromSource = here.endsWith('.ts');
const cliMain = join(dirname(here), '..', 'cli', fromSource ? 'main.ts' : 'main.js');
const projectRoot = join(dirname(here), '..', '..');

/**
 * The local workers of `runplane up`: each one is a `runplane worker` child process talking
 * to the controller over HTTP, exactly like a worker on another machine. Spawning job
 * processes then never blocks the controller's event loop, and a second core is used. A
 * child that dies is restarted; a child whose parent died stops (IPC disconnect).
 */
export class EmbeddedWorkers {
  private readonly children = new Map<string, ChildProcess>();
  private stopping = false;

  constructor(
    private readonly opts: EmbeddedWorkerOptions,
    private readonly log: Logger,
  ) {}

  /** Starts every worker and resolves once each has registered. */
  async start(): Promise<void> {
    const names = Array.from({ length: this.opts.count }, (_, i) => `${this.opts.namePrefix}-${i + 1}`);
    await Promise.all(names.map((name) => this.spawn(name)));
  }

  private spawn(name: string): Promise<void> {
    const o = this.opts;
    const args = [
      'worker',
      '--controller',
      o.controllerUrl,
      '--name',
      name,
      '--cpu',
      String(o.cpu),
      '--memory-mb',
      String(o.memoryMb),
      '--gpu',
      String(o.gpu),
      '--labels',
      'embedded=true',
      '--work-dir',
      join(o.dataDir, 'workers', name),
      '--kill-grace',
      o.killGrace,
      '--log-level',
      o.logLevel,
    ];
    const child = fork(cliMain, args, {
      cwd: fromSource ? projectRoot : process.cwd(),
      execArgv: fromSource ? ['--import', 'tsx'] : [],
      env: { ...process.env, RUNPLANE_TOKEN: o.token },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.children.set(name, child);
    return new Promise((resolve, reject) => {
      let registered = false;
      child.on('message', (m: { type?: string }) => {
        if (m?.type === 'registered' && !registered) {
          registered = true;
          resolve();
        }
      });
      child.once('exit', (code, signal) => {
        this.children.delete(name);
        if (!registered) {
          reject(
            new Error(`embedded worker ${name} exited before registering (code ${code}, signal ${signal})`),
          );
          return;
        }
        if (this.stopping) return;
        this.log.error({ worker: name, code, signal }, 'embedded worker exited; restarting it');
        setTimeout(() => {
          if (!this.stopping)
            this.spawn(name).catch((err: unknown) => this.log.error({ err }, 'restart failed'));
        }, 1000);
      });
    });
  }

  /** Stops every worker gracefully (their running attempts are reported as lost). */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(
      [...this.children.values()].map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            const force = setTimeout(() => child.kill('SIGKILL'), 30_000);
            child.once('exit', () => {
              clearTimeout(force);
              resolve();
            });
            child.kill('SIGTERM');
          }),
      ),
    );
  }
}
