import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { uuidv4 } from '../api.js';
import type { Command, Run, RunMetrics, RunStatusEvent } from '../api-types.js';
import { LineChart, PALETTE } from '../charts.js';
import { ConfirmAction, formText } from '../components/confirm.js';
import { type Column, DataTable } from '../components/data-table.js';
import { Detail } from '../components/detail.js';
import { Filters, PER_PAGE } from '../components/filters.js';
import { FIRST_PAGE, Pager, pageAt } from '../components/pager.js';
import { StateBadge, statesOf } from '../components/state-badge.js';
import { ago, fmtNum, fmtTime } from '../format.js';
import { href, navigate, type Route } from '../router.js';
import { useSession } from '../session.js';
import { follow } from '../stream.js';
import { ErrorBox, KeyValues, Labels, LoadState, useLoad, useNow } from '../ui.js';
import { AuditTrail } from './audit.js';

/**
 * Runs: a live table (REST for the page, the `run-status` event stream for every change after
 * it; reconciled from REST whenever the stream reconnects), and a run's detail: step, loss and
 * samples/s charts, the command trail with delivery and acknowledgement times, the control
 * commands (tune, pause, resume, terminate; each confirmed), and the run's audit entries.
 */

const ENDED = new Set(['completed', 'failed', 'terminated']);

export function RunsView({ route }: { route: Route }) {
  const id = route.parts[1];
  return id ? <RunDetail id={id} /> : <RunList query={route.query} />;
}

type StreamState = 'connecting' | 'live' | 'retrying';

function applyStatus(run: Run, ev: RunStatusEvent): Run {
  return {
    ...run,
    status: ev.status,
    health: ev.health,
    step: ev.step ?? run.step,
    samples_per_sec: ev.samples_per_sec ?? run.samples_per_sec,
    loss: ev.loss ?? run.loss,
    last_error: ev.last_error,
    ...(ev.at ? { updated_at: ev.at } : {}),
  };
}

function RunList({ query }: { query: URLSearchParams }) {
  const { api } = useSession();
  const filters = {
    status: query.get('status') ?? '',
    health: query.get('health') ?? '',
    label: query.get('label') ?? '',
    sweep: query.get('sweep') ?? '',
    limit: query.get('limit') ?? '50',
  };
  const at = pageAt(query);
  const { cursor } = at;
  const page = useLoad(
    (signal) =>
      api.get<{ runs: Run[]; next_cursor: string | null }>(
        '/runs',
        { ...filters, label: filters.label || undefined, cursor },
        signal,
      ),
    [api, query.toString()],
  );
  const [stream, setStream] = useState<StreamState>('connecting');
  const [flash, setFlash] = useState<Record<string, number>>({});
  const pageRef = useRef(page);
  pageRef.current = page;
  const now = useNow(2000);

  useEffect(() => {
    let reloadTimer: ReturnType<typeof setTimeout> | undefined;
    const reloadSoon = () => {
      if (reloadTimer === undefined)
        reloadTimer = setTimeout(() => {
          reloadTimer = undefined;
          pageRef.current.reload();
        }, 300);
    };
    const stop = follow<RunStatusEvent>(api, '/stream/runs', {
      event: 'run-status',
      onState: setStream,
      // Level-triggered: whatever was missed while (re)connecting, the page is read again.
      onOpen: () => pageRef.current.reload(),
      onEvent: (ev) => {
        const rows = pageRef.current.data?.runs;
        if (rows?.some((r) => r.run_id === ev.run_id)) {
          pageRef.current.set(
            (d) => d && { ...d, runs: d.runs.map((r) => (r.run_id === ev.run_id ? applyStatus(r, ev) : r)) },
          );
          setFlash((f) => ({ ...f, [ev.run_id]: Date.now() }));
        } else if (!cursor) {
          // A run not on this page: it may be new (newest first) and belong on the first page.
          reloadSoon();
        }
      },
    });
    return () => {
      stop();
      if (reloadTimer !== undefined) clearTimeout(reloadTimer);
    };
  }, [api, cursor]);

  const runs = page.data?.runs ?? [];
  return (
    <section data-view="runs" data-view-ready={page.data ? 'runs' : undefined}>
      <h2>
        Runs <StreamBadge state={stream} />
      </h2>
      <Filters
        fields={[
          { type: 'select', name: 'status', label: 'Status', options: statesOf('run'), any: true },
          { type: 'select', name: 'health', label: 'Health', options: statesOf('health'), any: true },
          { type: 'text', name: 'label', label: 'Label', placeholder: 'key=value' },
          { type: 'text', name: 'sweep', label: 'Sweep', placeholder: 'sweep id' },
          PER_PAGE,
        ]}
        values={filters}
        onChange={(patch) => navigate(['runs'], { ...filters, ...FIRST_PAGE, ...patch })}
      />
      <LoadState state={page} what="Runs" />
      {page.data && (
        <>
          <DataTable
            testid="runs-table"
            columns={runColumns(now)}
            rows={runs}
            rowKey={(r) => r.run_id}
            row={(r) => ({
              'data-run-id': r.run_id,
              class: (flash[r.run_id] ?? 0) > now - 1500 ? 'flash' : '',
              title: r.last_error ?? undefined,
            })}
            empty="No runs match."
          />
          <Pager at={at} next={page.data.next_cursor} count={runs.length} route={['runs']} query={filters} />
        </>
      )}
    </section>
  );
}

