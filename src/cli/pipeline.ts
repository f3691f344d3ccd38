import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import type { PipelineView } from '../coordination/pipeline-views.js';
import { CliError, clientFrom, EXIT, type GlobalOptions } from './context.js';
import { printJson, printTable, printView, since, table } from './output.js';

function describe(p: PipelineView): string {
  return [
    `pipeline   ${p.pipeline_id}  (${p.config_key})`,
    `status     ${p.status}  stage ${p.stage}  attempt ${p.attempt}`,
    `breaker    ${p.breaker.state}  ${p.breaker.consecutive_failures}/${p.breaker.failure_threshold} failures  cool-down ${p.breaker.cooldown_s}s`,
    `work dir   ${p.work_dir}`,
    ...(p.last_error ? [`last error ${p.last_error}`] : []),
    '',
    table(
      ['STAGE', 'ATTEMPT', 'STATUS', 'JOB', 'ERROR'],
      p.attempts.map((a) => [
        a.stage,
        a.attempt,
        a.status,
        a.job_id ?? '-',
        a.error ?? a.blocked_reason ?? '',
      ]),
    ),
  ].join('\n');
}

/** `runplane pipeline start|status|stop`: per-config pipelines of stages. */
export function registerPipeline(program: Command, globals: () => GlobalOptions): void {
  const pipeline = program
    .command('pipeline')
    .description('pipelines: selfplay → sync → export → training → evaluation → promotion');
  pipeline
    .command('start <file>')
    .description("start a config's pipeline from a pipeline file (YAML or JSON)")
    .option('--json', 'print JSON')
    .action(async (file: string, o: { json?: boolean }) => {
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (err) {
        throw new CliError(`cannot read ${file}: ${(err as Error).message}`, EXIT.usage);
      }
      const p = await clientFrom(globals()).startPipeline(text);
      printView(p, o.json, describe);
    });
  pipeline
    .command('status [config]')
    .description('every config (or one) with its stage and circuit breaker')
    .option('--json', 'print JSON')
    .action(async (config: string | undefined, o: { json?: boolean }) => {
      const client = clientFrom(globals());
      if (config) {
        printView(await client.getPipeline(config), o.json, describe);
        return;
      }
      const { pipelines } = await client.listPipelines();
      if (o.json) return printJson({ pipelines });
      printTable(
        ['CONFIG', 'PIPELINE', 'STATUS', 'STAGE', 'ATTEMPT', 'BREAKER', 'UPDATED'],
        pipelines.map((p) => [
          p.config_key,
          p.pipeline_id,
          p.status,
          p.stage,
          p.attempt,
          p.breaker.state,
          since(p.updated_at),
        ]),
      );
    });
  pipeline
    .command('stop <config>')
    .description("stop a config's active pipeline (its stage job is terminated)")
    .option('--reason <text>', 'why')
    .option('--json', 'print JSON')
    .action(async (config: string, o: { reason?: string; json?: boolean }) => {
      const p = await clientFrom(globals()).stopPipeline(config, o.reason);
      printView(p, o.json, describe);
    });
}
