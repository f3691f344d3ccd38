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
  const n = ids.length;
  const total = (n * (n - 1) * (n - 2) * (n - 3)) / 24;
  const maxCandidates = opts.maxCandidates ?? 20000;
  const candidates = total <= maxCandidates ? [...combinations(n)] : sampleLineups(n, maxCandidates, rng);
  const scored = candidates
    .map((c) => {
      const key = lineupKey(c.map((i) => ids[i] ?? ''));
      return {
        c,
        key,
        score: informationScore(
          c.map((i) => skill[i] ?? dflt),
          beta,
        ),
      };
    })
    .filter((x) => !opts.skip?.has(x.key))
    // Ties broken by a seeded jitter, so equal scores do not always favour the same ids.
    .map((x) => ({ ...x, tie: rng() }))
    .sort((x, y) => y.score - x.score || x.tie - y.tie);
  const used = new Set<number>();
  const chosen = new Set<string>();
  const pods: string[][] = [];
  for (const x of scored) {
    if (x.c.some((i) => used.has(i))) continue;
    for (const i of x.c) used.add(i);
    chosen.add(x.key);
    pods.push(x.c.map((i) => ids[i] ?? ''));
    if (used.size > n - POD_SIZE) break;
  }
  // Participants left over (fewer than four, or every pod of theirs skipped) join the best
  // remaining line-up that holds them and is not skipped.
  const left = ids.filter((_, i) => !used.has(i));
  if (left.length > 0) {
    const fill = scored.find((x) => !chosen.has(x.key) && left.every((id) => x.c.some((i) => ids[i] === id)));
    if (fill) pods.push(fill.c.map((i) => ids[i] ?? ''));
  }
  return pods;
}
