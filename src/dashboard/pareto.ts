/** The Pareto front of the sweep view's multi-objective plot. Pure: no DOM. */
export type Direction = 'minimize' | 'maximize';

/** Indices of the non-dominated points (all objectives, each in its direction). */
export function paretoFront(points: number[][], directions: Direction[]): Set<number> {
  const better = (a: number[], b: number[]) => {
    let strictly = false;
    for (let k = 0; k < directions.length; k++) {
      const s = directions[k] === 'maximize' ? -1 : 1;
      const x = s * a[k]!;
      const y = s * b[k]!;
      if (x > y) return false;
      if (x < y) strictly = true;
    }
    return strictly;
  };
  const front = new Set<number>();
  points.forEach((p, i) => {
    if (!points.some((q, j) => j !== i && better(q, p))) front.add(i);
  });
  return front;
}
