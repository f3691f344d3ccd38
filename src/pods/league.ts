/**
 * A league: a pool of participants played in rounds of pods chosen by the matchmaker, driven
 * over the HTTP API (`runplane league start <file>`). The matchmaker asks the pod controller
 * before every dispatch (a 409 POD_CONVERGED / EPOCH_IN_FLIGHT / POD_ARCHIVED answer means skip)
 * and follows pod status to know when a round is done. Pods are identified by participants,
 * seed and config, so running the same file again resumes the league: converged pods are
 * found again and skipped, never simulated twice.
 */
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ApiError, type RunplaneClient } from '../client/client.js';
import { informationRound, lineupKey, roundRobinRound, type SkillEstimate } from './matchmaker.js';
import type { Leaderboard, PodConfigInput, PodView } from './schemas.js';

export interface LeagueSpec {
  name: string;
  seed: number;
  rounds: number;
  matchmaking: 'round_robin' | 'information';
  participants: Array<{ id: string; strength?: number; model_version?: string }>;
  pod: PodConfigInput;
  /** A pod whose epochs gave up this many times is left alone for the rest of the league. */
  max_failed_epochs: number;
}

export class LeagueFileError extends Error {}

/** Parses a league file (YAML or JSON); relative simulation paths are taken from its folder. */
export function parseLeague(text: string, file: string): LeagueSpec {
  const raw = (parseYaml(text) ?? {}) as Record<string, unknown>;
  const fail = (msg: string): never => {
    throw new LeagueFileError(`${file}: ${msg}`);
  };
  const participants = raw.participants;
  if (!Array.isArray(participants) || participants.length < 4) fail('participants: a list of at least 4');
  const list = (participants as unknown[]).map((p, i) => {
    const o = (typeof p === 'string' ? { id: p } : p) as {
      id?: unknown;
      strength?: unknown;
      model_version?: unknown;
    };
    if (typeof o.id !== 'string' || o.id === '') fail(`participants[${i}].id: a non-empty string`);
    if (o.strength !== undefined && typeof o.strength !== 'number')
      fail(`participants[${i}].strength: a number`);
    return {
      id: o.id as string,
      ...(typeof o.strength === 'number' ? { strength: o.strength } : {}),
      ...(o.model_version !== undefined ? { model_version: String(o.model_version) } : {}),
    };
  });
  if (new Set(list.map((p) => p.id)).size !== list.length) fail('participants: ids must be distinct');
  const matchmaking = raw.matchmaking ?? 'round_robin';
  if (matchmaking !== 'round_robin' && matchmaking !== 'information')
    fail('matchmaking: round_robin or information');
  const int = (k: string, dflt: number, min: number) => {
    const v = raw[k] ?? dflt;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) fail(`${k}: an integer >= ${min}`);
    return v as number;
  };
  const pod = { ...((raw.pod ?? {}) as PodConfigInput) };
  if (pod.simulation) {
    const sim = { ...pod.simulation };
    const base = dirname(resolve(file));
    sim.cwd = sim.cwd === undefined ? base : isAbsolute(sim.cwd) ? sim.cwd : resolve(base, sim.cwd);
    // The simulation runs on this machine's workers with the Node that runs the CLI.
    if (sim.command[0] === 'node') sim.command = [process.execPath, ...sim.command.slice(1)];
    const strengths = Object.fromEntries(
      list.filter((p) => p.strength !== undefined).map((p) => [p.id, p.strength]),
    );
    if (Object.keys(strengths).length > 0)
      sim.env = { ...sim.env, LEAGUE_STRENGTHS: JSON.stringify(strengths) };
    pod.simulation = sim;
  }
  return {
    name: typeof raw.name === 'string' ? raw.name : 'league',
    seed: int('seed', 1, 0),
    rounds: int('rounds', 3, 1),
    matchmaking,
    participants: list,
    pod,
    max_failed_epochs: int('max_failed_epochs', 3, 1),
  } as LeagueSpec;
}

export interface LeagueProgress {
  round: number;
  pods: number;
  skipped: number;
  games: number;
}

