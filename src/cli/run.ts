import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { ApiError, type RunplaneClient } from '../client/client.js';
import type { CommandEnvelope, CommandView, RunListQuery, RunView } from '../runs/schemas.js';
import { sleep } from '../shared/sleep.js';
import { CliError, clientFrom, collect, EXIT, type GlobalOptions, keyValues, number } from './context.js';
import {
  type ListingOptions,
  listingOptions,
  printJson,
  printListing,
  printView,
  since,
  table,
} from './output.js';

const ENDED = new Set(['completed', 'failed', 'errored', 'terminated']);

const fmt = (v: number | null | undefined, digits = 4): string =>
  v === null || v === undefined ? '-' : Number.isInteger(v) ? String(v) : v.toFixed(digits);

function describe(run: RunView): string {
  const lines = [
    `run          ${run.run_id}`,
    `name         ${run.name ?? '-'}`,
    `status       ${run.status}  (health ${run.health})`,
    `step         ${fmt(run.step)}`,
    `loss         ${fmt(run.loss)}`,
    `samples/s    ${fmt(run.samples_per_sec, 1)}`,
    `checkpoint   ${fmt(run.checkpoint_version)}`,
    `heartbeat    ${run.last_heartbeat_at ? `${run.last_heartbeat_at} (${since(run.last_heartbeat_at)})` : '-'}, every ${run.heartbeat_interval_s}s`,
    `created      ${run.created_at}`,
  ];
  if (run.ended_at) lines.push(`ended        ${run.ended_at}`);
  if (run.job_id) lines.push(`job          ${run.job_id}`);
  if (run.sweep_id) lines.push(`sweep        ${run.sweep_id}`);
  const labels = Object.entries(run.labels);
  if (labels.length > 0) lines.push(`labels       ${labels.map(([k, v]) => `${k}=${v}`).join(' ')}`);
  if (Object.keys(run.config).length > 0) lines.push(`config       ${JSON.stringify(run.config)}`);
  if (run.last_error) lines.push(`last error   ${run.last_error}`);
  if (run.notes) lines.push(`notes        ${run.notes}`);
  if (run.queued_commands && run.queued_commands.length > 0)
    lines.push(`queued       ${run.queued_commands.join(' ')}`);
  const summary = Object.entries(run.summary);
  if (summary.length > 0) {
    lines.push(
      '',
      table(
        ['METRIC', 'LAST'],
        summary.map(([k, v]) => [k, fmt(v)]),
      ),
    );
  }
  return lines.join('\n');
}

function commandTable(commands: CommandView[]): string {
  return table(
    ['COMMAND', 'TYPE', 'ACTOR', 'ISSUED', 'DELIVERED', 'ACKED', 'DELIVERIES', 'PAYLOAD'],
    commands.map((c) => [
      c.id,
      c.type,
      `${c.actor.type}:${c.actor.id}`,
      c.issued_at,
      c.delivered_at,
      c.acknowledged_at,
      c.delivery_count,
      Object.keys(c.payload).length > 0 ? JSON.stringify(c.payload) : '',
    ]),
  );
}

/** Who the command comes from: --actor, else the local user. */
function actorId(explicit: string | undefined): string {
  if (explicit) return explicit;
  const env = process.env.USER ?? process.env.LOGNAME;
  if (env) return env;
  try {
    return userInfo().username;
  } catch {
    return 'operator';
  }
}

/** `run list`: its filters, then paging and output. */
type ListRunsOptions = {
  status?: string;
  health?: string;
  label?: string[];
  sweep?: string;
} & ListingOptions;

interface CommandOptions {
  actor?: string;
  id?: string;
  json?: boolean;
}

