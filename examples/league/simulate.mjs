#!/usr/bin/env node
/**
 * The league simulator: one epoch of a pod, run by runplane as the pod's simulation job.
 *
 * Participants have hidden strengths (LEAGUE_STRENGTHS, a JSON object id -> strength); each game
 * is sampled from a Plackett-Luce model: first place goes to participant i with probability
 * exp(s_i) / Σ exp(s_j), second place likewise among the rest, and so on. Games are seeded by
 * the pod's seed and epoch, so a retried epoch replays the same games with the same game_ids
 * (the controller ignores the ones it already has and counts the rest).
 *
 * Environment (set by the pod controller and the worker):
 *   RUNPLANE_CONTROLLER_URL, RUNPLANE_POD_TOKEN (simulator role), RUNPLANE_POD_ID,
 *   RUNPLANE_POD_PARTICIPANTS (comma-separated), RUNPLANE_POD_SEED, RUNPLANE_POD_EPOCH,
 *   RUNPLANE_POD_EPOCH_SIZE, RUNPLANE_POD_ATTEMPT
 * Knobs (in the pod config's simulation.env):
 *   LEAGUE_STRENGTHS  hidden strengths (unknown participants: 0)
 *   SIM_BATCH         games per POST (default 25)
 *   SIM_GAME_MS       milliseconds per game, to watch the league move (default 0)
 *   SIM_FAIL_ATTEMPTS fail (exit 3) on attempts up to this number, to see retries (default 0)
 *   SIM_SHORT_BY      report this many games fewer than asked on the first attempt (default 0)
 *
 * It stops at once, exit 0, when the controller answers POD_CONVERGED or POD_ARCHIVED: the pod's
 * outcome is known and further games would be wasted compute.
 *
 *   node examples/league/simulate.mjs          (normally started by runplane, not by hand)
 */

const env = process.env;
const need = (k) => {
  const v = env[k];
  if (v === undefined || v === '') {
    console.error(`simulate: ${k} is not set (this script runs as a pod's simulation job)`);
    process.exit(2);
  }
  return v;
};

const url = need('RUNPLANE_CONTROLLER_URL').replace(/\/+$/, '');
const token = env.RUNPLANE_POD_TOKEN ?? env.RUNPLANE_TOKEN ?? '';
const podId = need('RUNPLANE_POD_ID');
const participants = need('RUNPLANE_POD_PARTICIPANTS').split(',');
const seed = Number(need('RUNPLANE_POD_SEED'));
const epoch = Number(need('RUNPLANE_POD_EPOCH'));
const size = Number(need('RUNPLANE_POD_EPOCH_SIZE'));
const attempt = Number(env.RUNPLANE_POD_ATTEMPT ?? '1');
const strengths = JSON.parse(env.LEAGUE_STRENGTHS ?? '{}');
const batchSize = Math.max(1, Number(env.SIM_BATCH ?? '25'));
const gameMs = Number(env.SIM_GAME_MS ?? '0');
const failAttempts = Number(env.SIM_FAIL_ATTEMPTS ?? '0');
const shortBy = attempt === 1 ? Number(env.SIM_SHORT_BY ?? '0') : 0;

if (attempt <= failAttempts) {
  console.error(`simulate: failing attempt ${attempt} on purpose (SIM_FAIL_ATTEMPTS=${failAttempts})`);
  process.exit(3);
}

function mulberry32(a) {
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function hash(...parts) {
  let h = 2166136261;
  for (const ch of parts.join(':')) {
    h ^= ch.charCodeAt(0);
    h = Math.imul(h, 16777619);
  }
  return h >>> 0;
}

const rng = mulberry32(hash(podId, seed, epoch));

/** One game: placements 1..4 drawn from the Plackett-Luce model of the hidden strengths. */
function playGame(i) {
  const left = [...participants];
  const placements = {};
  for (let place = 1; left.length > 0; place++) {
    const w = left.map((p) => Math.exp(Number(strengths[p] ?? 0)));
    let r = rng() * w.reduce((s, x) => s + x, 0);
    let k = 0;
    while (k < left.length - 1 && r >= w[k]) {
      r -= w[k];
      k++;
    }
    placements[left[k]] = place;
    left.splice(k, 1);
  }
  const turns = 10 + Math.floor(rng() * 50);
  const gameId = `e${epoch}-g${i}`;
  return { game_id: gameId, placements, turns, replay: `replay://${podId}/${gameId}` };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function post(games) {
  for (let tries = 1; ; tries++) {
    let res;
    try {
      res = await fetch(`${url}/api/v1/pods/${encodeURIComponent(podId)}/results`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ epoch, games }),
      });
    } catch (err) {
      if (tries >= 5) throw err;
      await sleep(200 * 2 ** tries);
      continue;
    }
    const body = await res.json().catch(() => ({}));
    if (res.ok) return body;
    const code = body?.error?.code;
    if (code === 'POD_CONVERGED' || code === 'POD_ARCHIVED') return { stop: code };
    if (res.status >= 500 && tries < 5) {
      await sleep(200 * 2 ** tries);
      continue;
    }
    throw new Error(`results rejected: ${res.status} ${JSON.stringify(body)}`);
  }
}

// All games are drawn (same sequence on every attempt); SIM_SHORT_BY drops the last few.
const games = Array.from({ length: size }, (_, i) => playGame(i + 1)).slice(0, Math.max(0, size - shortBy));
for (let i = 0; i < games.length; i += batchSize) {
  const batch = games.slice(i, i + batchSize);
  if (gameMs > 0) await sleep(gameMs * batch.length);
  const r = await post(batch);
  if (r.stop) {
    console.log(`pod ${podId}: ${r.stop}, stopping after ${i} games of epoch ${epoch}`);
    process.exit(0);
  }
  if (r.converged) {
    console.log(`pod ${podId} converged (confidence ${r.confidence}) after ${r.games_played} games`);
    process.exit(0);
  }
}
console.log(`pod ${podId}: epoch ${epoch} attempt ${attempt}: ${games.length} games reported`);
