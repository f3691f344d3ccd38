import type { Selectable } from 'kysely';
import type { Executor } from '../store/database.js';
import type { EndpointsTable } from '../store/schema.js';

export type EndpointRow = Selectable<EndpointsTable>;

/** SQL for the endpoint registry. Lookups only return endpoints of RUNNING jobs. */
export const endpointRepo = {
  async insert(tx: Executor, row: EndpointRow): Promise<void> {
    await tx.insertInto('endpoints').values(row).execute();
  },

  async get(db: Executor, id: string): Promise<EndpointRow | undefined> {
    return db.selectFrom('endpoints').selectAll().where('id', '=', id).executeTakeFirst();
  },

  async delete(tx: Executor, id: string): Promise<boolean> {
    const r = await tx.deleteFrom('endpoints').where('id', '=', id).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  },

  /** Removes every endpoint of a job that ended; returns what was removed. */
  async deleteForJobs(tx: Executor, jobIds: readonly string[]): Promise<EndpointRow[]> {
    if (jobIds.length === 0) return [];
    return tx.deleteFrom('endpoints').where('job_id', 'in', jobIds).returningAll().execute();
  },

  /** The jobs of these attempts that have endpoints (to read with them); `attemptIds` not empty. */
  jobsWithEndpointsQuery(db: Executor, attemptIds: readonly string[]) {
    return db
      .selectFrom('endpoints')
      .select('job_id')
      .distinct()
      .where('job_id', 'in', (eb) =>
        eb.selectFrom('attempts').select('job_id').where('id', 'in', attemptIds),
      );
  },

  async deleteForJob(tx: Executor, jobId: string): Promise<EndpointRow[]> {
    return tx.deleteFrom('endpoints').where('job_id', '=', jobId).returningAll().execute();
  },

  async findLive(
    db: Executor,
    by: { name?: string | undefined; prefix?: string | undefined },
  ): Promise<EndpointRow[]> {
    let q = db
      .selectFrom('endpoints')
      .innerJoin('jobs', 'jobs.id', 'endpoints.job_id')
      .selectAll('endpoints')
      .where('jobs.state', '=', 'RUNNING');
    if (by.name !== undefined) q = q.where('endpoints.name', '=', by.name);
    if (by.prefix !== undefined && by.prefix !== '') {
      // A range scan instead of LIKE, so prefixes containing % or _ behave.
      q = q.where('endpoints.name', '>=', by.prefix).where('endpoints.name', '<', `${by.prefix}\u{10FFFF}`);
    }
    return q.orderBy('endpoints.name').orderBy('endpoints.created_at').execute();
  },
};