/** The run table's columns; `now` for the heartbeat's age. */
function runColumns(now: number): Column<Run>[] {
  return [
    { head: 'Run', cell: (r) => <a href={href(['runs', r.run_id])}>{r.name ?? r.run_id}</a> },
    { head: 'Status', field: 'status', cell: (r) => <StateBadge kind="run" value={r.status} /> },
    { head: 'Health', field: 'health', cell: (r) => <StateBadge kind="health" value={r.health} /> },
    { head: 'Step', num: true, field: 'step', cell: (r) => fmtNum(r.step) },
    { head: 'Loss', num: true, field: 'loss', cell: (r) => fmtNum(r.loss) },
    { head: 'Samples/s', num: true, cell: (r) => fmtNum(r.samples_per_sec, 3) },
    { head: 'Ckpt', num: true, cell: (r) => fmtNum(r.checkpoint_version) },
    { head: 'Last heartbeat', cell: (r) => ago(r.last_heartbeat_at, now) },
    {
      head: 'Sweep',
      cell: (r) => (r.sweep_id ? <a href={href(['sweeps', r.sweep_id])}>{r.sweep_id}</a> : '—'),
    },
    { head: 'Created', cell: (r) => fmtTime(r.created_at) },
  ];
}

/** Whether the page follows the event stream (tests wait on `data-state="live"`). */
function StreamBadge({ state, connecting = '○ connecting' }: { state: StreamState; connecting?: string }) {
  return (
    <span class={`stream-state ${state}`} data-testid="stream-state" data-state={state}>
      {state === 'live' ? '● live' : state === 'retrying' ? '○ reconnecting' : connecting}
    </span>
  );
}

