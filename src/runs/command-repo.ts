import type { Selectable } from 'kysely';
import { bulkInsert, bulkStatement } from '../store/bulk-sql.js';
import type { Executor } from '../store/database.js';
import { deferWrite } from '../store/deferred-writes.js';
import { readTogether } from '../store/read-together.js';
import type { RunCommandsTable } from '../store/schema.js';

export type CommandRow = Selectable<RunCommandsTable>;
export type NewCommandRow = Omit<CommandRow, 'seq'>;

const insertCommands = bulkInsert<NewCommandRow>('run_commands', [
  'id',
  'run_id',
  'type',
  'payload',
  'actor_type',
  'actor_id',
  'issued_at',
  'created_at',
  'delivered_at',
  'acknowledged_at',
  'delivery_count',
  'visible_at',
]);

const acknowledgeCommands = bulkStatement<{ id: string; at: number }>({
  table: 'run_commands',
  update: true,
  columns: ['id', 'at'],
  tuple: ([id, at]) => `(CAST(${id} AS text), CAST(${at} AS bigint))`,
  statement: (tuples) => `UPDATE run_commands SET acknowledged_at = v.column2,
      delivered_at = coalesce(run_commands.delivered_at, v.column2)
    FROM (VALUES ${tuples}) AS v WHERE run_commands.id = v.column1 AND run_commands.acknowledged_at IS NULL`,
});

