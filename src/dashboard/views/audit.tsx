import type { AuditEntry, AuditVerify } from '../api-types.js';
import { fmtTime } from '../format.js';
import { href, navigate, type Route } from '../router.js';
import { useSession } from '../session.js';
import { Action, Badge, backFrom, backTo, ErrorBox, LoadState, Pager, useLoad } from '../ui.js';

/**
 * Audit: the hash-chained control log (newest first, filtered by run and action) and the chain's
 * status from `GET /audit/verify`. Read only: there is no route that changes an entry.
 */
export function AuditView({ route }: { route: Route }) {
  const { api, principal } = useSession();
  const q = route.query;
  const filters = { run_id: q.get('run_id') ?? '', action: q.get('action') ?? '' };
  const cursor = q.get('cursor');
  const back = backFrom(q);
  const page = useLoad(
    (signal) =>
      api.get<{ entries: AuditEntry[]; next_cursor: string | null }>(
        '/audit',
        { ...filters, limit: 50, cursor },
        signal,
      ),
    [api, q.toString()],
  );
  const set = (patch: Record<string, string | null>) =>
    navigate(['audit'], { ...filters, cursor: null, back: null, ...patch });
  return (
    <section data-view="audit" data-view-ready={page.data ? 'audit' : undefined}>
      <h2>Audit</h2>
      <ChainStatus />
      {principal.role === 'admin' && (
        <div class="actions">
          <Action
            label="Export"
            title="Export the entries since the last export to the audit export directory?"
            onConfirm={() => api.post('/audit/export', {})}
          />
        </div>
      )}
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          const f = new FormData(e.currentTarget as HTMLFormElement);
          set({ run_id: String(f.get('run_id') ?? ''), action: String(f.get('action') ?? '') });
        }}
      >
        <label>
          Run
          <input name="run_id" defaultValue={filters.run_id} key={filters.run_id} placeholder="run id" />
        </label>
        <label>
          Action
          <input
            name="action"
            defaultValue={filters.action}
            key={filters.action}
            placeholder="e.g. command.tune"
          />
        </label>
        <button type="submit">Filter</button>
      </form>
      <LoadState state={page} what="The audit log" />
      {page.data && (
        <>
          <EntryTable entries={page.data.entries} />
          <Pager
            cursor={cursor}
            nextCursor={page.data.next_cursor}
            back={back}
            count={page.data.entries.length}
            go={(c, b) => navigate(['audit'], { ...filters, cursor: c, back: backTo(b) })}
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
          <Badge value={v.ok ? 'ok' : 'failed'} />{' '}
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

function EntryTable({ entries }: { entries: AuditEntry[] }) {
  return (
    <table class="table" data-testid="audit-table">
      <thead>
        <tr>
          <th class="num">Seq</th>
          <th>Time</th>
          <th>Action</th>
          <th>Actor</th>
          <th>Run</th>
          <th>Source</th>
          <th>Entry hash</th>
        </tr>
      </thead>
      <tbody>
        {entries.map((e) => (
          <tr key={e.id}>
            <td class="num">{e.seq}</td>
            <td>{fmtTime(e.created_at)}</td>
            <td>
              <code title={JSON.stringify(e.envelope)}>{e.action}</code>
            </td>
            <td>
              {e.actor.type}:{e.actor.id}
            </td>
            <td>{e.run_id ? <a href={href(['runs', e.run_id])}>{e.run_id}</a> : '—'}</td>
            <td class="clip" title={e.user_agent ?? ''}>
              {e.source_ip ?? '—'}
              {e.client_cert_fingerprint ? ' (mTLS)' : ''}
            </td>
            <td>
              <code title={`prev ${e.prev_hash}`}>{e.entry_hash.slice(0, 12)}…</code>
            </td>
          </tr>
        ))}
        {entries.length === 0 && (
          <tr>
            <td colSpan={7} class="muted">
              No entries.
            </td>
          </tr>
        )}
      </tbody>
    </table>
  );
}
