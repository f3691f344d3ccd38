/**
 * Work a transaction defers to just before it commits (e.g. writing its outbox events in one
 * statement instead of one per change). Store.transaction opens and runs the hooks; code
 * handed a transaction registers them. Keyed by the transaction object, so nothing leaks.
 */
type Hook = () => Promise<void>;
const open = new WeakMap<object, Hook[]>();

export function openCommitHooks(tx: object): void {
  open.set(tx, []);
}

/** Registers a hook; false when `tx` is not a transaction opened by the store. */
export function beforeCommit(tx: object, hook: Hook): boolean {
  const hooks = open.get(tx);
  if (!hooks) return false;
  hooks.push(hook);
  return true;
}

export async function runCommitHooks(tx: object): Promise<void> {
  const hooks = open.get(tx);
  // A hook may register another; run until none is left.
  while (hooks && hooks.length > 0) await hooks.shift()?.();
  open.delete(tx);
}
