import type { DispatcherSpec } from '../model.js';
import type { Dispatcher } from './dispatcher.js';
import { DispatcherUnavailable } from './dispatcher.js';

type PoolSpec = Extract<DispatcherSpec, { type: 'pool' }>;
type MemberSpec = Exclude<DispatcherSpec, { type: 'pool' }>;

/** Per-sweep options a dispatcher receives with each launch. */
export function optionsOf(spec: MemberSpec): Record<string, unknown> {
  const { type: _type, ...options } = spec;
  return options;
}

/**
 * Which dispatcher takes a job of a sweep: its own, or for a pool the first member routed to
 * this kind of job that is available (training → Slurm, evaluation → local, …), falling back to
 * the next when one is down.
 */
export async function route(
  spec: DispatcherSpec,
  kind: 'train' | 'eval',
  dispatchers: ReadonlyMap<string, Dispatcher>,
): Promise<Array<{ dispatcher: Dispatcher; options: Record<string, unknown> }>> {
  const candidates: MemberSpec[] = spec.type === 'pool' ? poolCandidates(spec, kind) : [spec];
  const out: Array<{ dispatcher: Dispatcher; options: Record<string, unknown> }> = [];
  const down: string[] = [];
  for (const c of candidates) {
    const d = dispatchers.get(c.type);
    if (!d) {
      down.push(`${c.type} (not configured)`);
      continue;
    }
    if (spec.type === 'pool' && !(await d.available().catch(() => false))) {
      down.push(`${c.type} (down)`);
      continue;
    }
    out.push({ dispatcher: d, options: optionsOf(c) });
  }
  if (out.length === 0)
    throw new DispatcherUnavailable(spec.type, `no dispatcher can take the job: ${down.join(', ')}`);
  return out;
}

function poolCandidates(spec: PoolSpec, kind: 'train' | 'eval'): MemberSpec[] {
  const names = kind === 'train' ? spec.train : spec.eval;
  return names.map((n) => spec.members[n]).filter((m): m is MemberSpec => m !== undefined);
}
