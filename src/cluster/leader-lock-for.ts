import type { Logger } from 'pino';
import type { Store } from '../store/database.js';
import { type LeaderLock, SingleProcessLock } from './leader-elector.js';
import { PostgresLeaderLock } from './postgres-leader-lock.js';

/**
 * The leader lock for this store: a Postgres session advisory lock where replicas can share the
 * database, the single-process lock on SQLite (one process owns the file).
 */
export function leaderLockFor(store: Store, databaseUrl: string, log: Logger): LeaderLock {
  if (!store.caps.advisoryLocks) return new SingleProcessLock();
  if (/^postgres(ql)?:\/\//.test(databaseUrl)) return new PostgresLeaderLock(databaseUrl);
  // Only an embedder that hands startController a Postgres store without its URL gets here.
  log.warn('no Postgres URL for the leader lock session; this replica assumes it is the only one');
  return new SingleProcessLock();
}