/** Builds the seed's envelope (uuid v4, issued now, operator actor) and sends it. */
async function sendCommand(
  client: RunplaneClient,
  runId: string,
  type: CommandEnvelope['type'],
  payload: Record<string, unknown>,
  o: CommandOptions,
): Promise<void> {
  const envelope: CommandEnvelope = {
    id: o.id ?? randomUUID(),
    type,
    issued_at: new Date().toISOString(),
    actor: { type: 'operator', id: actorId(o.actor) },
    payload,
  };
  const cmd = await client.sendCommand(runId, envelope);
  printView(cmd, o.json, (c) => `${c.id} ${c.type} ${runId}`);
}

const commandOptions = (c: Command): Command =>
  c
    .option('--actor <id>', 'who issues it (default $USER)')
    .option('--id <uuid>', 'the command id (a uuid v4; default a new one): resending the same id is a no-op')
    .option('--json', 'print JSON');

interface StatusDoc {
  run_id: string;
  status: string;
  health: string;
  step: number | null;
  samples_per_sec: number | null;
  loss: number | null;
  last_error: string | null;
  at?: string;
}

function statusLine(d: StatusDoc): string {
  return [
    d.at ?? new Date().toISOString(),
    d.run_id,
    d.status.padEnd(11),
    d.health.padEnd(15),
    `step=${fmt(d.step)}`,
    `loss=${fmt(d.loss)}`,
    `samples/s=${fmt(d.samples_per_sec, 1)}`,
    ...(d.last_error ? [`error=${JSON.stringify(d.last_error)}`] : []),
  ].join('  ');
}

/**
 * Follows GET /stream/runs. The stream is resumed with Last-Event-ID after a dropped
 * connection; a single run is shown from its current state first and the watch ends when
 * that run ends.
 */
async function watch(
  client: RunplaneClient,
  runId: string | undefined,
  json: boolean,
  signal: AbortSignal,
): Promise<void> {
  const print = (d: StatusDoc) => process.stdout.write(`${json ? JSON.stringify(d) : statusLine(d)}\n`);
  let lastEventId: string | null = null;
  let shownCurrent = false;
  for (let failures = 0; !signal.aborted; ) {
    let reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
    try {
      const res = await client.openRunStream({
        ...(runId ? { runId } : {}),
        ...(lastEventId ? { lastEventId } : {}),
        signal,
      });
      if (!res.body) throw new Error('the stream has no body');
      reader = res.body.getReader();
      failures = 0;
      // Read the run only once the stream is open: a change after this read is on the stream.
      if (runId && !shownCurrent) {
        const run = await client.getRun(runId);
        print({
          run_id: run.run_id,
          status: run.status,
          health: run.health,
          step: run.step,
          samples_per_sec: run.samples_per_sec,
          loss: run.loss,
          last_error: run.last_error,
          at: run.updated_at ?? new Date().toISOString(),
        });
        shownCurrent = true;
        if (ENDED.has(run.status)) return;
      }
      const decoder = new TextDecoder();
      let buffer = '';
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data: string[] = [];
          let event = 'message';
          for (const line of block.split('\n')) {
            if (line.startsWith('id:')) lastEventId = line.slice(3).trim();
            else if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
          }
          if (event !== 'run-status' || data.length === 0) continue;
          const doc = JSON.parse(data.join('\n')) as StatusDoc;
          print(doc);
          if (runId && ENDED.has(doc.status)) return;
        }
      }
    } catch (err) {
      if (signal.aborted) return;
      // Refusals (auth, unknown run) will not fix themselves; a lost connection may.
      if (err instanceof ApiError && err.status >= 400 && err.status < 500) throw err;
      if (++failures === 1 || failures % 10 === 0)
        process.stderr.write(`stream interrupted (${(err as Error).message}); reconnecting\n`);
    } finally {
      // Closes the connection, so nothing keeps the process alive after the watch.
      await reader?.cancel().catch(() => undefined);
    }
    if (!signal.aborted) await sleep(Math.min(250 * 2 ** Math.min(failures, 5), 5000));
  }
}

