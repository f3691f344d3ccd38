import type { LeaderboardEntry, Pod, PodPosterior } from '../api-types.js';
import { Intervals, PlacementBar } from '../charts.js';
import { ConfirmAction } from '../components/confirm.js';
import { type Column, DataTable } from '../components/data-table.js';
import { Detail } from '../components/detail.js';
import { Filters } from '../components/filters.js';
import { Pager, pageAt } from '../components/pager.js';
import { StateBadge, statesOf } from '../components/state-badge.js';
import { fmtNum, fmtPct, fmtTime } from '../format.js';
import { href, navigate, type Route } from '../router.js';
import { useSession } from '../session.js';
import { KeyValues, LoadState, useLoad } from '../ui.js';

/**
 * Pods: a status board of the evaluation pods (confidence against target, games, epoch in
 * flight), each pod's posterior over placements with its credible intervals, and the league
 * leaderboard with each rating's uncertainty.
 */

const STATUS_ORDER = statesOf('pod');

export function PodsView({ route }: { route: Route }) {
  const id = route.parts[1];
  return id ? <PodDetail id={id} /> : <PodBoard query={route.query} />;
}

function PodBoard({ query }: { query: URLSearchParams }) {
  const { api } = useSession();
  const status = query.get('status') ?? '';
  const at = pageAt(query);
  const pods = useLoad(
    (signal) =>
      api.get<{ pods: Pod[]; next_cursor: string | null }>(
        '/pods',
        { status, limit: 100, cursor: at.cursor },
        signal,
      ),
    [api, query.toString()],
    { pollMs: 5000 },
  );
  const list = pods.data?.pods ?? [];
  const groups = new Map<string, Pod[]>();
  for (const p of list) groups.set(p.status, [...(groups.get(p.status) ?? []), p]);
  const order = [...STATUS_ORDER, ...[...groups.keys()].filter((s) => !STATUS_ORDER.includes(s))];
  return (
    <section data-view="pods" data-view-ready={pods.data || pods.error ? 'pods' : undefined}>
      <h2>Pods</h2>
      <LoadState state={pods} what="Pods" />
      {pods.data && (
        <>
          <Filters
            fields={[{ type: 'select', name: 'status', label: 'Status', options: STATUS_ORDER, any: true }]}
            values={{ status }}
            onChange={(patch) => navigate(['pods'], patch)}
          />
          {list.length === 0 && <p class="muted">No pods. Create one with `runplane pod create`.</p>}
          {order
            .filter((s) => groups.has(s))
            .map((s) => (
              <div key={s} class="board-column">
                <h3>
                  <StateBadge kind="pod" value={s} /> <span class="muted">{groups.get(s)!.length}</span>
                </h3>
                <div class="board">
                  {groups.get(s)!.map((p) => (
                    <a key={p.pod_id} class="pod-card" href={href(['pods', p.pod_id])} data-pod-id={p.pod_id}>
                      <div class="pod-participants">{p.participants.join(' · ')}</div>
                      <ConfidenceBar
                        value={p.convergence.confidence}
                        target={p.convergence.confidence_target}
                      />
                      <div class="muted">
                        {fmtNum(p.statistics.games_played)} games · {p.statistics.epochs_dispatched} epochs
                        {p.current_epoch ? ` · epoch ${p.current_epoch.epoch} ${p.current_epoch.status}` : ''}
                      </div>
                      {p.convergence.ranking.length > 0 && (
                        <div class="muted">ranking: {p.convergence.ranking.join(' > ')}</div>
                      )}
                    </a>
                  ))}
                </div>
              </div>
            ))}
          <Pager
            at={at}
            next={pods.data.next_cursor}
            count={list.length}
            route={['pods']}
            query={{ status }}
          />
        </>
      )}
      <Leaderboard />
    </section>
  );
}

function ConfidenceBar({ value, target }: { value: number; target: number }) {
  const met = value >= target;
  return (
    <div class="meter" title={`confidence ${fmtPct(value)} of target ${fmtPct(target)}`}>
      <div
        class={`meter-fill tone-${met ? 'ok' : 'warn'}`}
        style={{ width: `${Math.min(100, value * 100)}%` }}
      />
      <div class="meter-target" style={{ left: `${target * 100}%` }} />
      <span class="meter-label">
        {fmtPct(value)} / {fmtPct(target)}
      </span>
    </div>
  );
}

const LEADERBOARD_COLUMNS: Column<LeaderboardEntry>[] = [
  { head: '#', num: true, cell: (e) => e.rank },
  { head: 'Participant', cell: (e) => e.participant },
  { head: 'Model', cell: (e) => e.model_version ?? '—' },
  { head: 'μ', num: true, cell: (e) => fmtNum(e.mu, 4) },
  { head: 'σ', num: true, cell: (e) => fmtNum(e.sigma, 3) },
  { head: 'Ordinal (μ − 3σ)', num: true, cell: (e) => fmtNum(e.ordinal, 4) },
  { head: 'Games', num: true, cell: (e) => fmtNum(e.games) },
];