/** SQL of the run_commands table: the command log and its delivery state. */
export const commandRepo = {
  /**
   * Writes a new command just before the transaction commits, with its audit entry and event
   * (see deferWrite): nothing in the accepting transaction reads it back.
   */
  async insert(tx: Executor, row: NewCommandRow): Promise<void> {
    await deferWrite(tx, insertCommands, [row]);
  },

  /**
   * What accepting a command needs to know, read in one statement: the run's status (null:
   * no such run), the run an existing command with this id belongs to (null: the id is new) and
   * the audit chain's head (null: empty). Call it holding the outbox lock, so the head stays true.
   */
  async issueContext(
    tx: Executor,
    runId: string,
    commandId: string,
  ): Promise<{ runStatus: string | null; takenBy: string | null; auditHead: string | null }> {
    const r = await tx
      .selectNoFrom((eb) => [
        eb.selectFrom('runs').select('status').where('id', '=', runId).as('run_status'),
        eb.selectFrom('run_commands').select('run_id').where('id', '=', commandId).as('taken_by'),
        eb.selectFrom('control_audit').select('entry_hash').orderBy('seq', 'desc').limit(1).as('audit_head'),
      ])
      .executeTakeFirstOrThrow();
    return { runStatus: r.run_status ?? null, takenBy: r.taken_by ?? null, auditHead: r.audit_head ?? null };
  },

  /**
   * The command (undefined: unknown id), its run's status and the audit chain's head, in one
   * statement; call it under the outbox lock.
   */
  async ackContext(
    tx: Executor,
    commandId: string,
  ): Promise<{ command: CommandRow | undefined; runStatus: string | null; auditHead: string | null }> {
    const r = await tx
      .selectFrom('run_commands')
      .selectAll('run_commands')
      .select((eb) => [
        eb
          .selectFrom('runs')
          .select('runs.status')
          .whereRef('runs.id', '=', 'run_commands.run_id')
          .as('run_status'),
        eb.selectFrom('control_audit').select('entry_hash').orderBy('seq', 'desc').limit(1).as('audit_head'),
      ])
      .where('run_commands.id', '=', commandId)
      .executeTakeFirst();
    if (!r) return { command: undefined, runStatus: null, auditHead: null };
    const { audit_head, run_status, ...command } = r;
    return { command, runStatus: run_status ?? null, auditHead: audit_head ?? null };
  },

  /**
   * Undoes the delivery stamp of a command handed to a poll that went away before it got it:
   * deliverable again at once, as if never delivered.
   */
  async undoHandoff(db: Executor, id: string, now: number): Promise<void> {
    await db
      .updateTable('run_commands')
      .set((eb) => ({
        delivered_at: null,
        visible_at: now,
        delivery_count: eb('delivery_count', '-', 1),
      }))
      .where('id', '=', id)
      .where('acknowledged_at', 'is', null)
      .where('delivery_count', '=', 1)
      .execute();
  },

  async get(db: Executor, id: string): Promise<CommandRow | undefined> {
    return db.selectFrom('run_commands').selectAll().where('id', '=', id).executeTakeFirst();
  },

  async getMany(db: Executor, ids: readonly string[]): Promise<CommandRow[]> {
    if (ids.length === 0) return [];
    return db.selectFrom('run_commands').selectAll().where('id', 'in', ids).execute();
  },

  /**
   * A long-poll's turn, in one round trip: claims the run's oldest deliverable command (stamps
   * the delivery and hides it until `visibleAgainAt`), and says whether the run exists and when
   * its next unacknowledged command becomes deliverable (null: none), which a poll that claimed
   * nothing waits for. Two polls racing for a command cannot both get this delivery (the
   * loser's re-checked WHERE no longer matches). On Postgres both statements go in one pipeline
   * and one implicit transaction, so the state is read after the claim.
   */
  async claimNext(
    db: Executor,
    runId: string,
    now: number,
    visibleAgainAt: number,
  ): Promise<{ claimed: CommandRow | undefined; runExists: boolean; nextVisibleAt: number | null }> {
    const [claimed, state] = await readTogether(db, [
      db
        .updateTable('run_commands')
        .set((eb) => ({
          delivered_at: now,
          visible_at: visibleAgainAt,
          delivery_count: eb('delivery_count', '+', 1),
        }))
        .where('id', '=', (eb) =>
          eb
            .selectFrom('run_commands as c')
            .select('c.id')
            .where('c.run_id', '=', runId)
            .where('c.acknowledged_at', 'is', null)
            .where('c.visible_at', '<=', now)
            .orderBy('c.seq')
            .limit(1),
        )
        .where('acknowledged_at', 'is', null)
        .where('visible_at', '<=', now)
        .returningAll(),
      db.selectNoFrom((eb) => [
        eb.selectFrom('runs').select('id').where('id', '=', runId).as('run_id'),
        eb
          .selectFrom('run_commands')
          .select((e) => e.fn.min('visible_at').as('t'))
          .where('run_id', '=', runId)
          .where('acknowledged_at', 'is', null)
          .as('next_visible_at'),
      ]),
    ] as const);
    const r = state[0];
    return {
      claimed: claimed[0],
      runExists: r?.run_id != null,
      nextVisibleAt: r?.next_visible_at == null ? null : Number(r.next_visible_at),
    };
  },

  /** A command the learner reports holding counts as delivered even if no poll returned it. */
  async markSeen(tx: Executor, id: string, now: number): Promise<void> {
    await tx
      .updateTable('run_commands')
      .set({ delivered_at: now })
      .where('id', '=', id)
      .where('delivered_at', 'is', null)
      .execute();
  },

  /**
   * Stamps acknowledged_at (and delivered_at, if the command was never stamped delivered) just
   * before the transaction commits, with the acknowledgement's audit entry and event (see
   * deferWrite). Call it holding the outbox lock, having read the command as unacknowledged.
   */
  async acknowledge(tx: Executor, id: string, now: number): Promise<void> {
    await deferWrite(tx, acknowledgeCommands, [{ id, at: now }]);
  },

  async listForRun(db: Executor, runId: string): Promise<CommandRow[]> {
    return db.selectFrom('run_commands').selectAll().where('run_id', '=', runId).orderBy('seq').execute();
  },

  async hasTerminate(db: Executor, runId: string): Promise<boolean> {
    const r = await db
      .selectFrom('run_commands')
      .select('id')
      .where('run_id', '=', runId)
      .where('type', '=', 'terminate')
      .limit(1)
      .executeTakeFirst();
    return r !== undefined;
  },
};
