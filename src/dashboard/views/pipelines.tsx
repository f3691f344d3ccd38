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
              <th>Circuit breaker</th>
              <th>Last error</th>
              <th>Updated</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {list.map((p) => {
              const stages = p.stages.length ? p.stages : STAGES;
              const at = stages.indexOf(p.stage);
              const last = p.attempts[p.attempts.length - 1];
              return (
                <tr key={p.pipeline_id} data-pipeline={p.config_key}>
                  <td>{p.config_key}</td>
                  <td>
                    <Badge value={p.stage} />
                    {p.attempt > 1 ? <span class="muted"> attempt {p.attempt}</span> : null}
                  </td>
                  <td>
                    <span class="stages">
                      {stages
                        .filter((st) => st !== 'IDLE')
                        .map((st) => {
                          const k = stages.indexOf(st);
                          return (
                            <span
                              key={st}
                              class={`stage ${k < at ? 'done' : k === at ? 'now' : ''}`}
                              title={st}
                            >
                              {st.replace('_', ' ').toLowerCase()}
                            </span>
                          );
                        })}
                    </span>
                    {last?.blocked_reason && <div class="muted small">blocked: {last.blocked_reason}</div>}
                  </td>
                  <td>
                    <Badge value={p.status} />
                  </td>
                  <td>
                    <Badge value={p.breaker.state} />{' '}
                    <span class="muted">
                      {p.breaker.consecutive_failures}/{p.breaker.failure_threshold}
                    </span>
                  </td>
                  <td class="clip" title={p.last_error ?? ''}>
                    {p.last_error ?? ''}
                  </td>
                  <td>{fmtTime(p.updated_at)}</td>
                  <td>
                    {(p.status === 'running' || p.status === 'breaker_open') && (
                      <Action
                        label="Stop"
                        title={`Stop the ${p.config_key} pipeline? Its stage job is terminated.`}
                        danger
                        onConfirm={() => api.post(`/pipelines/${encodeURIComponent(p.config_key)}/stop`, {})}
                        onDone={pipelines.reload}
                      />
                    )}
                  </td>
                </tr>
              );
            })}
            {list.length === 0 && (
              <tr>
                <td colSpan={8} class="muted">
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
  const models = useLoad((signal) => api.get<{ models: Model[] }>('/models', { limit: 100 }, signal), [api], {
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
              <th>State</th>
              <th>Metrics</th>
              <th>Promoted</th>
              <th>Updated</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {list.map((m) => (
              <tr key={m.model_id} title={m.reason ?? undefined}>
                <td>
                  <code>{m.model_id}</code>
                </td>
                <td>{m.config_key}</td>
                <td>
                  <Badge value={m.state} />
                </td>
                <td>
                  {Object.entries(m.metrics)
                    .map(([k, v]) => `${k}=${fmtValue(v)}`)
                    .join(', ') || '—'}
                </td>
                <td>{fmtTime(m.promoted_at)}</td>
                <td>{fmtTime(m.updated_at)}</td>
                <td>
                  {m.state === 'production' ? (
                    <Action
                      label="Rollback"
                      title={`Roll back ${m.config_key}'s production model ${m.model_id}? The one before it is restored.`}
                      danger
                      onConfirm={() => api.post(`/models/${encodeURIComponent(m.model_id)}/rollback`, {})}
                      onDone={models.reload}
                    />
                  ) : m.state !== 'archived' && m.state !== 'rolled_back' ? (
                    <Action
                      label="Promote"
                      title={`Make ${m.model_id} the production model of ${m.config_key}?`}
                      onConfirm={() => api.post(`/models/${encodeURIComponent(m.model_id)}/promote`, {})}
                      onDone={models.reload}
                    />
                  ) : null}
                </td>
              </tr>
            ))}
            {list.length === 0 && (
              <tr>
                <td colSpan={7} class="muted">
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
