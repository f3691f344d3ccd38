import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  type AuditEntryView,
  ChainVerifier,
  entryHash,
  exportKey,
  GENESIS_HASH,
  hashMaterial,
  verifyChain,
} from '../../src/runs/audit-model.js';

/** Builds a valid chain of n entries, linked and hashed as appendAudit does. */
function chain(n: number): AuditEntryView[] {
  const out: AuditEntryView[] = [];
  let prev = GENESIS_HASH;
  for (let i = 1; i <= n; i++) {
    const content = {
      id: `aud_${i}`,
      run_id: i % 2 === 0 ? `run_${i}` : null,
      action: i % 3 === 0 ? 'command.pause' : 'command.tune',
      actor: { type: 'operator', id: `op${i}@example.com` },
      envelope: { id: `cmd-${i}`, payload: { learning_rate: 0.001 * i, notes: 'why' }, type: 'tune' },
      source_ip: '10.0.0.1',
      user_agent: 'curl/8',
      client_cert_fingerprint: i === 2 ? 'AB:CD' : null,
      created_at: new Date(Date.UTC(2025, 0, 2, 3, 4, i)).toISOString(),
      prev_hash: prev,
    };
    const entry_hash = entryHash(content);
    out.push({ ...content, seq: i * 10, entry_hash });
    prev = entry_hash;
  }
  return out;
}

describe('audit entry hash', () => {
  it('is SHA-256 over the canonical JSON of every field but seq and entry_hash', () => {
    const [e] = chain(1);
    const expected =
      '{"action":"command.tune","actor":{"id":"op1@example.com","type":"operator"},' +
      '"client_cert_fingerprint":null,"created_at":"2025-01-02T03:04:01.000Z",' +
      '"envelope":{"id":"cmd-1","payload":{"learning_rate":0.001,"notes":"why"},"type":"tune"},' +
      `"id":"aud_1","prev_hash":"${GENESIS_HASH}","run_id":null,"source_ip":"10.0.0.1","user_agent":"curl/8"}`;
    expect(hashMaterial(e!)).toBe(expected);
    expect(e!.entry_hash).toBe(createHash('sha256').update(expected).digest('hex'));
    // seq is assigned by the database and not part of the content.
    expect(entryHash({ ...e!, seq: 999 } as AuditEntryView)).toBe(e!.entry_hash);
  });

  it('does not depend on the order of keys in the envelope', () => {
    const [e] = chain(1);
    const reordered = {
      ...e!,
      envelope: { type: 'tune', payload: { notes: 'why', learning_rate: 0.001 }, id: 'cmd-1' },
    };
    expect(entryHash(reordered)).toBe(e!.entry_hash);
  });
});

