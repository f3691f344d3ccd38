import { readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { LeagueFileError, parseLeague, runLeague } from '../pods/league.js';
import type { PodConfigInput, PodView } from '../pods/schemas.js';
import { CliError, clientFrom, EXIT, type GlobalOptions, number } from './context.js';
import { printJson, printTable, printView, readPages, table } from './output.js';

const fmt = (x: number | null | undefined, digits = 3) =>
  x === null || x === undefined ? '-' : x.toFixed(digits);

function describePod(p: PodView): string {
  const s = p.statistics;
  const lines = [
    `pod          ${p.pod_id}`,
    `status       ${p.status}${p.stop_reason ? `  (${p.stop_reason})` : ''}`,
    `participants ${p.participants.join(', ')}`,
    `seed         ${p.seed}`,
    `config       ${JSON.stringify(p.config)}`,
    `epochs       ${s.epochs_dispatched} dispatched, ${s.epochs_since_reset} since reset, last size ${s.last_epoch_size ?? '-'}, ${s.failed_epochs} gave up`,
    `games        ${s.games_played} played (${s.games_since_reset} since reset), ${s.duplicate_games} duplicates ignored`,
    `resets       ${s.reset_count}${p.last_reset_at ? ` (last ${p.last_reset_at})` : ''}`,
    `confidence   ${fmt(p.convergence.confidence, 6)} (target ${p.convergence.confidence_target}, precision ${p.convergence.precision}, ${p.convergence.method ?? 'no data'})`,
    `ranking      ${p.convergence.ranking.join(' > ') || '-'}`,
    `why          ${p.convergence.reasons.join('\n             ')}`,
  ];
  if (p.current_epoch) {
    const e = p.current_epoch;
    lines.push(
      `in flight    epoch ${e.epoch} (${e.size} games, attempt ${e.attempt}, ${e.status}${e.job_id ? `, job ${e.job_id}` : ''}, ${e.games_received} received)`,
    );
  }
  if (p.last_error) lines.push(`last error   ${p.last_error}`);
  const post = new Map(p.posterior.map((x) => [x.participant, x]));
  lines.push(
    '',
    table(
      ['PARTICIPANT', 'GAMES', 'PLACEMENTS 1/2/3/4', 'MEAN', 'WIN RATE', 'E[PLACE]', 'INTERVAL'],
      p.aggregation.map((a) => {
        const q = post.get(a.participant);
        return [
          a.participant,
          a.games,
          a.placement_counts.join('/'),
          fmt(a.mean_placement),
          fmt(a.win_rate),
          fmt(q?.expected_placement),
          q ? `[${fmt(q.interval[0])}, ${fmt(q.interval[1])}]` : '-',
        ];
      }),
    ),
  );
  return lines.join('\n');
}

function readConfig(file: string): PodConfigInput {
  return (parseYaml(readFileSync(file, 'utf8')) ?? {}) as PodConfigInput;
}

export function registerPods(program: Command, globals: () => GlobalOptions): void {
  const pods = program
    .command('pods')
    .description('4-player evaluation pods: create, list, inspect, reset, export');

  pods
    .command('create')
    .description('create a pod (or find the one with the same participants, seed and config)')
    .requiredOption('--participants <ids>', 'four participant ids, comma-separated')
    .requiredOption('--seed <n>', 'seed', number('--seed'))
    .option('--config <file>', 'pod config, YAML or JSON')
    .option('--json', 'print JSON')
    .action(async (o: { participants: string; seed: number; config?: string; json?: boolean }) => {
      const pod = await clientFrom(globals()).createPod({
        participants: o.participants.split(',').map((s) => s.trim()),
        seed: o.seed,
        ...(o.config ? { config: readConfig(o.config) } : {}),
      });
      printView(pod, o.json, (p) => p.pod_id);
    });

  pods
    .command('list')
    .description('list pods')
    .option('--status <status>', 'ready, active, converged or archived')
    .option('--participant <id>', 'pods a participant plays in')
    .option('--limit <n>', 'at most this many (default 100)', number('--limit'))
    .option('--json', 'print JSON')
    .action(async (o: { status?: string; participant?: string; limit?: number; json?: boolean }) => {
      const page = await clientFrom(globals()).listPods({
        ...(o.status ? { status: o.status as PodView['status'] } : {}),
        ...(o.participant ? { participant: o.participant } : {}),
        ...(o.limit ? { limit: o.limit } : {}),
      });
      if (o.json) return printJson(page);
      printTable(
        ['POD', 'STATUS', 'PARTICIPANTS', 'EPOCHS', 'GAMES', 'CONFIDENCE', 'RANKING'],
        page.pods.map((p) => [
          p.pod_id,
          p.stop_reason === 'max_epochs' ? 'converged (max_epochs)' : p.status,
          p.participants.join(','),
          p.statistics.epochs_dispatched,
          p.statistics.games_played,
          fmt(p.convergence.confidence, 4),
          p.convergence.ranking.join('>'),
        ]),
      );
    });

  pods
    .command('show')
    .description('a pod: parameters, statistics, posterior and why it is (not) converged')
    .argument('<pod_id>')
    .option('--json', 'print JSON')
    .action(async (id: string, o: { json?: boolean }) => {
      printView(await clientFrom(globals()).getPod(id), o.json, describePod);
    });

  pods
    .command('dispatch')
    .description("launch the pod's next epoch")
    .argument('<pod_id>')
    .action(async (id: string) => {
      const d = await clientFrom(globals()).dispatchPod(id);
      process.stdout.write(`epoch ${d.epoch}: ${d.size} games, job ${d.job_id ?? '-'}\n`);
    });

  pods
    .command('reset')
    .description('return a pod to ready, decaying its old evidence')
    .argument('<pod_id>')
    .option('--reason <text>', 'why')
    .action(async (id: string, o: { reason?: string }) => {
      const pod = await clientFrom(globals()).resetPod(id, o.reason);
      process.stdout.write(`${pod.pod_id} ${pod.status} (reset ${pod.statistics.reset_count})\n`);
    });

  pods
    .command('archive')
    .description('archive a pod (final)')
    .argument('<pod_id>')
    .action(async (id: string) => {
      const pod = await clientFrom(globals()).archivePod(id);
      process.stdout.write(`${pod.pod_id} ${pod.status}\n`);
    });

  pods
    .command('export')
    .description('training trace export: NDJSON or CSV (every pod with --all)')
    .argument('[pod_ids...]')
    .option('--all', 'every pod')
    .option('--format <format>', 'ndjson or csv (default ndjson)', 'ndjson')
    .option('-o, --output <file>', 'write to a file instead of stdout')
    .action(async (ids: string[], o: { all?: boolean; format: string; output?: string }) => {
      if (o.format !== 'ndjson' && o.format !== 'csv')
        throw new CliError('--format is ndjson or csv', EXIT.usage);
      const client = clientFrom(globals());
      let targets = ids;
      if (o.all) {
        const { items } = await readPages('pods', undefined, true, (cursor) =>
          client.listPods({ limit: 1000, ...(cursor ? { cursor } : {}) }),
        );
        targets = items.map((p) => p.pod_id);
      }
      if (targets.length === 0) throw new CliError('name pods, or give --all', EXIT.usage);
      let out = '';
      for (const [i, id] of targets.entries()) {
        const text = await client.podTrace(id, o.format as 'ndjson' | 'csv');
        // One CSV header for the whole export.
        out += o.format === 'csv' && i > 0 ? text.slice(text.indexOf('\n') + 1) : text;
      }
      if (o.output) writeFileSync(o.output, out);
      else process.stdout.write(out);
    });

  pods
    .command('replays')
    .description('the replay index: games by pod and/or participant')
    .option('--pod <pod_id>', 'games of one pod')
    .option('--participant <id>', 'games a participant played')
    .option('--limit <n>', 'at most this many (default 100)', number('--limit'))
    .option('--json', 'print JSON')
    .action(async (o: { pod?: string; participant?: string; limit?: number; json?: boolean }) => {
      const page = await clientFrom(globals()).replays({
        ...(o.pod ? { pod_id: o.pod } : {}),
        ...(o.participant ? { participant: o.participant } : {}),
        ...(o.limit ? { limit: o.limit } : {}),
      });
      if (o.json) return printJson(page);
      printTable(
        ['POD', 'GAME', 'EPOCH', 'PLACEMENTS', 'TURNS', 'REPLAY'],
        page.games.map((g) => [
          g.pod_id,
          g.game_id,
          g.epoch,
          Object.entries(g.placements)
            .sort((a, b) => a[1] - b[1])
            .map(([p, k]) => `${k}:${p}`)
            .join(' '),
          g.turns,
          g.replay,
        ]),
      );
    });

  pods
    .command('set-version')
    .description("set a participant's model version (a change resets the pods it plays in)")
    .argument('<participant>')
    .argument('<version>')
    .action(async (participant: string, version: string) => {
      const r = await clientFrom(globals()).setParticipantVersion(participant, version);
      process.stdout.write(
        `${participant}: ${r.previous_version ?? 'none'} -> ${r.model_version}; ${r.reset_pods.length} pods reset\n`,
      );
    });

  program
    .command('leaderboard')
    .description('league ratings across pods (Plackett-Luce, openskill)')
    .option('--limit <n>', 'top n', number('--limit'))
    .option('--json', 'print JSON')
    .action(async (o: { limit?: number; json?: boolean }) => {
      const board = await clientFrom(globals()).leaderboard(o.limit);
      printView(board, o.json, (b) => formatLeaderboard(b.participants));
    });

  const league = program.command('league').description('leagues of pods built by the matchmaker');
  league
    .command('start')
    .description('run a league file to its end (running it again resumes: converged pods are skipped)')
    .argument('<file>', 'league file (YAML or JSON)')
    .option('--rounds <n>', 'override the number of rounds', number('--rounds'))
    .option('--poll <ms>', 'how often pods are looked at (default 500)', number('--poll'))
    .option('--json', 'print the result as JSON at the end')
    .action(async (file: string, o: { rounds?: number; poll?: number; json?: boolean }) => {
      let spec: ReturnType<typeof parseLeague>;
      try {
        spec = parseLeague(readFileSync(file, 'utf8'), file);
      } catch (err) {
        if (err instanceof LeagueFileError) throw new CliError(err.message, EXIT.invalid);
        throw err;
      }
      if (o.rounds !== undefined) spec.rounds = o.rounds;
      const ac = new AbortController();
      process.once('SIGINT', () => ac.abort());
      const result = await runLeague(clientFrom(globals()), spec, {
        log: (line) => process.stderr.write(`${line}\n`),
        ...(o.poll ? { pollMs: o.poll } : {}),
        signal: ac.signal,
      });
      if (o.json) return printJson(result);
      const games = result.rounds.reduce((s, r) => Math.max(s, r.games), 0);
      process.stdout.write(
        `league ${spec.name}: ${result.rounds.length} rounds (${games} games in the last round's pods)\n\n${formatLeaderboard(result.leaderboard.participants)}\n`,
      );
    });
}

function formatLeaderboard(
  rows: Array<{
    rank: number;
    participant: string;
    mu: number;
    sigma: number;
    ordinal: number;
    games: number;
  }>,
): string {
  return table(
    ['RANK', 'PARTICIPANT', 'MU', 'SIGMA', 'ORDINAL', 'GAMES'],
    rows.map((r) => [r.rank, r.participant, fmt(r.mu, 2), fmt(r.sigma, 2), fmt(r.ordinal, 2), r.games]),
  );
}
