import type { Selectable, Updateable } from 'kysely';
import { bulkSelect, bulkStatement } from '../store/bulk-sql.js';
import type { Executor } from '../store/database.js';
import { deferWrite } from '../store/deferred-writes.js';
import type { RunsTable } from '../store/schema.js';

export type RunRow = Selectable<RunsTable>;
export type NewRunRow = Omit<RunRow, 'seq'>;
export type RunPatch = Updateable<Omit<RunsTable, 'seq' | 'id'>>;

export interface RunFilter {
  status?: string | undefined;
  health?: string | undefined;
  sweep?: string | undefined;
  labels?: Array<[string, string]>;
  /** Newest first: rows with seq below this. */
  beforeSeq?: number | undefined;
  limit: number;
}

/** What a heartbeat reads of its run and writes back: the run's liveness and progress. */
export type HeartbeatState = Pick<
  RunRow,
  | 'id'
  | 'status'
  | 'health'
  | 'step'
  | 'samples_per_sec'
  | 'loss'
  | 'checkpoint_version'
  | 'last_error'
  | 'notes'
  | 'queued_commands'
  | 'summary'
  | 'last_heartbeat_at'
>;

/** A run as an accepted heartbeat leaves it; `statusChanged`: its status or health moved. */
export interface HeartbeatWrite {
  row: HeartbeatState;
  statusChanged: boolean;
}

/** What a heartbeat writes, each with its SQL type (VALUES rows need casts on Postgres). */
const HEARTBEAT_WRITE = {
  id: 'text',
  status: 'text',
  step: 'bigint',
  samples_per_sec: 'double precision',
  loss: 'double precision',
  checkpoint_version: 'bigint',
  last_error: 'text',
  notes: 'text',
  queued_commands: 'text',
  summary: 'text',
  last_heartbeat_at: 'bigint',
} as const satisfies Partial<Record<keyof HeartbeatState, string>>;
const HEARTBEAT_COLUMNS = Object.keys(HEARTBEAT_WRITE) as Array<keyof typeof HEARTBEAT_WRITE>;
const HEARTBEAT_CASTS = HEARTBEAT_COLUMNS.map((c) => HEARTBEAT_WRITE[c]);
/** One VALUES row; its columns are column1… in HEARTBEAT_WRITE's order. */
const heartbeatTuple = (ph: readonly string[]): string =>
  `(${ph.map((p, i) => `CAST(${p} AS ${HEARTBEAT_CASTS[i]})`).join(', ')})`;
/** The VALUES column that carries `c`. */
const v = (c: keyof typeof HEARTBEAT_WRITE): string => `v.column${HEARTBEAT_COLUMNS.indexOf(c) + 1}`;
const HEARTBEAT_SET = [
  ...HEARTBEAT_COLUMNS.filter((c) => c !== 'id' && c !== 'status').map((c) => `${c} = ${v(c)}`),
  'liveness_extension_ms = 0',
  `updated_at = ${v('last_heartbeat_at')}`,
].join(', ');
const heartbeatWithStatus = bulkStatement<HeartbeatState>({
  table: 'runs',
  update: true,
  columns: HEARTBEAT_COLUMNS,
  tuple: heartbeatTuple,
  statement: (tuples) => `UPDATE runs SET status = ${v('status')}, health = 'healthy', ${HEARTBEAT_SET}
    FROM (VALUES ${tuples}) AS v WHERE runs.id = ${v('id')}`,
});
const heartbeatSameStatus = bulkStatement<HeartbeatState>({
  table: 'runs',
  update: true,
  columns: HEARTBEAT_COLUMNS,
  tuple: heartbeatTuple,
  statement: (tuples) =>
    `UPDATE runs SET ${HEARTBEAT_SET} FROM (VALUES ${tuples}) AS v WHERE runs.id = ${v('id')}`,
});

const selectHeartbeatStates = bulkSelect<{ id: string }, HeartbeatState>({
  columns: ['id'],
  tuple: ([id]) => `${id}`,
  statement: (ids) => `select ${[...HEARTBEAT_COLUMNS, 'health'].join(', ')} from runs where id in (${ids})`,
});

