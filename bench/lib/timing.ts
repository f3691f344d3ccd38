import { cpus, loadavg, release } from 'node:os';

/** Monotonic milliseconds. */
export const nowMs = (): number => performance.now();

export async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = nowMs();
  const value = await fn();
  return { value, ms: nowMs() - t0 };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs `fn` over `items` with at most `limit` calls in flight; results in input order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, i: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      out[i] = await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, () => worker()));
  return out;
}

export function fmtRate(perSecond: number): string {
  if (!Number.isFinite(perSecond)) return 'n/a';
  return perSecond >= 100 ? perSecond.toFixed(0) : perSecond.toFixed(1);
}

export function fmtSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(ms < 10_000 ? 3 : 1)} s`;
}

export function fmtPercent(ratio: number): string {
  if (!Number.isFinite(ratio)) return 'n/a';
  const pct = ratio * 100;
  return `${pct < 10 ? pct.toFixed(1) : pct.toFixed(0)}%`;
}

export interface MachineInfo {
  cpu: string;
  nproc: number;
  node: string;
  os: string;
  load: string;
}

export function machine(): MachineInfo {
  const cs = cpus();
  return {
    cpu: cs[0]?.model.trim() ?? 'unknown',
    nproc: cs.length,
    node: process.version,
    os: `${process.platform} ${release()}`,
    load: loadavg()
      .map((l) => l.toFixed(2))
      .join(' '),
  };
}

export function machineLine(m: MachineInfo = machine()): string {
  return `machine: ${m.cpu}, ${m.nproc} cpus, node ${m.node}, ${m.os} (load avg ${m.load})`;
}
