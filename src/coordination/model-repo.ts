import type { Insertable, Selectable, Updateable } from 'kysely';
import type { Executor } from '../store/database.js';
import type { ModelsTable } from '../store/schema.js';

export type ModelRow = Selectable<ModelsTable>;

/** The only place with SQL for models: one statement per method. */
export const modelRepo = {
  async insert(db: Executor, row: Omit<Insertable<ModelsTable>, 'seq'>): Promise<void> {
    await db.insertInto('models').values(row).execute();
  },

  async get(db: Executor, id: string): Promise<ModelRow | undefined> {
    return db.selectFrom('models').selectAll().where('id', '=', id).executeTakeFirst();
  },

  async findByPath(db: Executor, configKey: string, path: string): Promise<ModelRow | undefined> {
    return db
      .selectFrom('models')
      .selectAll()
      .where('config_key', '=', configKey)
      .where('path', '=', path)
      .orderBy('seq', 'desc')
      .limit(1)
      .executeTakeFirst();
  },

  async production(db: Executor, configKey: string): Promise<ModelRow | undefined> {
    return db
      .selectFrom('models')
      .selectAll()
      .where('config_key', '=', configKey)
      .where('state', '=', 'production')
      .executeTakeFirst();
  },

  async list(
    db: Executor,
    q: { config_key?: string | undefined; state?: string | undefined; limit: number },
  ): Promise<ModelRow[]> {
    let query = db.selectFrom('models').selectAll();
    if (q.config_key) query = query.where('config_key', '=', q.config_key);
    if (q.state) query = query.where('state', '=', q.state);
    return query.orderBy('seq', 'desc').limit(q.limit).execute();
  },

  async update(db: Executor, id: string, patch: Updateable<ModelsTable>): Promise<void> {
    await db.updateTable('models').set(patch).where('id', '=', id).execute();
  },
};
