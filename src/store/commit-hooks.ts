/**
 * Work a transaction defers to just before it commits (e.g. writing its outbox events in one
 * statement instead of one per change), and the event types it wrote, which the store announces
 * with the commit so listeners can skip commits that carry nothing for them. Store.transaction
 * opens and runs the hooks; code handed a transaction registers them. Keyed by the transaction
 * object, so nothing leaks.
 */
type Hook = () => Promise<void>;
interface Open {
  hooks: Hook[];
  eventTypes: Set<string>;
}
const open = new WeakMap<object, Open>();

export function openCommitHooks(tx: object): void {
  open.set(tx, { hooks: [], eventTypes: new Set() });
}

/** Registers a hook; false when `tx` is not a transaction opened by the store. */
export function beforeCommit(tx: object, hook: Hook): boolean {
  const o = open.get(tx);
  if (!o) return false;
  o.hooks.push(hook);
  return true;
}

/** Records event types the transaction writes to the outbox (announced with its commit). */
export function noteEventTypes(tx: object, types: Iterable<string>): void {
  const o = open.get(tx);
  if (o) for (const t of types) o.eventTypes.add(t);
}

/** Runs the hooks; resolves with the event types the transaction wrote. */
export async function runCommitHooks(tx: object): Promise<ReadonlySet<string>> {
  const o = open.get(tx);
  // A hook may register another; run until none is left.
  while (o && o.hooks.length > 0) await o.hooks.shift()?.();
  open.delete(tx);
  return o?.eventTypes ?? new Set();
}
