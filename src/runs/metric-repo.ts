import type { Selectable } from 'kysely';
import { bulkInsert } from '../store/bulk-sql.js';
import type { Executor } from '../store/database.js';
import type { RunMetricsTable } from '../store/schema.js';

export type MetricRow = Selectable<RunMetricsTable>;

/** Every heartbeat writes two points, so this statement is built once per batch size. */
const upsertPoints = bulkInsert<MetricRow>(
  'run_metrics',
  ['run_id', 'name', 'step', 'value', 'recorded_at'],
  ' on conflict (run_id, name, step) do update set value = excluded.value, recorded_at = excluded.recorded_at',
);

/** SQL of the run_metrics series: one row per (run, metric, step); a re-reported step replaces it. */
export const metricRepo = {
  async upsert(tx: Executor, rows: readonly MetricRow[]): Promise<void> {
    await upsertPoints(tx, rows);
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
