import type { Command } from 'commander';
import { clientFrom, type GlobalOptions } from './context.js';
import { printJson, printTable, since } from './output.js';

const bar = (used: number, total: number, width = 10): string => {
  if (total <= 0) return '-';
  const filled = Math.round((Math.min(used, total) / total) * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${used}/${total}`;
};

/** `runplane workers` and `runplane endpoints`: read-only views of the cluster. */
export function registerCluster(program: Command, globals: () => GlobalOptions): void {
  program
    .command('workers')
    .description('list workers with health, capacity and running attempts')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const { workers } = await clientFrom(globals()).listWorkers();
      if (o.json) return printJson({ workers });
      printTable(
        ['WORKER', 'NAME', 'HEALTH', 'CPU', 'MEMORY_MB', 'GPU', 'RUNNING', 'HEARTBEAT'],
        workers.map((w) => [
          w.worker_id,
          w.name,
          w.health,
          bar(w.used.cpu, w.capacity.cpu),
          `${w.used.memory_mb}/${w.capacity.memory_mb}`,
          `${w.used.gpu}/${w.capacity.gpu}`,
          w.running_attempts.length,
          since(w.last_heartbeat_at),
        ]),
      );
    });

  program
    .command('endpoints')
    .description('look up endpoints of running jobs by exact name or by prefix')
    .option('--name <name>', 'exact name (LookupEndpoint)')
    .option('--prefix <prefix>', 'name prefix (ListEndpoints)')
    .option('--json', 'print JSON')
    .action(async (o: { name?: string; prefix?: string; json?: boolean }) => {
      const { endpoints } = await clientFrom(globals()).findEndpoints({
        ...(o.name ? { name: o.name } : {}),
        ...(o.prefix !== undefined ? { prefix: o.prefix } : {}),
      });
      if (o.json) return printJson({ endpoints });
      printTable(
        ['ENDPOINT', 'NAME', 'ADDRESS', 'JOB', 'REGISTERED'],
        endpoints.map((e) => [e.endpoint_id, e.name, e.address, e.job_id, since(e.created_at)]),
      );
    });
}
