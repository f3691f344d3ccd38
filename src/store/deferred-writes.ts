import { CompiledQuery } from 'kysely';
import { type BulkStatement, CHUNK, isPostgres } from './bulk-sql.js';
import { beforeCommit } from './commit-hooks.js';
import type { Executor } from './database.js';
import { sendWithNext } from './postgres-dialect.js';

interface Deferred {
  stmt: BulkStatement<unknown>;
  rows: unknown[];
}

const pending = new WeakMap<object, Map<BulkStatement<unknown>, Deferred>>();
const ids = new WeakMap<BulkStatement<unknown>, number>();
let nextId = 1;
const combined = new Map<string, string>();

/**
 * Writes that nothing later in the transaction reads back (outbox events, audit entries, a new
 * command, an acknowledgement stamp, a heartbeat batch's runs), made just before the commit.
 * The rows of one statement are written by one statement in the order they were deferred. On
 * Postgres every deferred write of the transaction goes to the server in one statement, all but
 * the last as data-modifying CTEs, sent together with COMMIT (`sendWithNext`): the writes cost no
 * round trip of their own, and an error in them fails the commit, so the transaction rolls back.
 * The parts of a combined statement run in no defined order and see none of each other's rows,
 * so an UPDATE of a table another deferred write touches makes them separate statements instead
 * (still sent together with COMMIT, one after another). On SQLite they run one after another.
 * Outside a store transaction the rows are written at once.
 */
export async function deferWrite<Row>(
  tx: Executor,
  stmt: BulkStatement<Row>,
  rows: readonly Row[],
): Promise<void> {
  if (rows.length === 0) return;
  const key = stmt as BulkStatement<unknown>;
  let writes = pending.get(tx);
  if (!writes) {
    const fresh = new Map<BulkStatement<unknown>, Deferred>();
    if (
      !beforeCommit(tx, () => {
        // Rows deferred from here on (by a later commit hook) get a flush of their own.
        pending.delete(tx);
        return flush(tx, fresh);
      })
    )
      return stmt(tx, rows);
    pending.set(tx, fresh);
    writes = fresh;
  }
  const entry = writes.get(key);
  if (entry) entry.rows.push(...rows);
  else writes.set(key, { stmt: key, rows: [...rows] });
}

async function flush(tx: Executor, writes: Map<BulkStatement<unknown>, Deferred>): Promise<void> {
  const parts = [...writes.values()];
  if (!isPostgres(tx)) {
    for (const p of parts) await p.stmt(tx, p.rows);
    return;
  }
  if (parts.length === 1 || parts.some((p) => p.rows.length > CHUNK) || dependent(parts)) {
    for (const p of parts)
      for (const q of p.stmt.compile(true, p.rows)) await tx.executeQuery(sendWithNext(q));
    return;
  }
  const params = parts.map((p) => p.stmt.params(p.rows));
  const shape = parts.map((p) => `${statementId(p.stmt)}:${p.rows.length}`).join(',');
  let text = combined.get(shape);
  if (text === undefined) {
    let offset = 0;
    const texts = parts.map((p, i) => {
      const t = p.stmt.text(true, p.rows.length, offset);
      offset += params[i]?.length ?? 0;
      return t;
    });
    const last = texts.pop() as string;
    text = `WITH ${texts.map((t, i) => `w${i + 1} AS (${t})`).join(', ')} ${last}`;
    if (combined.size >= 1000) combined.clear();
    combined.set(shape, text);
  }
  await tx.executeQuery(sendWithNext(CompiledQuery.raw(text, params.flat())));
}

/** Whether an UPDATE among the parts targets a table another part writes. */
function dependent(parts: readonly Deferred[]): boolean {
  return parts.some((u) => u.stmt.update && parts.some((o) => o !== u && o.stmt.table === u.stmt.table));
}

function statementId(stmt: BulkStatement<unknown>): number {
  let id = ids.get(stmt);
  if (id === undefined) {
    id = nextId++;
    ids.set(stmt, id);
  }
  return id;
}
