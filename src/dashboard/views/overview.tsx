import { useRef } from 'preact/hooks';
import { optional } from '../api.js';
import type { AlertSink, DeadLetterStats, Health, Run } from '../api-types.js';
import { StateBadge, type StateKind, statesOf } from '../components/state-badge.js';
import { ago, fmtNum } from '../format.js';
import { metricValue, parsePrometheus, type Sample, sumBy } from '../prometheus.js';
import { href } from '../router.js';
import { useSession } from '../session.js';
import { ErrorBox, useLoad, useNow } from '../ui.js';

/**
 * Overview: health, counts by state, throughput and open alerts. Counts come from the gauges
 * of `GET /metrics` (computed by the store at scrape time), so they cost the same with 100
 * jobs or 100,000; throughput is the change of the counters between two scrapes.
 */

interface Scrape {
  at: number;
  samples: Sample[];
}

export function OverviewView() {
  const { api } = useSession();
  const prev = useRef<Scrape | null>(null);
  const metrics = useLoad(
    async (signal) => {
      const samples = parsePrometheus(await api.text('/metrics', signal));
      const now: Scrape = { at: Date.now(), samples };
      const before = prev.current;
      prev.current = now;
      return { now, before };
    },
    [api],
    { pollMs: 5000 },
  );
  const alerts = useLoad(
    async (signal) => {
      const [unresponsive, stale, errored, sinks, dlq, health] = await Promise.all([
        api.get<{ runs: Run[] }>('/runs', { health: 'unresponsive', limit: 20 }, signal),
        api.get<{ runs: Run[] }>('/runs', { health: 'heartbeat_stale', limit: 20 }, signal),
        api.get<{ runs: Run[] }>('/runs', { status: 'errored', limit: 20 }, signal),
        optional(api.get<{ sinks: AlertSink[] }>('/alerts/sinks', undefined, signal)),
        optional(api.get<DeadLetterStats>('/dlq/stats', undefined, signal)),
        optional(api.get<Health>('/health', undefined, signal)),
      ]);
      return {
        unresponsive: unresponsive.runs,
        stale: stale.runs,
        errored: errored.runs,
        sinks,
        dlq,
        health,
      };
    },
    [api],
    { pollMs: 5000 },
  );
  const now = useNow(5000);

  const m = metrics.data;
  const jobs = m ? sumBy(m.now.samples, 'runplane_jobs', 'state') : {};
  const runs = m ? sumBy(m.now.samples, 'runplane_runs', 'status') : {};
  const runHealth = m ? sumBy(m.now.samples, 'runplane_runs', 'health') : {};
  const workers = m ? sumBy(m.now.samples, 'runplane_workers', 'health') : {};
  const rate = (name: string) => {
    if (!m?.before) return null;
    const a = metricValue(m.before.samples, name);
    const b = metricValue(m.now.samples, name);
    if (a === null || b === null) return null;
    return Math.max(0, b - a) / ((m.now.at - m.before.at) / 1000);
  };
  const a = alerts.data;
  const openAlerts =
    (a?.unresponsive.length ?? 0) +
    (a?.stale.length ?? 0) +
    (a?.errored.length ?? 0) +
    (a?.sinks?.sinks.filter((s) => s.configured && !s.ok).length ?? 0) +
    (a?.dlq?.pending ? 1 : 0);

  return (
    <section
      data-view="overview"
      data-view-ready={m ? 'overview' : undefined}
      data-alerts-ready={a ? 'overview' : undefined}
    >
      <h2>Overview</h2>
      <ErrorBox error={metrics.error} />
      <div class="cards">
        <div class="card">
          <h3>Health</h3>
          {a?.health ? (
            <p>
              <StateBadge kind="service" value={a.health.status ?? 'unknown'} />{' '}
              {a.health.overall_health !== undefined && <span>{fmtNum(a.health.overall_health, 2)}</span>}
            </p>
          ) : (
            <p>
              <StateBadge kind="service" value={metrics.error ? 'unreachable' : m ? 'ok' : '…'} /> API
            </p>
          )}
          <p class="muted">
            workers:{' '}
            {Object.entries(workers)
              .map(([h, n]) => `${n} ${h}`)
              .join(', ') || 'none'}
          </p>
          {a?.health?.issues?.map((i) => (
            <p key={i} class="warn-text">
              {i}
            </p>
          ))}
        </div>
        <div class="card">
          <h3>Throughput</h3>
          <p>
            <span class="big">{fmtRate(rate('runplane_placements_total'))}</span> placements/s
          </p>
          <p>
            <span class="big">{fmtRate(rate('runplane_heartbeats_accepted_total'))}</span> heartbeats/s
          </p>
          <p class="muted">
            queue depth {fmtNum(m ? metricValue(m.now.samples, 'runplane_queue_depth') : null)}
          </p>
        </div>
        <div class="card" data-testid="open-alerts">
          <h3>Open alerts</h3>
          <p>
            <span class={`big ${openAlerts > 0 ? 'warn-text' : ''}`}>{a ? openAlerts : '…'}</span>
          </p>
          <p class="muted">
            {a
              ? `${a.unresponsive.length} unresponsive, ${a.stale.length} stale, ${a.errored.length} errored runs`
              : ''}
          </p>
        </div>
      </div>

      <div class="grid2">
        <CountTable
          title="Jobs by state"
          counts={jobs}
          kind="job"
          link={(s) => href(['jobs'], { state: s })}
        />
        <CountTable
          title="Runs by status"
          counts={runs}
          kind="run"
          link={(s) => href(['runs'], { status: s })}
        />
      </div>
      <div class="grid2">
        <CountTable
          title="Runs by health"
          counts={runHealth}
          kind="health"
          link={(s) => href(['runs'], { health: s })}
        />
        <div class="card">
          <h3>Alerts</h3>
          {!a && <p class="muted">Loading…</p>}
          {a && openAlerts === 0 && <p class="muted">Nothing needs attention.</p>}
          <ul class="alerts">
            {a?.unresponsive.map((r) => (
              <li key={`u${r.run_id}`}>
                <StateBadge kind="health" value="unresponsive" />{' '}
                <a href={href(['runs', r.run_id])}>{r.name ?? r.run_id}</a> — last heartbeat{' '}
                {ago(r.last_heartbeat_at, now)}; termination recommended
              </li>
            ))}
            {a?.stale.map((r) => (
              <li key={`s${r.run_id}`}>
                <StateBadge kind="health" value="heartbeat_stale" />{' '}
                <a href={href(['runs', r.run_id])}>{r.name ?? r.run_id}</a> — last heartbeat{' '}
                {ago(r.last_heartbeat_at, now)}
              </li>
            ))}
            {a?.errored.map((r) => (
              <li key={`e${r.run_id}`}>
                <StateBadge kind="run" value="errored" />{' '}
                <a href={href(['runs', r.run_id])}>{r.name ?? r.run_id}</a>
                {r.last_error ? ` — ${r.last_error}` : ''}
              </li>
            ))}
            {a?.sinks?.sinks
              .filter((s) => s.configured && !s.ok)
              .map((s) => (
                <li key={`k${s.name}`}>
                  <StateBadge kind="sink" value="failed" /> alert sink {s.name} failing (
                  {s.consecutive_failures} in a row)
                  {s.last_error ? `: ${s.last_error}` : ''}
                </li>
              ))}
            {a?.dlq && a.dlq.pending > 0 && (
              <li>
                <StateBadge kind="dlq" value="pending" />{' '}
                <a href={href(['pipelines'])}>{a.dlq.pending} dead letters</a> waiting for retry
              </li>
            )}
          </ul>
        </div>
      </div>
    </section>
  );
}

function fmtRate(v: number | null): string {
  return v === null ? '…' : v < 10 ? v.toFixed(2) : fmtNum(Math.round(v));
}

/** Counts by state, every state of the kind in order (zeros too), then any the kind does not list. */
function CountTable({
  title,
  counts,
  kind,
  link,
}: {
  title: string;
  counts: Record<string, number>;
  kind: StateKind;
  link(key: string): string;
}) {
  const order = statesOf(kind);
  const keys = [...order, ...Object.keys(counts).filter((k) => !order.includes(k))];
  const total = Object.values(counts).reduce((s, n) => s + n, 0);
  return (
    <div class="card">
      <h3>
        {title} <span class="muted">({fmtNum(total)})</span>
      </h3>
      <table class="counts">
        <tbody>
          {keys.map((k) => (
            <tr key={k} data-count={k}>
              <td>
                <a href={link(k)}>
                  <StateBadge kind={kind} value={k} />
                </a>
              </td>
              <td class="num">{fmtNum(counts[k] ?? 0)}</td>
              <td class="bar-cell">
                <div class="bar" style={{ width: `${total ? ((counts[k] ?? 0) / total) * 100 : 0}%` }} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
