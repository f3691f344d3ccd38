import { type Selectable, sql } from 'kysely';
import { chunks } from '../shared/chunks.js';
import type { Executor } from '../store/database.js';
import { writeExpectingEach } from '../store/expected-write.js';
import { sendWithNext } from '../store/postgres-dialect.js';
import type { AttemptsTable, JobsTable } from '../store/schema.js';

export type JobRow = Selectable<JobsTable>;
export type AttemptRow = Selectable<AttemptsTable>;
export type NewJobRow = Omit<JobRow, 'seq'>;

export interface JobFilter {
  state?: string | undefined;
  labels?: Array<[string, string]>;
  parent?: string | undefined;
  afterSeq?: number | undefined;
  limit: number;
}

/** Columns the scheduling pass needs of a pending job. */
export interface PendingJobRow {
  id: string;
  seq: number;
  cpu: number;
  memory_mb: number;
  gpu: number;
  device_type: string | null;
  gang_id: string | null;
  gang_size: number | null;
  reason: string | null;
  run_id: string | null;
  attempt_count: number;
}

const PENDING_COLUMNS = [
  'id',
  'seq',
  'cpu',
  'memory_mb',
  'gpu',
  'device_type',
  'gang_id',
  'gang_size',
  'reason',
  'run_id',
  'attempt_count',
] as const;

