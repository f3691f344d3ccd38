/** Anchors measured in the same run as a benchmark: the spawn ceiling and Slurm. */
import { execFile, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { nowMs, sleep } from './timing.js';

const run = promisify(execFile);

export interface SpawnCeiling {
  n: number;
  concurrency: number;
  mode: 'plain' | 'supervised';
  ms: number;
  /** spawns per second */
  rate: number;
}

/**
 * Anchor (a): one fresh Node process spawning /bin/true n times at the given concurrency,
 * alone on its event loop. `supervised`, for reference, spawns each in its own process group
 * with stdout and stderr piped back (as the worker did before its spawn helper).
 */
export async function spawnCeiling(
  n: number,
  concurrency: number,
  mode: 'plain' | 'supervised' = 'plain',
): Promise<SpawnCeiling> {
  const script = fileURLToPath(new URL('./spawn-ceiling.ts', import.meta.url));
  const { stdout } = await run(
    process.execPath,
    ['--import', 'tsx', script, String(n), String(concurrency), mode],
    {
      maxBuffer: 1 << 20,
    },
  );
  const line = stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(line) as SpawnCeiling;
}

export function hasCommand(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

export type SlurmResult =
  | { available: false; why: string }
  | { available: true; n: number; ms: number; rate: number; completed: number; mode: string };

/** Remaining (not finished) tasks of the named jobs, array tasks expanded. */
async function slurmRemaining(name: string): Promise<number> {
  const { stdout } = await run('squeue', ['-h', '-r', '-n', name, '-t', 'PD,R,CG,CF,S', '-o', '%i'], {
    maxBuffer: 16 << 20,
  });
  return stdout.split('\n').filter((l) => l.trim() !== '').length;
}

/**
 * Anchor (b): n no-op jobs through the local Slurm cluster (job arrays of /bin/true, at most
 * 1000 tasks each, as MaxArraySize allows by default), from first sbatch to the queue drained.
 */
export async function slurmDrain(n: number, timeoutMs = 30 * 60_000): Promise<SlurmResult> {
  if (!hasCommand('sbatch')) return { available: false, why: 'sbatch not found' };
  try {
    const { stdout } = await run('sinfo', ['-h', '-o', '%t'], { timeout: 15_000 });
    if (!/idle|mix|alloc/.test(stdout)) {
      return {
        available: false,
        why: `no usable node (sinfo: ${stdout.trim() || 'empty'}); run bench/slurm/setup.sh`,
      };
    }
  } catch (err) {
    return {
      available: false,
      why: `slurmctld not responding (${(err as Error).message.split('\n')[0]}); run bench/slurm/setup.sh`,
    };
  }
  const name = `rpbench-${process.pid}-${Date.now().toString(36)}`;
  const t0 = nowMs();
  for (let first = 0; first < n; first += 1000) {
    const count = Math.min(1000, n - first);
    await run('sbatch', [
      '--parsable',
      `--array=0-${count - 1}`,
      `--job-name=${name}`,
      '--output=/dev/null',
      '--error=/dev/null',
      '--chdir=/tmp',
      '--ntasks=1',
      '--cpus-per-task=1',
      '--wrap',
      '/bin/true',
    ]);
  }
  for (;;) {
    if ((await slurmRemaining(name)) === 0) break;
    if (nowMs() - t0 > timeoutMs)
      return { available: false, why: `did not drain ${n} jobs within ${timeoutMs / 1000}s` };
    await sleep(200);
  }
  const ms = nowMs() - t0;
  const { stdout } = await run('squeue', ['-h', '-r', '-n', name, '-t', 'all', '-o', '%T'], {
    maxBuffer: 16 << 20,
  });
  const completed = stdout.split('\n').filter((l) => l.trim() === 'COMPLETED').length;
  return {
    available: true,
    n,
    ms,
    rate: (n * 1000) / ms,
    completed,
    mode: 'sbatch --array, --wrap /bin/true',
  };
}