function RunDetail({ id }: { id: string }) {
  const { api, principal } = useSession();
  const path = `/runs/${encodeURIComponent(id)}`;
  const run = useLoad((signal) => api.get<Run>(path, undefined, signal), [api, path]);
  const commands = useLoad(
    (signal) => api.get<{ commands: Command[] }>(`${path}/commands`, undefined, signal),
    [api, path],
    {
      pollMs: 2000,
    },
  );
  const metrics = useLoad(
    (signal) => api.get<RunMetrics>(`${path}/metrics`, { max_points: 1000 }, signal),
    [api, path],
    { pollMs: 10_000 },
  );
  const [stream, setStream] = useState<StreamState>('connecting');
  const refs = useRef({ run, commands, metrics });
  refs.current = { run, commands, metrics };

  useEffect(() => {
    let metricsTimer: ReturnType<typeof setTimeout> | undefined;
    const stop = follow<RunStatusEvent>(api, `/stream/runs?run_id=${encodeURIComponent(id)}`, {
      event: 'run-status',
      onState: setStream,
      onOpen: () => refs.current.run.reload(),
      onEvent: (ev) => {
        refs.current.run.set((r) => r && applyStatus(r, ev));
        refs.current.commands.reload();
        // Charts follow at most once a second: a fast learner must not turn into a fast poller.
        if (metricsTimer === undefined)
          metricsTimer = setTimeout(() => {
            metricsTimer = undefined;
            refs.current.metrics.reload();
            refs.current.run.reload();
          }, 1000);
      },
    });
    return () => {
      stop();
      if (metricsTimer !== undefined) clearTimeout(metricsTimer);
    };
  }, [api, id]);

  const issue = (type: string, payload: Record<string, unknown>) =>
    api.post<Command>(`${path}/commands`, {
      id: uuidv4(),
      type,
      issued_at: new Date().toISOString(),
      actor: { type: 'operator', id: principal.name },
      payload,
    });
  const afterCommand = () => {
    commands.reload();
    run.reload();
  };

  return (
    <Detail view="run" back={['runs']} backLabel="Runs" state={run} what="Run">
      {(r) => (
        <>
          <h2>
            {r.name ?? r.run_id}{' '}
            <span data-testid="run-status">
              <StateBadge kind="run" value={r.status} />
            </span>{' '}
            <span data-testid="run-health">
              <StateBadge kind="health" value={r.health} />
            </span>{' '}
            <StreamBadge state={stream} connecting="○ reconnecting" />
          </h2>
          <div class="actions">
            <TuneAction disabled={ENDED.has(r.status)} issue={issue} onDone={afterCommand} />
            <ConfirmAction
              label="Pause"
              title={`Pause run ${r.name ?? r.run_id}?`}
              disabled={r.status !== 'running'}
              onConfirm={() => issue('pause', {})}
              onDone={afterCommand}
            >
              <p>The learner pauses when it picks up the command, and acknowledges it.</p>
            </ConfirmAction>
            <ConfirmAction
              label="Resume"
              title={`Resume run ${r.name ?? r.run_id}?`}
              disabled={r.status !== 'paused'}
              onConfirm={() => issue('resume', {})}
              onDone={afterCommand}
            />
            <ConfirmAction
              label="Terminate"
              title={`Terminate run ${r.name ?? r.run_id}?`}
              danger
              disabled={ENDED.has(r.status)}
              onConfirm={(form) =>
                issue('terminate', {
                  reason: formText(form, 'reason'),
                  ...(form.get('final_checkpoint') !== null ? { final_checkpoint: true } : {}),
                })
              }
              onDone={afterCommand}
            >
              <label>
                Reason (required)
                <input id="run-terminate-reason" name="reason" maxLength={256} required />
              </label>
              <label class="inline">
                <input id="run-terminate-final" name="final_checkpoint" type="checkbox" /> write a final
                checkpoint first
              </label>
            </ConfirmAction>
            <ConfirmAction
              label="Extend liveness"
              title="Give this run more time before it is marked stale"
              disabled={ENDED.has(r.status)}
              onConfirm={(form) =>
                api.post(`${path}/liveness`, {
                  extend_s: Number(formText(form, 'extend_s')),
                  reason: formText(form, 'reason'),
                })
              }
              onDone={() => run.reload()}
            >
              <label>
                Extra seconds
                <input id="liveness-s" name="extend_s" type="number" min={1} defaultValue="600" />
              </label>
              <label>
                Reason
                <input id="liveness-reason" name="reason" required />
              </label>
            </ConfirmAction>
          </div>
          <div class="grid2">
            <KeyValues
              rows={[
                ['Run id', <code key="id">{r.run_id}</code>],
                ['Step', fmtNum(r.step)],
                ['Loss', fmtNum(r.loss)],
                ['Samples/s', fmtNum(r.samples_per_sec)],
                ['Checkpoint', fmtNum(r.checkpoint_version)],
                ['Last heartbeat', `${fmtTime(r.last_heartbeat_at)} (${ago(r.last_heartbeat_at)})`],
                ['Heartbeat every', `${r.heartbeat_interval_s} s`],
                ['Last error', r.last_error ?? '—'],
                ['Notes', r.notes ?? '—'],
              ]}
            />
            <KeyValues
              rows={[
                ['Job', r.job_id ? <a href={href(['jobs', r.job_id])}>{r.job_id}</a> : '—'],
                ['Sweep', r.sweep_id ? <a href={href(['sweeps', r.sweep_id])}>{r.sweep_id}</a> : '—'],
                ['Labels', <Labels key="l" labels={r.labels} />],
                ['Config', <code key="c">{JSON.stringify(r.config)}</code>],
                [
                  'Summary',
                  Object.entries(r.summary)
                    .map(([k, v]) => `${k}=${fmtNum(v)}`)
                    .join(', ') || '—',
                ],
                ['Created', fmtTime(r.created_at)],
                ['Ended', fmtTime(r.ended_at)],
              ]}
            />
          </div>
          <RunCharts metrics={metrics.data} />
          <h3>Commands</h3>
          <ErrorBox error={commands.error} />
          <CommandTrail commands={commands.data?.commands ?? []} />
          <h3>Audit</h3>
          <AuditTrail runId={r.run_id} />
        </>
      )}
    </Detail>
  );
}

/** The hyperparameters a tune command may change, with the ranges the orchestrator checks. */
const TUNABLE = [
  ['learning_rate', 'learning_rate (0 < v ≤ 1)'],
  ['entropy_coef', 'entropy_coef (0 ≤ v ≤ 0.1)'],
  ['clip_epsilon', 'clip_epsilon (0.05 ≤ v ≤ 0.3)'],
] as const;

