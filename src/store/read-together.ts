import { type Compilable, type CompiledQuery, isCompilable } from 'kysely';
import { isPostgres } from './bulk-sql.js';
import type { Executor } from './database.js';
import { readsTogether } from './postgres-dialect.js';

type Read = Compilable<unknown> | CompiledQuery<unknown>;
type Rows<Q> = {
  -readonly [K in keyof Q]: Q[K] extends Compilable<infer O>
    ? O[]
    : Q[K] extends CompiledQuery<infer O>
      ? O[]
      : never;
};

/**
 * Runs reads that do not depend on each other's results, and answers with each one's rows in
 * order. On Postgres they go in one round trip (in a transaction, with its BEGIN and outbox lock
 * when they are its first statements; outside one, in one implicit transaction, so they see one
 * snapshot). On SQLite they run one after another, which costs no round trip. A statement read
 * for its rows may change what it returns (an `UPDATE … RETURNING` claiming a row): the reads
 * after it then see the change, and outside a transaction it is durable before the answer, as
 * any write is.
 */
export async function readTogether<const Q extends readonly Read[]>(
  db: Executor,
  queries: Q,
): Promise<Rows<Q>> {
  const compiled = queries.map((q) => (isCompilable(q) ? q.compile() : q));
  if (isPostgres(db)) {
    const r = await db.executeQuery<unknown[]>(readsTogether(compiled));
    return r.rows as Rows<Q>;
  }
  const out: unknown[][] = [];
  for (const q of compiled) out.push((await db.executeQuery(q)).rows as unknown[]);
  return out as Rows<Q>;
}
