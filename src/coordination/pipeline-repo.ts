import type { Insertable, Selectable, Updateable } from 'kysely';
import type { Executor } from '../store/database.js';
import type { PipelineAppliedEventsTable, PipelineStagesTable, PipelinesTable } from '../store/schema.js';

export type PipelineRow = Selectable<PipelinesTable>;
export type StageRow = Selectable<PipelineStagesTable>;

/** The only place with SQL for pipelines: one statement per method. */
export const pipelineRepo = {
  async insert(db: Executor, row: Omit<Insertable<PipelinesTable>, 'seq'>): Promise<void> {
    await db.insertInto('pipelines').values(row).execute();
  },

  async get(db: Executor, id: string): Promise<PipelineRow | undefined> {
    return db.selectFrom('pipelines').selectAll().where('id', '=', id).executeTakeFirst();
  },

  /** The config's pipeline now: its newest start. */
  async latestForConfig(db: Executor, configKey: string): Promise<PipelineRow | undefined> {
    return db
      .selectFrom('pipelines')
      .selectAll()
      .where('config_key', '=', configKey)
      .orderBy('seq', 'desc')
      .limit(1)
      .executeTakeFirst();
  },

  /** The newest pipeline of every config. */
  async listLatest(db: Executor): Promise<PipelineRow[]> {
    return db
      .selectFrom('pipelines as p')
      .selectAll('p')
      .where('p.seq', 'in', (q) =>
        q
          .selectFrom('pipelines')
          .select((eb) => eb.fn.max('seq').as('m'))
          .groupBy('config_key'),
      )
      .orderBy('p.config_key')
      .execute();
  },

  async listByStatus(db: Executor, status: string): Promise<PipelineRow[]> {
    return db.selectFrom('pipelines').selectAll().where('status', '=', status).execute();
  },

  async update(db: Executor, id: string, patch: Updateable<PipelinesTable>): Promise<void> {
    await db.updateTable('pipelines').set(patch).where('id', '=', id).execute();
  },

  async insertStage(db: Executor, row: Insertable<PipelineStagesTable>): Promise<void> {
    await db.insertInto('pipeline_stages').values(row).execute();
  },

  async getStage(
    db: Executor,
    pipelineId: string,
    stage: string,
    attempt: number,
  ): Promise<StageRow | undefined> {
    return db
      .selectFrom('pipeline_stages')
      .selectAll()
      .where('pipeline_id', '=', pipelineId)
      .where('stage', '=', stage)
      .where('attempt', '=', attempt)
      .executeTakeFirst();
  },

  async stageByJob(db: Executor, jobId: string): Promise<StageRow | undefined> {
    return db.selectFrom('pipeline_stages').selectAll().where('job_id', '=', jobId).executeTakeFirst();
  },

  /** The stages of these jobs (`stageByJob` for many); `jobIds` not empty. */
  async stagesByJobs(db: Executor, jobIds: readonly string[]): Promise<StageRow[]> {
    return db.selectFrom('pipeline_stages').selectAll().where('job_id', 'in', jobIds).execute();
  },

  async stagesOf(db: Executor, pipelineId: string): Promise<StageRow[]> {
    return db
      .selectFrom('pipeline_stages')
      .selectAll()
      .where('pipeline_id', '=', pipelineId)
      .orderBy('created_at')
      .orderBy('attempt')
      .execute();
  },

  /** Stage attempts waiting to be launched (a launch that was refused or interrupted). */
  async launching(db: Executor): Promise<StageRow[]> {
    return db.selectFrom('pipeline_stages').selectAll().where('status', '=', 'launching').execute();
  },

  async updateStage(
    db: Executor,
    key: { pipeline_id: string; stage: string; attempt: number },
    patch: Updateable<PipelineStagesTable>,
  ): Promise<void> {
    await db
      .updateTable('pipeline_stages')
      .set(patch)
      .where('pipeline_id', '=', key.pipeline_id)
      .where('stage', '=', key.stage)
      .where('attempt', '=', key.attempt)
      .execute();
  },

  /** Records that a pipeline applied (or ignored) an event; false when it already had. */
  async markApplied(db: Executor, row: PipelineAppliedEventsTable): Promise<boolean> {
    const r = await db
      .insertInto('pipeline_applied_events')
      .values(row)
      .onConflict((oc) => oc.column('event_id').doNothing())
      .executeTakeFirst();
    return Number(r.numInsertedOrUpdatedRows ?? 0) > 0;
  },
};
