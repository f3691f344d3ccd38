/**
 * The controller under benchmark, in its own Node process (so the load generator does not share
 * its event loop), started the way `runplane up` does: startController(loadConfig(...)).
 *
 *   node --import tsx bench/lib/controller-proc.ts '<json flags>'
 *
 * The flags are Config keys (camelCase). Prints "READY <url>" once listening; stops cleanly on
 * SIGTERM/SIGINT or when stdin closes (the parent went away). Over the IPC channel (when spawned
 * with one) it answers {cmd:'mark'} (start a measurement window) and {cmd:'stats'} with what
 * happened since: event-loop utilisation and, with RUNPLANE_BENCH_TRACE=1, counts and times of
 * store transactions and scheduling passes (the methods are wrapped in this process only).
 * With RUNPLANE_BENCH_BUILT=1 it runs the built modules under dist/ instead of src/, as
 * `npx runplane up` does (its embedded workers then run without tsx, like a user's).
 */
import type { EventLoopUtilization } from 'node:perf_hooks';
import { performance } from 'node:perf_hooks';

const root = process.env.RUNPLANE_BENCH_BUILT === '1' ? '../../dist' : '../../src';
const { loadConfig } = (await import(`${root}/config.js`)) as typeof import('../../src/config.js');
const { SchedulerLoop } = (await import(
  `${root}/jobs/scheduler-loop.js`
)) as typeof import('../../src/jobs/scheduler-loop.js');
const { startController } = (await import(`${root}/runtime.js`)) as typeof import('../../src/runtime.js');
const { Store } = (await import(`${root}/store/database.js`)) as typeof import('../../src/store/database.js');
type Store = import('../../src/store/database.js').Store;
type SchedulerLoop = import('../../src/jobs/scheduler-loop.js').SchedulerLoop;

export interface ControllerStats {
  elu: number;
  traced: boolean;
  transactions: number;
  transactionMs: number;
  /** Time store.write spent before its body began (pool, BEGIN, the outbox lock on Postgres). */
  lockWaitMs: number;
  passes: number;
  passMs: number;
  placed: number;
}

const trace = process.env.RUNPLANE_BENCH_TRACE === '1';
const counters = { transactions: 0, transactionMs: 0, lockWaitMs: 0, passes: 0, passMs: 0, placed: 0 };
if (trace) {
  const transaction = Store.prototype.transaction;
  Store.prototype.transaction = async function <T>(
    this: Store,
    fn: Parameters<typeof transaction<T>>[0],
    opts?: Parameters<typeof transaction<T>>[1],
  ): Promise<T> {
    const t0 = performance.now();
    try {
      return (await transaction.call(this, fn, opts)) as T;
    } finally {
      counters.transactions++;
      counters.transactionMs += performance.now() - t0;
    }
  } as typeof transaction;
  // Time from asking for a write transaction to its body starting: the pool and, on SQLite and
  // for Postgres writes that lock first, BEGIN and the lock (other Postgres writes take the
  // outbox lock with their first statement, so their wait for it is in the body).
  const write = Store.prototype.write;
  Store.prototype.write = async function <T>(
    this: Store,
    fn: Parameters<typeof write<T>>[0],
    opts?: Parameters<typeof write<T>>[1],
  ): Promise<T> {
    const t0 = performance.now();
    return (await write.call(
      this,
      (tx) => {
        counters.lockWaitMs += performance.now() - t0;
        return fn(tx);
      },
      opts,
    )) as T;
  } as typeof write;
  const pass = SchedulerLoop.prototype.pass;
  SchedulerLoop.prototype.pass = async function (this: SchedulerLoop, ...args: Parameters<typeof pass>) {
    const t0 = performance.now();
    const stats = await pass.apply(this, args);
    counters.passes++;
    counters.passMs += performance.now() - t0;
    counters.placed += stats?.placed ?? 0;
    return stats;
  };
}

const flags = JSON.parse(process.argv[2] ?? '{}') as Record<string, string | number>;
// An empty environment: RUNPLANE_* variables of the shell must not change what is measured.
const config = loadConfig({ port: 0, logLevel: 'warn', ...flags }, {});
const ctl = await startController(config);
process.stdout.write(`READY ${ctl.url}\n`);

let mark: EventLoopUtilization = performance.eventLoopUtilization();
let base = { ...counters };
process.on('message', (msg: { cmd?: string }) => {
  if (msg.cmd === 'mark') {
    mark = performance.eventLoopUtilization();
    base = { ...counters };
    process.send?.({ cmd: 'mark' });
  } else if (msg.cmd === 'stats') {
    const stats: ControllerStats = {
      elu: performance.eventLoopUtilization(mark).utilization,
      traced: trace,
      transactions: counters.transactions - base.transactions,
      transactionMs: counters.transactionMs - base.transactionMs,
      lockWaitMs: counters.lockWaitMs - base.lockWaitMs,
      passes: counters.passes - base.passes,
      passMs: counters.passMs - base.passMs,
      placed: counters.placed - base.placed,
    };
    process.send?.({ cmd: 'stats', stats });
  }
});

let stopping = false;
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  ctl.stop().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.stdin.resume();