const DONE = new Set(['converged', 'archived']);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs the league to its last round; `log` gets one line per thing that happened. */
export async function runLeague(
  client: RunplaneClient,
  spec: LeagueSpec,
  opts: { log: (line: string) => void; pollMs?: number; signal?: AbortSignal },
): Promise<{ rounds: LeagueProgress[]; leaderboard: Leaderboard }> {
  const pollMs = opts.pollMs ?? 500;
  const ids = spec.participants.map((p) => p.id);
  for (const p of spec.participants)
    if (p.model_version !== undefined) await client.setParticipantVersion(p.id, p.model_version);
  const rounds: LeagueProgress[] = [];
  for (let round = 1; round <= spec.rounds && !opts.signal?.aborted; round++) {
    const lineups =
      spec.matchmaking === 'round_robin'
        ? roundRobinRound(ids, spec.seed, round)
        : informationRound(ids, {
            seed: spec.seed,
            round,
            ratings: await ratingsOf(client),
            skip: await finishedLineups(client, ids),
          });
    const pods = new Map<string, PodView>();
    for (const participants of lineups) {
      const pod = await client.createPod({ participants, seed: spec.seed, config: spec.pod });
      pods.set(pod.pod_id, pod);
    }
    const skipped = [...pods.values()].filter((p) => DONE.has(p.status)).length;
    opts.log(`round ${round}: ${pods.size} pods (${skipped} already done, skipped)`);
    const live = new Map([...pods].filter(([, p]) => !DONE.has(p.status)));
    while (live.size > 0 && !opts.signal?.aborted) {
      for (const [id, pod] of live) {
        if (pod.status !== 'ready') continue;
        if (pod.statistics.failed_epochs >= spec.max_failed_epochs) {
          opts.log(
            `pod ${id}: ${pod.statistics.failed_epochs} epochs gave up (${pod.last_error}); left alone`,
          );
          live.delete(id);
          continue;
        }
        try {
          const d = await client.dispatchPod(id);
          opts.log(`pod ${id}: epoch ${d.epoch} dispatched (${d.size} games)`);
        } catch (err) {
          // The controller's control signal: converged, in flight or archived means skip.
          if (!(err instanceof ApiError && err.status === 409)) throw err;
        }
      }
      await sleep(pollMs);
      for (const id of [...live.keys()]) {
        const pod = await client.getPod(id);
        live.set(id, pod);
        pods.set(id, pod);
        if (DONE.has(pod.status)) {
          live.delete(id);
          const c = pod.convergence;
          opts.log(
            pod.stop_reason === 'confidence_target_met'
              ? `pod ${id}: converged after ${pod.statistics.games_played} games (confidence ${c.confidence.toFixed(4)}): ${c.ranking.join(' > ')}`
              : `pod ${id}: ${pod.status} (${pod.stop_reason ?? 'archived'}) after ${pod.statistics.games_played} games`,
          );
        }
      }
    }
    const games = [...pods.values()].reduce((s, p) => s + p.statistics.games_played, 0);
    rounds.push({ round, pods: pods.size, skipped, games });
  }
  return { rounds, leaderboard: await client.leaderboard() };
}

async function ratingsOf(client: RunplaneClient): Promise<Map<string, SkillEstimate>> {
  const board = await client.leaderboard();
  return new Map(board.participants.map((p) => [p.participant, { mu: p.mu, sigma: p.sigma }]));
}

/** Line-ups of the pool already converged or archived: nothing left to learn from them. */
async function finishedLineups(client: RunplaneClient, pool: readonly string[]): Promise<Set<string>> {
  const inPool = new Set(pool);
  const out = new Set<string>();
  for (const status of ['converged', 'archived'] as const) {
    let cursor: string | null = null;
    do {
      const page: { pods: PodView[]; next_cursor: string | null } = await client.listPods({
        status,
        limit: 1000,
        ...(cursor ? { cursor } : {}),
      });
      for (const p of page.pods)
        if (p.participants.every((x) => inPool.has(x))) out.add(lineupKey(p.participants));
      cursor = page.next_cursor;
    } while (cursor);
  }
  return out;
}
