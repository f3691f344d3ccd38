/**
 * Benchmark entry point: `npm run bench -- <name> [options]`. Each benchmark prints a table with
 * its figures, the anchors measured in the same run, and the ratios. Results: bench/RESULTS.md.
 */
import { usage as ashaUsage, runAsha } from './asha.js';
import { usage as commandsUsage, runCommands } from './commands.js';
import { usage as controllerUsage, runController } from './controller.js';
import { usage as eventsUsage, runEvents } from './events.js';
import { usage as heartbeatsUsage, runHeartbeats } from './heartbeats.js';
import { UsageError } from './lib/options.js';
import { usage as optimizersUsage, runOptimizers } from './optimizers.js';
import { usage as podsUsage, runPods } from './pods.js';

interface Benchmark {
  describe: string;
  usage: string;
  run(argv: string[]): Promise<void>;
}

const BENCHMARKS: Record<string, Benchmark> = {
  pods: {
    describe:
      'games until a 32-player league ranks at Kendall tau >= 0.9: convergence-driven vs fixed budgets',
    usage: podsUsage,
    run: runPods,
  },
  controller: {
    describe: 'N no-op jobs end to end vs the spawn ceiling and Slurm; one 100k x 1k scheduling pass',
    usage: controllerUsage,
    run: runController,
  },
  heartbeats: {
    describe: '1,000 learners heartbeating: heartbeats/s and p50/p99 beside bare Fastify',
    usage: heartbeatsUsage,
    run: runHeartbeats,
  },
  commands: {
    describe: 'POST a command -> the learner long-poll returns it: p50/p99',
    usage: commandsUsage,
    run: runCommands,
  },
  asha: {
    describe: 'synthetic learning curves: compute ASHA needs to match random search (target <= 1/3)',
    usage: ashaUsage,
    run: runAsha,
  },
  events: {
    describe: 'outbox -> in-process and -> JetStream -> consumer: events/s, p99, vs raw nats.js publish',
    usage: eventsUsage,
    run: runEvents,
  },
  optimizers: {
    describe: 'optimizers vs Optuna TPE: median regret on 5 test functions, time per suggestion',
    usage: optimizersUsage,
    run: runOptimizers,
  },
};

function listBenchmarks(): string {
  return Object.entries(BENCHMARKS)
    .map(([name, b]) => `  ${name.padEnd(12)} ${b.describe}`)
    .join('\n');
}

const [name, ...rest] = process.argv.slice(2);
const bench = name === undefined ? undefined : BENCHMARKS[name];
if (!bench) {
  if (name !== undefined && name !== '--help' && name !== '-h') console.error(`unknown benchmark "${name}"`);
  console.error(`usage: npm run bench -- <name> [options]\n\navailable benchmarks:\n${listBenchmarks()}`);
  process.exit(name === '--help' || name === '-h' ? 0 : 2);
}
if (rest.includes('--help') || rest.includes('-h')) {
  console.log(bench.usage);
  process.exit(0);
}
try {
  await bench.run(rest);
  process.exit(0);
} catch (err) {
  if (err instanceof UsageError) {
    console.error(`${(err as Error).message}\n\n${bench.usage}`);
    process.exit(2);
  }
  console.error(err);
  process.exit(1);
}
