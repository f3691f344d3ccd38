import type { AuditEntry, AuditVerify } from '../api-types.js';
import { ConfirmAction } from '../components/confirm.js';
import { type Column, DataTable } from '../components/data-table.js';
import { Filters } from '../components/filters.js';
import { FIRST_PAGE, Pager, pageAt } from '../components/pager.js';
import { StateBadge } from '../components/state-badge.js';
import { fmtTime } from '../format.js';
import { href, navigate, type Route } from '../router.js';
import { useSession } from '../session.js';
import { ErrorBox, LoadState, useLoad } from '../ui.js';

/**
 * Audit: the hash-chained control log (newest first, filtered by run and action) and the chain's
 * status from `GET /audit/verify`. Read only: there is no route that changes an entry.
 */
export function AuditView({ route }: { route: Route }) {
  const { api, principal } = useSession();
  const q = route.query;
  const filters = { run_id: q.get('run_id') ?? '', action: q.get('action') ?? '' };
  const at = pageAt(q);
  const page = useLoad(
    (signal) =>
      api.get<{ entries: AuditEntry[]; next_cursor: string | null }>(
        '/audit',
        { ...filters, limit: 50, cursor: at.cursor },
        signal,
      ),
    [api, q.toString()],
  );
  return (
    <section data-view="audit" data-view-ready={page.data ? 'audit' : undefined}>
      <h2>Audit</h2>
      <ChainStatus />
      {principal.role === 'admin' && (
        <div class="actions">
          <ConfirmAction
            label="Export"
            title="Export the entries since the last export to the audit export directory?"
            onConfirm={() => api.post('/audit/export', {})}
          />
        </div>
      )}
      <Filters
        fields={[
          { type: 'text', name: 'run_id', label: 'Run', placeholder: 'run id' },
          { type: 'text', name: 'action', label: 'Action', placeholder: 'e.g. command.tune' },
        ]}
        values={filters}
        onChange={(patch) => navigate(['audit'], { ...filters, ...FIRST_PAGE, ...patch })}
      />
      <LoadState state={page} what="The audit log" />
      {page.data && (
        <>
          <EntryTable entries={page.data.entries} />
          <Pager
            at={at}
            next={page.data.next_cursor}
            count={page.data.entries.length}
            route={['audit']}
            query={filters}
          />
        </>
      )}
    </section>
  );
}

/** Whether the chain verifies end to end (and where it breaks if not). */
export function ChainStatus() {
  const { api } = useSession();
  const verify = useLoad((signal) => api.get<AuditVerify>('/audit/verify', undefined, signal), [api]);
  const v = verify.data;
  return (
    <div class="card chain" data-testid="chain-status">
      <ErrorBox error={verify.error} />
      {!v && !verify.error && <span class="muted">Verifying the chain…</span>}
      {v && (
        <>
          <StateBadge kind="chain" value={v.ok ? 'ok' : 'failed'} />{' '}
          {v.ok
            ? `hash chain intact: ${v.entries_checked} entries checked`
            : `hash chain broken at seq ${v.first_bad?.seq} (${v.first_bad?.reason})`}
          <span class="muted">
            {' '}
            · head <code>{v.head_hash.slice(0, 16)}…</code>
          </span>{' '}
          <button type="button" class="link" onClick={verify.reload}>
            verify again
          </button>
        </>
      )}
    </div>
  );
}

/** The newest audit entries of one run (embedded in the run's detail). */
export function AuditTrail({ runId }: { runId: string }) {
  const { api } = useSession();
  const page = useLoad(
    (signal) =>
      api.get<{ entries: AuditEntry[]; next_cursor: string | null }>(
        '/audit',
        { run_id: runId, limit: 50 },
        signal,
      ),
    [api, runId],
    { pollMs: 5000 },
  );
  return (
    <>
      <LoadState state={page} what="The audit log" />
      {page.data && page.data.entries.length === 0 && (
        <p class="muted">No audited actions on this run yet.</p>
      )}
      {page.data && page.data.entries.length > 0 && (
        <>
          <EntryTable entries={page.data.entries} />
          <p>
            <a href={href(['audit'], { run_id: runId })}>All entries of this run, and the chain status →</a>
          </p>
        </>
      )}
    </>
  );
}

const ENTRY_COLUMNS: Column<AuditEntry>[] = [
  { head: 'Seq', num: true, cell: (e) => e.seq },
  { head: 'Time', cell: (e) => fmtTime(e.created_at) },
  { head: 'Action', cell: (e) => <code title={JSON.stringify(e.envelope)}>{e.action}</code> },
  { head: 'Actor', cell: (e) => `${e.actor.type}:${e.actor.id}` },
  { head: 'Run', cell: (e) => (e.run_id ? <a href={href(['runs', e.run_id])}>{e.run_id}</a> : '—') },
  {
    head: 'Source',
    class: 'clip',
    title: (e) => e.user_agent ?? '',
    cell: (e) => `${e.source_ip ?? '—'}${e.client_cert_fingerprint ? ' (mTLS)' : ''}`,
  },
  {
    head: 'Entry hash',
    cell: (e) => <code title={`prev ${e.prev_hash}`}>{e.entry_hash.slice(0, 12)}…</code>,
  },
];

function EntryTable({ entries }: { entries: AuditEntry[] }) {
  return (
    <DataTable
      testid="audit-table"
      columns={ENTRY_COLUMNS}
      rows={entries}
      rowKey={(e) => e.id}
      empty="No entries."
    />
  );
}
