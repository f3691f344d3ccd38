/**
 * Pareto helpers for multi-objective sweeps (also used by analysis): the non-dominated front,
 * non-dominated sorting with crowding distance (NSGA-II), and the exact hypervolume.
 */
import type { Direction } from './types.js';

/** The points with every objective turned into "smaller is better". */
function minimized(points: readonly (readonly number[])[], directions: readonly Direction[]): number[][] {
  return points.map((p) =>
    directions.map((d, i) => (d === 'maximize' ? -(p[i] ?? Number.NaN) : (p[i] ?? Number.NaN))),
  );
}

/** a dominates b (both minimized): no worse everywhere, strictly better somewhere. */
export function dominates(a: readonly number[], b: readonly number[]): boolean {
  let better = false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    if (x > y) return false;
    if (x < y) better = true;
  }
  return better;
}

const finite = (p: readonly number[]): boolean => p.every((v) => Number.isFinite(v));

/** Indices of the non-dominated points (points with a non-finite value never are). */
export function paretoFront(points: number[][], directions: Direction[]): number[] {
  const m = minimized(points, directions);
  const out: number[] = [];
  for (let i = 0; i < m.length; i++) {
    const p = m[i] as number[];
    if (!finite(p)) continue;
    let dominated = false;
    for (let j = 0; j < m.length && !dominated; j++) {
      const q = m[j] as number[];
      if (j !== i && finite(q) && dominates(q, p)) dominated = true;
    }
    if (!dominated) out.push(i);
  }
  return out;
}

/**
 * Non-dominated sorting over minimized points: rank 0 is the front, rank 1 the front of the
 * rest, and so on. Points with non-finite values get the last rank.
 */
export function nondominatedRanks(points: readonly (readonly number[])[]): number[] {
  const n = points.length;
  const ranks = new Array<number>(n).fill(-1);
  const dominatedBy: number[][] = Array.from({ length: n }, () => []);
  const count = new Array<number>(n).fill(0);
  const valid = points.map((p) => finite(p));
  let current: number[] = [];
  for (let i = 0; i < n; i++) {
    if (!valid[i]) continue;
    for (let j = 0; j < n; j++) {
      if (i === j || !valid[j]) continue;
      if (dominates(points[i] as number[], points[j] as number[])) dominatedBy[i]?.push(j);
      else if (dominates(points[j] as number[], points[i] as number[])) count[i] = (count[i] ?? 0) + 1;
    }
    if (count[i] === 0) {
      ranks[i] = 0;
      current.push(i);
    }
  }
  let rank = 0;
  while (current.length > 0) {
    const next: number[] = [];
    for (const i of current) {
      for (const j of dominatedBy[i] ?? []) {
        count[j] = (count[j] ?? 0) - 1;
        if (count[j] === 0) {
          ranks[j] = rank + 1;
          next.push(j);
        }
      }
    }
    rank++;
    current = next;
  }
  for (let i = 0; i < n; i++) if (ranks[i] === -1) ranks[i] = rank;
  return ranks;
}

/** NSGA-II crowding distance of each point within one front (minimized points). */
export function crowdingDistance(points: readonly (readonly number[])[]): number[] {
  const n = points.length;
  const dist = new Array<number>(n).fill(0);
  if (n <= 2) return dist.fill(Number.POSITIVE_INFINITY);
  const k = points[0]?.length ?? 0;
  for (let o = 0; o < k; o++) {
    const order = [...Array(n).keys()].sort((a, b) => (points[a]?.[o] ?? 0) - (points[b]?.[o] ?? 0));
    const lo = points[order[0] as number]?.[o] ?? 0;
    const hi = points[order[n - 1] as number]?.[o] ?? 0;
    dist[order[0] as number] = Number.POSITIVE_INFINITY;
    dist[order[n - 1] as number] = Number.POSITIVE_INFINITY;
    if (hi === lo) continue;
    for (let r = 1; r < n - 1; r++) {
      const i = order[r] as number;
      const gap = (points[order[r + 1] as number]?.[o] ?? 0) - (points[order[r - 1] as number]?.[o] ?? 0);
      dist[i] = (dist[i] ?? 0) + gap / (hi - lo);
    }
  }
  return dist;
}

/**
 * Exact hypervolume dominated by the points and bounded by the reference point (each
 * objective in its own direction). Points that do not strictly beat the reference in every
 * objective add nothing. Slices along the last objective (HSO); 2-D is a single sweep.
 */
export function hypervolume(points: number[][], directions: Direction[], reference: number[]): number {
  const ref = minimized([reference], directions)[0] as number[];
  const pts = minimized(points, directions).filter(
    (p) => finite(p) && p.every((v, i) => v < (ref[i] as number)),
  );
  return hvMin(pts, ref);
}

/** Hypervolume of minimized points, all strictly inside the reference box. */
export function hvMin(points: number[][], ref: readonly number[]): number {
  if (points.length === 0) return 0;
  const k = ref.length;
  if (k === 1) return (ref[0] as number) - Math.min(...points.map((p) => p[0] as number));
  if (k === 2) {
    const sorted = [...points].sort(
      (a, b) => (a[0] as number) - (b[0] as number) || (a[1] as number) - (b[1] as number),
    );
    let volume = 0;
    let bestY = ref[1] as number;
    for (const p of sorted) {
      const y = p[1] as number;
      if (y < bestY) {
        volume += ((ref[0] as number) - (p[0] as number)) * (bestY - y);
        bestY = y;
      }
    }
    return volume;
  }
  // Slice along the last objective: between consecutive values, the cross-section is the
  // (k-1)-D hypervolume of the points at or below that level.
  const last = k - 1;
  const sorted = [...points].sort((a, b) => (a[last] as number) - (b[last] as number));
  const subRef = ref.slice(0, last);
  let volume = 0;
  const active: number[][] = [];
  for (let i = 0; i < sorted.length; i++) {
    const p = sorted[i] as number[];
    active.push(p.slice(0, last));
    const top = i + 1 < sorted.length ? ((sorted[i + 1] as number[])[last] as number) : (ref[last] as number);
    const height = top - (p[last] as number);
    if (height > 0) volume += height * hvMin(filterDominated(active), subRef);
  }
  return volume;
}

function filterDominated(points: number[][]): number[][] {
  return points.filter(
    (p, i) => !points.some((q, j) => j !== i && (dominates(q, p) || (j < i && same(p, q)))),
  );
}

function same(a: readonly number[], b: readonly number[]): boolean {
  return a.every((v, i) => v === b[i]);
}

/** How much hypervolume each point alone adds to the set (minimized points, inside ref). */
export function hypervolumeContributions(points: number[][], ref: readonly number[]): number[] {
  const total = hvMin(points, ref);
  return points.map(
    (_, i) =>
      total -
      hvMin(
        points.filter((_, j) => j !== i),
        ref,
      ),
  );
}
