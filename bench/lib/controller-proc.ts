/**
 * The controller under benchmark, in its own Node process (so the load generator does not share
 * its event loop), started the way `runplane up` does: startController(loadConfig(...)).
 *
 *   node --import tsx bench/lib/controller-proc.ts '<json flags>'
 *
 * The flags are Config keys (camelCase). Prints "READY <url>" once listening; stops cleanly on
 * SIGTERM/SIGINT or when stdin closes (the parent went away).
 */
import { loadConfig } from '../../src/config.js';
import { startController } from '../../src/runtime.js';

const flags = JSON.parse(process.argv[2] ?? '{}') as Record<string, string | number>;
// An empty environment: RUNPLANE_* variables of the shell must not change what is measured.
const config = loadConfig({ port: 0, logLevel: 'warn', ...flags }, {});
const ctl = await startController(config);
process.stdout.write(`READY ${ctl.url}\n`);

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