/** SQL for jobs and their attempts. One statement per method. */
export const jobRepo = {
  /** Inserts jobs in order (their seq follows it), in statements of 100; id → seq. */
  async insertMany(tx: Executor, jobs: readonly NewJobRow[]): Promise<Map<string, number>> {
    const seqs = new Map<string, number>();
    for (const chunk of chunks(jobs, 100)) {
      const rows = await tx.insertInto('jobs').values(chunk).returning(['id', 'seq']).execute();
      for (const r of rows) seqs.set(r.id, r.seq);
    }
    return seqs;
  },

  /** Labels of many jobs, in statements of 500 rows. */
  async insertLabelsMany(
    tx: Executor,
    jobs: ReadonlyArray<{ jobId: string; jobSeq: number; labels: Record<string, string> }>,
  ): Promise<void> {
    const rows = jobs.flatMap((j) =>
      Object.entries(j.labels).map(([key, value]) => ({ job_id: j.jobId, job_seq: j.jobSeq, key, value })),
    );
    for (const chunk of chunks(rows, 500)) await tx.insertInto('job_labels').values(chunk).execute();
  },

  async get(db: Executor, id: string): Promise<JobRow | undefined> {
    return db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();
  },

  async getMany(db: Executor, ids: readonly string[]): Promise<JobRow[]> {
    if (ids.length === 0) return [];
    return db.selectFrom('jobs').selectAll().where('id', 'in', ids).execute();
  },

  /** Which of these (parent_key, name) pairs are taken, as `${parent_key}\0${name}` keys. */
  async takenNames(
    db: Executor,
    pairs: ReadonlyArray<{ parent_key: string; name: string }>,
  ): Promise<Set<string>> {
    const byParent = new Map<string, string[]>();
    for (const p of pairs) byParent.set(p.parent_key, [...(byParent.get(p.parent_key) ?? []), p.name]);
    const taken = new Set<string>();
    for (const [parentKey, names] of byParent) {
      for (const chunk of chunks(names, 500)) {
        const rows = await db
          .selectFrom('jobs')
          .select('name')
          .where('parent_key', '=', parentKey)
          .where('name', 'in', chunk)
          .execute();
        for (const r of rows) taken.add(nameKey(parentKey, r.name));
      }
    }
    return taken;
  },

  async list(db: Executor, f: JobFilter): Promise<JobRow[]> {
    let q = db.selectFrom('jobs').selectAll();
    if (f.state) q = q.where('state', '=', f.state);
    if (f.parent) q = q.where('parent_job_id', '=', f.parent);
    if (f.afterSeq !== undefined) q = q.where('seq', '>', f.afterSeq);
    for (const [key, value] of f.labels ?? []) {
      q = q.where((eb) =>
        eb.exists(
          eb
            .selectFrom('job_labels')
            .select('job_labels.job_id')
            .whereRef('job_labels.job_id', '=', 'jobs.id')
            .where('job_labels.key', '=', key)
            .where('job_labels.value', '=', value),
        ),
      );
    }
    return q.orderBy('seq').limit(f.limit).execute();
  },

  async childrenOf(db: Executor, parentIds: readonly string[]): Promise<JobRow[]> {
    if (parentIds.length === 0) return [];
    return db.selectFrom('jobs').selectAll().where('parent_job_id', 'in', parentIds).execute();
  },

  async gangMembers(db: Executor, gangId: string): Promise<JobRow[]> {
    return db.selectFrom('jobs').selectAll().where('gang_id', '=', gangId).execute();
  },

  /** A page of pending jobs in FIFO order, with only what placement needs. */
  async pendingPage(db: Executor, afterSeq: number, limit: number): Promise<PendingJobRow[]> {
    return db
      .selectFrom('jobs')
      .select(PENDING_COLUMNS)
      .where('state', '=', 'PENDING')
      .where('seq', '>', afterSeq)
      .orderBy('seq')
      .limit(limit)
      .execute();
  },

  /** The pending members of the given gangs (a gang is placed whole, even across pages). */
  async pendingGangMembers(db: Executor, gangIds: readonly string[]): Promise<PendingJobRow[]> {
    if (gangIds.length === 0) return [];
    return db
      .selectFrom('jobs')
      .select(PENDING_COLUMNS)
      .where('state', '=', 'PENDING')
      .where('gang_id', 'in', gangIds)
      .orderBy('seq')
      .execute();
  },

  /**
   * Pending jobs submitted after `afterSeq` that no registered worker could hold even when
   * idle (couldFit false), or that some worker could (couldFit true).
   */
  async pendingByFit(
    db: Executor,
    afterSeq: number,
    couldFit: boolean,
    reasonPrefix?: string,
  ): Promise<PendingJobRow[]> {
    let q = db
      .selectFrom('jobs')
      .select(PENDING_COLUMNS)
      .where('state', '=', 'PENDING')
      .where('seq', '>', afterSeq);
    if (reasonPrefix !== undefined) q = q.where('reason', 'like', `${reasonPrefix}%`);
    return q
      .where((eb) => {
        const some = eb.exists(
          eb
            .selectFrom('workers')
            .select('workers.id')
            .where('workers.health', '!=', 'offline')
            .whereRef('workers.cpu', '>=', 'jobs.cpu')
            .whereRef('workers.memory_mb', '>=', 'jobs.memory_mb')
            .whereRef('workers.gpu', '>=', 'jobs.gpu')
            .where((w) =>
              w.or([
                w('jobs.device_type', 'is', null),
                w('workers.device_type', '=', w.ref('jobs.device_type')),
              ]),
            ),
        );
        return couldFit ? some : eb.not(some);
      })
      .execute();
  },

  /** Whether any job is pending (one index probe). */
  async anyPending(db: Executor): Promise<boolean> {
    const r = await db
      .selectFrom('jobs')
      .select('id')
      .where('state', '=', 'PENDING')
      .limit(1)
      .executeTakeFirst();
    return r !== undefined;
  },

  /** How many jobs are pending, and the smallest request among them in each dimension. */
  smallestPendingQuery(db: Executor) {
    return db
      .selectFrom('jobs')
      .select((eb) => [
        eb.fn.countAll<number>().as('n'),
        eb.fn.max('seq').as('max_seq'),
        eb.fn.min('cpu').as('cpu'),
        eb.fn.min('memory_mb').as('memory_mb'),
        eb.fn.min('gpu').as('gpu'),
      ])
      .where('state', '=', 'PENDING');
  },

  /** The answer of `smallestPendingQuery` (one row). */
  smallestPendingOf(
    rows: ReadonlyArray<{
      n: number | string;
      max_seq: number | string | null;
      cpu: number | string | null;
      memory_mb: number | string | null;
      gpu: number | string | null;
    }>,
  ): { n: number; cpu: number; memory_mb: number; gpu: number; maxSeq: number } {
    const r = rows[0];
    return {
      n: Number(r?.n ?? 0),
      cpu: Number(r?.cpu ?? 0),
      memory_mb: Number(r?.memory_mb ?? 0),
      gpu: Number(r?.gpu ?? 0),
      maxSeq: Number(r?.max_seq ?? 0),
    };
  },

  /** For each gang, how many members are no longer pending (placed, running or finished). */
  async gangNonPendingCounts(db: Executor, gangIds: readonly string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (let i = 0; i < gangIds.length; i += 500) {
      const rows = await db
        .selectFrom('jobs')
        .select(['gang_id', (eb) => eb.fn.countAll<number>().as('n')])
        .where('gang_id', 'in', gangIds.slice(i, i + 500))
        .where('state', '!=', 'PENDING')
        .groupBy('gang_id')
        .execute();
      for (const r of rows) if (r.gang_id) out.set(r.gang_id, Number(r.n));
    }
    return out;
  },

  /** Pending jobs whose scheduling timeout has passed; they become UNSCHEDULABLE. */
  async expiredPending(db: Executor, now: number): Promise<JobRow[]> {
    return db
      .selectFrom('jobs')
      .selectAll()
      .where('state', '=', 'PENDING')
      .where('scheduling_timeout_s', '>', 0)
      .where(sql<boolean>`pending_since + scheduling_timeout_s * 1000 <= ${now}`)
      .execute();
  },

  /**
   * Places pending jobs read in this store write (the scheduling pass): each moves to BUILDING
   * with its attempt count one higher and the attempt id derived from the two, so one statement
   * serves many jobs, with no round trip of its own on Postgres; the write fails unless every one
   * of them was still PENDING (writeExpecting).
   */
  async markPlaced(tx: Executor, ids: readonly string[], now: number): Promise<void> {
    await writeExpectingEach(tx, ids, (chunk) =>
      tx
        .updateTable('jobs')
        .set({
          state: 'BUILDING',
          attempt_count: sql`attempt_count + 1`,
          current_attempt_id: sql`id || '-' || (attempt_count + 1)`,
          reason: null,
          started_at: sql`coalesce(started_at, ${now})`,
          updated_at: now,
        })
        .where('id', 'in', chunk)
        .where('state', '=', 'PENDING'),
    );
  },

  async setReason(tx: Executor, id: string, reason: string | null, now: number): Promise<void> {
    await tx.updateTable('jobs').set({ reason, updated_at: now }).where('id', '=', id).execute();
  },

  /** Applies a state change to one job; returns false when the job was not in `expected`. */
  async transition(
    tx: Executor,
    id: string,
    expected: readonly string[],
    set: Partial<
      Pick<
        JobRow,
        'state' | 'reason' | 'failure_count' | 'preemption_count' | 'finished_at' | 'pending_since'
      >
    >,
    now: number,
  ): Promise<boolean> {
    const r = await tx
      .updateTable('jobs')
      .set({ ...set, updated_at: now })
      .where('id', '=', id)
      .where('state', 'in', expected)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  },

  /** Moves many jobs that are in an expected state; returns the ids that moved. */
  async transitionMany(
    tx: Executor,
    ids: readonly string[],
    expected: readonly string[],
    set: Partial<Pick<JobRow, 'state' | 'reason' | 'finished_at'>>,
    now: number,
  ): Promise<Set<string>> {
    return movedIds(ids, (chunk) =>
      tx
        .updateTable('jobs')
        .set({ ...set, updated_at: now })
        .where('id', 'in', chunk)
        .where('state', 'in', expected)
        .returning('id')
        .execute(),
    );
  },

  /**
   * `transitionMany` for jobs read in this store write and known to be in `expected`: no round
   * trip of its own on Postgres, and the write fails unless every one of them moves
   * (writeExpecting).
   */
  async transitionKnown(
    tx: Executor,
    ids: readonly string[],
    expected: readonly string[],
    set: Partial<Pick<JobRow, 'state' | 'reason' | 'finished_at'>>,
    now: number,
  ): Promise<void> {
    await writeExpectingEach(tx, ids, (chunk) =>
      tx
        .updateTable('jobs')
        .set({ ...set, updated_at: now })
        .where('id', 'in', chunk)
        .where('state', 'in', expected),
    );
  },

  async countByState(db: Executor): Promise<Array<{ state: string; n: number }>> {
    const rows = await db
      .selectFrom('jobs')
      .select(['state', (eb) => eb.fn.countAll<number>().as('n')])
      .groupBy('state')
      .execute();
    return rows.map((r) => ({ state: r.state, n: Number(r.n) }));
  },

  // ----- attempts -----

  /** Nobody reads the result: on Postgres it goes with the transaction's next statement. */
  async insertAttempts(tx: Executor, rows: readonly AttemptRow[]): Promise<void> {
    for (let i = 0; i < rows.length; i += 400)
      await tx.executeQuery(
        sendWithNext(
          tx
            .insertInto('attempts')
            .values(rows.slice(i, i + 400))
            .compile(),
        ),
      );
  },

  async attemptsOf(db: Executor, jobId: string): Promise<AttemptRow[]> {
    return db.selectFrom('attempts').selectAll().where('job_id', '=', jobId).orderBy('attempt_no').execute();
  },

  async getAttempts(db: Executor, ids: readonly string[]): Promise<AttemptRow[]> {
    if (ids.length === 0) return [];
    return jobRepo.getAttemptsQuery(db, ids).execute();
  },

  /** `ids` must not be empty. */
  getAttemptsQuery(db: Executor, ids: readonly string[]) {
    return db.selectFrom('attempts').selectAll().where('id', 'in', ids);
  },

  /** The jobs of these attempts (to read together with `getAttemptsQuery`); `ids` not empty. */
  jobsOfAttemptsQuery(db: Executor, ids: readonly string[]) {
    return db
      .selectFrom('jobs')
      .selectAll()
      .where('id', 'in', (eb) => eb.selectFrom('attempts').select('job_id').where('id', 'in', ids));
  },

  /** Every active (BUILDING or RUNNING) attempt, for ListWorkers. */
  async activeAttempts(
    db: Executor,
  ): Promise<Array<Pick<AttemptRow, 'id' | 'job_id' | 'state' | 'worker_id'>>> {
    return db
      .selectFrom('attempts')
      .select(['id', 'job_id', 'state', 'worker_id'])
      .where('state', 'in', ['BUILDING', 'RUNNING'])
      .execute();
  },

  /** Active (BUILDING or RUNNING) attempts on the given worker. */
  async activeAttemptsOn(db: Executor, workerId: string): Promise<AttemptRow[]> {
    return jobRepo.activeAttemptsOnQuery(db, workerId).execute();
  },

  activeAttemptsOnQuery(db: Executor, workerId: string) {
    return db
      .selectFrom('attempts')
      .selectAll()
      .where('worker_id', '=', workerId)
      .where('state', 'in', ['BUILDING', 'RUNNING']);
  },

  /** The jobs of a worker's active attempts (to read together with `activeAttemptsOnQuery`). */
  jobsActiveOnQuery(db: Executor, workerId: string) {
    return db
      .selectFrom('jobs')
      .selectAll()
      .where('id', 'in', (eb) =>
        eb
          .selectFrom('attempts')
          .select('job_id')
          .where('worker_id', '=', workerId)
          .where('state', 'in', ['BUILDING', 'RUNNING']),
      );
  },

  /** Capacity in use per worker: the sum over its active attempts (see `usedCapacityOf`). */
  usedCapacityQuery(db: Executor) {
    return db
      .selectFrom('attempts')
      .select((eb) => [
        'worker_id',
        eb.fn.sum<number>('cpu').as('cpu'),
        eb.fn.sum<number>('memory_mb').as('memory_mb'),
        eb.fn.sum<number>('gpu').as('gpu'),
        eb.fn.countAll<number>().as('n'),
      ])
      .where('state', 'in', ['BUILDING', 'RUNNING'])
      .groupBy('worker_id');
  },

  usedCapacityOf(
    rows: ReadonlyArray<{ worker_id: string; cpu: number; memory_mb: number; gpu: number; n: number }>,
  ): Array<{ worker_id: string; cpu: number; memory_mb: number; gpu: number; n: number }> {
    return rows.map((r) => ({
      worker_id: r.worker_id,
      cpu: Number(r.cpu),
      memory_mb: Number(r.memory_mb),
      gpu: Number(r.gpu),
      n: Number(r.n),
    }));
  },

  async usedCapacity(
    db: Executor,
  ): Promise<Array<{ worker_id: string; cpu: number; memory_mb: number; gpu: number; n: number }>> {
    return jobRepo.usedCapacityOf(await jobRepo.usedCapacityQuery(db).execute());
  },

  /** Moves many attempts that are in an expected state; returns the ids that moved. */
  async transitionAttempts(
    tx: Executor,
    ids: readonly string[],
    expected: readonly string[],
    set: Partial<Pick<AttemptRow, 'state' | 'exit_code' | 'reason' | 'started_at' | 'finished_at'>>,
  ): Promise<Set<string>> {
    return movedIds(ids, (chunk) =>
      tx
        .updateTable('attempts')
        .set(set)
        .where('id', 'in', chunk)
        .where('state', 'in', expected)
        .returning('id')
        .execute(),
    );
  },

  /** `transitionAttempts` for attempts known to be in `expected` (see `transitionKnown`). */
  async transitionAttemptsKnown(
    tx: Executor,
    ids: readonly string[],
    expected: readonly string[],
    set: Partial<Pick<AttemptRow, 'state' | 'exit_code' | 'reason' | 'started_at' | 'finished_at'>>,
  ): Promise<void> {
    await writeExpectingEach(tx, ids, (chunk) =>
      tx.updateTable('attempts').set(set).where('id', 'in', chunk).where('state', 'in', expected),
    );
  },

  /** Moves an attempt to a new state if it is still in one of `expected`. */
  async transitionAttempt(
    tx: Executor,
    id: string,
    expected: readonly string[],
    set: Partial<Pick<AttemptRow, 'state' | 'exit_code' | 'reason' | 'started_at' | 'finished_at'>>,
  ): Promise<boolean> {
    const r = await tx
      .updateTable('attempts')
      .set(set)
      .where('id', '=', id)
      .where('state', 'in', expected)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  },
};

/** The key of a job name under its parent (`parent_key` is '' for top-level jobs). */
export function nameKey(parentKey: string, name: string): string {
  return `${parentKey}\u0000${name}`;
}

/** Runs a conditional state update over `ids` in chunks of 500; the ids it moved. */
async function movedIds(
  ids: readonly string[],
  update: (chunk: string[]) => Promise<Array<{ id: string }>>,
): Promise<Set<string>> {
  const moved = new Set<string>();
  for (const chunk of chunks(ids, 500)) for (const r of await update(chunk)) moved.add(r.id);
  return moved;
}
