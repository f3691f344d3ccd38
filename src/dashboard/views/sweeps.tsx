import { useMemo } from 'preact/hooks';
import type { Sweep, Trial } from '../api-types.js';
import { Bars, FrontScatter, LineChart, PALETTE, ParallelCoordinates } from '../charts.js';
import { fmtNum, fmtTime, fmtValue } from '../format.js';
import { type Direction, paretoFront } from '../pareto.js';
import { href, navigate, type Route } from '../router.js';
import { useSession } from '../session.js';
import { Action, Badge, backFrom, backTo, KeyValues, LoadState, Pager, useLoad } from '../ui.js';

/**
 * Sweeps: progress and best so far per sweep, and a sweep's detail: optimization history,
 * parallel coordinates, hyperparameter importance, the Pareto front (two objectives), the trial
 * table, and stop/resume. The plots are drawn from the trials and `/analysis` as served.
 */

const sweepId = (s: Sweep) => String(s.sweep_id ?? s.id ?? '');
const trialNo = (t: Trial, i: number) => Number(t.number ?? t.trial ?? i);
const trialStatus = (t: Trial) => String(t.status ?? t.state ?? '—');
function trialValues(t: Trial): number[] | null {
  if (Array.isArray(t.values) && t.values.every((v) => typeof v === 'number')) return t.values;
  return typeof t.value === 'number' ? [t.value] : null;
}

function objectivesOf(s: Sweep | undefined): Array<{ metric: string; direction: Direction }> {
  const spec = (s?.spec ?? s?.file ?? {}) as { objectives?: unknown; objective?: unknown };
  const raw =
    s?.objectives ??
    (s?.objective ? [s.objective] : undefined) ??
    spec.objectives ??
    (spec.objective ? [spec.objective] : []);
  return (Array.isArray(raw) ? raw : [])
    .filter(
      (o): o is { metric: string; direction?: string } =>
        typeof o === 'object' && o !== null && 'metric' in o,
    )
    .map((o) => ({
      metric: String(o.metric),
      direction: o.direction === 'maximize' ? 'maximize' : 'minimize',
    }));
}

function countsText(s: Sweep): string {
  const c = s.counts ?? {};
  const get = (...keys: string[]) => keys.reduce((n, k) => n + (c[k] ?? c[k.toLowerCase()] ?? 0), 0);
  const done = get('COMPLETED');
  const running = get(
    'IN_TRAINING',
    'IN_EVAL',
    'TRAINING_DONE_NO_EVAL',
    'EVAL_DONE_NOT_COMPLETED',
    'PENDING',
    'running',
  );
  const failed = get('FAILED', 'STALE');
  const pruned = get('PRUNED');
  const total = Object.values(c).reduce((a, b) => a + b, 0);
  return `${done} done · ${running} active · ${failed} failed${pruned ? ` · ${pruned} pruned` : ''} · ${total}${
    s.max_trials ? ` of ${s.max_trials}` : ''
  } trials`;
}

function bestText(s: Sweep): string {
  const b = s.best;
  if (!b) return '—';
  const v = b.values ?? (b.value !== undefined && b.value !== null ? [b.value] : null);
  return v ? v.map((x) => fmtNum(x)).join(', ') : '—';
}

export function SweepsView({ route }: { route: Route }) {
  const id = route.parts[1];
  return id ? <SweepDetail id={id} /> : <SweepList query={route.query} />;
}

function SweepList({ query }: { query: URLSearchParams }) {
  const { api } = useSession();
  const cursor = query.get('cursor');
  const back = backFrom(query);
  const status = query.get('status') ?? '';
  const sweeps = useLoad(
    (signal) =>
      api.get<{ sweeps: Sweep[]; next_cursor?: string | null }>(
        '/sweeps',
        { status, limit: 50, cursor },
        signal,
      ),
    [api, query.toString()],
    { pollMs: 3000 },
  );
  const list = sweeps.data?.sweeps ?? [];
  return (
    <section data-view="sweeps" data-view-ready={sweeps.data || sweeps.error ? 'sweeps' : undefined}>
      <h2>Sweeps</h2>
      <LoadState state={sweeps} what="Sweeps" />
      {sweeps.data && (
        <>
          <table class="table" data-testid="sweeps-table">
            <thead>
              <tr>
                <th>Name</th>
                <th>Status</th>
                <th>Progress</th>
                <th>Best so far</th>
                <th>Created</th>
              </tr>
            </thead>
            <tbody>
              {list.map((s) => (
                <tr key={sweepId(s)} data-sweep-id={sweepId(s)}>
                  <td>
                    <a href={href(['sweeps', sweepId(s)])}>{s.name ?? sweepId(s)}</a>
                  </td>
                  <td>
                    <Badge value={s.status ?? '—'} />
                  </td>
                  <td>
                    <Progress sweep={s} />
                  </td>
                  <td class="num">{bestText(s)}</td>
                  <td>{fmtTime(s.created_at ?? null)}</td>
                </tr>
              ))}
              {list.length === 0 && (
                <tr>
                  <td colSpan={5} class="muted">
                    No sweeps. Start one with <code>runplane sweep start &lt;file&gt;</code>.
                  </td>
                </tr>
              )}
            </tbody>
          </table>
          <Pager
            cursor={cursor}
            nextCursor={sweeps.data.next_cursor ?? null}
            back={back}
            count={list.length}
            go={(c, b) => navigate(['sweeps'], { status, cursor: c, back: backTo(b) })}
          />
        </>
      )}
    </section>
  );
}

