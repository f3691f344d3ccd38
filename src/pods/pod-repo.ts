import { type Insertable, type Selectable, sql, type Updateable } from 'kysely';
import type { Executor } from '../store/database.js';
import type {
  ParticipantsTable,
  PodEpochsTable,
  PodGamesTable,
  PodParticipantsTable,
  PodsTable,
  PodTraceTable,
} from '../store/schema.js';

export type PodRow = Selectable<PodsTable>;
export type NewPodRow = Omit<PodRow, 'seq'>;
export type PodParticipantRow = Selectable<PodParticipantsTable>;
export type EpochRow = Selectable<PodEpochsTable>;
export type GameRow = Selectable<PodGamesTable>;
export type ParticipantRow = Selectable<ParticipantsTable>;
export type TraceRow = Selectable<PodTraceTable>;

/** SQL for pods, their participants, epochs, games and trace, and league ratings. One statement per method. */
export const podRepo = {
  // ----- pods -----
  async insertPod(tx: Executor, row: NewPodRow): Promise<void> {
    await tx.insertInto('pods').values(row).execute();
  },

  async pod(db: Executor, id: string): Promise<PodRow | undefined> {
    return db.selectFrom('pods').selectAll().where('id', '=', id).executeTakeFirst();
  },

  async podBySpec(db: Executor, specHash: string): Promise<PodRow | undefined> {
    return db.selectFrom('pods').selectAll().where('spec_hash', '=', specHash).executeTakeFirst();
  },

  async listPods(
    db: Executor,
    f: { status?: string | undefined; participant?: string | undefined; afterSeq?: number; limit: number },
  ): Promise<PodRow[]> {
    let q = db.selectFrom('pods').selectAll();
    if (f.status) q = q.where('status', '=', f.status);
    if (f.participant) {
      const participant = f.participant;
      q = q.where((eb) =>
        eb.exists(
          eb
            .selectFrom('pod_participants')
            .select('pod_participants.pod_id')
            .whereRef('pod_participants.pod_id', '=', 'pods.id')
            .where('pod_participants.participant_id', '=', participant),
        ),
      );
    }
    if (f.afterSeq !== undefined) q = q.where('seq', '>', f.afterSeq);
    return q.orderBy('seq').limit(f.limit).execute();
  },

  /**
   * The dispatch claim: a ready pod becomes active with its next epoch in flight. Conditional on
   * the status and epoch counter read in the same transaction, so two dispatches can never
   * both win, whatever the interleaving.
   */
  async claimDispatch(
    tx: Executor,
    id: string,
    expectedEpochs: number,
    set: { epoch: number; size: number; now: number },
  ): Promise<boolean> {
    const r = await tx
      .updateTable('pods')
      .set((eb) => ({
        status: 'active',
        in_flight_epoch: set.epoch,
        epochs_dispatched: set.epoch,
        epochs_since_reset: eb('epochs_since_reset', '+', 1),
        last_epoch_size: set.size,
        updated_at: set.now,
      }))
      .where('id', '=', id)
      .where('status', '=', 'ready')
      .where('epochs_dispatched', '=', expectedEpochs)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  },

  /** Changes a pod, only while it is in one of `from` (the status read in this transaction). */
  async updatePodIf(
    tx: Executor,
    id: string,
    from: readonly string[],
    set: Updateable<PodsTable>,
  ): Promise<boolean> {
    const r = await tx
      .updateTable('pods')
      .set(set)
      .where('id', '=', id)
      .where('status', 'in', from)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  },

  /** Non-archived pods a participant plays in. */
  async livePodsOf(db: Executor, participantId: string): Promise<PodRow[]> {
    return db
      .selectFrom('pods')
      .selectAll('pods')
      .innerJoin('pod_participants', 'pod_participants.pod_id', 'pods.id')
      .where('pod_participants.participant_id', '=', participantId)
      .where('pods.status', '!=', 'archived')
      .orderBy('pods.seq')
      .execute();
  },

  async expiredPods(db: Executor, now: number, limit: number): Promise<PodRow[]> {
    return db
      .selectFrom('pods')
      .selectAll()
      .where('status', '=', 'converged')
      .where('expires_at', '<=', now)
      .orderBy('expires_at')
      .limit(limit)
      .execute();
  },

  async countByStatus(db: Executor): Promise<Array<{ status: string; n: number }>> {
    const rows = await db
      .selectFrom('pods')
      .select((eb) => ['status', eb.fn.countAll<number>().as('n')])
      .groupBy('status')
      .execute();
    return rows.map((r) => ({ status: r.status, n: Number(r.n) }));
  },

  // ----- pod participants -----
  async insertPodParticipants(tx: Executor, rows: PodParticipantRow[]): Promise<void> {
    await tx.insertInto('pod_participants').values(rows).execute();
  },

  async podParticipants(db: Executor, podIds: readonly string[]): Promise<PodParticipantRow[]> {
    if (podIds.length === 0) return [];
    return db
      .selectFrom('pod_participants')
      .selectAll()
      .where('pod_id', 'in', podIds)
      .orderBy('pod_id')
      .orderBy('position')
      .execute();
  },

  /** Adds placements to a participant's all-time counts and evidence. */
  async addPlacements(
    tx: Executor,
    podId: string,
    participantId: string,
    add: { counts: readonly number[]; turns: number },
  ): Promise<void> {
    const c = (k: number) => add.counts[k] ?? 0;
    await tx
      .updateTable('pod_participants')
      .set((eb) => ({
        p1: eb('p1', '+', c(0)),
        p2: eb('p2', '+', c(1)),
        p3: eb('p3', '+', c(2)),
        p4: eb('p4', '+', c(3)),
        e1: eb('e1', '+', c(0)),
        e2: eb('e2', '+', c(1)),
        e3: eb('e3', '+', c(2)),
        e4: eb('e4', '+', c(3)),
        turns: eb('turns', '+', add.turns),
      }))
      .where('pod_id', '=', podId)
      .where('participant_id', '=', participantId)
      .execute();
  },

  /** Multiplies a pod's evidence by `factor` (a reset's decay); all-time counts stay. */
  async decayEvidence(tx: Executor, podId: string, factor: number): Promise<void> {
    await tx
      .updateTable('pod_participants')
      .set({
        e1: sql<number>`e1 * ${factor}`,
        e2: sql<number>`e2 * ${factor}`,
        e3: sql<number>`e3 * ${factor}`,
        e4: sql<number>`e4 * ${factor}`,
      })
      .where('pod_id', '=', podId)
      .execute();
  },

  async setPodParticipantVersion(
    tx: Executor,
    podId: string,
    participantId: string,
    version: string | null,
  ): Promise<void> {
    await tx
      .updateTable('pod_participants')
      .set({ model_version: version })
      .where('pod_id', '=', podId)
      .where('participant_id', '=', participantId)
      .execute();
  },

  // ----- epochs -----
  async insertEpoch(tx: Executor, row: EpochRow): Promise<void> {
    await tx.insertInto('pod_epochs').values(row).execute();
  },

  async epoch(db: Executor, podId: string, epochNo: number): Promise<EpochRow | undefined> {
    return db
      .selectFrom('pod_epochs')
      .selectAll()
      .where('pod_id', '=', podId)
      .where('epoch_no', '=', epochNo)
      .executeTakeFirst();
  },

  async epochsOf(db: Executor, podId: string): Promise<EpochRow[]> {
    return db.selectFrom('pod_epochs').selectAll().where('pod_id', '=', podId).orderBy('epoch_no').execute();
  },

  async epochByJob(db: Executor, jobId: string): Promise<EpochRow | undefined> {
    return db.selectFrom('pod_epochs').selectAll().where('job_id', '=', jobId).executeTakeFirst();
  },

  /** The epochs of these jobs (`epochByJob` for many); `jobIds` not empty. */
  async epochsByJobs(db: Executor, jobIds: readonly string[]): Promise<EpochRow[]> {
    return db.selectFrom('pod_epochs').selectAll().where('job_id', 'in', jobIds).execute();
  },

  /** Changes an epoch only while it is in one of `from` and at `attempt`: the epoch's own claim. */
  async updateEpochIf(
    tx: Executor,
    podId: string,
    epochNo: number,
    from: readonly string[],
    attempt: number,
    set: Updateable<PodEpochsTable>,
  ): Promise<boolean> {
    const r = await tx
      .updateTable('pod_epochs')
      .set(set)
      .where('pod_id', '=', podId)
      .where('epoch_no', '=', epochNo)
      .where('status', 'in', from)
      .where('attempt', '=', attempt)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  },

  /** Claims a due retry: the next attempt of the epoch, to be launched by the claimer. */
  async claimRetry(tx: Executor, e: EpochRow, now: number): Promise<boolean> {
    const r = await tx
      .updateTable('pod_epochs')
      .set({
        status: 'launching',
        attempt: e.attempt + 1,
        job_id: null,
        next_retry_at: null,
        updated_at: now,
      })
      .where('pod_id', '=', e.pod_id)
      .where('epoch_no', '=', e.epoch_no)
      .where('status', '=', 'retry_wait')
      .where('attempt', '=', e.attempt)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  },

  async addEpochGames(tx: Executor, podId: string, epochNo: number, n: number): Promise<void> {
    await tx
      .updateTable('pod_epochs')
      .set((eb) => ({ games_received: eb('games_received', '+', n) }))
      .where('pod_id', '=', podId)
      .where('epoch_no', '=', epochNo)
      .execute();
  },

  async epochsIn(db: Executor, status: string, updatedBefore: number, limit: number): Promise<EpochRow[]> {
    return db
      .selectFrom('pod_epochs')
      .selectAll()
      .where('status', '=', status)
      .where('updated_at', '<=', updatedBefore)
      .orderBy('updated_at')
      .limit(limit)
      .execute();
  },

  async retriesDue(db: Executor, now: number, limit: number): Promise<EpochRow[]> {
    return db
      .selectFrom('pod_epochs')
      .selectAll()
      .where('status', '=', 'retry_wait')
      .where('next_retry_at', '<=', now)
      .orderBy('next_retry_at')
      .limit(limit)
      .execute();
  },

  // ----- games (and the replay index) -----
  async existingGameIds(db: Executor, podId: string, gameIds: readonly string[]): Promise<Set<string>> {
    if (gameIds.length === 0) return new Set();
    const rows = await db
      .selectFrom('pod_games')
      .select('game_id')
      .where('pod_id', '=', podId)
      .where('game_id', 'in', gameIds)
      .execute();
    return new Set(rows.map((r) => r.game_id));
  },

  async insertGames(tx: Executor, rows: Array<Omit<Insertable<PodGamesTable>, 'seq'>>): Promise<void> {
    for (let i = 0; i < rows.length; i += 500)
      await tx
        .insertInto('pod_games')
        .values(rows.slice(i, i + 500))
        .execute();
  },

  /** Games by pod and/or participant, in recording order (the replay index). */
  async games(
    db: Executor,
    f: { podId?: string | undefined; participant?: string | undefined; afterSeq?: number; limit: number },
  ): Promise<GameRow[]> {
    let q = db.selectFrom('pod_games').selectAll();
    if (f.podId) q = q.where('pod_id', '=', f.podId);
    if (f.participant) {
      const participant = f.participant;
      q = q.where((eb) =>
        eb(
          'pod_id',
          'in',
          eb.selectFrom('pod_participants').select('pod_id').where('participant_id', '=', participant),
        ),
      );
    }
    if (f.afterSeq !== undefined) q = q.where('seq', '>', f.afterSeq);
    return q.orderBy('seq').limit(f.limit).execute();
  },

  // ----- trace -----
  async appendTrace(tx: Executor, row: Omit<Insertable<PodTraceTable>, 'seq'>): Promise<void> {
    await tx.insertInto('pod_trace').values(row).execute();
  },

  async traceOf(db: Executor, podId: string): Promise<TraceRow[]> {
    return db.selectFrom('pod_trace').selectAll().where('pod_id', '=', podId).orderBy('seq').execute();
  },

  // ----- participants and league ratings -----
  async ensureParticipants(
    tx: Executor,
    ids: readonly string[],
    rating: { mu: number; sigma: number },
    now: number,
  ) {
    await tx
      .insertInto('participants')
      .values(
        ids.map((id) => ({
          id,
          model_version: null,
          mu: rating.mu,
          sigma: rating.sigma,
          games: 0,
          created_at: now,
          updated_at: now,
        })),
      )
      .onConflict((oc) => oc.column('id').doNothing())
      .execute();
  },

  async participants(db: Executor, ids: readonly string[]): Promise<ParticipantRow[]> {
    if (ids.length === 0) return [];
    return db.selectFrom('participants').selectAll().where('id', 'in', ids).execute();
  },

  async saveRating(
    tx: Executor,
    id: string,
    r: { mu: number; sigma: number; games: number },
    now: number,
  ): Promise<void> {
    await tx
      .updateTable('participants')
      .set({ mu: r.mu, sigma: r.sigma, games: r.games, updated_at: now })
      .where('id', '=', id)
      .execute();
  },

  /** A new model version: its rating keeps its mean but becomes uncertain again. */
  async setModelVersion(
    tx: Executor,
    id: string,
    version: string,
    sigma: number,
    now: number,
  ): Promise<void> {
    await tx
      .updateTable('participants')
      .set({ model_version: version, sigma, updated_at: now })
      .where('id', '=', id)
      .execute();
  },

  async leaderboard(db: Executor, limit: number): Promise<ParticipantRow[]> {
    return db
      .selectFrom('participants')
      .selectAll()
      .orderBy('mu', 'desc')
      .orderBy('id')
      .limit(limit)
      .execute();
  },
};
