export type DialectName = 'sqlite' | 'postgres';

/**
 * What a dialect can do, so services ask for a capability instead of branching on the
 * database name.
 */
export interface DialectCapabilities {
  /** Transaction-scoped advisory locks (Postgres); SQLite serialises writers by itself. */
  advisoryLocks: boolean;
  /** Several processes may share the database (Postgres); SQLite is one process. */
  multiProcess: boolean;
}

export const CAPABILITIES: Record<DialectName, DialectCapabilities> = {
  sqlite: { advisoryLocks: false, multiProcess: false },
  postgres: { advisoryLocks: true, multiProcess: true },
};
