/**
 * The matchmaker (pure): which 4-player pods to play next from a pool of participants.
 *
 * - Round-robin: a seeded shuffle of the pool cut into chunks of four; every participant plays
 *   every round (when the pool is not a multiple of four, the last pod is filled up with
 *   participants who already have a pod this round).
 * - Information-seeking: prefer pods whose outcome would most reduce rating uncertainty. A pod
 *   scores Σσ² of its members (how much there is to learn) times how evenly matched they are
 *   (an even pod's outcome is informative, a lopsided one is predictable). Pods whose outcome is
 *   already known (converged) are skipped. Disjoint pods are picked greedily, best first.
 */
import { hashString, mixSeed, type Rng, seededRng, shuffled } from './random.js';

export const POD_SIZE = 4;

export interface SkillEstimate {
  mu: number;
  sigma: number;
}

/** The identity of a pod's line-up, independent of order. */
export function lineupKey(participants: readonly string[]): string {
  return [...participants].sort().join('\u0000');
}

function fillLast(chunks: string[][], order: readonly string[]): void {
  const last = chunks[chunks.length - 1];
  if (!last || last.length === POD_SIZE) return;
  for (const p of order) {
    if (last.length === POD_SIZE) break;
    if (!last.includes(p)) last.push(p);
  }
}

/** One round of seeded round-robin pods. */
export function roundRobinRound(pool: readonly string[], seed: number, round: number): string[][] {
  if (new Set(pool).size < POD_SIZE)
    throw new Error(`a pool needs at least ${POD_SIZE} distinct participants`);
  const order = shuffled([...new Set(pool)].sort(), seededRng(mixSeed(seed, round)));
  const chunks: string[][] = [];
  for (let i = 0; i < order.length; i += POD_SIZE) chunks.push(order.slice(i, i + POD_SIZE));
  fillLast(chunks, order);
  return chunks;
}

/** How evenly matched a line-up is, in (0, 1]: 1 when every mean is equal. */
export function matchQuality(members: readonly SkillEstimate[], beta: number): number {
  const mean = members.reduce((s, m) => s + m.mu, 0) / members.length;
  const spread = members.reduce((s, m) => s + (m.mu - mean) ** 2, 0) / members.length;
  const uncertainty = members.reduce((s, m) => s + m.sigma ** 2, 0) / members.length;
  return Math.sqrt((2 * beta ** 2) / (2 * beta ** 2 + uncertainty)) * Math.exp(-spread / (2 * beta ** 2));
}

/** Expected information of playing a line-up: Σσ² times match quality. */
export function informationScore(members: readonly SkillEstimate[], beta: number): number {
  return members.reduce((s, m) => s + m.sigma ** 2, 0) * matchQuality(members, beta);
}

function* combinations(n: number): Generator<[number, number, number, number]> {
  for (let a = 0; a < n; a++)
    for (let b = a + 1; b < n; b++)
      for (let c = b + 1; c < n; c++) for (let d = c + 1; d < n; d++) yield [a, b, c, d];
}

function sampleLineups(n: number, count: number, rng: Rng): Array<[number, number, number, number]> {
  const out: Array<[number, number, number, number]> = [];
  const idx = Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < count; i++) {
    const s = shuffled(idx, rng)
      .slice(0, POD_SIZE)
      .sort((x, y) => x - y);
    out.push(s as [number, number, number, number]);
  }
  return out;
}

export interface InformationOptions {
  seed: number;
  round: number;
  ratings: ReadonlyMap<string, SkillEstimate>;
  /** Line-ups (lineupKey) not worth playing: converged or archived pods. */
  skip?: ReadonlySet<string>;
  /** The rating model's performance spread β (openskill's default 25/6). */
  beta?: number;
  /** Candidates scored when the pool has too many 4-subsets to enumerate. */
  maxCandidates?: number;
  defaultRating?: SkillEstimate;
}

/** One round of information-seeking pods: disjoint, best-scoring first, covering the pool. */
export function informationRound(pool: readonly string[], opts: InformationOptions): string[][] {
  const ids = [...new Set(pool)].sort();
  if (ids.length < POD_SIZE) throw new Error(`a pool needs at least ${POD_SIZE} distinct participants`);
  const beta = opts.beta ?? 25 / 6;
  const dflt = opts.defaultRating ?? { mu: 25, sigma: 25 / 3 };
  const skill = ids.map((id) => opts.ratings.get(id) ?? dflt);
  const rng = seededRng(mixSeed(opts.seed, opts.round, hashString('information')));
  const maxCandidates = opts.maxCandidates ?? 20000;
  const score = (c: readonly number[]) => ({
    c,
    key: lineupKey(c.map((i) => ids[i] ?? '')),
    score: informationScore(
      c.map((i) => skill[i] ?? dflt),
      beta,
    ),
    // Ties broken by a seeded jitter, so equal scores do not always favour the same ids.
    tie: rng(),
  });
  /** Scored line-ups among `free`, best first: all of them when few enough, else a sample. */
  const candidatesAmong = (free: readonly number[]) => {
    const n = free.length;
    const total = (n * (n - 1) * (n - 2) * (n - 3)) / 24;
    const local = total <= maxCandidates ? [...combinations(n)] : sampleLineups(n, maxCandidates, rng);
    return local
      .map((c) => score(c.map((i) => free[i] ?? 0)))
      .filter((x) => !opts.skip?.has(x.key))
      .sort((x, y) => y.score - x.score || x.tie - y.tie);
  };
  const used = new Set<number>();
  const chosen = new Set<string>();
  const pods: string[][] = [];
  const all = candidatesAmong(ids.map((_, i) => i));
  // Greedy: the best disjoint line-ups; when a sample runs dry, sample again among the rest.
  let scored = all;
  while (ids.length - used.size >= POD_SIZE) {
    let picked = false;
    for (const x of scored) {
      if (x.c.some((i) => used.has(i))) continue;
      for (const i of x.c) used.add(i);
      chosen.add(x.key);
      pods.push(x.c.map((i) => ids[i] ?? ''));
      picked = true;
      if (ids.length - used.size < POD_SIZE) break;
    }
    if (!picked) break;
    scored = candidatesAmong(ids.map((_, i) => i).filter((i) => !used.has(i)));
  }
  // Participants left over (fewer than four, or every pod of theirs skipped) join the best
  // line-up that holds them and is not skipped.
  const left = ids.map((_, i) => i).filter((i) => !used.has(i));
  if (left.length > 0 && left.length < POD_SIZE) {
    // A seeded sample of partners keeps this small for large pools.
    const others = shuffled(
      ids.map((_, i) => i).filter((i) => used.has(i)),
      rng,
    ).slice(0, 24);
    const fill = others
      .flatMap((a, ai) =>
        left.length === 3
          ? [[...left, a]]
          : others
              .slice(ai + 1)
              .flatMap((b, bi) =>
                left.length === 2
                  ? [[...left, a, b]]
                  : others.slice(ai + bi + 2).map((c) => [...left, a, b, c]),
              ),
      )
      .map(score)
      .filter((x) => !opts.skip?.has(x.key) && !chosen.has(x.key))
      .sort((x, y) => y.score - x.score || x.tie - y.tie)[0];
    if (fill) pods.push(fill.c.map((i) => ids[i] ?? ''));
  }
  return pods;
}
