import type { Command } from 'commander';
import { type Config, ConfigError, loadConfig } from '../config.js';
import { startController } from '../runtime.js';
import { CliError, EXIT, type GlobalOptions } from './context.js';

interface UpOptions {
  port?: string;
  host?: string;
  databaseUrl?: string;
  workers?: string;
  workerTimeout?: string;
  workerCpu?: string;
  workerMemoryMb?: string;
  workerGpu?: string;
  killGrace?: string;
  logLevel?: string;
  config?: string;
}

export function registerUp(program: Command, globals: () => GlobalOptions): void {
  program
    .command('up')
    .description('start the controller: API, scheduler, control loops and local workers')
    .option('--port <port>', 'API port (default 7878)')
    .option('--host <host>', 'address to listen on (default 127.0.0.1)')
    .option('--database-url <url>', 'sqlite:<file> or postgres://... (default SQLite in the data dir)')
    .option('--workers <n>', 'embedded local workers (default 1)')
    .option(
      '--worker-timeout <duration>',
      'no heartbeat for this long makes a worker unhealthy (default 60s)',
    )
    .option('--worker-cpu <n>', 'cpu capacity of each embedded worker (default: cores)')
    .option('--worker-memory-mb <n>', 'memory capacity of each embedded worker (default: RAM)')
    .option('--worker-gpu <n>', 'gpu capacity of each embedded worker (default 0)')
    .option('--kill-grace <duration>', 'SIGTERM to SIGKILL grace period (default 10s)')
    .option('--log-level <level>', 'log level (default info)')
    .option('--config <file>', 'YAML config file (flags > env RUNPLANE_* > file > defaults)')
    .action(async (o: UpOptions) => {
      const flags: Partial<Record<keyof Config, string>> = {};
      const set = (k: keyof Config, v: string | undefined) => {
        if (v !== undefined) flags[k] = v;
      };
      set('port', o.port);
      set('host', o.host);
      // --data-dir is a global option: the CLI's other commands read admin.token from there.
      set('dataDir', globals().dataDir);
      set('databaseUrl', o.databaseUrl);
      set('workers', o.workers);
      set('workerTimeoutMs', o.workerTimeout);
      set('workerCpu', o.workerCpu);
      set('workerMemoryMb', o.workerMemoryMb);
      set('workerGpu', o.workerGpu);
      set('killGraceMs', o.killGrace);
      set('logLevel', o.logLevel);
      let config: Config;
      try {
        config = loadConfig(flags, process.env, o.config);
      } catch (err) {
        if (err instanceof ConfigError) throw new CliError(err.message, EXIT.usage);
        throw err;
      }
      const ctl = await startController(config);
      process.stderr.write(
        `runplane is up at ${ctl.url}  (store: ${ctl.store.description}, workers: ${config.workers})\n` +
          (ctl.adminTokenPath
            ? `admin token: ${ctl.adminTokenPath}  (the CLI reads it from there)\n`
            : 'admin token: RUNPLANE_ADMIN_TOKEN\n'),
      );
      let stopping = false;
      const shutdown = (signal: string) => {
        if (stopping) return;
        stopping = true;
        process.stderr.write(`${signal}: stopping runplane\n`);
        ctl.stop().then(
          () => process.exit(0),
          (err: unknown) => {
            process.stderr.write(`shutdown failed: ${String(err)}\n`);
            process.exit(1);
          },
        );
      };
      process.on('SIGINT', () => shutdown('SIGINT'));
      process.on('SIGTERM', () => shutdown('SIGTERM'));
      // Runs until a signal arrives.
      await new Promise<never>(() => {});
    });
}
