import { useMemo } from 'preact/hooks';
import type { RankedTrial, Sweep, SweepAnalysis, Trial } from '../api-types.js';
import { Bars, FrontScatter, LineChart, PALETTE, ParallelCoordinates } from '../charts.js';
import { ConfirmAction } from '../components/confirm.js';
import { type Column, DataTable } from '../components/data-table.js';
import { Detail } from '../components/detail.js';
import { Filters } from '../components/filters.js';
import { Pager, pageAt } from '../components/pager.js';
import { StateBadge, statesOf } from '../components/state-badge.js';
import { fmtNum, fmtTime, fmtValue } from '../format.js';
import { href, navigate, type Route } from '../router.js';
import { useSession } from '../session.js';
import { ErrorBox, KeyValues, LoadState, useLoad } from '../ui.js';

/**
 * Sweeps: progress and best so far per sweep, and a sweep's detail: optimization history,
 * parallel coordinates, hyperparameter importance, the Pareto front (two objectives) and the
 * objective-versus-cost front, the significance of the best against the runner-up, the top
 * trials, the trial table, and stop/resume. The analysis (`/analysis`) is the controller's: the
 * same numbers `runplane sweep analyze` prints.
 */

const ACTIVE = [
  'PENDING',
  'IN_TRAINING',
  'TRAINING_DONE_NO_EVAL',
  'IN_EVAL',
  'EVAL_DONE_NOT_COMPLETED',
  'STALE',
];

function progress(s: Sweep) {
  const c = s.counts;
  const n = (...keys: string[]) => keys.reduce((t, k) => t + (c[k] ?? 0), 0);
  return {
    done: n('COMPLETED'),
    active: n(...ACTIVE),
    failed: n('FAILED'),
    pruned: n('PRUNED'),
    finished: n('COMPLETED', 'FAILED', 'PRUNED'),
  };
}

function params(p: Record<string, unknown>): string {
  return Object.entries(p)
    .map(([k, v]) => `${k}=${fmtValue(v)}`)
    .join(', ');
}

export function SweepsView({ route }: { route: Route }) {
  const id = route.parts[1];
  return id ? <SweepDetail id={id} /> : <SweepList query={route.query} />;
}

const SWEEP_COLUMNS: Column<Sweep>[] = [
  { head: 'Name', cell: (s) => <a href={href(['sweeps', s.sweep_id])}>{s.name}</a> },
  { head: 'Status', cell: (s) => <StateBadge kind="sweep" value={s.status} /> },
  { head: 'Progress', cell: (s) => <Progress sweep={s} /> },
  { head: 'Objective', cell: (s) => s.objectives.map((o) => `${o.direction} ${o.metric}`).join(', ') },
  {
    head: 'Best so far',
    num: true,
    cell: (s) => (s.best ? `${fmtNum(s.best.value)} (#${s.best.number})` : '—'),
  },
  { head: 'Optimizer / scheduler', cell: (s) => `${s.optimizer} / ${s.scheduler}` },
  { head: 'Created', cell: (s) => fmtTime(s.created_at) },
];

function SweepList({ query }: { query: URLSearchParams }) {
  const { api } = useSession();
  const at = pageAt(query);
  const status = query.get('status') ?? '';
  const sweeps = useLoad(
    (signal) =>
      api.get<{ sweeps: Sweep[]; next_cursor: string | null }>(
        '/sweeps',
        { status, limit: 50, cursor: at.cursor },
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
          <Filters
            fields={[
              { type: 'select', name: 'status', label: 'Status', options: statesOf('sweep'), any: true },
            ]}
            values={{ status }}
            onChange={(patch) => navigate(['sweeps'], patch)}
          />
          <DataTable
            testid="sweeps-table"
            columns={SWEEP_COLUMNS}
            rows={list}
            rowKey={(s) => s.sweep_id}
            row={(s) => ({ 'data-sweep-id': s.sweep_id })}
            empty={
              <>
                No sweeps. Start one with <code>runplane sweep start &lt;file&gt;</code>.
              </>
            }
          />
          <Pager
            at={at}
            next={sweeps.data.next_cursor}
            count={list.length}
            route={['sweeps']}
            query={{ status }}
          />
        </>
      )}
    </section>
  );
}

