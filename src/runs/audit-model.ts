/**
 * Audit chain — pure model. No I/O here.
 *
 * Glossary
 * - audit entry: one control action (a command, an operator action on a run) with who did it,
 *   from where (source IP, user agent, TLS client-certificate fingerprint) and its envelope.
 *   Entries are only ever appended; the product has no path that updates or deletes one.
 * - hash chain: every entry carries `prev_hash` (the previous entry's `entry_hash`, 64 zeros for
 *   the first) and `entry_hash`, the SHA-256 of its own content including `prev_hash`. Changing,
 *   removing or reordering an entry breaks the chain at that point.
 * - head: the `entry_hash` of the last entry; the next entry's `prev_hash`.
 * - anchor: the head recorded by an export (`audit_exports`). It lives outside the chain, in the
 *   exported manifest too, so rewriting the whole chain after an export, or cutting its tail
 *   off, is still detected.
 *
 * What is hashed: the entry exactly as the API and the NDJSON export show it, minus `seq`
 * (assigned by the database) and `entry_hash` itself, serialised as canonical JSON
 * (`src/shared/canonical-json.ts`: sorted keys, no whitespace) and hashed with SHA-256, hex:
 *
 *   entry_hash = sha256(canonical_json({actor: {id, type}, client_cert_fingerprint, created_at,
 *                                       envelope, id, prev_hash, run_id, source_ip, user_agent}))
 *
 * `created_at` is the RFC 3339 time with milliseconds in UTC (`2025-01-02T03:04:05.678Z`), as on
 * the wire, so a line of an export can be checked with nothing but that line.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../shared/canonical-json.js';

/** `prev_hash` of the first entry. */
export const GENESIS_HASH = '0'.repeat(64);

/** Where a request came from; recorded with each entry written on behalf of a request. */
export interface RequestMeta {
  source_ip: string | null;
  user_agent: string | null;
  /** SHA-256 fingerprint of a verified TLS client certificate (`AB:CD:…`), else null. */
  client_cert_fingerprint: string | null;
}

/** What a caller hands to `appendAudit`. */
export interface AuditInput {
  run_id: string | null;
  /** What was done, e.g. `command.tune`, `run.liveness_extended`. */
  action: string;
  actor: { type: string; id: string };
  /** The request or command envelope; stored as canonical JSON. */
  envelope: unknown;
  request?: RequestMeta | null;
}

/** An entry as the API and the export show it (and as it is hashed, less seq and entry_hash). */
export interface AuditEntryView {
  seq: number;
  id: string;
  run_id: string | null;
  action: string;
  actor: { type: string; id: string };
  envelope: unknown;
  source_ip: string | null;
  user_agent: string | null;
  client_cert_fingerprint: string | null;
  /** RFC 3339 (UTC, milliseconds). */
  created_at: string;
  prev_hash: string;
  entry_hash: string;
}

export type AuditEntryContent = Omit<AuditEntryView, 'seq' | 'entry_hash'>;

export type BreakReason =
  /** The entry's content does not hash to its entry_hash: it was changed. */
  | 'ENTRY_HASH_MISMATCH'
  /** The entry's prev_hash is not the previous entry's entry_hash: an entry was removed, inserted or moved. */
  | 'PREV_HASH_MISMATCH'
  /** The entry an export recorded as its head now has another hash: the chain was rewritten. */
  | 'EXPORT_HEAD_MISMATCH'
  /** The entry an export recorded as its head is gone: entries were removed. */
  | 'EXPORTED_ENTRY_MISSING';

export interface VerifyResult {
  ok: boolean;
  /** Entries examined, the bad one included. */
  entries_checked: number;
  /** Hash of the last entry found good (the genesis hash when there is none). */
  head_hash: string;
  /** The first entry that fails; id is null when the entry is missing altogether. */
  first_bad: { seq: number; id: string | null; reason: BreakReason } | null;
}

/** The string that is hashed: the canonical JSON of the entry's content. */
export function hashMaterial(content: AuditEntryContent): string {
  // Built field by field so a view carrying extra members (seq, entry_hash) hashes the same.
  return canonicalJson({
    id: content.id,
    run_id: content.run_id,
    action: content.action,
    actor: { type: content.actor.type, id: content.actor.id },
    envelope: content.envelope,
    source_ip: content.source_ip,
    user_agent: content.user_agent,
    client_cert_fingerprint: content.client_cert_fingerprint,
    created_at: content.created_at,
    prev_hash: content.prev_hash,
  });
}

export function entryHash(content: AuditEntryContent): string {
  return createHash('sha256').update(hashMaterial(content), 'utf8').digest('hex');
}

