/**
 * The audit chain on a real controller: appends chain across and within transactions (also
 * when they race), the read-only view, tamper detection after a direct database edit, the
 * export's object layout, manifest and ledger, recovery from an export interrupted before its
 * ledger row, and the export timer on an injected clock.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sql } from 'kysely';
import pino from 'pino';
import { expect, it } from 'vitest';
import {
  type AuditEntryView,
  type AuditInput,
  type ExportManifest,
  GENESIS_HASH,
  type VerifyResult,
  verifyChain,
} from '../../src/runs/audit-model.js';
import {
  AuditService,
  appendAudit,
  auditEntryFromRow,
  type ExportResult,
} from '../../src/runs/audit-service.js';
import { systemClock } from '../../src/shared/clock.js';
import { startTestController, type TestController } from '../helpers/controller.js';
import { controllers, forEachDialect, rejected } from './support.js';

const input = (i: number, over: Partial<AuditInput> = {}): AuditInput => ({
  run_id: `run_${i % 3}`,
  action: i % 2 === 0 ? 'command.tune' : 'command.pause',
  actor: { type: 'operator', id: `op${i}@example.com` },
  envelope: { id: `cmd-${i}`, type: 'tune', payload: { learning_rate: 0.01, notes: `n${i}` } },
  request: { source_ip: '10.1.2.3', user_agent: 'test/1', client_cert_fingerprint: null },
  ...over,
});

/**
 * Appends entries i..i+n-1, each in its own store.write, or all in one when `oneTx`; returns them
 * as stored, in chain order.
 */
async function append(t: TestController, from: number, n: number, oneTx = false): Promise<AuditEntryView[]> {
  const store = t.ctl.store;
  const idx = Array.from({ length: n }, (_, k) => from + k);
  if (oneTx)
    await store.write(async (tx) => {
      for (const i of idx) await appendAudit(tx, input(i), Date.now());
    });
  else for (const i of idx) await store.write((tx) => appendAudit(tx, input(i), Date.now()));
  const want = new Set(idx.map((i) => `cmd-${i}`));
  const rows = await store.db.selectFrom('control_audit').selectAll().orderBy('seq').execute();
  return rows
    .map((r) => auditEntryFromRow(r).entry)
    .filter((e) => want.has((e.envelope as { id?: string } | null)?.id ?? ''));
}

type ListPage = { entries: AuditEntryView[]; next_cursor: string | null };
const verify = (t: TestController) => t.admin.request<VerifyResult>('GET', '/api/v1/audit/verify');
const exportNow = (t: TestController) =>
  t.admin.request<ExportResult | { exported: 0 }>('POST', '/api/v1/audit/export');

/** Every file under dir, relative, sorted. */
function files(dir: string, prefix = ''): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((d) =>
      d.isDirectory() ? files(join(dir, d.name), `${prefix}${d.name}/`) : [`${prefix}${d.name}`],
    )
    .sort();
}

const hourKey = (ms: number) => {
  const d = new Date(ms).toISOString();
  return `audit/${d.slice(0, 4)}/${d.slice(5, 7)}/${d.slice(8, 10)}/${d.slice(11, 13)}`;
};

