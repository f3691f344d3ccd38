import type { DeadLetter, DeadLetterStats, Model, Pipeline } from '../api-types.js';
import { ConfirmAction } from '../components/confirm.js';
import { type Column, DataTable } from '../components/data-table.js';
import { Filters } from '../components/filters.js';
import { Pager, pageAt } from '../components/pager.js';
import { StateBadge, statesOf } from '../components/state-badge.js';
import { fmtTime, fmtValue } from '../format.js';
import { navigate, type Route } from '../router.js';
import { useSession } from '../session.js';
import { LoadState, useLoad } from '../ui.js';

/**
 * Pipelines: the stage each config's pipeline is in, the models per config with their
 * lifecycle state, and the dead-letter queue (handlers that kept failing) with retry.
 */

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

/** The pipeline's stages after IDLE, the ones passed marked done and its current one now. */
function StageProgress({ pipeline: p }: { pipeline: Pipeline }) {
  const stages = p.stages.length ? p.stages : statesOf('stage');
  const at = stages.indexOf(p.stage);
  const last = p.attempts[p.attempts.length - 1];
  return (
    <>
      <span class="stages">
        {stages
          .filter((st) => st !== 'IDLE')
          .map((st) => {
            const k = stages.indexOf(st);
            return (
              <span key={st} class={`stage ${k < at ? 'done' : k === at ? 'now' : ''}`} title={st}>
                {st.replace('_', ' ').toLowerCase()}
              </span>
            );
          })}
      </span>
      {last?.blocked_reason && <div class="muted small">blocked: {last.blocked_reason}</div>}
    </>
  );
}

function PipelineTable() {
  const { api } = useSession();
  const pipelines = useLoad(
    (signal) => api.get<{ pipelines: Pipeline[] }>('/pipelines', undefined, signal),
    [api],
    { pollMs: 5000 },
  );
  const columns: Column<Pipeline>[] = [
    { head: 'Config', cell: (p) => p.config_key },
    {
      head: 'Stage',
      cell: (p) => (
        <>
          <StateBadge kind="stage" value={p.stage} />
          {p.attempt > 1 ? <span class="muted"> attempt {p.attempt}</span> : null}
        </>
      ),
    },
    { head: 'Progress', cell: (p) => <StageProgress pipeline={p} /> },
    { head: 'Status', cell: (p) => <StateBadge kind="pipeline" value={p.status} /> },
    {
      head: 'Circuit breaker',
      cell: (p) => (
        <>
          <StateBadge kind="breaker" value={p.breaker.state} />{' '}
          <span class="muted">
            {p.breaker.consecutive_failures}/{p.breaker.failure_threshold}
          </span>
        </>
      ),
    },
    { head: 'Last error', class: 'clip', title: (p) => p.last_error ?? '', cell: (p) => p.last_error ?? '' },
    { head: 'Updated', cell: (p) => fmtTime(p.updated_at) },
    {
      cell: (p) =>
        (p.status === 'running' || p.status === 'breaker_open') && (
          <ConfirmAction
            label="Stop"
            title={`Stop the ${p.config_key} pipeline? Its stage job is terminated.`}
            danger
            onConfirm={() => api.post(`/pipelines/${encodeURIComponent(p.config_key)}/stop`, {})}
            onDone={pipelines.reload}
          />
        ),
    },
  ];
  return (
    <>
      <h3>Stages per config</h3>
      <LoadState state={pipelines} what="Pipelines" />
      {pipelines.data && (
        <DataTable
          testid="pipelines-table"
          columns={columns}
          rows={pipelines.data.pipelines}
          rowKey={(p) => p.pipeline_id}
          row={(p) => ({ 'data-pipeline': p.config_key })}
          empty={
            <>
              No pipelines. Start one with <code>runplane pipeline start &lt;file&gt;</code>.
            </>
          }
        />
      )}
    </>
  );
}

