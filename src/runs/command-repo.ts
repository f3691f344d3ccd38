import type { Selectable } from 'kysely';
import type { Executor } from '../store/database.js';
import type { RunCommandsTable } from '../store/schema.js';

export type CommandRow = Selectable<RunCommandsTable>;
export type NewCommandRow = Omit<CommandRow, 'seq'>;

/** SQL of the run_commands table: the command log and its delivery state. */
export const commandRepo = {
  async insert(tx: Executor, row: NewCommandRow): Promise<void> {
    await tx.insertInto('run_commands').values(row).execute();
  },

  async get(db: Executor, id: string): Promise<CommandRow | undefined> {
    return db.selectFrom('run_commands').selectAll().where('id', '=', id).executeTakeFirst();
  },

  async getMany(db: Executor, ids: readonly string[]): Promise<CommandRow[]> {
    if (ids.length === 0) return [];
    return db.selectFrom('run_commands').selectAll().where('id', 'in', ids).execute();
  },

  /**
   * Claims the run's oldest deliverable command in one statement: it stamps the delivery and
   * hides the command until `visibleAgainAt`. Two polls racing for it cannot both get this
   * delivery (the loser's re-checked WHERE no longer matches); undefined when none is due.
   */
  async claimNext(
    db: Executor,
    runId: string,
    now: number,
    visibleAgainAt: number,
  ): Promise<CommandRow | undefined> {
    return db
      .updateTable('run_commands')
      .set((eb) => ({
        delivered_at: now,
        visible_at: visibleAgainAt,
        delivery_count: eb('delivery_count', '+', 1),
      }))
      .where('id', '=', (eb) =>
        eb
          .selectFrom('run_commands as c')
          .select('c.id')
          .where('c.run_id', '=', runId)
          .where('c.acknowledged_at', 'is', null)
          .where('c.visible_at', '<=', now)
          .orderBy('c.seq')
          .limit(1),
      )
      .where('acknowledged_at', 'is', null)
      .where('visible_at', '<=', now)
      .returningAll()
      .executeTakeFirst();
  },

  /** When the next of the run's unacknowledged commands becomes deliverable (null: none). */
  async nextVisibleAt(db: Executor, runId: string): Promise<number | null> {
    const r = await db
      .selectFrom('run_commands')
      .select((eb) => eb.fn.min('visible_at').as('t'))
      .where('run_id', '=', runId)
      .where('acknowledged_at', 'is', null)
      .executeTakeFirst();
    return r?.t == null ? null : Number(r.t);
  },

  /** A command the learner reports holding counts as delivered even if no poll returned it. */
  async markSeen(tx: Executor, id: string, now: number): Promise<void> {
    await tx
      .updateTable('run_commands')
      .set({ delivered_at: now })
      .where('id', '=', id)
      .where('delivered_at', 'is', null)
      .execute();
  },

  async acknowledge(tx: Executor, id: string, now: number): Promise<void> {
    await tx
      .updateTable('run_commands')
      .set((eb) => ({
        acknowledged_at: now,
        delivered_at: eb.fn.coalesce('delivered_at', eb.val(now)),
      }))
      .where('id', '=', id)
      .where('acknowledged_at', 'is', null)
      .execute();
  },

  async listForRun(db: Executor, runId: string): Promise<CommandRow[]> {
    return db.selectFrom('run_commands').selectAll().where('run_id', '=', runId).orderBy('seq').execute();
  },

  async hasTerminate(db: Executor, runId: string): Promise<boolean> {
    const r = await db
      .selectFrom('run_commands')
      .select('id')
      .where('run_id', '=', runId)
      .where('type', '=', 'terminate')
      .limit(1)
      .executeTakeFirst();
    return r !== undefined;
  },
};
