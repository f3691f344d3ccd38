import { toIso } from '../shared/clock.js';
import type { EpochStatus, PodConfig, PodStatus } from './model.js';
import type { EpochRow, GameRow, PodParticipantRow, PodRow, TraceRow } from './pod-repo.js';
import type { Evaluation, Evidence } from './posterior.js';
import type { EpochView, PodView, ReplayView } from './schemas.js';

/** Maps stored pod rows to their wire shape (snake_case, RFC 3339 times). */
export function epochView(e: EpochRow): EpochView {
  return {
    epoch: e.epoch_no,
    size: e.size,
    status: e.status as EpochStatus,
    attempt: e.attempt,
    job_id: e.job_id,
    games_received: e.games_received,
    estimated_remaining: e.estimated_remaining,
    next_retry_at: toIso(e.next_retry_at),
    last_error: e.last_error,
    created_at: toIso(e.created_at),
    finished_at: toIso(e.finished_at),
    updated_at: toIso(e.updated_at),
  };
}

export function evidenceOf(rows: readonly PodParticipantRow[]): Evidence[] {
  return rows.map((r) => ({ participant: r.participant_id, counts: [r.e1, r.e2, r.e3, r.e4] }));
}

const round = (x: number, d = 6) => Number(x.toFixed(d));

export function podView(pod: PodRow, parts: readonly PodParticipantRow[], current: EpochRow | null): PodView {
  const config = JSON.parse(pod.config) as PodConfig;
  const ev = pod.evaluation ? (JSON.parse(pod.evaluation) as Evaluation) : null;
  return {
    pod_id: pod.id,
    status: pod.status as PodStatus,
    stop_reason: pod.stop_reason,
    participants: JSON.parse(pod.participants) as string[],
    seed: pod.seed,
    config,
    spec_hash: pod.spec_hash,
    statistics: {
      epochs_dispatched: pod.epochs_dispatched,
      epochs_since_reset: pod.epochs_since_reset,
      last_epoch_size: pod.last_epoch_size,
      games_played: pod.games_played,
      games_since_reset: pod.games_since_reset,
      duplicate_games: pod.duplicate_games,
      failed_epochs: pod.failed_epochs,
      reset_count: pod.reset_count,
    },
    current_epoch: current ? epochView(current) : null,
    convergence: {
      converged: pod.status === 'converged' && pod.stop_reason === 'confidence_target_met',
      confidence: pod.confidence,
      confidence_target: config.confidence_target,
      precision: config.precision,
      method: ev?.method ?? null,
      ranking: ev?.ranking ?? [],
      ranking_confidence: ev?.ranking_confidence ?? 0,
      precision_confidence: ev?.precision_confidence ?? 0,
      reasons:
        pod.status === 'converged' && pod.stop_reason === 'max_epochs'
          ? [
              `stopped at max_epochs_per_pod (${config.max_epochs_per_pod}) before reaching the target`,
              ...(ev?.reasons ?? []),
            ]
          : (ev?.reasons ?? ['no games yet']),
    },
    posterior: ev?.participants ?? [],
    aggregation: parts.map((r) => {
      const counts = [r.p1, r.p2, r.p3, r.p4];
      const games = counts.reduce((s, c) => s + c, 0);
      return {
        participant: r.participant_id,
        model_version: r.model_version,
        games,
        placement_counts: counts,
        mean_placement: games === 0 ? null : round(counts.reduce((s, c, k) => s + c * (k + 1), 0) / games),
        win_rate: games === 0 ? null : round(r.p1 / games),
        mean_turns: games === 0 ? null : round(r.turns / games, 3),
      };
    }),
    last_error: pod.last_error,
    created_at: toIso(pod.created_at),
    updated_at: toIso(pod.updated_at),
    converged_at: toIso(pod.converged_at),
    expires_at: toIso(pod.expires_at),
    last_reset_at: toIso(pod.last_reset_at),
    archived_at: toIso(pod.archived_at),
  };
}

export function replayView(g: GameRow): ReplayView {
  return {
    pod_id: g.pod_id,
    game_id: g.game_id,
    epoch: g.epoch_no,
    placements: JSON.parse(g.placements) as Record<string, number>,
    turns: g.turns,
    replay: g.replay,
    recorded_at: toIso(g.recorded_at),
  };
}

/** One line of the training trace export. */
export interface TraceLine {
  seq: number;
  pod_id: string;
  at: string | null;
  kind: string;
  epoch: number | null;
  games_played: number;
  confidence: number | null;
  detail: Record<string, unknown>;
}

export function traceLine(t: TraceRow): TraceLine {
  return {
    seq: t.seq,
    pod_id: t.pod_id,
    at: toIso(t.created_at),
    kind: t.kind,
    epoch: t.epoch_no,
    games_played: t.games_played,
    confidence: t.confidence,
    detail: JSON.parse(t.detail) as Record<string, unknown>,
  };
}

export function toNdjson(lines: readonly TraceLine[]): string {
  return lines.map((l) => `${JSON.stringify(l)}\n`).join('');
}

const CSV_COLUMNS = ['seq', 'pod_id', 'at', 'kind', 'epoch', 'games_played', 'confidence', 'detail'] as const;

function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = typeof v === 'string' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** RFC 4180 CSV with a header; `detail` is a JSON cell. */
export function toCsv(lines: readonly TraceLine[]): string {
  const out = [CSV_COLUMNS.join(',')];
  for (const l of lines) out.push(CSV_COLUMNS.map((c) => csvCell(l[c])).join(','));
  return `${out.join('\r\n')}\r\n`;
}
