import type { Selectable } from 'kysely';
import type { Executor } from '../store/database.js';
import type { TokensTable } from '../store/schema.js';

export type TokenRow = Selectable<TokensTable>;

/** SQL for API tokens (only their SHA-256 hashes are stored). */
export const tokenRepo = {
  async insert(tx: Executor, row: TokenRow): Promise<void> {
    await tx.insertInto('tokens').values(row).execute();
  },
  async byHash(db: Executor, hash: string): Promise<TokenRow | undefined> {
    return db.selectFrom('tokens').selectAll().where('token_hash', '=', hash).executeTakeFirst();
  },
  async list(db: Executor): Promise<TokenRow[]> {
    return db.selectFrom('tokens').selectAll().where('role', '!=', 'learner').orderBy('created_at').execute();
  },
  async revoke(tx: Executor, id: string, now: number): Promise<boolean> {
    const r = await tx
      .updateTable('tokens')
      .set({ revoked_at: now })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  },
};