function Progress({ sweep }: { sweep: Sweep }) {
  const c = sweep.counts ?? {};
  const total = Object.values(c).reduce((a, b) => a + b, 0);
  const done = (c.COMPLETED ?? 0) + (c.FAILED ?? 0) + (c.PRUNED ?? 0) + (c.completed ?? 0) + (c.failed ?? 0);
  const of = sweep.max_trials ?? total;
  return (
    <div>
      <div class="meter" title={countsText(sweep)}>
        <div class="meter-fill tone-ok" style={{ width: `${of ? Math.min(100, (done / of) * 100) : 0}%` }} />
        <span class="meter-label">
          {done} / {of || '?'}
        </span>
      </div>
      <div class="muted small">{countsText(sweep)}</div>
    </div>
  );
}

interface Analysis {
  importance?:
    | Record<string, number>
    | Array<{ param?: string; name?: string; parameter?: string; importance?: number; value?: number }>;
  [field: string]: unknown;
}

function importanceItems(a: Analysis | undefined): Array<{ label: string; value: number }> {
  const imp = a?.importance ?? (a?.importances as Analysis['importance']);
  if (!imp) return [];
  if (Array.isArray(imp))
    return imp
      .map((x) => ({
        label: String(x.param ?? x.name ?? x.parameter ?? '?'),
        value: Number(x.importance ?? x.value ?? 0),
      }))
      .filter((x) => Number.isFinite(x.value));
  if (typeof imp === 'object')
    return Object.entries(imp)
      .filter(([, v]) => typeof v === 'number')
      .map(([label, value]) => ({ label, value }));
  return [];
}

