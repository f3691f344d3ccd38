import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { canonicalJson } from '../shared/canonical-json.js';
import { type Clock, toIso } from '../shared/clock.js';
import { AppError, conflict } from '../shared/errors.js';
import { newId } from '../shared/ids.js';
import type { Executor, Store, Tx } from '../store/database.js';
import { publishExport } from './audit-export.js';
import {
  type AuditEntryContent,
  type AuditEntryView,
  type AuditInput,
  ChainVerifier,
  type ExportManifest,
  entryHash,
  GENESIS_HASH,
  type VerifyResult,
} from './audit-model.js';
import { type AuditRow, auditRepo } from './audit-repo.js';

export type { AuditEntryView, AuditInput, RequestMeta, VerifyResult } from './audit-model.js';

/** Entries read per query when verifying or exporting, so a long chain is never all in memory. */
const PAGE_SIZE = 1000;
/** Leader lock name: one replica exports at a time. */
const EXPORT_LOCK = 'audit-export';

/** The chain head each open transaction has reached, so several appends in one transaction chain. */
const heads = new WeakMap<Tx, string>();

/**
 * Appends one entry to the audit chain inside the caller's transaction.
 *
 * Must be called inside `store.write`: the chain needs one writer at a time (it reads the head,
 * then inserts the entry that points at it), and `store.write` gives exactly that (the outbox
 * advisory lock on Postgres, the single writer of SQLite). In any other transaction two
 * appends could chain to the same head and the chain would fork (verification then names the
 * second one). Several appends in one transaction chain one after the other.
 */
/**
 * Tells the chain the head a transaction has just read along with other rows (under the same
 * lock `appendAudit` needs), so its first append does not read it again. null: the chain is empty.
 */
export function knownAuditHead(tx: Tx, entryHash: string | null): void {
  if (!heads.has(tx)) heads.set(tx, entryHash ?? GENESIS_HASH);
}

export async function appendAudit(tx: Tx, input: AuditInput, now: number): Promise<void> {
  const prev = heads.get(tx) ?? (await auditRepo.head(tx))?.entry_hash ?? GENESIS_HASH;
  const envelopeText = canonicalJson(input.envelope === undefined ? null : input.envelope);
  const content: AuditEntryContent = {
    id: newId('aud', now),
    run_id: input.run_id,
    action: input.action,
    actor: { type: input.actor.type, id: input.actor.id },
    // Hash what is stored and read back, not the caller's object (undefined members, toJSON).
    envelope: JSON.parse(envelopeText) as unknown,
    source_ip: input.request?.source_ip ?? null,
    user_agent: input.request?.user_agent ?? null,
    client_cert_fingerprint: input.request?.client_cert_fingerprint ?? null,
    created_at: toIso(now) ?? '',
    prev_hash: prev,
  };
  const hash = entryHash(content);
  await auditRepo.append(tx, {
    id: content.id,
    run_id: content.run_id,
    action: content.action,
    actor_type: content.actor.type,
    actor_id: content.actor.id,
    envelope: envelopeText,
    source_ip: content.source_ip,
    user_agent: content.user_agent,
    client_cert_fingerprint: content.client_cert_fingerprint,
    created_at: now,
    prev_hash: prev,
    entry_hash: hash,
  });
  heads.set(tx, hash);
}

/**
 * A stored row as the API shows it, and whether the row is exactly what was hashed: the
 * envelope column must be the canonical JSON it was written as (else an edit that keeps the
 * parsed value, or makes it unparseable, could slip through) and the time a whole millisecond.
 */
export function auditEntryFromRow(row: AuditRow): { entry: AuditEntryView; intact: boolean } {
  let envelope: unknown = row.envelope;
  let intact = Number.isInteger(Number(row.created_at));
  try {
    envelope = JSON.parse(row.envelope) as unknown;
    if (canonicalJson(envelope) !== row.envelope) intact = false;
  } catch {
    intact = false;
  }
  return {
    entry: {
      seq: Number(row.seq),
      id: row.id,
      run_id: row.run_id,
      action: row.action,
      actor: { type: row.actor_type, id: row.actor_id },
      envelope,
      source_ip: row.source_ip,
      user_agent: row.user_agent,
      client_cert_fingerprint: row.client_cert_fingerprint,
      created_at: toIso(Number(row.created_at)) ?? '',
      prev_hash: row.prev_hash,
      entry_hash: row.entry_hash,
    },
    intact,
  };
}

export interface AuditListQuery {
  run_id?: string | undefined;
  action?: string | undefined;
  limit?: number | undefined;
  cursor?: string | undefined;
}

/** A finished export: its manifest, and how many entries it holds. */
export type ExportResult = ExportManifest & { exported: number };

/**
 * The audit log's use cases: the read-only view, verification, and the export (by request and
 * on a timer; one replica at a time).
 */
