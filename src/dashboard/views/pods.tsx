import type { LeaderboardEntry, Pod } from '../api-types.js';
import { Intervals, PlacementBar } from '../charts.js';
import { fmtNum, fmtPct, fmtTime } from '../format.js';
import { href, navigate, type Route } from '../router.js';
import { useSession } from '../session.js';
import { Action, Badge, backFrom, backTo, KeyValues, LoadState, Pager, useLoad } from '../ui.js';

/**
 * Pods: a status board of the evaluation pods (confidence against target, games, epoch in
 * flight), each pod's posterior over placements with its credible intervals, and the league
 * leaderboard with each rating's uncertainty.
 */

const STATUS_ORDER = ['active', 'ready', 'converged', 'archived'];

export function PodsView({ route }: { route: Route }) {
  const id = route.parts[1];
  return id ? <PodDetail id={id} /> : <PodBoard query={route.query} />;
}

function PodBoard({ query }: { query: URLSearchParams }) {
  const { api } = useSession();
  const status = query.get('status') ?? '';
  const cursor = query.get('cursor');
  const back = backFrom(query);
  const pods = useLoad(
    (signal) =>
      api.get<{ pods: Pod[]; next_cursor: string | null }>('/pods', { status, limit: 100, cursor }, signal),
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
          <div class="filters">
            <label>
              Status
              <select
                value={status}
                onChange={(e) => navigate(['pods'], { status: (e.target as HTMLSelectElement).value })}
              >
                <option value="">any</option>
                {STATUS_ORDER.map((s) => (
                  <option key={s}>{s}</option>
                ))}
              </select>
            </label>
          </div>
          {list.length === 0 && <p class="muted">No pods. Create one with `runplane pod create`.</p>}
          {order
            .filter((s) => groups.has(s))
            .map((s) => (
              <div key={s} class="board-column">
                <h3>
                  <Badge value={s} /> <span class="muted">{groups.get(s)!.length}</span>
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
            cursor={cursor}
            nextCursor={pods.data.next_cursor}
            back={back}
            count={list.length}
            go={(c, b) => navigate(['pods'], { status, cursor: c, back: backTo(b) })}
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
          <table class="table" data-testid="leaderboard">
            <thead>
              <tr>
                <th class="num">#</th>
                <th>Participant</th>
                <th>Model</th>
                <th class="num">μ</th>
                <th class="num">σ</th>
                <th class="num">Ordinal (μ − 3σ)</th>
                <th class="num">Games</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((e) => (
                <tr key={e.participant}>
                  <td class="num">{e.rank}</td>
                  <td>{e.participant}</td>
                  <td>{e.model_version ?? '—'}</td>
                  <td class="num">{fmtNum(e.mu, 4)}</td>
                  <td class="num">{fmtNum(e.sigma, 3)}</td>
                  <td class="num">{fmtNum(e.ordinal, 4)}</td>
                  <td class="num">{fmtNum(e.games)}</td>
                </tr>
              ))}
              {rows.length === 0 && (
                <tr>
                  <td colSpan={7} class="muted">
                    No rated games yet.
                  </td>
                </tr>
              )}
            </tbody>
          </table>
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
  const p = pod.data;
  const reload = () => {
    pod.reload();
    epochs.reload();
  };
  return (
    <section data-view="pod" data-view-ready={p ? 'pod' : undefined}>
      <p>
        <a href={href(['pods'])}>← Pods</a>
      </p>
      <LoadState state={pod} what="Pod" />
      {p && (
        <>
          <h2>
            Pod {p.pod_id} <Badge value={p.status} />
          </h2>
          <div class="actions">
            <Action
              label="Dispatch"
              title="Launch the next epoch now?"
              onConfirm={() => api.post(`${path}/dispatch`)}
              onDone={reload}
            />
            <Action
              label="Reset"
              title="Reset this pod (old evidence decays)?"
              onConfirm={() => api.post(`${path}/reset`, { reason: 'reset from the dashboard' })}
              onDone={reload}
            />
            <Action
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
          <table class="table" data-testid="posterior">
            <thead>
              <tr>
                <th>Participant</th>
                <th>P(1st … 4th)</th>
                <th class="num">Expected place</th>
                <th class="num">Credible interval</th>
                <th class="num">Evidence</th>
              </tr>
            </thead>
            <tbody>
              {p.posterior.map((q) => (
                <tr key={q.participant}>
                  <td>{q.participant}</td>
                  <td>
                    <PlacementBar probabilities={q.placement_probabilities} />
                  </td>
                  <td class="num">{fmtNum(q.expected_placement, 3)}</td>
                  <td class="num">
                    [{fmtNum(q.interval[0], 3)}, {fmtNum(q.interval[1], 3)}]
                  </td>
                  <td class="num">{fmtNum(q.evidence, 4)}</td>
                </tr>
              ))}
            </tbody>
          </table>
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
            <table class="table">
              <thead>
                <tr>
                  <th class="num">Epoch</th>
                  <th>Status</th>
                  <th class="num">Size</th>
                  <th class="num">Games</th>
                  <th class="num">Attempt</th>
                  <th>Job</th>
                  <th>Started</th>
                  <th>Finished</th>
                  <th>Error</th>
                </tr>
              </thead>
              <tbody>
                {epochs.data.epochs.map((e) => (
                  <tr key={e.epoch}>
                    <td class="num">{e.epoch}</td>
                    <td>
                      <Badge value={e.status} />
                    </td>
                    <td class="num">{e.size}</td>
                    <td class="num">{e.games_received}</td>
                    <td class="num">{e.attempt}</td>
                    <td>{e.job_id ? <a href={href(['jobs', e.job_id])}>{e.job_id}</a> : '—'}</td>
                    <td>{fmtTime(e.created_at)}</td>
                    <td>{fmtTime(e.finished_at)}</td>
                    <td class="clip">{e.last_error ?? ''}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
    </section>
  );
}
