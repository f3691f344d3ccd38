import type { Command } from 'commander';
import type { DeadLetterWire } from '../events/schemas.js';
import { CliError, clientFrom, EXIT, type GlobalOptions, number } from './context.js';
import { printJson, printMore, printTable, printView, since } from './output.js';

const STATUSES = ['pending', 'recovered', 'abandoned'] as const;

function describe(d: DeadLetterWire): string {
  return [
    `dead letter  ${d.id}`,
    `status       ${d.status}${d.next_retry_at ? `  (next retry ${d.next_retry_at})` : ''}`,
    `subscriber   ${d.subscriber}`,
    `event        ${d.event_id}  ${d.event_type}${d.event_seq === null ? '' : `  seq ${d.event_seq}`}`,
    `attempts     ${d.attempts} (retries ${d.retry_count})`,
    `created      ${d.created_at}`,
    `last failed  ${d.last_failed_at}`,
    `error        ${d.error}`,
    ...(d.stack ? ['', d.stack] : []),
    '',
    JSON.stringify(d.event, null, 2),
  ].join('\n');
}

/** `runplane dlq list|show|retry|stats`: the dead-letter queue. */
export function registerDlq(program: Command, globals: () => GlobalOptions): void {
  const dlq = program.command('dlq').description('dead letters: events a subscriber could not handle');
  dlq
    .command('list')
    .description('list dead letters, newest first')
    .option('--status <status>', 'pending, recovered or abandoned')
    .option('--subscriber <name>', 'only this subscriber')
    .option('--limit <n>', 'at most this many (default 50)', number('--limit'))
    .option('--cursor <cursor>', 'continue after a previous page')
    .option('--json', 'print JSON')
    .action(
      async (o: {
        status?: string;
        subscriber?: string;
        limit?: number;
        cursor?: string;
        json?: boolean;
      }) => {
        if (o.status !== undefined && !(STATUSES as readonly string[]).includes(o.status))
          throw new CliError(`--status must be one of ${STATUSES.join(', ')}`, EXIT.usage);
        const page = await clientFrom(globals()).listDeadLetters({
          status: o.status as (typeof STATUSES)[number] | undefined,
          subscriber: o.subscriber,
          limit: o.limit ?? 50,
          cursor: o.cursor,
        });
        if (o.json) return printJson(page);
        printTable(
          ['ID', 'STATUS', 'SUBSCRIBER', 'EVENT TYPE', 'ATTEMPTS', 'FAILED', 'ERROR'],
          page.dead_letters.map((d) => [
            d.id,
            d.status,
            d.subscriber,
            d.event_type,
            d.attempts,
            since(d.last_failed_at),
            d.error.length > 60 ? `${d.error.slice(0, 57)}...` : d.error,
          ]),
        );
        printMore(page.next_cursor, process.stdout);
      },
    );
  dlq
    .command('show')
    .description('one dead letter with its event, error and stack')
    .argument('<id>')
    .option('--json', 'print JSON')
    .action(async (id: string, o: { json?: boolean }) => {
      const d = await clientFrom(globals()).getDeadLetter(id);
      printView(d, o.json, describe);
    });
  dlq
    .command('retry')
    .description('run a dead letter’s handler again now; exits 1 if it fails again')
    .argument('<id>')
    .option('--json', 'print JSON')
    .action(async (id: string, o: { json?: boolean }) => {
      const d = await clientFrom(globals()).retryDeadLetter(id);
      printView(d, o.json, (x) =>
        x.status === 'recovered' ? `${x.id} recovered` : `${x.id} failed again (${x.status}): ${x.error}`,
      );
      if (d.status !== 'recovered') process.exitCode = EXIT.failed;
    });
  dlq
    .command('stats')
    .description('dead letters by status, in total and per subscriber')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const s = await clientFrom(globals()).deadLetterStats();
      if (o.json) return printJson(s);
      const rows = Object.entries(s.by_subscriber).map(([name, c]) => [
        name,
        c.pending,
        c.recovered,
        c.abandoned,
      ]);
      rows.push(['total', s.pending, s.recovered, s.abandoned]);
      printTable(['SUBSCRIBER', 'PENDING', 'RECOVERED', 'ABANDONED'], rows);
    });
}
