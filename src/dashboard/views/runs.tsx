import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { uuidv4 } from '../api.js';
import type { Command, Run, RunMetrics, RunStatusEvent } from '../api-types.js';
import { LineChart, PALETTE } from '../charts.js';
import { ago, fmtNum, fmtTime } from '../format.js';
import { href, navigate, type Route } from '../router.js';
import { useSession } from '../session.js';
import { follow } from '../stream.js';
import {
  Action,
  Badge,
  backFrom,
  backTo,
  ErrorBox,
  KeyValues,
  Labels,
  LoadState,
  Pager,
  useLoad,
  useNow,
} from '../ui.js';
import { AuditTrail } from './audit.js';

/**
 * Runs: a live table (REST for the page, the `run-status` event stream for every change after
 * it; reconciled from REST whenever the stream reconnects), and a run's detail: step, loss and
 * samples/s charts, the command trail with delivery and acknowledgement times, the control
 * commands (tune, pause, resume, terminate; each confirmed), and the run's audit entries.
 */

const STATUSES = [
  'queued',
  'provisioning',
  'running',
  'paused',
  'terminating',
  'completed',
  'failed',
  'errored',
  'terminated',
];
const HEALTHS = ['healthy', 'heartbeat_stale', 'unresponsive'];
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
  const cursor = query.get('cursor');
  const back = backFrom(query);
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

  const set = (patch: Record<string, string | null>) =>
    navigate(['runs'], { ...filters, cursor: null, back: null, ...patch });
  const runs = page.data?.runs ?? [];
  return (
    <section data-view="runs" data-view-ready={page.data ? 'runs' : undefined}>
      <h2>
        Runs{' '}
        <span class={`stream-state ${stream}`} data-testid="stream-state" data-state={stream}>
          {stream === 'live' ? '● live' : stream === 'retrying' ? '○ reconnecting' : '○ connecting'}
        </span>
      </h2>
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          const f = new FormData(e.currentTarget as HTMLFormElement);
          set({ label: String(f.get('label') ?? ''), sweep: String(f.get('sweep') ?? '') });
        }}
      >
        <label>
          Status
          <select
            value={filters.status}
            onChange={(e) => set({ status: (e.target as HTMLSelectElement).value })}
          >
            <option value="">any</option>
            {STATUSES.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          Health
          <select
            value={filters.health}
            onChange={(e) => set({ health: (e.target as HTMLSelectElement).value })}
          >
            <option value="">any</option>
            {HEALTHS.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          Label
          <input name="label" placeholder="key=value" defaultValue={filters.label} key={filters.label} />
        </label>
        <label>
          Sweep
          <input name="sweep" placeholder="sweep id" defaultValue={filters.sweep} key={filters.sweep} />
        </label>
        <label>
          Per page
          <select
            value={filters.limit}
            onChange={(e) => set({ limit: (e.target as HTMLSelectElement).value })}
          >
            {['50', '100', '500'].map((n) => (
              <option key={n}>{n}</option>
            ))}
          </select>
        </label>
        <button type="submit">Filter</button>
      </form>
      <LoadState state={page} what="Runs" />
      {page.data && (
        <>
          <table class="table" data-testid="runs-table">
            <thead>
              <tr>
                <th>Run</th>
                <th>Status</th>
                <th>Health</th>
                <th class="num">Step</th>
                <th class="num">Loss</th>
                <th class="num">Samples/s</th>
                <th class="num">Ckpt</th>
                <th>Last heartbeat</th>
                <th>Sweep</th>
                <th>Created</th>
              </tr>
            </thead>
            <tbody>
              {runs.map((r) => (
                <tr
                  key={r.run_id}
                  data-run-id={r.run_id}
                  class={(flash[r.run_id] ?? 0) > now - 1500 ? 'flash' : ''}
                  title={r.last_error ?? undefined}
                >
                  <td>
                    <a href={href(['runs', r.run_id])}>{r.name ?? r.run_id}</a>
                  </td>
                  <td data-field="status">
                    <Badge value={r.status} />
                  </td>
                  <td data-field="health">
                    <Badge value={r.health} />
                  </td>
                  <td class="num" data-field="step">
                    {fmtNum(r.step)}
                  </td>
                  <td class="num" data-field="loss">
                    {fmtNum(r.loss)}
                  </td>
                  <td class="num">{fmtNum(r.samples_per_sec, 3)}</td>
                  <td class="num">{fmtNum(r.checkpoint_version)}</td>
                  <td>{ago(r.last_heartbeat_at, now)}</td>
                  <td>{r.sweep_id ? <a href={href(['sweeps', r.sweep_id])}>{r.sweep_id}</a> : '—'}</td>
                  <td>{fmtTime(r.created_at)}</td>
                </tr>
              ))}
              {runs.length === 0 && (
                <tr>
                  <td colSpan={10} class="muted">
                    No runs match.
                  </td>
                </tr>
              )}
            </tbody>
          </table>
          <Pager
            cursor={cursor}
            nextCursor={page.data.next_cursor}
            back={back}
            count={runs.length}
            go={(c, b) => navigate(['runs'], { ...filters, cursor: c, back: backTo(b) })}
          />
        </>
      )}
    </section>
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

  const r = run.data;
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
    <section data-view="run" data-view-ready={r ? 'run' : undefined}>
      <p>
        <a href={href(['runs'])}>← Runs</a>
      </p>
      <LoadState state={run} what="Run" />
      {r && (
        <>
          <h2>
            {r.name ?? r.run_id}{' '}
            <span data-testid="run-status">
              <Badge value={r.status} />
            </span>{' '}
            <span data-testid="run-health">
              <Badge value={r.health} />
            </span>{' '}
            <span class={`stream-state ${stream}`} data-testid="stream-state" data-state={stream}>
              {stream === 'live' ? '● live' : '○ reconnecting'}
            </span>
          </h2>
          <div class="actions">
            <TuneAction disabled={ENDED.has(r.status)} issue={issue} onDone={afterCommand} />
            <Action
              label="Pause"
              title={`Pause run ${r.name ?? r.run_id}?`}
              disabled={r.status !== 'running'}
              onConfirm={() => issue('pause', {})}
              onDone={afterCommand}
            >
              <p>The learner pauses when it picks up the command, and acknowledges it.</p>
            </Action>
            <Action
              label="Resume"
              title={`Resume run ${r.name ?? r.run_id}?`}
              disabled={r.status !== 'paused'}
              onConfirm={() => issue('resume', {})}
              onDone={afterCommand}
            />
            <Action
              label="Terminate"
              title={`Terminate run ${r.name ?? r.run_id}?`}
              danger
              disabled={ENDED.has(r.status)}
              onConfirm={() => {
                const reason =
                  (document.getElementById('run-terminate-reason') as HTMLInputElement | null)?.value ?? '';
                const final = (document.getElementById('run-terminate-final') as HTMLInputElement | null)
                  ?.checked;
                return issue('terminate', { reason, ...(final ? { final_checkpoint: true } : {}) });
              }}
              onDone={afterCommand}
            >
              <label>
                Reason (required)
                <input id="run-terminate-reason" maxLength={256} required />
              </label>
              <label class="inline">
                <input id="run-terminate-final" type="checkbox" /> write a final checkpoint first
              </label>
            </Action>
            <Action
              label="Extend liveness"
              title="Give this run more time before it is marked stale"
              disabled={ENDED.has(r.status)}
              onConfirm={() => {
                const s = Number((document.getElementById('liveness-s') as HTMLInputElement | null)?.value);
                const reason =
                  (document.getElementById('liveness-reason') as HTMLInputElement | null)?.value ?? '';
                return api.post(`${path}/liveness`, { extend_s: s, reason });
              }}
              onDone={() => run.reload()}
            >
              <label>
                Extra seconds
                <input id="liveness-s" type="number" min={1} defaultValue="600" />
              </label>
              <label>
                Reason
                <input id="liveness-reason" required />
              </label>
            </Action>
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
    </section>
  );
}

function TuneAction({
  disabled,
  issue,
  onDone,
}: {
  disabled: boolean;
  issue(type: string, payload: Record<string, unknown>): Promise<unknown>;
  onDone(): void;
}) {
  const read = (name: string) =>
    (document.getElementById(`tune-${name}`) as HTMLInputElement | null)?.value.trim() ?? '';
  return (
    <Action
      label="Tune"
      title="Tune hyperparameters"
      disabled={disabled}
      onConfirm={() => {
        const payload: Record<string, unknown> = {};
        for (const k of ['learning_rate', 'entropy_coef', 'clip_epsilon'])
          if (read(k) !== '') payload[k] = Number(read(k));
        if (read('notes') !== '') payload.notes = read('notes');
        return issue('tune', payload);
      }}
      onDone={onDone}
    >
      <p class="muted">Leave a field empty to keep its value. The orchestrator checks the ranges.</p>
      <label>
        learning_rate (0 &lt; v ≤ 1)
        <input id="tune-learning_rate" inputMode="decimal" />
      </label>
      <label>
        entropy_coef (0 ≤ v ≤ 0.1)
        <input id="tune-entropy_coef" inputMode="decimal" />
      </label>
      <label>
        clip_epsilon (0.05 ≤ v ≤ 0.3)
        <input id="tune-clip_epsilon" inputMode="decimal" />
      </label>
      <label>
        notes
        <input id="tune-notes" />
      </label>
    </Action>
  );
}

function CommandTrail({ commands }: { commands: Command[] }) {
  if (commands.length === 0) return <p class="muted">No commands sent to this run.</p>;
  return (
    <table class="table" data-testid="command-trail">
      <thead>
        <tr>
          <th>Type</th>
          <th>Payload</th>
          <th>Actor</th>
          <th>Issued</th>
          <th>Delivered</th>
          <th>Acknowledged</th>
          <th class="num">Deliveries</th>
        </tr>
      </thead>
      <tbody>
        {commands.map((c) => (
          <tr key={c.id} data-command-id={c.id} data-command-type={c.type}>
            <td>
              <Badge value={c.type} />
            </td>
            <td>
              <code>{Object.keys(c.payload).length ? JSON.stringify(c.payload) : ''}</code>
            </td>
            <td>
              {c.actor.type}:{c.actor.id}
            </td>
            <td>{fmtTime(c.issued_at)}</td>
            <td data-field="delivered">
              {c.delivered_at ? fmtTime(c.delivered_at) : <span class="muted">pending</span>}
            </td>
            <td data-field="acknowledged">
              {c.acknowledged_at ? fmtTime(c.acknowledged_at) : <span class="muted">not yet</span>}
            </td>
            <td class="num">{c.delivery_count}</td>
          </tr>
        ))}
      </tbody>
    </table>
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
