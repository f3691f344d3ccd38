/** The matchmaker, league ratings and the pod model's pure rules. */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseLeague } from '../../src/pods/league.js';
import {
  informationRound,
  informationScore,
  lineupKey,
  roundRobinRound,
  type SkillEstimate,
} from '../../src/pods/matchmaker.js';
import {
  DEFAULT_POD_CONFIG,
  definitionProblems,
  epochEnd,
  epochJob,
  gameProblems,
  normalizeConfig,
  retryDelayMs,
  specHash,
} from '../../src/pods/model.js';
import { kendallTau, newRating, rateGame } from '../../src/pods/ratings.js';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const pool = (n: number) => Array.from({ length: n }, (_, i) => `p${String(i).padStart(2, '0')}`);

describe('round-robin matchmaking', () => {
  it('puts every participant in a pod of four distinct ones each round, reproducibly', () => {
    const ids = pool(32);
    const r1 = roundRobinRound(ids, 7, 1);
    expect(r1).toHaveLength(8);
    for (const pod of r1) expect(new Set(pod).size).toBe(4);
    expect(new Set(r1.flat())).toEqual(new Set(ids));
    expect(roundRobinRound(ids, 7, 1)).toEqual(r1);
    expect(roundRobinRound(ids, 7, 2)).not.toEqual(r1);
    expect(roundRobinRound(ids, 8, 1)).not.toEqual(r1);
  });

  it('fills the last pod when the pool is not a multiple of four', () => {
    const r = roundRobinRound(pool(10), 1, 1);
    expect(r).toHaveLength(3);
    for (const pod of r) expect(new Set(pod).size).toBe(4);
    expect(new Set(r.flat()).size).toBe(10);
    expect(() => roundRobinRound(pool(3), 1, 1)).toThrow(/at least 4/);
  });
});

describe('information-seeking matchmaking', () => {
  it('prefers uncertain, evenly matched pods and skips pods already known', () => {
    const ids = pool(8);
    const sure = { mu: 25, sigma: 1 };
    const ratings = new Map<string, SkillEstimate>(
      ids.map((id, i) => [id, i < 4 ? sure : { mu: 25, sigma: 8 }]),
    );
    const round = informationRound(ids, { seed: 1, round: 1, ratings });
    expect(round).toHaveLength(2);
    expect(new Set(round.flat())).toEqual(new Set(ids));
    // The four uncertain ones play together: that pod carries the most information.
    expect(new Set(round[0])).toEqual(new Set(ids.slice(4)));
    const skip = new Set([lineupKey(ids.slice(4))]);
    const again = informationRound(ids, { seed: 1, round: 1, ratings, skip });
    for (const pod of again) expect(skip.has(lineupKey(pod))).toBe(false);

    const even = [25, 25, 25, 25].map((mu) => ({ mu, sigma: 5 }));
    const lopsided = [40, 30, 20, 10].map((mu) => ({ mu, sigma: 5 }));
    expect(informationScore(even, 25 / 6)).toBeGreaterThan(informationScore(lopsided, 25 / 6));
  });

  it('samples candidates for large pools and still covers everyone', () => {
    const ids = pool(64);
    const round = informationRound(ids, { seed: 3, round: 1, ratings: new Map(), maxCandidates: 3000 });
    expect(new Set(round.flat()).size).toBeGreaterThanOrEqual(60);
    for (const pod of round) expect(new Set(pod).size).toBe(4);
  });
});

describe('league ratings', () => {
  it('moves ratings by placement with tau = 0 (sigma only shrinks)', () => {
    const ratings = new Map(['a', 'b', 'c', 'd'].map((id) => [id, newRating()]));
    const after = rateGame(ratings, { a: 1, b: 2, c: 3, d: 4 });
    expect(after.get('a')!.mu).toBeGreaterThan(25);
    expect(after.get('d')!.mu).toBeLessThan(25);
    for (const r of after.values()) {
      expect(r.sigma).toBeLessThan(25 / 3);
      expect(r.games).toBe(1);
    }
    // A tie at the top treats both alike.
    const tie = rateGame(ratings, { a: 1, b: 1, c: 3, d: 4 });
    expect(tie.get('a')!.mu).toBeCloseTo(tie.get('b')!.mu, 9);
  });

  it("computes Kendall's tau", () => {
    expect(kendallTau(['a', 'b', 'c', 'd'], ['a', 'b', 'c', 'd'])).toBe(1);
    expect(kendallTau(['a', 'b', 'c', 'd'], ['d', 'c', 'b', 'a'])).toBe(-1);
    expect(kendallTau(['a', 'b', 'c', 'd'], ['b', 'a', 'c', 'd'])).toBeCloseTo(4 / 6, 12);
  });
});