function ModelTable() {
  const { api } = useSession();
  const models = useLoad((signal) => api.get<{ models: Model[] }>('/models', { limit: 100 }, signal), [api], {
    pollMs: 10_000,
  });
  const columns: Column<Model>[] = [
    { head: 'Model', cell: (m) => <code>{m.model_id}</code> },
    { head: 'Config', cell: (m) => m.config_key },
    { head: 'State', cell: (m) => <StateBadge kind="model" value={m.state} /> },
    {
      head: 'Metrics',
      cell: (m) =>
        Object.entries(m.metrics)
          .map(([k, v]) => `${k}=${fmtValue(v)}`)
          .join(', ') || '—',
    },
    { head: 'Promoted', cell: (m) => fmtTime(m.promoted_at) },
    { head: 'Updated', cell: (m) => fmtTime(m.updated_at) },
    {
      cell: (m) =>
        m.state === 'production' ? (
          <ConfirmAction
            label="Rollback"
            title={`Roll back ${m.config_key}'s production model ${m.model_id}? The one before it is restored.`}
            danger
            onConfirm={() => api.post(`/models/${encodeURIComponent(m.model_id)}/rollback`, {})}
            onDone={models.reload}
          />
        ) : m.state !== 'archived' && m.state !== 'rolled_back' ? (
          <ConfirmAction
            label="Promote"
            title={`Make ${m.model_id} the production model of ${m.config_key}?`}
            onConfirm={() => api.post(`/models/${encodeURIComponent(m.model_id)}/promote`, {})}
            onDone={models.reload}
          />
        ) : null,
    },
  ];
  return (
    <>
      <h3>Models</h3>
      <LoadState state={models} what="Models" />
      {models.data && (
        <DataTable
          testid="models-table"
          columns={columns}
          rows={models.data.models}
          rowKey={(m) => m.model_id}
          row={(m) => ({ title: m.reason ?? undefined })}
          empty="No models registered."
        />
      )}
    </>
  );
}

function DeadLetters({ query }: { query: URLSearchParams }) {
  const { api } = useSession();
  const status = query.get('dlq_status') ?? 'pending';
  const at = pageAt(query);
  const stats = useLoad((signal) => api.get<DeadLetterStats>('/dlq/stats', undefined, signal), [api], {
    pollMs: 5000,
  });
  const page = useLoad(
    (signal) =>
      api.get<{ dead_letters: DeadLetter[]; next_cursor: string | null }>(
        '/dlq',
        { status: status === 'all' ? undefined : status, limit: 50, cursor: at.cursor },
        signal,
      ),
    [api, status, at.cursor],
    { pollMs: 5000 },
  );
  const list = page.data?.dead_letters ?? [];
  const reload = () => {
    page.reload();
    stats.reload();
  };
  const columns: Column<DeadLetter>[] = [
    { head: 'Subscriber', cell: (d) => d.subscriber },
    { head: 'Event', cell: (d) => <code title={d.event_id}>{d.event_type}</code> },
    { head: 'Status', cell: (d) => <StateBadge kind="dlq" value={d.status} /> },
    { head: 'Error', class: 'clip', title: (d) => d.error, cell: (d) => d.error },
    { head: 'Attempts', num: true, cell: (d) => d.attempts },
    { head: 'Next retry', cell: (d) => fmtTime(d.next_retry_at) },
    { head: 'Failed', cell: (d) => fmtTime(d.last_failed_at) },
    {
      cell: (d) =>
        d.status !== 'recovered' && (
          <ConfirmAction
            label="Retry"
            title={`Run ${d.subscriber}'s handler for ${d.event_type} again now?`}
            onConfirm={() => api.post(`/dlq/${encodeURIComponent(d.id)}/retry`)}
            onDone={reload}
          />
        ),
    },
  ];
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
      <Filters
        fields={[
          { type: 'select', name: 'dlq_status', label: 'Status', options: [...statesOf('dlq'), 'all'] },
        ]}
        values={{ dlq_status: status }}
        onChange={(patch) => navigate(['pipelines'], patch)}
      />
      <LoadState state={page} what="The dead-letter queue" />
      {page.data && (
        <>
          <DataTable
            testid="dlq-table"
            columns={columns}
            rows={list}
            rowKey={(d) => d.id}
            row={(d) => ({ 'data-dead-letter': d.id })}
            empty="No dead letters with this status."
          />
          <Pager
            at={at}
            next={page.data.next_cursor}
            count={list.length}
            route={['pipelines']}
            query={{ dlq_status: status }}
          />
        </>
      )}
    </>
  );
}
