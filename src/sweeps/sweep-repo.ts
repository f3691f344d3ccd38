import type { Selectable, Updateable } from 'kysely';
import type { Executor } from '../store/database.js';
import type { SweepsTable, SweepTrialsTable } from '../store/schema.js';

export type SweepRow = Selectable<SweepsTable>;
export type TrialRow = Selectable<SweepTrialsTable>;
export type SweepPatch = Updateable<Omit<SweepsTable, 'seq' | 'id'>>;
export type TrialPatch = Updateable<Omit<SweepTrialsTable, 'sweep_id' | 'number'>>;

/** SQL of sweeps and their trials. */
export const sweepRepo = {
  async insert(tx: Executor, row: Omit<SweepRow, 'seq'>): Promise<void> {
    await tx.insertInto('sweeps').values(row).execute();
  },

  async get(db: Executor, id: string): Promise<SweepRow | undefined> {
    return db.selectFrom('sweeps').selectAll().where('id', '=', id).executeTakeFirst();
  },

  async getMany(db: Executor, ids: readonly string[]): Promise<SweepRow[]> {
    if (ids.length === 0) return [];
    return db.selectFrom('sweeps').selectAll().where('id', 'in', ids).execute();
  },

  async list(
    db: Executor,
    f: { status?: string | undefined; beforeSeq?: number | undefined; limit: number },
  ): Promise<SweepRow[]> {
    let q = db.selectFrom('sweeps').selectAll();
    if (f.status) q = q.where('status', '=', f.status);
    if (f.beforeSeq !== undefined) q = q.where('seq', '<', f.beforeSeq);
    return q.orderBy('seq', 'desc').limit(f.limit).execute();
  },

  /** Sweeps the controller loop works on. */
  async activeIds(db: Executor, statuses: readonly string[]): Promise<string[]> {
    const rows = await db
      .selectFrom('sweeps')
      .select('id')
      .where('status', 'in', statuses)
      .orderBy('seq')
      .execute();
    return rows.map((r) => r.id);
  },

  async update(tx: Executor, id: string, patch: SweepPatch): Promise<void> {
    await tx.updateTable('sweeps').set(patch).where('id', '=', id).execute();
  },

  /**
   * Takes or renews the lease of a sweep for one controller process: granted when free,
   * expired, or already ours. Replicas on one Postgres never drive the same sweep at once.
   */
  async claimLease(tx: Executor, id: string, owner: string, now: number, until: number): Promise<boolean> {
    const r = await tx
      .updateTable('sweeps')
      .set({ lease_owner: owner, lease_until: until })
      .where('id', '=', id)
      .where((eb) =>
        eb.or([eb('lease_owner', 'is', null), eb('lease_owner', '=', owner), eb('lease_until', '<', now)]),
      )
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  },

  async insertTrial(tx: Executor, row: TrialRow): Promise<void> {
    await tx.insertInto('sweep_trials').values(row).execute();
  },

  async trials(db: Executor, sweepId: string): Promise<TrialRow[]> {
    return db
      .selectFrom('sweep_trials')
      .selectAll()
      .where('sweep_id', '=', sweepId)
      .orderBy('number')
      .execute();
  },

  async trialsOfSweeps(db: Executor, sweepIds: readonly string[]): Promise<TrialRow[]> {
    if (sweepIds.length === 0) return [];
    return db
      .selectFrom('sweep_trials')
      .selectAll()
      .where('sweep_id', 'in', sweepIds)
      .orderBy('sweep_id')
      .orderBy('number')
      .execute();
  },

  async getTrial(db: Executor, sweepId: string, number: number): Promise<TrialRow | undefined> {
    return db
      .selectFrom('sweep_trials')
      .selectAll()
      .where('sweep_id', '=', sweepId)
      .where('number', '=', number)
      .executeTakeFirst();
  },

  async updateTrial(tx: Executor, sweepId: string, number: number, patch: TrialPatch): Promise<void> {
    await tx
      .updateTable('sweep_trials')
      .set(patch)
      .where('sweep_id', '=', sweepId)
      .where('number', '=', number)
      .execute();
  },

  /** Counts of trials by status, for every listed sweep. */
  async statusCounts(
    db: Executor,
    sweepIds: readonly string[],
  ): Promise<Array<{ sweep_id: string; status: string; n: number }>> {
    if (sweepIds.length === 0) return [];
    const rows = await db
      .selectFrom('sweep_trials')
      .select(['sweep_id', 'status', (eb) => eb.fn.countAll<number>().as('n')])
      .where('sweep_id', 'in', sweepIds)
      .groupBy(['sweep_id', 'status'])
      .execute();
    return rows.map((r) => ({ sweep_id: r.sweep_id, status: r.status, n: Number(r.n) }));
  },

  /** Every point of some metrics of some runs, in step order (schedulers' intermediate values). */
  async series(
    db: Executor,
    runIds: readonly string[],
    names: readonly string[],
  ): Promise<Array<{ run_id: string; name: string; step: number; value: number }>> {
    if (runIds.length === 0 || names.length === 0) return [];
    const out: Array<{ run_id: string; name: string; step: number; value: number }> = [];
    for (let i = 0; i < runIds.length; i += 500) {
      const rows = await db
        .selectFrom('run_metrics')
        .select(['run_id', 'name', 'step', 'value'])
        .where('run_id', 'in', runIds.slice(i, i + 500))
        .where('name', 'in', names)
        .orderBy('run_id')
        .orderBy('name')
        .orderBy('step')
        .execute();
      for (const r of rows)
        out.push({ run_id: r.run_id, name: r.name, step: Number(r.step), value: r.value });
    }
    return out;
  },
};