function SweepDetail({ id }: { id: string }) {
  const { api } = useSession();
  const path = `/sweeps/${encodeURIComponent(id)}`;
  const sweep = useLoad((signal) => api.get<Sweep>(path, undefined, signal), [api, path], { pollMs: 3000 });
  const trials = useLoad(
    (signal) => api.get<{ trials: Trial[] }>(`${path}/trials`, undefined, signal),
    [api, path],
    {
      pollMs: 3000,
    },
  );
  const analysis = useLoad(
    (signal) => api.get<Analysis>(`${path}/analysis`, undefined, signal),
    [api, path],
    {
      pollMs: 15_000,
    },
  );
  const s = sweep.data;
  const objectives = objectivesOf(s);
  const direction: Direction = objectives[0]?.direction ?? 'minimize';
  const list = trials.data?.trials ?? [];

  const objectiveKey = `${objectives[0]?.metric ?? 'objective'} (objective)`;
  const plots = useMemo(() => {
    const done = list
      .map((t, i) => ({ t, n: trialNo(t, i), v: trialValues(t) }))
      .filter((x) => x.v !== null && trialStatus(x.t).toUpperCase() === 'COMPLETED')
      .sort((a, b) => a.n - b.n);
    let best: number | null = null;
    const history = {
      x: done.map((d) => d.n),
      value: done.map((d) => d.v![0] ?? null),
      best: done.map((d) => {
        const v = d.v![0];
        if (v !== undefined && (best === null || (direction === 'minimize' ? v < best : v > best))) best = v;
        return best;
      }),
    };
    const params = [...new Set(list.flatMap((t) => Object.keys(t.params ?? {})))].sort();
    const rows = done.map((d) => ({ ...(d.t.params ?? {}), [objectiveKey]: d.v![0] }));
    const two = done.filter((d) => (d.v?.length ?? 0) >= 2);
    const dirs: Direction[] = [
      objectives[0]?.direction ?? 'minimize',
      objectives[1]?.direction ?? 'minimize',
    ];
    const front = paretoFront(
      two.map((d) => [d.v![0]!, d.v![1]!]),
      dirs,
    );
    const pareto = two.map((d, i) => ({
      x: d.v![0]!,
      y: d.v![1]!,
      front: front.has(i),
      label: `trial ${d.n}`,
    }));
    return { history, params, rows, pareto };
  }, [list, direction, objectiveKey, objectives[0]?.direction, objectives[1]?.direction]);

  const reload = () => {
    sweep.reload();
    trials.reload();
  };
  const status = String(s?.status ?? '');
  return (
    <section data-view="sweep" data-view-ready={s ? 'sweep' : undefined}>
      <p>
        <a href={href(['sweeps'])}>← Sweeps</a>
      </p>
      <LoadState state={sweep} what="Sweeps" />
      {s && (
        <>
          <h2>
            {s.name ?? sweepId(s)} <Badge value={status || '—'} />
          </h2>
          <div class="actions">
            <Action
              label="Stop"
              title="Stop this sweep? Running trials are terminated; it can be resumed."
              danger
              disabled={status !== 'running'}
              onConfirm={() => api.post(`${path}/stop`)}
              onDone={reload}
            />
            <Action
              label="Resume"
              title="Resume this sweep?"
              disabled={status === 'running' || status === 'completed'}
              onConfirm={() => api.post(`${path}/resume`)}
              onDone={reload}
            />
          </div>
          <KeyValues
            rows={[
              ['Sweep id', <code key="id">{sweepId(s)}</code>],
              ['Progress', <Progress key="p" sweep={s} />],
              ['Objective', objectives.map((o) => `${o.direction} ${o.metric}`).join(', ') || '—'],
              ['Best so far', bestText(s)],
              [
                'Best parameters',
                s.best?.params
                  ? Object.entries(s.best.params)
                      .map(([k, v]) => `${k}=${fmtValue(v)}`)
                      .join(', ')
                  : '—',
              ],
              [
                'Best run',
                s.best?.run_id ? <a href={href(['runs', s.best.run_id])}>{s.best.run_id}</a> : '—',
              ],
              ['Created', fmtTime(s.created_at ?? null)],
            ]}
          />
          <div class="charts" data-testid="sweep-plots">
            <LineChart
              title="Optimization history"
              testid="plot-history"
              spec={{
                x: plots.history.x,
                xLabel: 'trial',
                yLabel: objectives[0]?.metric ?? 'objective',
                height: 240,
                series: [
                  { label: 'objective', values: plots.history.value, color: PALETTE[0]!, points: true },
                  { label: 'best so far', values: plots.history.best, color: PALETTE[1]! },
                ],
              }}
            />
            <figure class="chart" data-testid="plot-parallel">
              <figcaption>Parallel coordinates</figcaption>
              <ParallelCoordinates
                axes={[...plots.params, objectiveKey]}
                rows={plots.rows}
                colorBy={objectiveKey}
                lowerIsBetter={direction === 'minimize'}
              />
            </figure>
            <figure class="chart" data-testid="plot-importance">
              <figcaption>Hyperparameter importance</figcaption>
              <LoadState state={analysis} what="Sweep analysis" />
              {analysis.data && <Bars items={importanceItems(analysis.data)} />}
            </figure>
            {objectives.length >= 2 && (
              <figure class="chart" data-testid="plot-pareto">
                <figcaption>Pareto front</figcaption>
                <FrontScatter
                  points={plots.pareto}
                  xLabel={`${objectives[0]!.metric} (${objectives[0]!.direction})`}
                  yLabel={`${objectives[1]!.metric} (${objectives[1]!.direction})`}
                />
              </figure>
            )}
          </div>
          <h3>Trials</h3>
          <LoadState state={trials} what="Trials" />
          <table class="table" data-testid="trials-table">
            <thead>
              <tr>
                <th class="num">#</th>
                <th>Status</th>
                {plots.params.map((p) => (
                  <th key={p}>{p}</th>
                ))}
                <th class="num">{objectives.map((o) => o.metric).join(', ') || 'value'}</th>
                <th>Run</th>
              </tr>
            </thead>
            <tbody>
              {list.map((t, i) => (
                <tr key={`${trialNo(t, i)}-${String(t.run_id ?? i)}`}>
                  <td class="num">{trialNo(t, i)}</td>
                  <td>
                    <Badge value={trialStatus(t)} />
                  </td>
                  {plots.params.map((p) => (
                    <td key={p}>{fmtValue(t.params?.[p])}</td>
                  ))}
                  <td class="num">
                    {trialValues(t)
                      ?.map((v) => fmtNum(v))
                      .join(', ') ?? '—'}
                  </td>
                  <td>
                    {t.run_id ? <a href={href(['runs', String(t.run_id)])}>{String(t.run_id)}</a> : '—'}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  );
}
