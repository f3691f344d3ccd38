/**
 * Anchor (a) of the controller benchmark: the machine's process-spawn ceiling. Run as its own
 * Node process (see anchors.ts), so nothing else shares its event loop:
 *
 *   node --import tsx bench/lib/spawn-ceiling.ts <n> <concurrency> [plain|supervised]
 *
 * Spawns /bin/true n times (no shell), keeping `concurrency` in flight, and prints one JSON line
 * {n, concurrency, mode, ms, rate}. `plain` ignores stdio and waits for 'exit' (the ceiling);
 * `supervised` spawns as the worker did before its spawn helper (own process group,
 * stdout/stderr piped, a copied environment) and waits for 'close' (exit + pipes drained), for
 * reference.
 */
import { spawn } from 'node:child_process';

type Mode = 'plain' | 'supervised';

function once(mode: Mode): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (mode === 'plain') {
      const child = spawn('/bin/true', [], { stdio: 'ignore' });
      child.once('error', reject);
      child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`/bin/true exited ${code}`))));
      return;
    }
    const child = spawn('/bin/true', [], {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, RUNPLANE_ATTEMPT_ID: 'bench' },
    });
    child.stdout?.resume();
    child.stderr?.resume();
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`/bin/true exited ${code}`))));
  });
}

async function run(n: number, concurrency: number, mode: Mode): Promise<number> {
  const t0 = performance.now();
  let started = 0;
  const lane = async (): Promise<void> => {
    while (started < n) {
      started++;
      await once(mode);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, () => lane()));
  return performance.now() - t0;
}

const n = Number(process.argv[2] ?? 2000);
const concurrency = Number(process.argv[3] ?? 16);
const mode: Mode = process.argv[4] === 'supervised' ? 'supervised' : 'plain';
if (!Number.isInteger(n) || n < 1 || !Number.isInteger(concurrency) || concurrency < 1) {
  console.error('usage: spawn-ceiling.ts <n> <concurrency> [plain|supervised]');
  process.exit(2);
}
await run(Math.min(200, n), concurrency, mode); // warm-up, not timed
const ms = await run(n, concurrency, mode);
console.log(JSON.stringify({ n, concurrency, mode, ms, rate: (n * 1000) / ms }));