export function registerRun(program: Command, globals: () => GlobalOptions): void {
  const run = program.command('run').description('inspect and control training runs');

  listingOptions(
    run
      .command('list')
      .description('list runs (newest first)')
      .option('--status <status>', 'only runs in this status')
      .option('--health <health>', 'healthy, heartbeat_stale or unresponsive')
      .option('-l, --label <k=v>', 'only runs with this label (repeatable)', collect)
      .option('--sweep <sweep_id>', 'only trials of this sweep'),
  ).action(async (o: ListRunsOptions) => {
    const client = clientFrom(globals());
    if (o.label) keyValues(o.label, '--label'); // a usage error before any request
    await printListing(
      'runs',
      o,
      (cursor) =>
        client.listRuns({
          ...(o.status ? { status: o.status as RunListQuery['status'] } : {}),
          ...(o.health ? { health: o.health as RunListQuery['health'] } : {}),
          ...(o.label ? { label: o.label } : {}),
          ...(o.sweep ? { sweep: o.sweep } : {}),
          ...(o.limit ? { limit: o.limit } : {}),
          ...(cursor ? { cursor } : {}),
        }),
      ['RUN', 'NAME', 'STATUS', 'HEALTH', 'STEP', 'LOSS', 'CKPT', 'HEARTBEAT', 'CREATED'],
      (r) => [
        r.run_id,
        r.name,
        r.status,
        r.health,
        r.step,
        fmt(r.loss),
        r.checkpoint_version,
        since(r.last_heartbeat_at),
        since(r.created_at),
      ],
    );
  });

  run
    .command('show')
    .description('show a run: status, health, progress, last metric values')
    .argument('<run_id>')
    .option('--json', 'print JSON')
    .action(async (id: string, o: { json?: boolean }) => {
      printView(await clientFrom(globals()).getRun(id), o.json, describe);
    });

  run
    .command('create')
    .description("create a run; prints its id and its learner's token")
    .option('--name <name>', 'run name')
    .option('--config <file.json>', 'the run configuration (a JSON object)')
    .option('-l, --label <k=v>', 'label (repeatable)', collect)
    .option('--job-id <job_id>', 'the job that runs it')
    .option('--sweep-id <sweep_id>', 'the sweep it is a trial of')
    .option('--env', 'print RUNPLANE_* assignments for the learner (for env $(...) or a .env file)')
    .option('-q, --quiet', 'print only the run id (a job launched with --run-id gets its own token)')
    .option('--json', 'print JSON')
    .action(
      async (o: {
        name?: string;
        config?: string;
        label?: string[];
        jobId?: string;
        sweepId?: string;
        env?: boolean;
        quiet?: boolean;
        json?: boolean;
      }) => {
        let config: Record<string, unknown> | undefined;
        if (o.config) {
          let parsed: unknown;
          try {
            parsed = JSON.parse(readFileSync(o.config, 'utf8'));
          } catch (err) {
            throw new CliError(`--config ${o.config}: ${(err as Error).message}`, EXIT.usage);
          }
          if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
            throw new CliError(`--config ${o.config} must hold a JSON object`, EXIT.usage);
          config = parsed as Record<string, unknown>;
        }
        const client = clientFrom(globals());
        const created = await client.createRun({
          ...(o.name ? { name: o.name } : {}),
          ...(config ? { config } : {}),
          ...(o.label ? { labels: keyValues(o.label, '--label') } : {}),
          ...(o.jobId ? { job_id: o.jobId } : {}),
          ...(o.sweepId ? { sweep_id: o.sweepId } : {}),
        });
        if (o.json) return printJson(created);
        if (o.quiet) {
          process.stdout.write(`${created.run_id}\n`);
          return;
        }
        if (o.env) {
          process.stdout.write(
            `RUNPLANE_CONTROLLER_URL=${client.baseUrl}\nRUNPLANE_RUN_ID=${created.run_id}\nRUNPLANE_RUN_TOKEN=${created.token}\n`,
          );
          return;
        }
        process.stdout.write(`run_id  ${created.run_id}\ntoken   ${created.token}\n`);
      },
    );

  commandOptions(
    run
      .command('tune')
      .description('change hyperparameters of a running learner')
      .argument('<run_id>')
      .option('--lr <x>', 'learning rate (0 < x <= 1)', number('--lr'))
      .option('--entropy-coef <x>', 'entropy coefficient (0 <= x <= 0.1)', number('--entropy-coef'))
      .option('--clip-epsilon <x>', 'PPO clip epsilon (0.05 <= x <= 0.3)', number('--clip-epsilon'))
      .option('--notes <text>', 'why'),
  ).action(
    async (
      id: string,
      o: CommandOptions & { lr?: number; entropyCoef?: number; clipEpsilon?: number; notes?: string },
    ) => {
      if (o.lr === undefined && o.entropyCoef === undefined && o.clipEpsilon === undefined)
        throw new CliError('give at least one of --lr, --entropy-coef, --clip-epsilon', EXIT.usage);
      const payload = {
        ...(o.lr !== undefined ? { learning_rate: o.lr } : {}),
        ...(o.entropyCoef !== undefined ? { entropy_coef: o.entropyCoef } : {}),
        ...(o.clipEpsilon !== undefined ? { clip_epsilon: o.clipEpsilon } : {}),
        ...(o.notes !== undefined ? { notes: o.notes } : {}),
      };
      await sendCommand(clientFrom(globals()), id, 'tune', payload, o);
    },
  );

  commandOptions(run.command('pause').description('pause a running learner').argument('<run_id>')).action(
    async (id: string, o: CommandOptions) => sendCommand(clientFrom(globals()), id, 'pause', {}, o),
  );

  commandOptions(run.command('resume').description('resume a paused learner').argument('<run_id>')).action(
    async (id: string, o: CommandOptions) => sendCommand(clientFrom(globals()), id, 'resume', {}, o),
  );

  commandOptions(
    run
      .command('terminate')
      .description('ask a learner to stop')
      .argument('<run_id>')
      .requiredOption('--reason <text>', 'why (at most 256 characters)')
      .option('--final-checkpoint', 'ask for a last checkpoint before it exits'),
  ).action(async (id: string, o: CommandOptions & { reason: string; finalCheckpoint?: boolean }) =>
    sendCommand(
      clientFrom(globals()),
      id,
      'terminate',
      { reason: o.reason, ...(o.finalCheckpoint ? { final_checkpoint: true } : {}) },
      o,
    ),
  );

  run
    .command('commands')
    .description('the command trail of a run: delivered and acknowledged times')
    .argument('<run_id>')
    .option('--json', 'print JSON')
    .action(async (id: string, o: { json?: boolean }) => {
      printView(await clientFrom(globals()).listCommands(id), o.json, (res) => commandTable(res.commands));
    });

  run
    .command('extend')
    .description('allow a quiet run more time before it is marked stale or unresponsive')
    .argument('<run_id>')
    .requiredOption('--seconds <n>', 'extra seconds', number('--seconds'))
    .requiredOption('--reason <text>', 'why (audited)')
    .option('--json', 'print JSON')
    .action(async (id: string, o: { seconds: number; reason: string; json?: boolean }) => {
      const view = await clientFrom(globals()).extendLiveness(id, { extend_s: o.seconds, reason: o.reason });
      printView(view, o.json, (v) => `${v.run_id} ${v.status} ${v.health}`);
    });

  run
    .command('watch')
    .description('follow run status changes live, one line each (Ctrl-C stops; one run: until it ends)')
    .argument('[run_id]')
    .option('--json', 'print each status document as a JSON line')
    .action(async (id: string | undefined, o: { json?: boolean }) => {
      const abort = new AbortController();
      const stop = () => abort.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        await watch(clientFrom(globals()), id, o.json ?? false, abort.signal);
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
    });
}