/**
 * Walks a chain in seq order, one entry at a time, so a long chain can be checked page by page.
 * Stops at the first bad entry; later pushes are ignored. `anchors` are export heads (seq →
 * entry_hash), `start` the hash the first pushed entry must carry (genesis by default: verifying
 * a later segment, e.g. an export file, starts from the previous export's head).
 */
export class ChainVerifier {
  private expectedPrev: string;
  private lastGood: string;
  private checked = 0;
  private bad: VerifyResult['first_bad'] = null;
  private readonly anchors: Array<{ seq: number; head_hash: string }>;
  private nextAnchor = 0;

  constructor(opts: { start?: string; anchors?: ReadonlyArray<{ seq: number; head_hash: string }> } = {}) {
    this.expectedPrev = opts.start ?? GENESIS_HASH;
    this.lastGood = this.expectedPrev;
    this.anchors = [...(opts.anchors ?? [])].sort((a, b) => a.seq - b.seq);
  }

  get broken(): boolean {
    return this.bad !== null;
  }

  /**
   * Checks the next entry; false once the chain is broken. `intact` false says the stored row is
   * not byte for byte what was hashed (e.g. an envelope that is no longer its canonical JSON).
   */
  push(entry: AuditEntryView, intact = true): boolean {
    if (this.bad) return false;
    // An anchor below this seq that was never met means its entry was deleted.
    const skipped = this.anchors[this.nextAnchor];
    if (skipped && skipped.seq < entry.seq) {
      this.bad = { seq: skipped.seq, id: null, reason: 'EXPORTED_ENTRY_MISSING' };
      return false;
    }
    this.checked += 1;
    // Linkage first: a moved or removed entry shows as a broken link even when its own hash holds.
    if (entry.prev_hash !== this.expectedPrev) {
      this.bad = { seq: entry.seq, id: entry.id, reason: 'PREV_HASH_MISMATCH' };
      return false;
    }
    if (!intact || entryHash(entry) !== entry.entry_hash) {
      this.bad = { seq: entry.seq, id: entry.id, reason: 'ENTRY_HASH_MISMATCH' };
      return false;
    }
    if (skipped && skipped.seq === entry.seq) {
      this.nextAnchor += 1;
      if (skipped.head_hash !== entry.entry_hash) {
        this.bad = { seq: entry.seq, id: entry.id, reason: 'EXPORT_HEAD_MISMATCH' };
        return false;
      }
    }
    this.expectedPrev = entry.entry_hash;
    this.lastGood = entry.entry_hash;
    return true;
  }

  /** The verdict so far; call after the last entry (an anchor past the end is a cut-off tail). */
  result(): VerifyResult {
    let bad = this.bad;
    const missing = this.anchors[this.nextAnchor];
    if (!bad && missing) bad = { seq: missing.seq, id: null, reason: 'EXPORTED_ENTRY_MISSING' };
    return { ok: bad === null, entries_checked: this.checked, head_hash: this.lastGood, first_bad: bad };
  }
}

/** Verifies entries given in seq order. */
export function verifyChain(
  entries: Iterable<AuditEntryView>,
  opts: { start?: string; anchors?: ReadonlyArray<{ seq: number; head_hash: string }> } = {},
): VerifyResult {
  const v = new ChainVerifier(opts);
  for (const e of entries) if (!v.push(e)) break;
  return v.result();
}

/**
 * Object key of an export, laid out as object storage under the UTC hour of the export:
 * `audit/YYYY/MM/DD/HH` (the caller appends `.ndjson` / `.manifest.json`), or
 * `audit/YYYY/MM/DD/HH-<from_seq>[-n]` when earlier objects of that hour exist.
 */
export function exportKey(exportedAt: number, fromSeq: number, attempt: number): string {
  const d = new Date(exportedAt);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const dir = `audit/${p(d.getUTCFullYear(), 4)}/${p(d.getUTCMonth() + 1)}/${p(d.getUTCDate())}`;
  const hour = p(d.getUTCHours());
  if (attempt === 0) return `${dir}/${hour}`;
  if (attempt === 1) return `${dir}/${hour}-${fromSeq}`;
  return `${dir}/${hour}-${fromSeq}-${attempt}`;
}

/** The manifest written beside each export's NDJSON object. */
export interface ExportManifest {
  format: 'runplane-audit-export/1';
  from_seq: number;
  to_seq: number;
  entry_count: number;
  /** entry_hash of the last exported entry: the chain head at export time. */
  head_hash: string;
  /** head_hash of the previous export (the genesis hash for the first): this file's first prev_hash. */
  prev_head_hash: string;
  /** Object key of the NDJSON file, relative to the export directory. */
  object: string;
  /** SHA-256 (hex) of the NDJSON file's bytes. */
  sha256: string;
  bytes: number;
  exported_at: string;
}
