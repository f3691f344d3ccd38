/**
 * `npm run bench -- pods`: a league of 32 participants with hidden strengths (games sampled from
 * a Plackett-Luce model). How many games until the leaderboard (openskill Plackett-Luce, tau = 0)
 * reaches Kendall tau >= 0.9 against the hidden order, with convergence-driven stopping (the pod
 * evaluator: adaptive epochs, Bayesian convergence test), beside a fixed budget of 1,000 games per
 * pod, and beside fixed budgets from the TrueSkill rule of thumb (5 games per gamer for a 4-player
 * free-for-all, and 3x that: up to three times more is needed in practice).
 *
 * Every league uses the same pure code as the controller (src/pods: posterior, epoch sizing,
 * matchmaker, ratings), in-process: the figure is games, not seconds, so no jobs are spawned.
 */
import { informationRound, lineupKey, roundRobinRound } from '../src/pods/matchmaker.js';
import { DEFAULT_POD_CONFIG, type PodConfig } from '../src/pods/model.js';
import { mixSeed, seededRng, shuffled } from '../src/pods/random.js';
import { kendallTau, type LeagueRating, newRating, rateGame } from '../src/pods/ratings.js';
import { runPod } from '../src/pods/simulation.js';
import { parseFlags } from './lib/options.js';
import { type Cell, formatMarkdown, printTable } from './lib/table.js';
import { machineLine, nowMs } from './lib/timing.js';

export const usage = `npm run bench -- pods [options]
  --leagues N        leagues (seeds) averaged per strategy (default 5)
  --participants N   league size (default 32)
  --spacing S        hidden strength step between neighbours, Plackett-Luce log-worth (default 0.15)
  --target T         Kendall tau the leaderboard must reach (default 0.9)
  --confidence C     pods' confidence_target (default 0.99)
  --precision P      pods' precision (default 0.5)
  --max-epochs M     pods' max_epochs_per_pod (default 8)
  --max-games G      give up on a league after this many games (default 400000)
  --markdown         also print the result table as markdown`;

interface Options {
  leagues: number;
  participants: number;
  spacing: number;
  target: number;
  pod: PodConfig;
  maxGames: number;
  markdown: boolean;
}

function options(argv: string[]): Options {
  const f = parseFlags(argv, {
    leagues: 'string',
    participants: 'string',
    spacing: 'string',
    target: 'string',
    confidence: 'string',
    precision: 'string',
    'max-epochs': 'string',
    'max-games': 'string',
    markdown: 'boolean',
  });
  return {
    leagues: f.int('leagues', 5),
    participants: f.int('participants', 32, 4),
    spacing: f.num('spacing', 0.15, (n) => n > 0),
    target: f.num('target', 0.9, (n) => n > 0 && n <= 1),
    pod: {
      ...DEFAULT_POD_CONFIG,
      confidence_target: f.num('confidence', 0.99, (n) => n > 0.5 && n < 1),
      precision: f.num('precision', 0.5, (n) => n > 0),
      max_epochs_per_pod: f.int('max-epochs', 8),
    },
    maxGames: f.int('max-games', 400_000),
    markdown: f.bool('markdown'),
  };
}

type Strategy =
  | { kind: 'convergence'; matchmaking: 'round_robin' | 'information' }
  | { kind: 'fixed'; gamesPerPod: number };

interface LeagueResult {
  /** Games played when the leaderboard first reached the target tau (null: never). */
  gamesToTarget: number | null;
  /** Tau at that point, or at the end. */
  tau: number;
  pods: number;
  convergedPods: number;
}

/**
 * One league: rounds of pods from the matchmaker, pods played one after another, ratings
 * updated game by game, tau measured after every pod. Stops at the target or the game cap.
 */
function playLeague(opts: Options, strategy: Strategy, seed: number, stopAtGames?: number): LeagueResult {
  const ids = Array.from({ length: opts.participants }, (_, i) => `p${String(i).padStart(2, '0')}`);
  // The hidden order is a seeded permutation, so it owes nothing to the ids' order (the
  // leaderboard breaks ties by id: with the hidden order equal to the id order, participants
  // that never played would look ranked).
  const order = shuffled(ids, seededRng(mixSeed(seed, 7)));
  const hidden = new Map(order.map((id, i) => [id, (opts.participants - 1 - i) * opts.spacing]));
  const ratings = new Map<string, LeagueRating>(ids.map((id) => [id, newRating()]));
  const done = new Set<string>();
  let games = 0;
  let pods = 0;
  let convergedPods = 0;
  let tau = -1;
  const board = () =>
    [...ids].sort((a, b) => (ratings.get(b)?.mu ?? 0) - (ratings.get(a)?.mu ?? 0) || (a < b ? -1 : 1));
  for (let round = 1; games < opts.maxGames; round++) {
    const lineups =
      strategy.kind === 'convergence' && strategy.matchmaking === 'information'
        ? informationRound(ids, { seed, round, ratings, skip: done })
        : roundRobinRound(ids, seed, round);
    for (const lineup of lineups) {
      const key = lineupKey(lineup);
      // The matchmaker asks first: a converged pod is never simulated again.
      if (done.has(key)) continue;
      const podSeed = mixSeed(seed, round, pods);
      const run =
        strategy.kind === 'convergence'
          ? runPod(lineup, hidden, opts.pod, podSeed)
          : runPod(lineup, hidden, opts.pod, podSeed, { fixedGames: strategy.gamesPerPod });
      pods++;
      if (run.converged) {
        convergedPods++;
        done.add(key);
      }
      for (const g of run.games) for (const [id, r] of rateGame(ratings, g)) ratings.set(id, r);
      games += run.games.length;
      tau = kendallTau(board(), order);
      if (stopAtGames === undefined && tau >= opts.target)
        return { gamesToTarget: games, tau, pods, convergedPods };
      if (stopAtGames !== undefined && games >= stopAtGames)
        return { gamesToTarget: null, tau, pods, convergedPods };
    }
  }
  return { gamesToTarget: null, tau, pods, convergedPods };
}

