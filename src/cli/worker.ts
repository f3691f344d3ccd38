import { cpus, homedir, hostname, totalmem } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import pino from 'pino';
import { RunplaneClient } from '../client/client.js';
import { parseDuration } from '../shared/duration.js';
import { WorkerAgent } from '../worker/agent.js';
import { HttpLink } from '../worker/link.js';
import { CliError, EXIT, type GlobalOptions, keyValues, number } from './context.js';

interface WorkerOptions {
  controller?: string;
  token?: string;
  name?: string;
  cpu?: number;
  memoryMb?: number;
  gpu?: number;
  deviceType?: string;
  labels?: string[];
  address?: string;
  workDir?: string;
  killGrace: string;
  logLevel: string;
}

export function registerWorker(program: Command, globals: () => GlobalOptions): void {
  program
    .command('worker')
    .description('run a worker agent that takes jobs from a controller')
    .option('--controller <url>', 'controller URL (or RUNPLANE_URL)')
    .option('--token <token>', 'a token with the worker role (or RUNPLANE_TOKEN)')
    .option(
      '--name <name>',
      'stable worker name; a restarted worker re-registers under it (default: hostname)',
    )
    .option('--cpu <n>', 'cpu capacity (default: cores)', number('--cpu'))
    .option('--memory-mb <n>', 'memory capacity in MiB (default: RAM)', number('--memory-mb'))
    .option('--gpu <n>', 'gpu capacity (default 0)', number('--gpu'))
    .option('--device-type <type>', 'accelerator kind offered, e.g. a100')
    .option('--labels <k=v,...>', 'worker labels', (v: string, prev: string[] = []) => [...prev, v])
    .option('--address <addr>', 'address other machines reach this worker at')
    .option('--work-dir <dir>', 'where attempts run and logs are kept (default ~/.runplane-worker/<name>)')
    .option('--kill-grace <duration>', 'SIGTERM to SIGKILL grace period', '10s')
    .option('--log-level <level>', 'log level', 'info')
    .action(async (o: WorkerOptions) => {
      // The program declares --url and --token too, and commander hands an option the program
      // knows to the program wherever it appears: `worker --token T` lands in the globals.
      const url = o.controller ?? globals().url ?? process.env.RUNPLANE_URL;
      const token = o.token ?? globals().token ?? process.env.RUNPLANE_TOKEN;
      if (!url) throw new CliError('--controller URL is required (or RUNPLANE_URL)', EXIT.usage);
      if (!token)
        throw new CliError(
          '--token is required (or RUNPLANE_TOKEN); create one with `runplane token create --role worker`',
          EXIT.usage,
        );
      const name = o.name ?? hostname();
      const log = pino({ level: o.logLevel, base: { svc: 'runplane-worker', worker: name } });
      const agent = new WorkerAgent(
        new HttpLink(new RunplaneClient(url, token)),
        {
          name,
          capacity: {
            cpu: o.cpu ?? cpus().length,
            memory_mb: Math.floor(o.memoryMb ?? totalmem() / 1024 / 1024),
            gpu: Math.floor(o.gpu ?? 0),
          },
          deviceType: o.deviceType ?? null,
          labels: keyValues(o.labels, '--labels'),
          address: o.address ?? null,
          workDir: o.workDir ?? join(homedir(), '.runplane-worker', name),
          killGraceMs: parseDuration(o.killGrace),
        },
        log,
      );
      await agent.start();
      process.stderr.write(`runplane worker ${name} registered with ${url} as ${agent.id}\n`);
      let stopping = false;
      const shutdown = () => {
        if (stopping) return;
        stopping = true;
        agent.stop().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      // Started by `runplane up` as one of its local workers: say so, and stop with the parent.
      if (process.send) {
        process.send({ type: 'registered', worker_id: agent.id });
        process.on('disconnect', () => shutdown());
      }
      process.on('SIGINT', shutdown);
      process.on('SIGTERM', shutdown);
      await new Promise<never>(() => {});
    });
}
