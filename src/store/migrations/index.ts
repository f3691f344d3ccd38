import type { Migration } from 'kysely';
import type { DialectName } from '../dialect.js';
import { up0001 } from './0001_initial.js';
import { up0002 } from './0002_runs.js';
import { up0003 } from './0003_pods.js';
import { up0004 } from './0004_events.js';
import { up0005 } from './0005_sweeps.js';
import { up0006 } from './0006_coordination.js';
import { up0007 } from './0007_tracing.js';
import { up0008 } from './0008_event_type_index.js';
import { up0009 } from './0009_drop_event_entity_index.js';

/**
 * Append-only list of migrations. A shipped migration is never edited: add the next number.
 * Kysely's Migrator keeps the ledger (schema_migrations) and the lock (schema_migrations_lock).
 */
export function migrationsFor(dialect: DialectName): Record<string, Migration> {
  return {
    '0001_initial': { up: up0001(dialect) },
    '0002_runs': { up: up0002(dialect) },
    '0003_pods': { up: up0003(dialect) },
    '0004_events': { up: up0004(dialect) },
    '0005_sweeps': { up: up0005(dialect) },
    '0006_coordination': { up: up0006(dialect) },
    '0007_tracing': { up: up0007(dialect) },
    '0008_event_type_index': { up: up0008(dialect) },
    '0009_drop_event_entity_index': { up: up0009(dialect) },
  };
}
