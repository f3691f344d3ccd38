import { Command, CommanderError } from 'commander';
import { VERSION } from '../version.js';
import { registerAudit } from './audit.js';
import { registerCluster } from './cluster.js';
import { EXIT, exitCodeFor, type GlobalOptions } from './context.js';
import { registerDlq } from './dlq.js';
import { registerEvents } from './events.js';
import { registerJob } from './job.js';
import { registerModel } from './model.js';
import { registerPipeline } from './pipeline.js';
import { registerPods } from './pod.js';
import { registerRun } from './run.js';
import { registerSweep } from './sweep.js';
import { registerToken } from './token.js';
import { registerUp } from './up.js';
import { registerWorker } from './worker.js';

/** The `runplane` command line. Exit codes: see EXIT in ./context.ts. */
const program = new Command();
program
  .name('runplane')
  .description('A control plane for ML and RL training: jobs, workers, runs, sweeps, pods, pipelines.')
  .version(VERSION)
  .option('--url <url>', 'controller URL (or RUNPLANE_URL; default http://127.0.0.1:7878)')
  .option('--token <token>', 'API token (or RUNPLANE_TOKEN; default: the admin token in the data dir)')
  .option('--data-dir <dir>', 'data dir holding admin.token (or RUNPLANE_DATA_DIR; default ./.runplane)')
  .exitOverride()
  .configureOutput({ outputError: (str, write) => write(str) });

const globals = (): GlobalOptions => program.opts<GlobalOptions>();
registerUp(program, globals);
registerWorker(program, globals);
registerJob(program, globals);
registerRun(program, globals);
registerCluster(program, globals);
registerToken(program, globals);
registerEvents(program, globals);
registerDlq(program, globals);
registerPipeline(program, globals);
registerModel(program, globals);
registerAudit(program, globals);
registerPods(program, globals);
registerSweep(program, globals);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    process.exit(err.exitCode === 0 ? EXIT.ok : EXIT.usage);
  }
  const { message, code } = exitCodeFor(err);
  process.stderr.write(`error: ${message}\n`);
  process.exit(code);
}
