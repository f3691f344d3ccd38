import type { Insertable, Selectable } from 'kysely';
import { bulkInsert } from '../store/bulk-sql.js';
import type { Executor, Tx } from '../store/database.js';
import { deferWrite } from '../store/deferred-writes.js';
import type { AuditExportsTable, ControlAuditTable } from '../store/schema.js';

export type AuditRow = Selectable<ControlAuditTable>;
export type AuditExportRow = Selectable<AuditExportsTable>;
type NewAuditRow = Omit<Insertable<ControlAuditTable>, 'seq'>;

const insertEntries = bulkInsert<NewAuditRow>('control_audit', [
  'id',
  'run_id',
  'action',
  'actor_type',
  'actor_id',
  'envelope',
  'source_ip',
  'user_agent',
  'client_cert_fingerprint',
  'created_at',
  'prev_hash',
  'entry_hash',
]);

/**
 * SQL for the audit chain and its export ledger. There is deliberately no update or delete
 * statement for `control_audit`: entries are only appended.
 */
export const auditRepo = {
  /** The last entry: the head the next one chains to. */
  async head(tx: Executor): Promise<{ seq: number; entry_hash: string } | undefined> {
    return tx
      .selectFrom('control_audit')
      .select(['seq', 'entry_hash'])
      .orderBy('seq', 'desc')
      .limit(1)
      .executeTakeFirst();
  },

  /** Appends an entry just before the transaction commits (see deferWrite), after those before it. */
  async append(tx: Tx, row: NewAuditRow): Promise<void> {
    await deferWrite(tx, insertEntries, [row]);
  },

  /** Newest first, below `beforeSeq`; for the read-only view. */
  async listNewest(
    db: Executor,
    f: {
      run_id?: string | undefined;
      action?: string | undefined;
      beforeSeq?: number | undefined;
      limit: number;
    },
  ): Promise<AuditRow[]> {
    let q = db.selectFrom('control_audit').selectAll();
    if (f.run_id !== undefined) q = q.where('run_id', '=', f.run_id);
    if (f.action !== undefined) q = q.where('action', '=', f.action);
    if (f.beforeSeq !== undefined) q = q.where('seq', '<', f.beforeSeq);
    return q.orderBy('seq', 'desc').limit(f.limit).execute();
  },

  /** Oldest first, after `afterSeq` and up to `upToSeq`; for verification and export pages. */
  async pageAfter(db: Executor, afterSeq: number, limit: number, upToSeq?: number): Promise<AuditRow[]> {
    let q = db.selectFrom('control_audit').selectAll().where('seq', '>', afterSeq);
    if (upToSeq !== undefined) q = q.where('seq', '<=', upToSeq);
    return q.orderBy('seq').limit(limit).execute();
  },

  async lastExport(db: Executor): Promise<AuditExportRow | undefined> {
    return db.selectFrom('audit_exports').selectAll().orderBy('to_seq', 'desc').limit(1).executeTakeFirst();
  },

  /** Every export's head, oldest first: the anchors verification checks the chain against. */
  async exportHeads(db: Executor): Promise<Array<{ to_seq: number; head_hash: string }>> {
    return db.selectFrom('audit_exports').select(['to_seq', 'head_hash']).orderBy('to_seq').execute();
  },

  async insertExport(tx: Tx, row: Insertable<AuditExportsTable>): Promise<void> {
    await tx.insertInto('audit_exports').values(row).execute();
  },
};