const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / Math.max(1, xs.length);
const fmtInt = (x: number) => Math.round(x).toLocaleString('en-US');

export async function runPods(argv: string[]): Promise<void> {
  const opts = options(argv);
  console.log(machineLine());
  console.log(
    `league: ${opts.participants} participants, strength step ${opts.spacing}, target Kendall tau >= ${opts.target}, ` +
      `${opts.leagues} leagues per strategy; pods: confidence ${opts.pod.confidence_target}, precision ${opts.pod.precision}, ` +
      `adaptive epochs up to ${opts.pod.epoch_size}, max ${opts.pod.max_epochs_per_pod} epochs\n`,
  );
  const seeds = Array.from({ length: opts.leagues }, (_, i) => 1000 + i);
  const t0 = nowMs();
  const measure = (strategy: Strategy) => seeds.map((s) => playLeague(opts, strategy, s));
  const conv = measure({ kind: 'convergence', matchmaking: 'round_robin' });
  const info = measure({ kind: 'convergence', matchmaking: 'information' });
  const fixed = measure({ kind: 'fixed', gamesPerPod: 1000 });
  // TrueSkill rule of thumb, 4-player free-for-all: 5 games per gamer (x3 in practice). One game
  // per pod per round gives every gamer one game per round, against new opponents each time.
  const perGamer = [5, 15];
  const trueskill = perGamer.map((g) =>
    seeds.map((s) => playLeague(opts, { kind: 'fixed', gamesPerPod: 1 }, s, (g * opts.participants) / 4)),
  );
  const trueskillToTarget = measure({ kind: 'fixed', gamesPerPod: 1 });
  const elapsed = nowMs() - t0;

  const reached = (rs: LeagueResult[]) => rs.filter((r) => r.gamesToTarget !== null);
  const games = (rs: LeagueResult[]) => mean(reached(rs).map((r) => r.gamesToTarget ?? 0));
  const fixedGames = games(fixed);
  const row = (name: string, rs: LeagueResult[], anchor: boolean): Cell[] => {
    const ok = reached(rs);
    const g = games(rs);
    const reduction = 1 - g / fixedGames;
    return [
      name,
      `${ok.length}/${rs.length}`,
      ok.length > 0 ? fmtInt(g) : 'never',
      mean(rs.map((r) => r.tau)).toFixed(3),
      fmtInt(mean(rs.map((r) => r.pods))),
      anchor || ok.length === 0 ? '-' : `${(reduction * 100).toFixed(0)}%`,
      anchor || ok.length === 0 ? '-' : reduction >= 0.6 ? 'yes' : '**no**',
    ];
  };
  const headers = [
    'strategy',
    'reached',
    'games to tau',
    'tau',
    'pods',
    'fewer games vs 1,000/pod',
    '>= 60%',
  ];
  const rows: Cell[][] = [
    row('convergence-driven, round-robin', conv, false),
    row('convergence-driven, information-seeking', info, false),
    row('fixed 1,000 games per pod (anchor)', fixed, true),
    row('TrueSkill-style: 1 game per pod per round, to target', trueskillToTarget, false),
  ];
  const budgetRows: Cell[][] = perGamer.map((g, i) => {
    const rs = trueskill[i] ?? [];
    return [
      `TrueSkill rule of thumb: ${g} games per gamer`,
      fmtInt((g * opts.participants) / 4),
      mean(rs.map((r) => r.tau)).toFixed(3),
      `${rs.filter((r) => r.tau >= opts.target).length}/${rs.length}`,
    ];
  });
  printTable(headers, rows);
  console.log('');
  const budgetHeaders = ['fixed budget', 'games', 'tau reached', `leagues at tau >= ${opts.target}`];
  printTable(budgetHeaders, budgetRows);
  const convPods = conv.reduce((s, r) => s + r.pods, 0);
  const convConverged = conv.reduce((s, r) => s + r.convergedPods, 0);
  console.log(
    `\nconvergence-driven pods: ${convConverged}/${convPods} converged, the rest stopped at max_epochs_per_pod; ` +
      `${(elapsed / 1000).toFixed(1)} s in all`,
  );
  if (opts.markdown) {
    console.log(`\n${formatMarkdown(headers, rows)}\n\n${formatMarkdown(budgetHeaders, budgetRows)}`);
  }
}
