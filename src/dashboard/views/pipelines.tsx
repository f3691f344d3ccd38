import type { DeadLetter, DeadLetterStats, Model, Pipeline } from '../api-types.js';
import { fmtTime, fmtValue } from '../format.js';
import { navigate, type Route } from '../router.js';
import { useSession } from '../session.js';
import { Action, Badge, backFrom, backTo, LoadState, Pager, useLoad } from '../ui.js';

/**
 * Pipelines: the stage each config's pipeline is in, the models per config with their
 * lifecycle state, and the dead-letter queue (handlers that kept failing) with retry.
 */

const STAGES = [
  'IDLE',
  'SELFPLAY',
  'DATA_SYNC',
  'NPZ_EXPORT',
  'TRAINING',
  'EVALUATION',
  'PROMOTION',
  'COMPLETE',
];

export function PipelinesView({ route }: { route: Route }) {
  return (
    <section data-view="pipelines" data-view-ready="pipelines">
      <h2>Pipelines</h2>
      <PipelineTable />
      <ModelTable />
      <DeadLetters query={route.query} />
    </section>
  );
}

function PipelineTable() {
  const { api } = useSession();
  const pipelines = useLoad(
    (signal) => api.get<{ pipelines: Pipeline[] }>('/pipelines', undefined, signal),
    [api],
    {
      pollMs: 5000,
    },
  );
  const list = pipelines.data?.pipelines ?? [];
  return (
    <>
      <h3>Stages per config</h3>
      <LoadState state={pipelines} what="Pipelines" />
      {pipelines.data && (
        <table class="table" data-testid="pipelines-table">
          <thead>
            <tr>
              <th>Config</th>
              <th>Stage</th>
              <th>Progress</th>
              <th>Status</th>
              <th>Updated</th>
            </tr>
          </thead>
          <tbody>
            {list.map((p, i) => {
              const key = String(p.config_key ?? p.config ?? p.name ?? i);
              const stage = String(p.stage ?? p.current_stage ?? 'IDLE').toUpperCase();
              const at = STAGES.indexOf(stage);
              return (
                <tr key={key}>
                  <td>{key}</td>
                  <td>
                    <Badge value={stage} />
                  </td>
                  <td>
                    <span class="stages">
                      {STAGES.slice(1).map((st, k) => (
                        <span
                          key={st}
                          class={`stage ${k + 1 < at ? 'done' : k + 1 === at ? 'now' : ''}`}
                          title={st}
                        >
                          {st.replace('_', ' ').toLowerCase()}
                        </span>
                      ))}
                    </span>
                  </td>
                  <td>
                    <Badge value={String(p.status ?? p.state ?? '—')} />
                  </td>
                  <td>{fmtTime((p.updated_at as string | undefined) ?? null)}</td>
                </tr>
              );
            })}
            {list.length === 0 && (
              <tr>
                <td colSpan={5} class="muted">
                  No pipelines. Start one with <code>runplane pipeline start &lt;file&gt;</code>.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      )}
    </>
  );
}

function ModelTable() {
  const { api } = useSession();
  const models = useLoad((signal) => api.get<{ models: Model[] }>('/models', undefined, signal), [api], {
    pollMs: 10_000,
  });
  const list = models.data?.models ?? [];
  return (
    <>
      <h3>Models</h3>
      <LoadState state={models} what="Models" />
      {models.data && (
        <table class="table" data-testid="models-table">
          <thead>
            <tr>
              <th>Model</th>
              <th>Config</th>
              <th>Version</th>
              <th>State</th>
              <th>Updated</th>
            </tr>
          </thead>
          <tbody>
            {list.map((m, i) => (
              <tr key={String(m.model_id ?? m.id ?? i)}>
                <td>{String(m.model_id ?? m.id ?? '—')}</td>
                <td>{fmtValue(m.config ?? m.config_key)}</td>
                <td>{fmtValue(m.version)}</td>
                <td>
                  <Badge value={String(m.state ?? '—')} />
                </td>
                <td>{fmtTime((m.updated_at as string | undefined) ?? null)}</td>
              </tr>
            ))}
            {list.length === 0 && (
              <tr>
                <td colSpan={5} class="muted">
                  No models registered.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      )}
    </>
  );
}

function DeadLetters({ query }: { query: URLSearchParams }) {
  const { api } = useSession();
  const status = query.get('dlq_status') ?? 'pending';
  const cursor = query.get('cursor');
  const back = backFrom(query);
  const stats = useLoad((signal) => api.get<DeadLetterStats>('/dlq/stats', undefined, signal), [api], {
    pollMs: 5000,
  });
  const page = useLoad(
    (signal) =>
      api.get<{ dead_letters: DeadLetter[]; next_cursor: string | null }>(
        '/dlq',
        { status: status === 'all' ? undefined : status, limit: 50, cursor },
        signal,
      ),
    [api, status, cursor],
    { pollMs: 5000 },
  );
  const list = page.data?.dead_letters ?? [];
  const reload = () => {
    page.reload();
    stats.reload();
  };
  return (
    <>
      <h3>
        Dead-letter queue{' '}
        {stats.data && (
          <span class="muted" data-testid="dlq-stats">
            {stats.data.pending} pending · {stats.data.recovered} recovered · {stats.data.abandoned} abandoned
          </span>
        )}
      </h3>
      <div class="filters">
        <label>
          Status
          <select
            value={status}
            onChange={(e) => navigate(['pipelines'], { dlq_status: (e.target as HTMLSelectElement).value })}
          >
            {['pending', 'recovered', 'abandoned', 'all'].map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
      </div>
      <LoadState state={page} what="The dead-letter queue" />
      {page.data && (
        <>
          <table class="table" data-testid="dlq-table">
            <thead>
              <tr>
                <th>Subscriber</th>
                <th>Event</th>
                <th>Status</th>
                <th>Error</th>
                <th class="num">Attempts</th>
                <th>Next retry</th>
                <th>Failed</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {list.map((d) => (
                <tr key={d.id} data-dead-letter={d.id}>
                  <td>{d.subscriber}</td>
                  <td>
                    <code title={d.event_id}>{d.event_type}</code>
                  </td>
                  <td>
                    <Badge value={d.status} />
                  </td>
                  <td class="clip" title={d.error}>
                    {d.error}
                  </td>
                  <td class="num">{d.attempts}</td>
                  <td>{fmtTime(d.next_retry_at)}</td>
                  <td>{fmtTime(d.last_failed_at)}</td>
                  <td>
                    {d.status !== 'recovered' && (
                      <Action
                        label="Retry"
                        title={`Run ${d.subscriber}'s handler for ${d.event_type} again now?`}
                        onConfirm={() => api.post(`/dlq/${encodeURIComponent(d.id)}/retry`)}
                        onDone={reload}
                      />
                    )}
                  </td>
                </tr>
              ))}
              {list.length === 0 && (
                <tr>
                  <td colSpan={8} class="muted">
                    No dead letters with this status.
                  </td>
                </tr>
              )}
            </tbody>
          </table>
          <Pager
            cursor={cursor}
            nextCursor={page.data.next_cursor}
            back={back}
            count={list.length}
            go={(c, b) => navigate(['pipelines'], { dlq_status: status, cursor: c, back: backTo(b) })}
          />
        </>
      )}
    </>
  );
}