describe('pod model', () => {
  it('identifies a pod by its participant set, seed and normalized config', () => {
    const c = normalizeConfig({});
    expect(c).toEqual(DEFAULT_POD_CONFIG);
    expect(specHash(['a', 'b', 'c', 'd'], 1, c)).toBe(
      specHash(['d', 'c', 'b', 'a'], 1, normalizeConfig({ epoch_size: 100 })),
    );
    expect(specHash(['a', 'b', 'c', 'd'], 1, c)).not.toBe(specHash(['a', 'b', 'c', 'd'], 2, c));
    expect(specHash(['a', 'b', 'c', 'd'], 1, c)).not.toBe(
      specHash(['a', 'b', 'c', 'd'], 1, normalizeConfig({ precision: 0.1 })),
    );
    expect(definitionProblems(['a', 'b', 'c'], c)[0]?.code).toBe('INVALID_LENGTH');
    expect(definitionProblems(['a', 'b', 'c', 'c'], c)[0]?.code).toBe('DUPLICATE_PARTICIPANT');
    expect(definitionProblems(['a', 'b', 'c', 'd'], c)).toEqual([]);
  });

  it('validates games: exactly the pod participants, placements 1..4', () => {
    const p = ['a', 'b', 'c', 'd'];
    expect(gameProblems(p, { a: 1, b: 2, c: 3, d: 4 }, 'g')).toEqual([]);
    expect(gameProblems(p, { a: 1, b: 1, c: 1, d: 1 }, 'g')).toEqual([]);
    expect(
      gameProblems(p, { a: 1, b: 2, c: 3, e: 4 }, 'g')
        .map((x) => x.code)
        .sort(),
    ).toEqual(['MISSING_PARTICIPANT', 'UNKNOWN_PARTICIPANT']);
    expect(gameProblems(p, { a: 0, b: 2, c: 3, d: 4 }, 'g')[0]).toMatchObject({
      field: 'g.a',
      code: 'OUT_OF_RANGE',
    });
  });

  it('decides epoch ends and retry backoff', () => {
    const e = { jobReason: null, gamesReceived: 10, size: 10, attempt: 1, maxAttempts: 3 };
    expect(epochEnd({ ...e, jobState: 'SUCCEEDED' })).toEqual({ kind: 'completed' });
    expect(epochEnd({ ...e, jobState: 'SUCCEEDED', gamesReceived: 4 })).toMatchObject({ kind: 'retry' });
    expect(epochEnd({ ...e, jobState: 'FAILED' })).toMatchObject({ kind: 'retry' });
    expect(epochEnd({ ...e, jobState: 'WORKER_FAILED', attempt: 3 })).toMatchObject({ kind: 'failed' });
    expect(epochEnd({ ...e, jobState: 'KILLED' })).toMatchObject({ kind: 'cancelled' });
    const b = { retry_backoff_s: 2, retry_backoff_max_s: 10 };
    expect([1, 2, 3, 4].map((a) => retryDelayMs(a, b))).toEqual([2000, 4000, 8000, 10000]);
  });

  it('builds the epoch job with the pod in its environment and a unique name', () => {
    const job = epochJob({
      podId: 'pod_1',
      participants: ['a', 'b', 'c', 'd'],
      seed: 9,
      epoch: 3,
      attempt: 2,
      size: 20,
      template: { command: ['sim'], env: { X: '1' } },
      token: null,
    });
    expect(job.name).toBe('pod_1-epoch-3-attempt-2');
    expect(job.env).toMatchObject({
      X: '1',
      RUNPLANE_POD_ID: 'pod_1',
      RUNPLANE_POD_PARTICIPANTS: 'a,b,c,d',
      RUNPLANE_POD_SEED: '9',
      RUNPLANE_POD_EPOCH: '3',
      RUNPLANE_POD_EPOCH_SIZE: '20',
      RUNPLANE_POD_ATTEMPT: '2',
    });
    expect(job.max_retries_failure).toBe(0);
  });
});

describe('league files', () => {
  it('parses participants, strengths and resolves the simulation relative to the file', () => {
    const spec = parseLeague(
      [
        'seed: 3',
        'participants: [{id: a, strength: 1}, {id: b}, c, d]',
        'pod: {simulation: {command: [node, sim.mjs]}}',
      ].join('\n'),
      '/leagues/x/league.yaml',
    );
    expect(spec).toMatchObject({ seed: 3, rounds: 3, matchmaking: 'round_robin' });
    expect(spec.participants.map((p) => p.id)).toEqual(['a', 'b', 'c', 'd']);
    expect(spec.pod.simulation?.cwd).toBe('/leagues/x');
    expect(spec.pod.simulation?.command).toEqual([process.execPath, 'sim.mjs']);
    expect(spec.pod.simulation?.env?.LEAGUE_STRENGTHS).toBe('{"a":1}');
    expect(() => parseLeague('participants: [a, b, c]', 'f.yaml')).toThrow(/at least 4/);
    const example = join(REPO_ROOT, 'examples', 'league', 'league.yaml');
    const shipped = parseLeague(readFileSync(example, 'utf8'), example);
    expect(shipped.participants).toHaveLength(8);
    expect(shipped.pod.simulation?.cwd).toBe(join(REPO_ROOT, 'examples', 'league'));
    expect(() => parseLeague('participants: [a, b, c, a]', 'f.yaml')).toThrow(/distinct/);
  });
});
