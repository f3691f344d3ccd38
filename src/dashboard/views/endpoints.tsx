import type { Endpoint } from '../api-types.js';
import { type Column, DataTable } from '../components/data-table.js';
import { Filters } from '../components/filters.js';
import { fmtTime } from '../format.js';
import { href, navigate, type Route } from '../router.js';
import { useSession } from '../session.js';
import { Labels, LoadState, useLoad } from '../ui.js';

const ENDPOINT_COLUMNS: Column<Endpoint>[] = [
  { head: 'Name', cell: (e) => e.name },
  { head: 'Address', cell: (e) => <code>{e.address}</code> },
  { head: 'Metadata', cell: (e) => <Labels labels={e.metadata} /> },
  { head: 'Job', cell: (e) => <a href={href(['jobs', e.job_id])}>{e.job_id}</a> },
  { head: 'Registered', cell: (e) => fmtTime(e.created_at) },
];

/** Endpoints: the service-discovery registry (endpoints of running jobs), filtered by name prefix. */
export function EndpointsView({ route }: { route: Route }) {
  const { api } = useSession();
  const prefix = route.query.get('prefix') ?? '';
  const endpoints = useLoad(
    (signal) => api.get<{ endpoints: Endpoint[] }>('/endpoints', { prefix }, signal),
    [api, prefix],
    { pollMs: 5000 },
  );
  const list = endpoints.data?.endpoints ?? [];
  return (
    <section data-view="endpoints" data-view-ready={endpoints.data ? 'endpoints' : undefined}>
      <h2>Endpoints</h2>
      <Filters
        fields={[{ type: 'text', name: 'prefix', label: 'Name prefix', placeholder: 'e.g. learner/' }]}
        values={{ prefix }}
        onChange={(patch) => navigate(['endpoints'], patch)}
      />
      <LoadState state={endpoints} what="Endpoints" />
      {endpoints.data && (
        <DataTable
          testid="endpoints-table"
          columns={ENDPOINT_COLUMNS}
          rows={list}
          rowKey={(e) => e.endpoint_id}
          empty="No endpoints registered by running jobs."
        />
      )}
    </section>
  );
}
