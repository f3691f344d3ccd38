import type { Command } from 'commander';
import { clientFrom, type GlobalOptions, number } from './context.js';
import { printJson, printTable, since } from './output.js';

/** `runplane model list|register|promote|rollback`: the model lifecycle per config. */
export function registerModel(program: Command, globals: () => GlobalOptions): void {
  const model = program
    .command('model')
    .description('models per config: training → … → production, rollback');
  model
    .command('list')
    .description('models, newest first')
    .option('--config <key>', 'only this config')
    .option('--state <state>', 'only this state')
    .option('--limit <n>', 'at most this many (default 100)', number('--limit'))
    .option('--json', 'print JSON')
    .action(async (o: { config?: string; state?: string; limit?: number; json?: boolean }) => {
      const { models } = await clientFrom(globals()).listModels({
        config: o.config,
        state: o.state,
        limit: o.limit,
      });
      if (o.json) return printJson({ models });
      printTable(
        ['MODEL', 'CONFIG', 'STATE', 'PATH', 'PROMOTED', 'UPDATED'],
        models.map((m) => [
          m.model_id,
          m.config_key,
          m.state,
          m.path ?? '-',
          since(m.promoted_at),
          since(m.updated_at),
        ]),
      );
    });
  model
    .command('register <config> <path>')
    .description('register a model of a config')
    .option('--id <model_id>', 'its id (default: derived from config and path)')
    .option('--state <state>', 'training (default), evaluating, staging or archived')
    .action(async (config: string, path: string, o: { id?: string; state?: string }) => {
      printJson(
        await clientFrom(globals()).registerModel({
          config_key: config,
          path,
          model_id: o.id,
          state: o.state,
        }),
      );
    });
  model
    .command('promote <model_id>')
    .description('make a model the production model of its config')
    .option('--reason <text>', 'why')
    .action(async (id: string, o: { reason?: string }) => {
      printJson(await clientFrom(globals()).promoteModel(id, o.reason));
    });
  model
    .command('rollback <model_id>')
    .description('roll back a production model: the one before it becomes production again')
    .option('--reason <text>', 'why')
    .action(async (id: string, o: { reason?: string }) => {
      printJson(await clientFrom(globals()).rollbackModel(id, o.reason));
    });
}