export class AuditService {
  private timer: NodeJS.Timeout | null = null;
  /** Exports of this process run one after another. */
  private queue: Promise<unknown> = Promise.resolve();
  /** When this process last tried a timed export (the ledger holds the last successful one). */
  private lastTickAt = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly config: Pick<Config, 'auditExportDir' | 'auditExportIntervalMs'>,
    private readonly log: Logger,
  ) {}

  /** Newest first; `next_cursor` continues below the last entry returned. */
  async list(q: AuditListQuery): Promise<{ entries: AuditEntryView[]; next_cursor: string | null }> {
    const limit = q.limit ?? 100;
    const rows = await auditRepo.listNewest(this.store.db, {
      run_id: q.run_id,
      action: q.action,
      beforeSeq: q.cursor === undefined ? undefined : Number(q.cursor),
      limit: limit + 1,
    });
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      entries: page.map((r) => auditEntryFromRow(r).entry),
      next_cursor: rows.length > limit && last ? String(last.seq) : null,
    };
  }

  /**
   * Walks the whole chain in seq order, a page at a time, and names the first entry that fails;
   * every export's recorded head is checked too, so a rewritten or cut-off chain is caught.
   */
  async verify(): Promise<VerifyResult> {
    const db = this.store.db;
    const anchors = (await auditRepo.exportHeads(db)).map((a) => ({
      seq: Number(a.to_seq),
      head_hash: a.head_hash,
    }));
    const v = new ChainVerifier({ anchors });
    let after = 0;
    for (;;) {
      const rows = await auditRepo.pageAfter(db, after, PAGE_SIZE);
      for (const row of rows) {
        const { entry, intact } = auditEntryFromRow(row);
        if (!v.push(entry, intact)) return v.result();
      }
      const last = rows[rows.length - 1];
      if (!last || rows.length < PAGE_SIZE) return v.result();
      after = Number(last.seq);
    }
  }

  /**
   * Exports the entries appended since the last export (see publishExport for the layout),
   * then records the export in the ledger. A crash between the files and the ledger row leaves
   * unreferenced objects behind; the next export starts from the ledger again, so the ledger's
   * exports never miss or repeat an entry. Null (and no files) when there is nothing new.
   */
  export(): Promise<ExportResult | null> {
    const run = this.queue.then(() => this.exportExclusive());
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Starts the export timer (no timer when the interval is 0). */
  start(): void {
    const interval = this.config.auditExportIntervalMs;
    if (interval <= 0 || this.timer) return;
    // Check at least every minute whether an export is due, so a restart keeps the cadence.
    this.timer = setInterval(
      () => {
        this.tick().catch((err: unknown) => this.log.error({ err }, 'audit export failed'));
      },
      Math.min(interval, 60_000),
    );
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.queue;
  }

  /**
   * Exports when the interval has passed since the last export (the ledger's, so the cadence
   * survives restarts and is shared by replicas) and since this process last tried. Another
   * replica exporting at the same moment is not an error.
   */
  async tick(): Promise<ExportResult | null> {
    const interval = this.config.auditExportIntervalMs;
    if (interval <= 0) return null;
    const now = this.clock.now();
    const last = await auditRepo.lastExport(this.store.db);
    const since = Math.max(last ? Number(last.exported_at) : Number.NEGATIVE_INFINITY, this.lastTickAt);
    if (now - since < interval) return null;
    this.lastTickAt = now;
    try {
      return await this.export();
    } catch (err) {
      if (err instanceof AppError && err.code === 'AUDIT_EXPORT_BUSY') return null;
      throw err;
    }
  }

  private async exportExclusive(): Promise<ExportResult | null> {
    if (!this.store.caps.advisoryLocks) return this.exportFrom(this.store.db);
    // Several replicas share the database: the transaction only holds the leader lock while
    // this one writes the files; the ledger row is written in a transaction of its own.
    return this.store.transaction(async (tx) => {
      if (!(await this.store.tryLeaderLock(tx, EXPORT_LOCK)))
        throw conflict('AUDIT_EXPORT_BUSY', 'another replica is exporting the audit log right now');
      return this.exportFrom(tx);
    });
  }

  private async exportFrom(db: Executor): Promise<ExportResult | null> {
    const now = this.clock.now();
    const last = await auditRepo.lastExport(db);
    const lastTo = last ? Number(last.to_seq) : 0;
    // Entries appended while the files are written belong to the next export.
    const head = await auditRepo.head(db);
    if (!head || Number(head.seq) <= lastTo) return null;
    const upTo = Number(head.seq);
    const first = (await auditRepo.pageAfter(db, lastTo, 1, upTo))[0];
    if (!first) return null;

    const manifest = await publishExport({
      root: this.config.auditExportDir,
      exportedAt: now,
      fromSeq: Number(first.seq),
      prevHeadHash: last?.head_hash ?? GENESIS_HASH,
      body: async (write) => {
        let after = lastTo;
        let count = 0;
        let tail: AuditEntryView | null = null;
        for (;;) {
          const rows = await auditRepo.pageAfter(db, after, PAGE_SIZE, upTo);
          if (rows.length === 0) break;
          const entries = rows.map((r) => auditEntryFromRow(r).entry);
          await write(entries.map((e) => `${JSON.stringify(e)}\n`).join(''));
          count += entries.length;
          tail = entries[entries.length - 1] ?? tail;
          after = tail?.seq ?? after;
          if (rows.length < PAGE_SIZE) break;
        }
        if (!tail) throw new Error('audit entries vanished while exporting');
        return { to_seq: tail.seq, entry_count: count, head_hash: tail.entry_hash };
      },
    });
    await this.store.write(async (tx) => {
      // The leader lock (or this process's queue) keeps exports apart; should a second exporter
      // still have slipped in, its ledger row wins and this export's objects stay unreferenced.
      const latest = await auditRepo.lastExport(tx);
      if ((latest ? Number(latest.to_seq) : 0) !== lastTo)
        throw conflict('AUDIT_EXPORT_BUSY', 'another export recorded these entries first');
      await auditRepo.insertExport(tx, {
        from_seq: manifest.from_seq,
        to_seq: manifest.to_seq,
        entry_count: manifest.entry_count,
        head_hash: manifest.head_hash,
        path: manifest.object,
        exported_at: now,
      });
    });
    this.log.info(
      {
        from_seq: manifest.from_seq,
        to_seq: manifest.to_seq,
        entries: manifest.entry_count,
        object: manifest.object,
      },
      'audit log exported',
    );
    return { ...manifest, exported: manifest.entry_count };
  }
}
