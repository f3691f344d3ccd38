import type { Endpoint } from '../api-types.js';
import { fmtTime } from '../format.js';
import { href, navigate, type Route } from '../router.js';
import { useSession } from '../session.js';
import { Labels, LoadState, useLoad } from '../ui.js';

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
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          const f = new FormData(e.currentTarget as HTMLFormElement);
          navigate(['endpoints'], { prefix: String(f.get('prefix') ?? '') });
        }}
      >
        <label>
          Name prefix
          <input name="prefix" defaultValue={prefix} key={prefix} placeholder="e.g. learner/" />
        </label>
        <button type="submit">Filter</button>
      </form>
      <LoadState state={endpoints} what="Endpoints" />
      {endpoints.data && (
        <table class="table" data-testid="endpoints-table">
          <thead>
            <tr>
              <th>Name</th>
              <th>Address</th>
              <th>Metadata</th>
              <th>Job</th>
              <th>Registered</th>
            </tr>
          </thead>
          <tbody>
            {list.map((e) => (
              <tr key={e.endpoint_id}>
                <td>{e.name}</td>
                <td>
                  <code>{e.address}</code>
                </td>
                <td>
                  <Labels labels={e.metadata} />
                </td>
                <td>
                  <a href={href(['jobs', e.job_id])}>{e.job_id}</a>
                </td>
                <td>{fmtTime(e.created_at)}</td>
              </tr>
            ))}
            {list.length === 0 && (
              <tr>
                <td colSpan={5} class="muted">
                  No endpoints registered by running jobs.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      )}
    </section>
  );
}