forEachDialect((dialect) => {
  const start = controllers(dialect);

  it('chains entries within and across transactions, also when writers race; verify says ok', async () => {
    const t = await start();
    expect(await verify(t)).toEqual({
      ok: true,
      entries_checked: 0,
      head_hash: GENESIS_HASH,
      first_bad: null,
    });
    const a = await append(t, 0, 3, true);
    expect(a[0]!.prev_hash).toBe(GENESIS_HASH);
    expect(a[1]!.prev_hash).toBe(a[0]!.entry_hash);
    expect(a[2]!.prev_hash).toBe(a[1]!.entry_hash);
    const b = await append(t, 3, 1);
    expect(b[0]!.prev_hash).toBe(a[2]!.entry_hash);
    // 12 transactions at once, 2 entries each: the chain must stay one line.
    await Promise.all(Array.from({ length: 12 }, (_, k) => append(t, 10 + k * 2, 2, true)));
    const r = await verify(t);
    expect(r.ok).toBe(true);
    expect(r.entries_checked).toBe(28);
    // What the API shows is exactly what was hashed: the chain checks out from the view alone.
    const all = (await t.admin.request<ListPage>('GET', '/api/v1/audit', { query: { limit: 1000 } })).entries;
    expect(all).toHaveLength(28);
    expect(verifyChain([...all].reverse())).toEqual(r);
    expect(r.head_hash).toBe(all[0]!.entry_hash);
  });

  it('lists newest first, filters by run and action, pages with a cursor; viewers may read', async () => {
    const t = await start();
    const written = await append(t, 0, 7);
    const viewer = await t.as('viewer');
    const p1 = await viewer.request<ListPage>('GET', '/api/v1/audit', { query: { limit: 3 } });
    expect(p1.entries.map((e) => e.id)).toEqual(
      written
        .slice(4)
        .reverse()
        .map((e) => e.id),
    );
    expect(p1.next_cursor).not.toBeNull();
    const p2 = await viewer.request<ListPage>('GET', '/api/v1/audit', {
      query: { limit: 10, cursor: p1.next_cursor! },
    });
    expect(p2.entries.map((e) => e.id)).toEqual(
      written
        .slice(0, 4)
        .reverse()
        .map((e) => e.id),
    );
    expect(p2.next_cursor).toBeNull();
    expect(p1.entries[0]).toEqual(written[6]);
    expect(p1.entries[0]).toMatchObject({
      run_id: 'run_0',
      action: 'command.tune',
      actor: { type: 'operator', id: 'op6@example.com' },
      envelope: { id: 'cmd-6', type: 'tune', payload: { learning_rate: 0.01, notes: 'n6' } },
      source_ip: '10.1.2.3',
      user_agent: 'test/1',
      client_cert_fingerprint: null,
    });

    const byRun = await viewer.request<ListPage>('GET', '/api/v1/audit', { query: { run_id: 'run_1' } });
    expect(byRun.entries.map((e) => e.envelope)).toEqual(
      [written[1], written[4]].reverse().map((e) => e!.envelope),
    );
    const byAction = await viewer.request<ListPage>('GET', '/api/v1/audit', {
      query: { action: 'command.pause', run_id: 'run_1' },
    });
    expect(byAction.entries.map((e) => e.id)).toEqual([written[1]!.id]);

    const bad = await rejected(viewer.request('GET', '/api/v1/audit', { query: { limit: 0 } }));
    expect(bad.status).toBe(422);
    expect((await rejected(viewer.request('POST', '/api/v1/audit/export'))).status).toBe(403);
    expect((await viewer.request<VerifyResult>('GET', '/api/v1/audit/verify')).ok).toBe(true);
    const worker = await t.as('worker');
    expect((await rejected(worker.request('GET', '/api/v1/audit'))).status).toBe(403);
  });

  it('names the entry changed directly in the database', async () => {
    const t = await start();
    const written = await append(t, 0, 5);
    const db = t.ctl.store.db;
    const target = written[2]!;
    await sql`update control_audit set envelope = ${'{"id":"cmd-2","payload":{"learning_rate":0.9},"type":"tune"}'} where seq = ${target.seq}`.execute(
      db,
    );
    expect(await verify(t)).toEqual({
      ok: false,
      entries_checked: 3,
      head_hash: written[1]!.entry_hash,
      first_bad: { seq: target.seq, id: target.id, reason: 'ENTRY_HASH_MISMATCH' },
    });
  });

  it('names a tampered row whichever column changed, and a deleted one', async () => {
    const t = await start();
    const written = await append(t, 0, 4);
    const db = t.ctl.store.db;
    const { seq, id } = written[1]!;
    const bad = { seq, id, reason: 'ENTRY_HASH_MISMATCH' };
    const set = (column: 'envelope' | 'source_ip', value: string) =>
      sql`update control_audit set ${sql.ref(column)} = ${value} where seq = ${seq}`.execute(db);

    // The same value with other spacing is still not the row that was hashed.
    const canonical = '{"id":"cmd-1","payload":{"learning_rate":0.01,"notes":"n1"},"type":"tune"}';
    await set('envelope', JSON.stringify(JSON.parse(canonical), null, 1));
    expect((await verify(t)).first_bad).toEqual(bad);
    await set('envelope', 'not json');
    expect((await verify(t)).first_bad).toEqual(bad);
    await set('envelope', canonical);
    expect((await verify(t)).ok).toBe(true);

    await set('source_ip', '10.9.9.9');
    expect((await verify(t)).first_bad).toEqual(bad);
    await set('source_ip', '10.1.2.3');
    await sql`update control_audit set created_at = created_at + 1 where seq = ${seq}`.execute(db);
    expect((await verify(t)).first_bad).toEqual(bad);
    await sql`update control_audit set created_at = created_at - 1 where seq = ${seq}`.execute(db);
    expect((await verify(t)).ok).toBe(true);

    await sql`delete from control_audit where seq = ${seq}`.execute(db);
    expect((await verify(t)).first_bad).toEqual({
      seq: written[2]!.seq,
      id: written[2]!.id,
      reason: 'PREV_HASH_MISMATCH',
    });
  });

  it('exports NDJSON and a manifest into audit/YYYY/MM/DD/HH, then only the new entries', async () => {
    const t = await start();
    const root = t.config.auditExportDir;
    expect(await exportNow(t)).toEqual({ exported: 0 });
    expect(files(root)).toEqual([]);

    const first = await append(t, 0, 5);
    const before = Date.now();
    const e1 = (await exportNow(t)) as ExportResult;
    const key = hourKey(Date.parse(e1.exported_at));
    expect(Date.parse(e1.exported_at)).toBeGreaterThanOrEqual(before);
    expect(e1).toMatchObject({
      exported: 5,
      format: 'runplane-audit-export/1',
      from_seq: first[0]!.seq,
      to_seq: first[4]!.seq,
      entry_count: 5,
      head_hash: first[4]!.entry_hash,
      prev_head_hash: GENESIS_HASH,
      object: `${key}.ndjson`,
    });
    const manifest = JSON.parse(readFileSync(join(root, `${key}.manifest.json`), 'utf8')) as ExportManifest;
    const { exported: _n, ...fileManifest } = e1;
    expect(manifest).toEqual(fileManifest);
    const bytes = readFileSync(join(root, manifest.object));
    expect(bytes.length).toBe(manifest.bytes);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(manifest.sha256);
    const lines = bytes
      .toString('utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as AuditEntryView);
    expect(lines).toEqual(first);
    // A file verifies on its own, from the previous export's head.
    expect(verifyChain(lines, { start: manifest.prev_head_hash }).head_hash).toBe(manifest.head_hash);

    expect(await exportNow(t)).toEqual({ exported: 0 });

    const second = await append(t, 5, 3);
    const e2 = (await exportNow(t)) as ExportResult;
    expect(e2).toMatchObject({
      exported: 3,
      from_seq: second[0]!.seq,
      to_seq: second[2]!.seq,
      head_hash: second[2]!.entry_hash,
      prev_head_hash: e1.head_hash,
    });
    // Within the same hour the name is taken: HH-<from_seq>.
    const key2 = hourKey(Date.parse(e2.exported_at));
    const expected2 = key2 === key ? `${key}-${second[0]!.seq}` : key2;
    expect(e2.object).toBe(`${expected2}.ndjson`);
    const lines2 = readFileSync(join(root, e2.object), 'utf8').trimEnd().split('\n');
    expect(lines2.map((l) => (JSON.parse(l) as AuditEntryView).id)).toEqual(second.map((e) => e.id));
    expect(files(root).filter((f) => f.includes('.tmp-'))).toEqual([]);

    const ledger = await t.ctl.store.db.selectFrom('audit_exports').selectAll().orderBy('seq').execute();
    expect(
      ledger.map((r) => [Number(r.from_seq), Number(r.to_seq), r.entry_count, r.head_hash, r.path]),
    ).toEqual([
      [e1.from_seq, e1.to_seq, 5, e1.head_hash, e1.object],
      [e2.from_seq, e2.to_seq, 3, e2.head_hash, e2.object],
    ]);
    expect((await verify(t)).ok).toBe(true);
  });

  it('an export interrupted before its ledger row is redone whole; the ledger neither loses nor repeats', async () => {
    const t = await start();
    const root = t.config.auditExportDir;
    const written = await append(t, 0, 4);
    const e1 = (await exportNow(t)) as ExportResult;
    // The crash: files written, ledger row never committed.
    await sql`delete from audit_exports`.execute(t.ctl.store.db);
    await append(t, 4, 2);
    const e2 = (await exportNow(t)) as ExportResult;
    expect(e2.from_seq).toBe(written[0]!.seq);
    expect(e2.entry_count).toBe(6);
    expect(e2.prev_head_hash).toBe(GENESIS_HASH);
    // The orphan stays untouched (objects are never overwritten); the redo got a name of its own.
    expect(e2.object).not.toBe(e1.object);
    expect(readFileSync(join(root, e1.object), 'utf8').trimEnd().split('\n')).toHaveLength(4);
    const ledger = await t.ctl.store.db.selectFrom('audit_exports').selectAll().execute();
    expect(ledger.map((r) => [Number(r.from_seq), Number(r.to_seq), r.path])).toEqual([
      [e2.from_seq, e2.to_seq, e2.object],
    ]);
  });

  it('exports that race (one process, or replicas sharing the database) export each entry once', async () => {
    const t = await start();
    await append(t, 0, 6);
    const replica = new AuditService(t.ctl.store, systemClock, t.config, pino({ level: 'silent' }));
    const outcomes = await Promise.allSettled([exportNow(t), exportNow(t), replica.export()]);
    let exported = 0;
    for (const o of outcomes) {
      if (o.status === 'fulfilled') exported += o.value?.exported ?? 0;
      // Only a replica that finds another one exporting is turned away.
      else expect(o.reason).toMatchObject({ status: 409, code: 'AUDIT_EXPORT_BUSY' });
    }
    expect(exported).toBe(6);
    const ledger = await t.ctl.store.db.selectFrom('audit_exports').selectAll().execute();
    expect(ledger.reduce((n, r) => n + r.entry_count, 0)).toBe(6);
  });

  it('verify checks the chain against exported heads: a rewritten or cut-off chain is caught', async () => {
    const t = await start();
    const written = await append(t, 0, 3);
    await exportNow(t);
    const db = t.ctl.store.db;
    // Cut the exported tail off: every remaining link still holds.
    await sql`delete from control_audit where seq = ${written[2]!.seq}`.execute(db);
    expect((await verify(t)).first_bad).toEqual({
      seq: written[2]!.seq,
      id: null,
      reason: 'EXPORTED_ENTRY_MISSING',
    });
  });

  it('the export timer exports when the interval has passed on the injected clock', async () => {
    let now = Date.UTC(2030, 5, 1, 10, 15);
    const clock = { now: () => now };
    const t = await startTestController(
      dialect,
      { auditExportIntervalMs: '1h' },
      { clock, logger: pino({ level: 'silent' }) },
    );
    try {
      const audit = t.ctl.audit;
      const root = t.config.auditExportDir;
      // Nothing yet: due, but nothing to export and no files.
      expect(await audit.tick()).toBeNull();
      expect(files(root)).toEqual([]);
      await append(t, 0, 2);
      // Tried a moment ago: not due again until an hour has passed.
      now += 30 * 60_000;
      expect(await audit.tick()).toBeNull();
      now += 30 * 60_000;
      const first = await audit.tick();
      expect(first?.entry_count).toBe(2);
      expect(first?.object).toBe('audit/2030/06/01/11.ndjson');
      expect(first?.exported_at).toBe('2030-06-01T11:15:00.000Z');
      await append(t, 2, 1);
      now += 59 * 60_000;
      expect(await audit.tick()).toBeNull();
      now += 60_000;
      const second = await audit.tick();
      expect(second).toMatchObject({ entry_count: 1, object: 'audit/2030/06/01/12.ndjson' });
      expect(files(root)).toEqual(
        [
          '2030/06/01/11.manifest.json',
          '2030/06/01/11.ndjson',
          '2030/06/01/12.manifest.json',
          '2030/06/01/12.ndjson',
        ].map((f) => `audit/${f}`),
      );
    } finally {
      await t.close();
    }
  });

  it('an interval of 0 turns the timed export off', async () => {
    const t = await start({ auditExportIntervalMs: '0' });
    await append(t, 0, 1);
    expect(await t.ctl.audit.tick()).toBeNull();
    expect(files(t.config.auditExportDir)).toEqual([]);
  });
});
