import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { CliError, clientFrom, EXIT, type GlobalOptions } from './context.js';
import { printJson, printTable, printView } from './output.js';

/** A JSON argument given inline, as @file, or as - (standard input). */
function readJson(text: string, what: string): unknown {
  const source =
    text === '-'
      ? readFileSync(0, 'utf8')
      : text.startsWith('@')
        ? readFileSync(text.slice(1), 'utf8')
        : text;
  try {
    return JSON.parse(source) as unknown;
  } catch (err) {
    throw new CliError(`${what} is not valid JSON: ${(err as Error).message}`, EXIT.usage);
  }
}

/** `runplane events publish|types`: external producers' side of the event router. */
export function registerEvents(program: Command, globals: () => GlobalOptions): void {
  const events = program
    .command('events')
    .description('publish pipeline stage events; list publishable types');
  events
    .command('publish')
    .description('publish an event (validated against the catalog), e.g. TRAINING_COMPLETED')
    .argument('<type>', 'catalog type (pipeline.training.completed) or seed name (TRAINING_COMPLETED)')
    .requiredOption('--payload <json>', 'the payload: JSON, @file or - for standard input')
    .option('--entity-id <id>', 'entity the event is about (default: the payload config_key)')
    .option('--id <id>', 'your id for the event: publishing it again is recognised as a duplicate')
    .option('--json', 'print JSON')
    .action(async (type: string, o: { payload: string; entityId?: string; id?: string; json?: boolean }) => {
      const r = await clientFrom(globals()).publishEvent({
        type,
        payload: readJson(o.payload, '--payload'),
        ...(o.entityId ? { entity_id: o.entityId } : {}),
        ...(o.id ? { id: o.id } : {}),
      });
      printView(r, o.json, (x) =>
        x.duplicate ? `${x.event_id} (duplicate by ${x.duplicate_of}; nothing new published)` : x.event_id,
      );
    });
  events
    .command('types')
    .description('event types external producers may publish')
    .option('--json', 'print JSON (with the payload schemas)')
    .action(async (o: { json?: boolean }) => {
      const { types } = await clientFrom(globals()).eventTypes();
      if (o.json) return printJson({ types });
      const required = (schema: unknown) => ((schema as { required?: string[] }).required ?? []).join(', ');
      printTable(
        ['TYPE', 'SEED NAME', 'REQUIRED FIELDS'],
        types.map((t) => [t.type, t.seed_name, required(t.schema)]),
      );
    });
}
