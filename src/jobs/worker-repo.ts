import type { Selectable } from 'kysely';
import type { Executor } from '../store/database.js';
import type { WorkersTable } from '../store/schema.js';

export type WorkerRow = Selectable<WorkersTable>;

/** SQL for registered workers. */
export const workerRepo = {
  async getByName(db: Executor, name: string): Promise<WorkerRow | undefined> {
    return db.selectFrom('workers').selectAll().where('name', '=', name).executeTakeFirst();
  },

  async get(db: Executor, id: string): Promise<WorkerRow | undefined> {
    return workerRepo.getQuery(db, id).executeTakeFirst();
  },

  getQuery(db: Executor, id: string) {
    return db.selectFrom('workers').selectAll().where('id', '=', id);
  },

  async insert(tx: Executor, row: WorkerRow): Promise<void> {
    await tx.insertInto('workers').values(row).execute();
  },

  /** Re-registration: new capacity and address, healthy again. */
  async update(tx: Executor, id: string, set: Partial<Omit<WorkerRow, 'id' | 'name'>>): Promise<void> {
    await tx.updateTable('workers').set(set).where('id', '=', id).execute();
  },

  async list(db: Executor): Promise<WorkerRow[]> {
    return workerRepo.listQuery(db).execute();
  },

  listQuery(db: Executor) {
    return db.selectFrom('workers').selectAll().orderBy('registered_at').orderBy('id');
  },

  /** Records a heartbeat; returns the health the worker had before, or undefined if unknown. */
  async touch(tx: Executor, id: string, now: number): Promise<string | undefined> {
    const r = await tx
      .updateTable('workers')
      .set({ last_heartbeat_at: now, updated_at: now })
      .where('id', '=', id)
      .returning('health')
      .executeTakeFirst();
    return r?.health;
  },

  /** Healthy workers whose last heartbeat is older than the cutoff. */
  async silentSince(db: Executor, cutoff: number): Promise<WorkerRow[]> {
    return db
      .selectFrom('workers')
      .selectAll()
      .where('health', '=', 'healthy')
      .where('last_heartbeat_at', '<', cutoff)
      .execute();
  },

  async countByHealth(db: Executor): Promise<Array<{ health: string; n: number }>> {
    const rows = await db
      .selectFrom('workers')
      .select(['health', (eb) => eb.fn.countAll<number>().as('n')])
      .groupBy('health')
      .execute();
    return rows.map((r) => ({ health: r.health, n: Number(r.n) }));
  },
};