function Leaderboard() {
  const { api } = useSession();
  const board = useLoad(
    (signal) =>
      api.get<{ model: string; participants: LeaderboardEntry[] }>('/leaderboard', { limit: 50 }, signal),
    [api],
    { pollMs: 10_000 },
  );
  const rows = board.data?.participants ?? [];
  return (
    <>
      <h3>Leaderboard {board.data && <span class="muted">({board.data.model})</span>}</h3>
      <LoadState state={board} what="The leaderboard" />
      {board.data && (
        <div class="grid2">
          <DataTable
            testid="leaderboard"
            columns={LEADERBOARD_COLUMNS}
            rows={rows}
            rowKey={(e) => e.participant}
            empty="No rated games yet."
          />
          <div>
            <p class="muted">Rating μ with ±2σ</p>
            <Intervals
              items={rows.map((e) => ({
                label: e.participant,
                mid: e.mu,
                lo: e.mu - 2 * e.sigma,
                hi: e.mu + 2 * e.sigma,
              }))}
            />
          </div>
        </div>
      )}
    </>
  );
}

interface Epoch {
  epoch: number;
  size: number;
  status: string;
  attempt: number;
  job_id: string | null;
  games_received: number;
  last_error: string | null;
  created_at: string | null;
  finished_at: string | null;
}

const POSTERIOR_COLUMNS: Column<PodPosterior>[] = [
  { head: 'Participant', cell: (q) => q.participant },
  { head: 'P(1st … 4th)', cell: (q) => <PlacementBar probabilities={q.placement_probabilities} /> },
  { head: 'Expected place', num: true, cell: (q) => fmtNum(q.expected_placement, 3) },
  {
    head: 'Credible interval',
    num: true,
    cell: (q) => `[${fmtNum(q.interval[0], 3)}, ${fmtNum(q.interval[1], 3)}]`,
  },
  { head: 'Evidence', num: true, cell: (q) => fmtNum(q.evidence, 4) },
];

const EPOCH_COLUMNS: Column<Epoch>[] = [
  { head: 'Epoch', num: true, cell: (e) => e.epoch },
  { head: 'Status', cell: (e) => <StateBadge kind="epoch" value={e.status} /> },
  { head: 'Size', num: true, cell: (e) => e.size },
  { head: 'Games', num: true, cell: (e) => e.games_received },
  { head: 'Attempt', num: true, cell: (e) => e.attempt },
  { head: 'Job', cell: (e) => (e.job_id ? <a href={href(['jobs', e.job_id])}>{e.job_id}</a> : '—') },
  { head: 'Started', cell: (e) => fmtTime(e.created_at) },
  { head: 'Finished', cell: (e) => fmtTime(e.finished_at) },
  { head: 'Error', class: 'clip', cell: (e) => e.last_error ?? '' },
];

function PodDetail({ id }: { id: string }) {
  const { api } = useSession();
  const path = `/pods/${encodeURIComponent(id)}`;
  const pod = useLoad((signal) => api.get<Pod>(path, undefined, signal), [api, path], { pollMs: 3000 });
  const epochs = useLoad(
    (signal) => api.get<{ epochs: Epoch[] }>(`${path}/epochs`, undefined, signal),
    [api, path],
    {
      pollMs: 5000,
    },
  );
  const reload = () => {
    pod.reload();
    epochs.reload();
  };
  return (
    <Detail view="pod" back={['pods']} backLabel="Pods" state={pod} what="Pod">
      {(p) => (
        <>
          <h2>
            Pod {p.pod_id} <StateBadge kind="pod" value={p.status} />
          </h2>
          <div class="actions">
            <ConfirmAction
              label="Dispatch"
              title="Launch the next epoch now?"
              onConfirm={() => api.post(`${path}/dispatch`)}
              onDone={reload}
            />
            <ConfirmAction
              label="Reset"
              title="Reset this pod (old evidence decays)?"
              onConfirm={() => api.post(`${path}/reset`, { reason: 'reset from the dashboard' })}
              onDone={reload}
            />
            <ConfirmAction
              label="Archive"
              title="Archive this pod (final)?"
              danger
              onConfirm={() => api.post(`${path}/archive`)}
              onDone={reload}
            />
          </div>
          <KeyValues
            rows={[
              ['Participants', p.participants.join(', ')],
              ['Seed', String(p.seed)],
              [
                'Confidence',
                <ConfidenceBar
                  key="c"
                  value={p.convergence.confidence}
                  target={p.convergence.confidence_target}
                />,
              ],
              ['Precision', fmtNum(p.convergence.precision)],
              ['Ranking', p.convergence.ranking.join(' > ') || '—'],
              ['Why', p.convergence.reasons.join('; ') || '—'],
              ['Games', fmtNum(p.statistics.games_played)],
              ['Stop reason', p.stop_reason ?? '—'],
              ['Last error', p.last_error ?? '—'],
            ]}
          />
          <h3>Posterior</h3>
          <DataTable
            testid="posterior"
            columns={POSTERIOR_COLUMNS}
            rows={p.posterior}
            rowKey={(q) => q.participant}
          />
          <Intervals
            lowerIsBetter
            items={p.posterior.map((q) => ({
              label: q.participant,
              mid: q.expected_placement,
              lo: q.interval[0] ?? q.expected_placement,
              hi: q.interval[1] ?? q.expected_placement,
            }))}
          />
          <h3>Epochs</h3>
          <LoadState state={epochs} what="Epochs" />
          {epochs.data && (
            <DataTable columns={EPOCH_COLUMNS} rows={epochs.data.epochs} rowKey={(e) => e.epoch} />
          )}
        </>
      )}
    </Detail>
  );
}
