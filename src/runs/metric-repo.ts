import type { Selectable } from 'kysely';
import type { Executor } from '../store/database.js';
import type { RunMetricsTable } from '../store/schema.js';

export type MetricRow = Selectable<RunMetricsTable>;

/** SQL of the run_metrics series: one row per (run, metric, step); a re-reported step replaces it. */
export const metricRepo = {
  async upsert(tx: Executor, rows: readonly MetricRow[]): Promise<void> {
    for (let i = 0; i < rows.length; i += 500) {
      await tx
        .insertInto('run_metrics')
        .values(rows.slice(i, i + 500))
        .onConflict((oc) =>
          oc.columns(['run_id', 'name', 'step']).doUpdateSet((eb) => ({
            value: eb.ref('excluded.value'),
            recorded_at: eb.ref('excluded.recorded_at'),
          })),
        )
        .execute();
    }
  },

  async series(
    db: Executor,
    runId: string,
    f: { names?: readonly string[]; fromStep?: number; toStep?: number },
  ): Promise<MetricRow[]> {
    let q = db.selectFrom('run_metrics').selectAll().where('run_id', '=', runId);
    if (f.names && f.names.length > 0) q = q.where('name', 'in', f.names);
    if (f.fromStep !== undefined) q = q.where('step', '>=', f.fromStep);
    if (f.toStep !== undefined) q = q.where('step', '<=', f.toStep);
    return q.orderBy('name').orderBy('step').execute();
  },
};
