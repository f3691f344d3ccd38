import { type Compilable, CompiledQuery } from 'kysely';
import { chunks } from '../shared/chunks.js';
import { isPostgres } from './bulk-sql.js';
import type { Executor } from './database.js';
import { sendWithNext } from './postgres-dialect.js';

/**
 * A guarded UPDATE or DELETE (its WHERE names the state it expects) whose outcome the caller
 * already knows: it read those rows in this store write, which holds the outbox lock, as every
 * writer of them does, so they cannot have changed since. It must change exactly `rows` rows, or
 * the transaction fails and rolls back. On Postgres it is sent with the transaction's next
 * statement (often COMMIT), so it costs no round trip of its own; the check runs in the server
 * (a data-modifying CTE whose count is compared there). On SQLite it runs at once.
 */
export async function writeExpecting(tx: Executor, query: Compilable<unknown>, rows: number): Promise<void> {
  if (rows === 0) return;
  const compiled = query.compile();
  if (!isPostgres(tx)) {
    const r = await tx.executeQuery(compiled);
    const changed = Number(r.numAffectedRows ?? 0);
    if (changed !== rows) throw new Error(`expected a write to change ${rows} rows, it changed ${changed}`);
    return;
  }
  const n = compiled.parameters.length + 1;
  // A count other than the expected one casts the message to an integer: an error that names it.
  const text =
    `with changed as (${compiled.sql} returning 1) ` +
    `select case when count(*) = $${n} then 0 ` +
    `else ('expected a write to change ' || $${n} || ' rows, it changed ' || count(*))::int end ` +
    'as unexpected from changed';
  await tx.executeQuery(sendWithNext(CompiledQuery.raw(text, [...compiled.parameters, rows])));
}

/**
 * `writeExpecting` over many ids, 500 at a time: `build` makes the guarded statement for a chunk,
 * which must change one row per id.
 */
export async function writeExpectingEach(
  tx: Executor,
  ids: readonly string[],
  build: (chunk: string[]) => Compilable<unknown>,
): Promise<void> {
  for (const chunk of chunks(ids, 500)) await writeExpecting(tx, build(chunk), chunk.length);
}
