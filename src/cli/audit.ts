import type { Command } from 'commander';
import type { AuditEntryView, VerifyResult } from '../runs/audit-model.js';
import type { ExportResult } from '../runs/audit-service.js';
import { CliError, clientFrom, EXIT, type GlobalOptions, number } from './context.js';
import { printJson, printTable } from './output.js';

const REASONS: Record<string, string> = {
  ENTRY_HASH_MISMATCH: 'its content no longer matches its hash (the entry was changed)',
  PREV_HASH_MISMATCH: 'it does not chain to the entry before it (an entry was removed, inserted or moved)',
  EXPORT_HEAD_MISMATCH: 'its hash differs from the head an export recorded (the chain was rewritten)',
  EXPORTED_ENTRY_MISSING: 'an export recorded it as its head, but it is gone (entries were removed)',
};

export function registerAudit(program: Command, globals: () => GlobalOptions): void {
  const audit = program.command('audit').description('the tamper-evident audit log of control actions');

  audit
    .command('verify')
    .description('walk the hash chain; exits non-zero and names the first bad entry when it is broken')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const r = await clientFrom(globals()).request<VerifyResult>('GET', '/api/v1/audit/verify');
      if (o.json) printJson(r);
      if (r.ok) {
        if (!o.json)
          process.stdout.write(`audit chain ok: ${r.entries_checked} entries, head ${r.head_hash}\n`);
        return;
      }
      const bad = r.first_bad;
      const what = bad
        ? `entry seq ${bad.seq}${bad.id ? ` (${bad.id})` : ''}: ${bad.reason}, ${REASONS[bad.reason] ?? ''}`
        : 'unknown entry';
      throw new CliError(`audit chain broken at ${what}`, EXIT.failed);
    });

  audit
    .command('export')
    .description('export the entries appended since the last export (NDJSON + manifest)')
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const r = await clientFrom(globals()).request<ExportResult | { exported: 0 }>(
        'POST',
        '/api/v1/audit/export',
      );
      if (o.json) return printJson(r);
      if (!('object' in r)) {
        process.stdout.write('nothing to export\n');
        return;
      }
      process.stdout.write(
        `exported ${r.entry_count} entries (seq ${r.from_seq}-${r.to_seq}) to ${r.object}\n` +
          `head ${r.head_hash}\nsha256 ${r.sha256}\n`,
      );
    });

  audit
    .command('list')
    .description('audit entries, newest first')
    .option('--run <run_id>', 'only this run')
    .option('--action <action>', 'only this action (e.g. command.tune)')
    .option('--limit <n>', 'at most this many (default 50)', number('--limit'))
    .option('--json', 'print JSON')
    .action(async (o: { run?: string; action?: string; limit?: number; json?: boolean }) => {
      const r = await clientFrom(globals()).request<{
        entries: AuditEntryView[];
        next_cursor: string | null;
      }>('GET', '/api/v1/audit', { query: { run_id: o.run, action: o.action, limit: o.limit ?? 50 } });
      if (o.json) return printJson(r);
      printTable(
        ['SEQ', 'TIME', 'ACTION', 'RUN', 'ACTOR', 'SOURCE', 'CLIENT CERT', 'HASH'],
        r.entries.map((e) => [
          e.seq,
          e.created_at,
          e.action,
          e.run_id,
          `${e.actor.type}:${e.actor.id}`,
          e.source_ip,
          e.client_cert_fingerprint ? `${e.client_cert_fingerprint.slice(0, 23)}…` : null,
          e.entry_hash.slice(0, 12),
        ]),
      );
    });
}