function TuneAction({
  disabled,
  issue,
  onDone,
}: {
  disabled: boolean;
  issue(type: string, payload: Record<string, unknown>): Promise<unknown>;
  onDone(): void;
}) {
  return (
    <ConfirmAction
      label="Tune"
      title="Tune hyperparameters"
      disabled={disabled}
      onConfirm={(form) => {
        const payload: Record<string, unknown> = {};
        for (const [k] of TUNABLE) if (formText(form, k) !== '') payload[k] = Number(formText(form, k));
        if (formText(form, 'notes') !== '') payload.notes = formText(form, 'notes');
        return issue('tune', payload);
      }}
      onDone={onDone}
    >
      <p class="muted">Leave a field empty to keep its value. The orchestrator checks the ranges.</p>
      {TUNABLE.map(([k, label]) => (
        <label key={k}>
          {label}
          <input id={`tune-${k}`} name={k} inputMode="decimal" />
        </label>
      ))}
      <label>
        notes
        <input id="tune-notes" name="notes" />
      </label>
    </ConfirmAction>
  );
}

const COMMAND_COLUMNS: Column<Command>[] = [
  { head: 'Type', cell: (c) => <StateBadge kind="command" value={c.type} /> },
  {
    head: 'Payload',
    cell: (c) => <code>{Object.keys(c.payload).length ? JSON.stringify(c.payload) : ''}</code>,
  },
  { head: 'Actor', cell: (c) => `${c.actor.type}:${c.actor.id}` },
  { head: 'Issued', cell: (c) => fmtTime(c.issued_at) },
  {
    head: 'Delivered',
    field: 'delivered',
    cell: (c) => (c.delivered_at ? fmtTime(c.delivered_at) : <span class="muted">pending</span>),
  },
  {
    head: 'Acknowledged',
    field: 'acknowledged',
    cell: (c) => (c.acknowledged_at ? fmtTime(c.acknowledged_at) : <span class="muted">not yet</span>),
  },
  { head: 'Deliveries', num: true, cell: (c) => c.delivery_count },
];

function CommandTrail({ commands }: { commands: Command[] }) {
  if (commands.length === 0) return <p class="muted">No commands sent to this run.</p>;
  return (
    <DataTable
      testid="command-trail"
      columns={COMMAND_COLUMNS}
      rows={commands}
      rowKey={(c) => c.id}
      row={(c) => ({ 'data-command-id': c.id, 'data-command-type': c.type })}
    />
  );
}

/** loss and samples/s by step, step over time, and one chart per other metric the learner reports. */
function RunCharts({ metrics }: { metrics: RunMetrics | undefined }) {
  const charts = useMemo(() => {
    if (!metrics) return [];
    const series = metrics.series;
    const byStep = (name: string, color: string) => {
      const pts = series[name] ?? [];
      return {
        x: pts.map((p) => p.step),
        series: [{ label: name, values: pts.map((p) => p.value), color }],
        height: 200,
      };
    };
    const out: Array<{
      title: string;
      testid: string;
      spec: ReturnType<typeof byStep> & { time?: boolean };
    }> = [];
    const timeline = series.loss ?? series.samples_per_sec ?? Object.values(series)[0] ?? [];
    out.push({
      title: 'Step over time',
      testid: 'chart-step',
      spec: {
        x: timeline.map((p) => Date.parse(p.recorded_at) / 1000),
        series: [{ label: 'step', values: timeline.map((p) => p.step), color: PALETTE[2]! }],
        height: 200,
        time: true,
      },
    });
    out.push({ title: 'Loss', testid: 'chart-loss', spec: byStep('loss', PALETTE[0]!) });
    out.push({ title: 'Samples/s', testid: 'chart-samples', spec: byStep('samples_per_sec', PALETTE[1]!) });
    const others = Object.keys(series)
      .filter((n) => n !== 'loss' && n !== 'samples_per_sec')
      .sort()
      .slice(0, 12);
    others.forEach((n, i) => {
      out.push({ title: n, testid: `chart-${n}`, spec: byStep(n, PALETTE[(i + 3) % PALETTE.length]!) });
    });
    return out;
  }, [metrics]);
  if (!metrics) return null;
  return (
    <div class="charts">
      {charts.map((c) => (
        <LineChart
          key={c.testid}
          title={c.title}
          testid={c.testid}
          spec={{ ...c.spec, xLabel: c.spec.time ? 'time' : 'step' }}
        />
      ))}
      {metrics.downsampled && <p class="muted">Series downsampled to 1,000 points.</p>}
    </div>
  );
}