function Progress({ sweep }: { sweep: Sweep }) {
  const p = progress(sweep);
  const of = sweep.max_trials ?? sweep.trial_count;
  const text = `${p.done} done · ${p.active} active · ${p.failed} failed${p.pruned ? ` · ${p.pruned} pruned` : ''}`;
  return (
    <div>
      <div class="meter" title={text}>
        <div
          class="meter-fill tone-ok"
          style={{ width: `${of ? Math.min(100, (p.finished / of) * 100) : 0}%` }}
        />
        <span class="meter-label">
          {p.finished} / {sweep.max_trials ?? `${sweep.trial_count}+`}
        </span>
      </div>
      <div class="muted small">{text}</div>
    </div>
  );
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
    (signal) => api.get<SweepAnalysis>(`${path}/analysis`, undefined, signal),
    [api, path],
    {
      pollMs: 10_000,
    },
  );
  const a = analysis.data;
  const list = trials.data?.trials ?? [];
  const objectives = sweep.data?.objectives ?? [];
  const primary = objectives[0];

  const plots = useMemo(() => {
    const completed = list.filter(
      (t) => t.status === 'COMPLETED' && t.values !== null && t.values.length > 0,
    );
    const names = [...new Set(list.flatMap((t) => Object.keys(t.params)))].sort();
    const objectiveKey = `${primary?.metric ?? 'objective'} (objective)`;
    const rows = completed.map((t) => ({ ...t.params, [objectiveKey]: t.values![0] }));
    const front = new Set(a?.pareto_front ?? []);
    const pareto = completed
      .filter((t) => (t.values?.length ?? 0) >= 2)
      .map((t) => ({
        x: t.values![0]!,
        y: t.values![1]!,
        front: front.has(t.number),
        label: `trial ${t.number}`,
      }));
    const costFront = new Set(a?.cost_front ?? []);
    const cost = completed
      .filter((t) => t.cost !== null)
      .map((t) => ({
        x: t.values![0]!,
        y: t.cost!,
        front: costFront.has(t.number),
        label: `trial ${t.number}`,
      }));
    return { names, objectiveKey, rows, pareto, cost };
  }, [list, a, primary?.metric]);

  const history = a?.history ?? [];
  const reload = () => {
    sweep.reload();
    trials.reload();
    analysis.reload();
  };
  const metrics = objectives.map((o) => o.metric).join(', ');
  const topColumns: Column<RankedTrial>[] = [
    { head: '#', num: true, cell: (t) => t.number },
    { head: metrics, num: true, cell: (t) => t.values.map((v) => fmtNum(v)).join(', ') },
    { head: 'Parameters', cell: (t) => params(t.params) },
    { head: 'Run', cell: (t) => <a href={href(['runs', t.run_id])}>{t.run_id}</a> },
  ];
  const trialColumns: Column<Trial>[] = [
    { head: '#', num: true, cell: (t) => t.number },
    { head: 'Status', cell: (t) => <StateBadge kind="trial" value={t.status} /> },
    ...plots.names.map(
      (p): Column<Trial> => ({ head: p, key: `param:${p}`, cell: (t) => fmtValue(t.params[p]) }),
    ),
    { head: metrics || 'value', num: true, cell: (t) => t.values?.map((v) => fmtNum(v)).join(', ') ?? '—' },
    { head: 'Attempt', num: true, cell: (t) => t.attempt },
    {
      head: 'Origin',
      cell: (t) => `${t.origin}${t.parent_number !== null ? ` ← #${t.parent_number}` : ''}`,
    },
    { head: 'Ended', cell: (t) => t.end_reason ?? '—' },
    { head: 'Run', cell: (t) => <a href={href(['runs', t.run_id])}>{t.run_id}</a> },
  ];
  return (
    <Detail view="sweep" back={['sweeps']} backLabel="Sweeps" state={sweep} what="Sweeps">
      {(s) => (
        <>
          <h2>
            {s.name} <StateBadge kind="sweep" value={s.status} />
          </h2>
          <div class="actions">
            <ConfirmAction
              label="Stop"
              title={`Stop sweep ${s.name}? No new trials start and running ones are terminated; it can be resumed.`}
              danger
              disabled={s.status !== 'running'}
              onConfirm={() => api.post(`${path}/stop`, { reason: 'stopped from the dashboard' })}
              onDone={reload}
            />
            <ConfirmAction
              label="Resume"
              title={`Resume sweep ${s.name}? Interrupted trials run again, new ones up to max_trials.`}
              disabled={s.status !== 'stopped' && s.status !== 'failed'}
              onConfirm={() => api.post(`${path}/resume`)}
              onDone={reload}
            />
          </div>
          <div class="grid2">
            <KeyValues
              rows={[
                ['Sweep id', <code key="id">{s.sweep_id}</code>],
                ['Progress', <Progress key="p" sweep={s} />],
                [
                  'Objective',
                  objectives.map((o) => `${o.direction} ${o.metric} (${o.aggregate})`).join(', '),
                ],
                ['Best so far', s.best ? `${fmtNum(s.best.value)} — trial #${s.best.number}` : '—'],
                ['Best parameters', s.best ? params(s.best.params) : '—'],
                ['Best run', s.best ? <a href={href(['runs', s.best.run_id])}>{s.best.run_id}</a> : '—'],
              ]}
            />
            <KeyValues
              rows={[
                ['Optimizer', s.optimizer],
                ['Scheduler', s.scheduler],
                ['Dispatcher', s.dispatcher],
                ['Parallel jobs', String(s.max_parallel_jobs)],
                ['Status reason', s.status_reason ?? '—'],
                ['Last error', s.last_error ?? '—'],
                ['Created', fmtTime(s.created_at)],
                ['Finished', fmtTime(s.finished_at)],
              ]}
            />
          </div>
          <ErrorBox error={analysis.error} />
          <div class="charts" data-testid="sweep-plots">
            <LineChart
              title="Optimization history"
              testid="plot-history"
              spec={{
                x: history.map((h) => h.number),
                xLabel: 'trial',
                yLabel: primary?.metric ?? 'objective',
                height: 240,
                series: [
                  {
                    label: primary?.metric ?? 'objective',
                    values: history.map((h) => h.value),
                    color: PALETTE[0]!,
                    points: true,
                  },
                  { label: 'best so far', values: history.map((h) => h.best), color: PALETTE[1]! },
                ],
              }}
            />
            <figure class="chart" data-testid="plot-parallel">
              <figcaption>Parallel coordinates</figcaption>
              <ParallelCoordinates
                axes={[...plots.names, plots.objectiveKey]}
                rows={plots.rows}
                colorBy={plots.objectiveKey}
                lowerIsBetter={primary?.direction !== 'maximize'}
              />
            </figure>
            <figure class="chart" data-testid="plot-importance">
              <figcaption>
                Hyperparameter importance {a && <span class="muted small">{a.importance_method}</span>}
              </figcaption>
              {a ? (
                <Bars items={a.importance.map((i) => ({ label: i.param, value: i.importance }))} />
              ) : (
                <p class="muted">Loading…</p>
              )}
            </figure>
            {objectives.length >= 2 && (
              <figure class="chart" data-testid="plot-pareto">
                <figcaption>
                  Pareto front{' '}
                  {a?.hypervolume !== null && a?.hypervolume !== undefined && (
                    <span class="muted small">hypervolume {fmtNum(a.hypervolume)}</span>
                  )}
                </figcaption>
                <FrontScatter
                  points={plots.pareto}
                  xLabel={`${objectives[0]!.metric} (${objectives[0]!.direction})`}
                  yLabel={`${objectives[1]!.metric} (${objectives[1]!.direction})`}
                />
              </figure>
            )}
            {plots.cost.length > 0 && (
              <figure class="chart" data-testid="plot-cost">
                <figcaption>Objective versus cost</figcaption>
                <FrontScatter
                  points={plots.cost}
                  xLabel={primary?.metric ?? 'objective'}
                  yLabel="cost (minimize)"
                />
              </figure>
            )}
          </div>
          {a?.significance && (
            <p data-testid="significance">
              Best (#{a.significance.a}) against runner-up (#{a.significance.b}): {a.significance.test}, p ={' '}
              {fmtNum(a.significance.p_value, 3)} —{' '}
              {a.significance.significant ? 'significant' : 'not significant'}.{' '}
              <span class="muted">{a.significance.note}</span>
            </p>
          )}
          {a && a.top.length > 0 && (
            <>
              <h3>Top trials</h3>
              <DataTable testid="top-trials" columns={topColumns} rows={a.top} rowKey={(t) => t.number} />
            </>
          )}
          <h3>Trials</h3>
          <LoadState state={trials} what="Trials" />
          <DataTable
            testid="trials-table"
            columns={trialColumns}
            rows={list}
            rowKey={(t) => t.number}
            row={(t) => ({ title: t.error ?? undefined })}
          />
        </>
      )}
    </Detail>
  );
}