/** SQL of the runs table and its labels. */
export const runRepo = {
  async insert(tx: Executor, row: NewRunRow): Promise<number> {
    const r = await tx.insertInto('runs').values(row).returning('seq').executeTakeFirstOrThrow();
    return Number(r.seq);
  },

  async insertLabels(
    tx: Executor,
    runId: string,
    seq: number,
    labels: Record<string, string>,
  ): Promise<void> {
    const rows = Object.entries(labels).map(([key, value]) => ({ run_id: runId, run_seq: seq, key, value }));
    if (rows.length > 0) await tx.insertInto('run_labels').values(rows).execute();
  },

  async get(db: Executor, id: string): Promise<RunRow | undefined> {
    return db.selectFrom('runs').selectAll().where('id', '=', id).executeTakeFirst();
  },

  async getMany(db: Executor, ids: readonly string[]): Promise<RunRow[]> {
    if (ids.length === 0) return [];
    return db.selectFrom('runs').selectAll().where('id', 'in', ids).execute();
  },

  /** The heartbeat state of each run that exists (the columns a heartbeat checks and merges). */
  async heartbeatStates(db: Executor, ids: readonly string[]): Promise<HeartbeatState[]> {
    return selectHeartbeatStates(
      db,
      ids.map((id) => ({ id })),
    );
  },

  async update(tx: Executor, id: string, patch: RunPatch): Promise<void> {
    await tx.updateTable('runs').set(patch).where('id', '=', id).execute();
  },

  /**
   * Applies a batch of accepted heartbeats in one statement per kind (UPDATE … FROM VALUES; both
   * dialects name the VALUES columns column1…): a burst of learners costs one round trip, not
   * one each. Rows whose status and health stay as they were are written without those columns,
   * so SQLite leaves the status and health indexes alone (it rewrites an index whose column is
   * set, even to the same value). Deferred to the commit (`deferWrite`): nothing later in the
   * batch's transaction reads the runs back, and on Postgres the updates then travel with the
   * batch's other writes and its COMMIT.
   */
  async applyHeartbeats(tx: Executor, rows: readonly HeartbeatWrite[]): Promise<void> {
    const moved = rows.filter((r) => r.statusChanged).map((r) => r.row);
    const kept = rows.filter((r) => !r.statusChanged).map((r) => r.row);
    await deferWrite(tx, heartbeatWithStatus, moved);
    await deferWrite(tx, heartbeatSameStatus, kept);
  },

  async list(db: Executor, f: RunFilter): Promise<RunRow[]> {
    let q = db.selectFrom('runs').selectAll();
    if (f.status) q = q.where('status', '=', f.status);
    if (f.health) q = q.where('health', '=', f.health);
    if (f.sweep) q = q.where('sweep_id', '=', f.sweep);
    if (f.beforeSeq !== undefined) q = q.where('seq', '<', f.beforeSeq);
    for (const [key, value] of f.labels ?? []) {
      q = q.where((eb) =>
        eb.exists(
          eb
            .selectFrom('run_labels')
            .select('run_labels.run_id')
            .whereRef('run_labels.run_id', '=', 'runs.id')
            .where('run_labels.key', '=', key)
            .where('run_labels.value', '=', value),
        ),
      );
    }
    return q.orderBy('seq', 'desc').limit(f.limit).execute();
  },

  /**
   * Runs the liveness monitor must escalate: watched, heard from before, and silent past the
   * stale deadline (extension included) without already being unresponsive.
   */
  async silentSince(
    db: Executor,
    statuses: readonly string[],
    staleBefore: number,
    limit: number,
  ): Promise<RunRow[]> {
    return db
      .selectFrom('runs')
      .selectAll()
      .where('status', 'in', statuses)
      .where('health', '!=', 'unresponsive')
      .where('last_heartbeat_at', 'is not', null)
      .where((eb) => eb(eb('last_heartbeat_at', '+', eb.ref('liveness_extension_ms')), '<=', staleBefore))
      .orderBy('seq')
      .limit(limit)
      .execute();
  },

  async byJob(db: Executor, jobId: string): Promise<RunRow[]> {
    return db.selectFrom('runs').selectAll().where('job_id', '=', jobId).execute();
  },

  async countByStatusHealth(db: Executor): Promise<Array<{ status: string; health: string; n: number }>> {
    const rows = await db
      .selectFrom('runs')
      .select(['status', 'health', (eb) => eb.fn.countAll<number>().as('n')])
      .groupBy(['status', 'health'])
      .execute();
    return rows.map((r) => ({ status: r.status, health: r.health, n: Number(r.n) }));
  },
};