describe('verifyChain', () => {
  it('accepts an intact chain and reports its head', () => {
    const entries = chain(5);
    expect(verifyChain(entries)).toEqual({
      ok: true,
      entries_checked: 5,
      head_hash: entries[4]!.entry_hash,
      first_bad: null,
    });
  });

  it('accepts an empty chain; its head is the genesis hash', () => {
    expect(verifyChain([])).toEqual({
      ok: true,
      entries_checked: 0,
      head_hash: GENESIS_HASH,
      first_bad: null,
    });
  });

  const tampers: Array<[string, (e: AuditEntryView) => AuditEntryView]> = [
    ['id', (e) => ({ ...e, id: 'aud_x' })],
    ['run_id', (e) => ({ ...e, run_id: 'run_other' })],
    ['action', (e) => ({ ...e, action: 'command.resume' })],
    ['actor.type', (e) => ({ ...e, actor: { ...e.actor, type: 'system' } })],
    ['actor.id', (e) => ({ ...e, actor: { ...e.actor, id: 'mallory' } })],
    [
      'envelope (a nested value)',
      (e) => ({
        ...e,
        envelope: { ...(e.envelope as object), payload: { learning_rate: 0.9, notes: 'why' } },
      }),
    ],
    ['source_ip', (e) => ({ ...e, source_ip: '10.6.6.6' })],
    ['user_agent', (e) => ({ ...e, user_agent: null })],
    ['client_cert_fingerprint', (e) => ({ ...e, client_cert_fingerprint: 'EE:FF' })],
    ['created_at', (e) => ({ ...e, created_at: '2025-01-02T03:04:03.001Z' })],
  ];
  for (const [field, tamper] of tampers) {
    it(`names the entry whose ${field} was changed`, () => {
      const entries = chain(4);
      entries[2] = tamper(entries[2]!);
      const r = verifyChain(entries);
      expect(r.ok).toBe(false);
      expect(r.first_bad).toEqual({ seq: 30, id: entries[2]!.id, reason: 'ENTRY_HASH_MISMATCH' });
      expect(r.entries_checked).toBe(3);
      expect(r.head_hash).toBe(entries[1]!.entry_hash);
    });
  }

  it('names a changed prev_hash as a broken link', () => {
    const entries = chain(3);
    entries[1] = { ...entries[1]!, prev_hash: 'f'.repeat(64) };
    expect(verifyChain(entries).first_bad).toEqual({ seq: 20, id: 'aud_2', reason: 'PREV_HASH_MISMATCH' });
  });

  it('catches an entry rehashed after a change at the next entry', () => {
    const entries = chain(3);
    const changed = { ...entries[1]!, action: 'command.terminate' };
    entries[1] = { ...changed, entry_hash: entryHash(changed) };
    expect(verifyChain(entries).first_bad).toEqual({ seq: 30, id: 'aud_3', reason: 'PREV_HASH_MISMATCH' });
  });

  it('catches reordered entries', () => {
    const entries = chain(4);
    const swapped = [entries[0]!, entries[2]!, entries[1]!, entries[3]!];
    expect(verifyChain(swapped).first_bad).toEqual({ seq: 30, id: 'aud_3', reason: 'PREV_HASH_MISMATCH' });
  });

  it('catches a removed entry', () => {
    const entries = chain(4);
    entries.splice(1, 1);
    expect(verifyChain(entries).first_bad).toEqual({ seq: 30, id: 'aud_3', reason: 'PREV_HASH_MISMATCH' });
  });

  it('treats a row that is not stored as it was hashed as changed', () => {
    const entries = chain(2);
    const v = new ChainVerifier();
    expect(v.push(entries[0]!)).toBe(true);
    expect(v.push(entries[1]!, false)).toBe(false);
    expect(v.result().first_bad).toEqual({ seq: 20, id: 'aud_2', reason: 'ENTRY_HASH_MISMATCH' });
  });

  it('verifies a later segment from the head it continues', () => {
    const entries = chain(5);
    expect(verifyChain(entries.slice(2), { start: entries[1]!.entry_hash }).ok).toBe(true);
    expect(verifyChain(entries.slice(2)).first_bad?.reason).toBe('PREV_HASH_MISMATCH');
  });

  describe('export anchors', () => {
    it('pass when the exported heads are still in the chain', () => {
      const entries = chain(5);
      const anchors = [
        { seq: 20, head_hash: entries[1]!.entry_hash },
        { seq: 40, head_hash: entries[3]!.entry_hash },
      ];
      expect(verifyChain(entries, { anchors }).ok).toBe(true);
    });

    it('catch a chain rewritten consistently after an export', () => {
      const entries = chain(3);
      const anchors = [{ seq: 30, head_hash: entries[2]!.entry_hash }];
      // Rewrite entry 2 and rehash everything after it: every link holds again.
      const e2 = { ...entries[1]!, action: 'command.terminate' };
      e2.entry_hash = entryHash(e2);
      const e3 = { ...entries[2]!, prev_hash: e2.entry_hash };
      e3.entry_hash = entryHash(e3);
      const rewritten = [entries[0]!, e2, e3];
      expect(verifyChain(rewritten).ok).toBe(true);
      expect(verifyChain(rewritten, { anchors }).first_bad).toEqual({
        seq: 30,
        id: 'aud_3',
        reason: 'EXPORT_HEAD_MISMATCH',
      });
    });

    it('catch a cut-off tail', () => {
      const entries = chain(4);
      const anchors = [{ seq: 40, head_hash: entries[3]!.entry_hash }];
      expect(verifyChain(entries.slice(0, 2), { anchors }).first_bad).toEqual({
        seq: 40,
        id: null,
        reason: 'EXPORTED_ENTRY_MISSING',
      });
    });

    it('catch a deleted exported head in the middle', () => {
      const entries = chain(4);
      const anchors = [{ seq: 20, head_hash: entries[1]!.entry_hash }];
      const without = [entries[0]!, entries[2]!, entries[3]!];
      expect(verifyChain(without, { anchors }).first_bad).toEqual({
        seq: 20,
        id: null,
        reason: 'EXPORTED_ENTRY_MISSING',
      });
    });
  });
});

describe('exportKey', () => {
  const at = Date.UTC(2025, 2, 4, 5, 59, 59, 999);
  it('is audit/YYYY/MM/DD/HH for the UTC hour, then HH-<from_seq>, then HH-<from_seq>-n', () => {
    expect(exportKey(at, 17, 0)).toBe('audit/2025/03/04/05');
    expect(exportKey(at, 17, 1)).toBe('audit/2025/03/04/05-17');
    expect(exportKey(at, 17, 2)).toBe('audit/2025/03/04/05-17-2');
  });
});
